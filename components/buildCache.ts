// Per-platform BuildKit cache settings. Each platform gets its own cache ref: a shared ref would
// make every platform's export overwrite the others' (docker-build's docs recommend one Image and
// one cache per platform for exactly that reason).
import * as aws from "@pulumi/aws";
import type * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { platformSlug } from "./naming";
import type { CacheConfig, Platform } from "./types";

export interface BuildCacheArgs {
  /** Cache backend and its settings (already defaulted by config validation). */
  cache: CacheConfig;
  platforms: Platform[];
  /** Stack name: scopes gha and s3 prefixes so stacks never share (and poison) a cache. */
  stack: string;
}

export interface PlatformCache {
  cacheFrom: dockerbuild.types.input.CacheFromArgs[];
  cacheTo: dockerbuild.types.input.CacheToArgs[];
  /** Human-readable location of the cache, for the `cacheRefs` export. */
  ref: pulumi.Input<string>;
}

/** Plain cache settings for one platform; `bucket` is the created bucket's name for s3. */
export function cacheSettings(
  cache: CacheConfig,
  platform: Platform,
  stack: string,
  bucket?: pulumi.Input<string>,
): PlatformCache {
  const slug = platformSlug(platform);
  const ignoreError = cache.ignoreError ?? true;
  switch (cache.type) {
    case "registry": {
      const ref = `${cache.ref}:${slug}`;
      return {
        cacheFrom: [{ registry: { ref } }],
        cacheTo: [
          {
            registry: {
              ref,
              mode: cache.mode,
              ignoreError,
              // ECR and other strict registries need an OCI image manifest for the cache.
              ociMediaTypes: cache.ociMediaTypes ? true : undefined,
              imageManifest: cache.ociMediaTypes ? true : undefined,
            },
          },
        ],
        ref,
      };
    }
    case "gha": {
      const scope = `image-factory-${stack}-${slug}`;
      return {
        cacheFrom: [{ gha: { scope } }],
        cacheTo: [{ gha: { scope, mode: cache.mode, ignoreError } }],
        ref: `gha:${scope}`,
      };
    }
    case "s3": {
      const name = bucket ?? cache.bucket ?? "";
      const prefix = `${stack}/${slug}/`;
      const region = cache.region ?? aws.config.region ?? "us-east-1";
      return {
        cacheFrom: [{ s3: { bucket: name, region, name: slug, blobsPrefix: prefix, manifestsPrefix: prefix } }],
        cacheTo: [{ s3: { bucket: name, region, name: slug, blobsPrefix: prefix, manifestsPrefix: prefix, mode: cache.mode, ignoreError } }],
        ref: pulumi.interpolate`s3://${name}/${prefix}`,
      };
    }
    case "local": {
      const dir = `${cache.dir}/${stack}/${slug}`;
      return {
        cacheFrom: [{ local: { src: dir } }],
        cacheTo: [{ local: { dest: dir, mode: cache.mode, ignoreError } }],
        ref: dir,
      };
    }
  }
}

/**
 * Cache settings per platform, plus what the backend needs: for s3 without a given bucket, a
 * private, encrypted bucket whose objects expire after `expireDays` (BuildKit never prunes remote
 * caches itself).
 */
export class BuildCache extends pulumi.ComponentResource {
  public readonly settings: Record<string, PlatformCache>;
  public readonly cacheRefs: pulumi.Output<Record<string, string>>;
  public readonly bucket?: aws.s3.Bucket;

  constructor(name: string, args: BuildCacheArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:cache:BuildCache", name, {}, opts);
    const cache = args.cache;
    let bucketName: pulumi.Input<string> | undefined;
    if (cache.type === "s3" && cache.bucket === undefined) {
      this.bucket = new aws.s3.Bucket(`${name}-bucket`, { forceDestroy: true, tags: { "image-factory:stack": args.stack, "image-factory:role": "buildcache" } }, { parent: this });
      new aws.s3.BucketPublicAccessBlock(
        `${name}-public-access`,
        { bucket: this.bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
        { parent: this },
      );
      new aws.s3.BucketServerSideEncryptionConfiguration(
        `${name}-sse`,
        { bucket: this.bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }] },
        { parent: this },
      );
      new aws.s3.BucketLifecycleConfiguration(
        `${name}-expiry`,
        {
          bucket: this.bucket.id,
          rules: [{ id: "expire-buildcache", status: "Enabled", filter: {}, expiration: { days: cache.expireDays ?? 14 } }],
        },
        { parent: this },
      );
      bucketName = this.bucket.bucket;
    }
    this.settings = Object.fromEntries(args.platforms.map((p) => [p, cacheSettings(cache, p, args.stack, bucketName)]));
    this.cacheRefs = pulumi.output(Object.fromEntries(Object.entries(this.settings).map(([p, s]) => [p, s.ref]))) as pulumi.Output<
      Record<string, string>
    >;
    this.registerOutputs({ cacheRefs: this.cacheRefs, bucket: this.bucket?.bucket });
  }
}
