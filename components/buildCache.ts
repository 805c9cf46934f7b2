// Per-platform BuildKit cache settings. Each platform gets its own cache ref: a shared ref would
// make every platform's export overwrite the others' (docker-build's docs recommend one Image and
// one cache per platform for exactly that reason).
import * as aws from "@pulumi/aws";
import type * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { NAMESPACE, type Shape, checkObject, show, validateImageName } from "./config";
import { platformSlug } from "./naming";
import type { CacheConfig, CacheType, Platform } from "./types";

export interface BuildCacheArgs {
  /** Cache backend and its settings (already defaulted by config validation). */
  cache: CacheConfig;
  platforms: Platform[];
  /** A pull request's scope (`pr-<n>`): it writes only there and reads main's cache too. @default none */
  scope?: string;
  /** Stack name: scopes gha and s3 prefixes so stacks never share (and poison) a cache. */
  stack: string;
}

export interface PlatformCache {
  cacheFrom: dockerbuild.types.input.CacheFromArgs[];
  cacheTo: dockerbuild.types.input.CacheToArgs[];
  /** Human-readable location of the cache, for the `cacheRefs` export. */
  ref: pulumi.Input<string>;
}

const CACHE_TYPES: readonly CacheType[] = ["registry", "s3", "gha", "local"];

// Cache settings end up in buildx's `--cache-to type=…,key=value,…` specs: a comma or `=` inside a
// value would add options of its own (e.g. a second `dest=`), so each value is held to its grammar.
const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_RESERVED = [
  /^xn--/,
  /^sthree-/,
  /^amzn-s3-demo-/,
  /-s3alias$/,
  /--ol-s3$/,
  /\.mrap$/,
  /--x-s3$/,
  /--table-s3$/,
];
const AWS_REGION = /^[a-z]{2,4}(?:-[a-z]+){1,3}-[1-9][0-9]?$/;

/** Why `name` is not an S3 bucket name (AWS's general-purpose bucket naming rules), or undefined. */
export function s3BucketProblem(name: string): string | undefined {
  if (!S3_BUCKET.test(name))
    return "3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit";
  if (name.includes("..")) return "no two adjacent dots";
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return "not formatted like an IP address";
  if (S3_RESERVED.some((r) => r.test(name)))
    return "not a reserved prefix or suffix (xn--, sthree-, -s3alias, --ol-s3, …)";
  return undefined;
}

/** The switches a cache config may leave out, defaulted here for both validateCache and
 *  cacheSettings (which also takes unvalidated configs). */
const CACHE_DEFAULTS = { ociMediaTypes: true, ignoreError: true } as const;

// The sub-keys `image-factory:cache` accepts, and their types.
const CACHE_SHAPE: Shape = {
  type: "string",
  mode: "string",
  ref: "string",
  bucket: "string",
  region: "string",
  expireDays: "number",
  dir: "string",
  ociMediaTypes: "boolean",
  ignoreError: "boolean",
};

/** Checks `image-factory:cache` and applies its defaults; problems name the key and the value. */
export function validateCache(value: unknown, imageName: string, problems: string[]): CacheConfig {
  const key = `${NAMESPACE}:cache`;
  const o = checkObject("cache", value, CACHE_SHAPE, problems);
  const type = (o.type as CacheType | undefined) ?? "registry";
  const mode = (o.mode as "max" | "min" | undefined) ?? "max";
  if (!CACHE_TYPES.includes(type)) {
    problems.push(`${key}.type must be one of ${CACHE_TYPES.join(", ")}, got ${show(o.type)}`);
  }
  if (mode !== "max" && mode !== "min")
    problems.push(`${key}.mode must be "max" or "min", got ${show(o.mode)}`);
  const expireDays = (o.expireDays as number | undefined) ?? 14;
  if (!(Number.isInteger(expireDays) && expireDays >= 1)) {
    problems.push(
      `${key}.expireDays must be a whole number of days ≥ 1, got ${show(o.expireDays)}`,
    );
  }
  const ref = (o.ref as string | undefined) ?? `${imageName}-buildcache`;
  // An explicit ref is judged whatever the type; the default only where it is used and derivable.
  if (
    (o.ref !== undefined || (type === "registry" && imageName !== "")) &&
    (/[,=]/.test(ref) || validateImageName(ref).problems.length > 0)
  ) {
    problems.push(
      `${key}.ref must be an image repository on a registry host, lowercase, without tag, digest, comma or "=", got ${show(ref)}`,
    );
  }
  const bucket = o.bucket as string | undefined;
  const bucketProblem = bucket === undefined ? undefined : s3BucketProblem(bucket);
  if (bucketProblem !== undefined)
    problems.push(
      `${key}.bucket must be an S3 bucket name (${bucketProblem}), got ${show(bucket)}`,
    );
  const region = o.region as string | undefined;
  if (region !== undefined && !AWS_REGION.test(region)) {
    problems.push(`${key}.region must be an AWS region such as eu-west-1, got ${show(region)}`);
  }
  const dir = (o.dir as string | undefined) ?? ".local/cache";
  if (dir === "" || /[,=\n\r]/.test(dir)) {
    problems.push(
      `${key}.dir must be a non-empty path without comma, "=" or line breaks, got ${show(dir)}`,
    );
  }
  return {
    type,
    mode,
    ref,
    bucket,
    region,
    expireDays,
    dir,
    ociMediaTypes: (o.ociMediaTypes as boolean | undefined) ?? CACHE_DEFAULTS.ociMediaTypes,
    ignoreError: (o.ignoreError as boolean | undefined) ?? CACHE_DEFAULTS.ignoreError,
  };
}

