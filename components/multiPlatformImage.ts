// One docker-build Image per platform, each on the builder that runs its architecture natively,
// each with its own cache, then one Index per tag merging them into a manifest list. Separate
// Images (rather than one Image with three platforms) are what lets each platform export its own
// cache and be routed to its own host.
import * as dockerbuild from "@pulumi/docker-build";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { PlatformCache } from "./buildCache";
import { platformSlug } from "./naming";
import { OCI_TAG } from "./tags";
import { HOST_ARCH, type HostArch, type Platform } from "./types";

export interface MultiPlatformImageArgs {
  /** Repository without tag, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  platforms: Platform[];
  /** Build context holding the Dockerfile. */
  context: string;
  /** Dockerfile path. @default `${context}/Dockerfile` */
  dockerfile?: string;
  /** Tag names (no repository) the manifest list is published under; the first is the primary. */
  tags: string[];
  /** Per-platform suffix base for the single-platform images, e.g. `sha-1a2b3c4`. */
  platformTagPrefix: string;
  /** OCI labels (org.opencontainers.image.*). @default {} */
  labels?: Record<string, string>;
  /** Build arguments. @default {} */
  buildArgs?: Record<string, pulumi.Input<string>>;
  /** Builder per host architecture; a platform with no entry builds on the default builder. @default {} */
  builders?: Partial<Record<HostArch, string>>;
  /** Cache settings per platform (from BuildCache). @default no cache */
  cache?: Record<string, PlatformCache>;
  /** Registry credentials. */
  registry?: dockerbuild.types.input.RegistryArgs;
  /** Push images and indexes. @default true */
  push?: boolean;
  /** Build secrets mounted with `RUN --mount=type=secret,id=<key>`. @default {} */
  secrets?: Record<string, pulumi.Input<string>>;
  /** Build network. Host networking keeps builds off any bridge. @default "host" */
  network?: "host" | "default" | "none";
}

export function validateMultiPlatformImage(args: MultiPlatformImageArgs): void {
  if (args.platforms.length === 0) throw new Error(`MultiPlatformImage: platforms must not be empty, got []`);
  if (new Set(args.platforms).size !== args.platforms.length) {
    throw new Error(`MultiPlatformImage: platforms must not repeat, got ${JSON.stringify(args.platforms)}`);
  }
  if (args.tags.length === 0) throw new Error(`MultiPlatformImage: tags must not be empty, got []`);
  for (const t of args.tags) {
    if (!OCI_TAG.test(t)) throw new Error(`MultiPlatformImage: tag "${t}" is not a valid OCI tag`);
  }
  if (args.imageName.includes("@") || /:[^/]*$/.test(args.imageName.split("/").slice(1).join("/"))) {
    throw new Error(`MultiPlatformImage: imageName must not carry a tag or digest, got "${args.imageName}"`);
  }
}

/** The single-platform tag, e.g. `sha-1a2b3c4-linux-arm-v7`. */
export function platformTag(imageName: string, prefix: string, platform: Platform): string {
  return `${imageName}:${prefix}-${platformSlug(platform)}`;
}

/** `repo:tag@sha256:…` → `sha256:…`. */
export function digestOf(ref: string): string {
  const at = ref.lastIndexOf("@");
  return at < 0 ? "" : ref.slice(at + 1);
}

export class MultiPlatformImage extends pulumi.ComponentResource {
  public readonly images: Record<string, dockerbuild.Image>;
  public readonly indexes: dockerbuild.Index[];
  /** Digest of the manifest list. */
  public readonly digest: pulumi.Output<string>;
  /** `imageName@digest`. */
  public readonly imageRef: pulumi.Output<string>;
  public readonly platformDigests: pulumi.Output<Record<string, string>>;
  /** Full references of every published tag. */
  public readonly tags: pulumi.Output<string[]>;

  constructor(name: string, args: MultiPlatformImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:image:MultiPlatformImage", name, {}, opts);
    validateMultiPlatformImage(args);
    const dockerfile = args.dockerfile ?? path.join(args.context, "Dockerfile");
    const push = args.push ?? true;
    const builders = args.builders ?? {};
    const registries = args.registry ? [args.registry] : [];
    const network = args.network ?? "host";
    // Dockerfile content is part of the resource's inputs (inline), so a Dockerfile edit is a diff
    // even when the context hash would not say why.
    const dockerfileText = fs.readFileSync(dockerfile, "utf8");

    this.images = {};
    for (const platform of args.platforms) {
      const slug = platformSlug(platform);
      const builder = builders[HOST_ARCH[platform]];
      const cache = args.cache?.[platform];
      this.images[platform] = new dockerbuild.Image(
        `${name}-${slug}`,
        {
          context: { location: args.context },
          dockerfile: { inline: dockerfileText },
          // docker-build's Platform enum lacks linux/arm/v7; buildx parses the variant itself.
          platforms: [platform as dockerbuild.Platform],
          builder: builder !== undefined ? { name: builder } : undefined,
          buildArgs: args.buildArgs ?? {},
          labels: args.labels ?? {},
          cacheFrom: cache?.cacheFrom,
          cacheTo: cache?.cacheTo,
          push,
          tags: [platformTag(args.imageName, args.platformTagPrefix, platform)],
          registries,
          secrets: args.secrets,
          network: network as dockerbuild.NetworkMode,
        },
        { parent: this },
      );
    }

    const sources = args.platforms.map((p) => this.images[p].ref);
    this.indexes = args.tags.map(
      (tag) =>
        new dockerbuild.Index(
          `${name}-index-${tag}`,
          { tag: `${args.imageName}:${tag}`, sources, push, registry: args.registry },
          // docker-build deletes a replaced Index's manifest BY DIGEST, which would also remove
          // every other tag (and a promoted prod release) sharing it. Retention is the registry's
          // job (the GHCR retention workflow), never a side effect of a deploy.
          { parent: this, retainOnDelete: true },
        ),
    );

    this.digest = this.indexes[0].ref.apply(digestOf);
    this.imageRef = pulumi.interpolate`${args.imageName}@${this.digest}`;
    this.platformDigests = pulumi
      .all(args.platforms.map((p) => this.images[p].digest))
      .apply((ds) => Object.fromEntries(args.platforms.map((p, i) => [p, ds[i]])));
    this.tags = pulumi.output(args.tags.map((t) => `${args.imageName}:${t}`));
    this.registerOutputs({ digest: this.digest, imageRef: this.imageRef, platformDigests: this.platformDigests, tags: this.tags });
  }
}