/** Plain cache settings for one platform; `bucket` is the created bucket's name for s3. */
export function cacheSettings(
  cache: CacheConfig,
  platform: Platform,
  stack: string,
  bucket?: pulumi.Input<string>,
  scope?: string,
): PlatformCache {
  if (scope !== undefined)
    return scopedSettings(
      cacheSettings(cache, platform, stack, bucket),
      cacheSettings(cache, platform, `${stack}/${scope}`, bucket, undefined),
      cache,
      platform,
      scope,
    );
  const slug = platformSlug(platform);
  const ignoreError = cache.ignoreError ?? CACHE_DEFAULTS.ignoreError;
  const ociCache = cache.ociMediaTypes ?? CACHE_DEFAULTS.ociMediaTypes;
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
              // The cache as an OCI image manifest. BuildKit's older form, an index whose entries
              // are layers and the cache config, not manifests, is refused by ECR and by
              // distribution v3 ("manifest blob unknown"), and a refused export is only a warning.
              ociMediaTypes: ociCache ? true : undefined,
              imageManifest: ociCache ? true : undefined,
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
        cacheFrom: [
          {
            s3: { bucket: name, region, name: slug, blobsPrefix: prefix, manifestsPrefix: prefix },
          },
        ],
        cacheTo: [
          {
            s3: {
              bucket: name,
              region,
              name: slug,
              blobsPrefix: prefix,
              manifestsPrefix: prefix,
              mode: cache.mode,
              ignoreError,
            },
          },
        ],
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
 * A pull request's cache: it reads its own scope first, then the default branch's, and writes only
 * to its own scope. Unmerged code must never write the cache that main's builds (and so what users
 * pull) import: a poisoned layer would ship on the next deploy without anyone reviewing it.
 */
function scopedSettings(
  main: PlatformCache,
  scoped: PlatformCache,
  cache: CacheConfig,
  platform: Platform,
  scope: string,
): PlatformCache {
  if (cache.type === "registry") {
    const ref = `${cache.ref}:${scope}-${platformSlug(platform)}`;
    const to = main.cacheTo[0] as unknown as { registry: Record<string, unknown> };
    return {
      cacheFrom: [{ registry: { ref } }, ...main.cacheFrom],
      cacheTo: [{ registry: { ...to.registry, ref } }],
      ref,
    };
  }
  return {
    cacheFrom: [...scoped.cacheFrom, ...main.cacheFrom],
    cacheTo: scoped.cacheTo,
    ref: scoped.ref,
  };
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
      this.bucket = new aws.s3.Bucket(
        `${name}-bucket`,
        {
          forceDestroy: true,
          tags: { "image-factory:stack": args.stack, "image-factory:role": "buildcache" },
        },
        { parent: this },
      );
      new aws.s3.BucketPublicAccessBlock(
        `${name}-public-access`,
        {
          bucket: this.bucket.id,
          blockPublicAcls: true,
          blockPublicPolicy: true,
          ignorePublicAcls: true,
          restrictPublicBuckets: true,
        },
        { parent: this },
      );
      new aws.s3.BucketServerSideEncryptionConfiguration(
        `${name}-sse`,
        {
          bucket: this.bucket.id,
          rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
        },
        { parent: this },
      );
      new aws.s3.BucketLifecycleConfiguration(
        `${name}-expiry`,
        {
          bucket: this.bucket.id,
          rules: [
            {
              id: "expire-buildcache",
              status: "Enabled",
              filter: {},
              expiration: { days: cache.expireDays ?? 14 },
            },
          ],
        },
        { parent: this },
      );
      bucketName = this.bucket.bucket;
    }
    this.settings = Object.fromEntries(
      args.platforms.map((p) => [p, cacheSettings(cache, p, args.stack, bucketName, args.scope)]),
    );
    this.cacheRefs = pulumi.output(
      Object.fromEntries(Object.entries(this.settings).map(([p, s]) => [p, s.ref])),
    ) as pulumi.Output<Record<string, string>>;
    this.registerOutputs({ cacheRefs: this.cacheRefs, bucket: this.bucket?.bucket });
  }
}
