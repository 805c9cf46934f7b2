// One docker-build Image per platform, each on the builder that runs its architecture natively,
// each with its own cache, pushed by digest (and a `sha-<7>-<platform>` tag) only: quarantined until
// the evidence passes and components/publication.ts writes the manifest list and the moving tags.
// Separate Images (rather than one Image with three platforms) are what lets each platform export
// its own cache and be routed to its own host. A further Image builds the Dockerfile's `coverage`
// stage (the app's tests on the build platform), so coverage comes from the same sources.
import * as dockerbuild from "@pulumi/docker-build";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { PlatformCache } from "./buildCache";
import { platformSlug } from "./naming";
import { OCI_TAG } from "./tags";
import { HOST_ARCH, KNOWN_PLATFORMS, type HostArch, type Platform } from "./types";
import { NAMESPACE, show } from "./config";
import { PATH_COMPONENT, REGISTRY_HOST } from "./reference";

export interface MultiPlatformImageArgs {
  /** Repository without tag, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  platforms: Platform[];
  /** Build context holding the Dockerfile. */
  context: string;
  /** Dockerfile path. @default `${context}/Dockerfile` */
  dockerfile?: string;
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
  /** Build network. Every builder runs the hosts' buildkitd.toml, which grants no entitlement, so
   *  `host` is refused; `default` is the daemon's own networkMode (a bridge on the hosts, the host's
   *  loopback-only namespace on the local daemon), hence no `host` here. @default "default" */
  network?: "default" | "none";
  /** Dockerfile stage whose image holds `coverage-summary.json`; unset = no coverage image. */
  coverageTarget?: string;
}

export function validateMultiPlatformImage(args: MultiPlatformImageArgs): void {
  if (args.platforms.length === 0)
    throw new Error(`MultiPlatformImage: platforms must not be empty, got []`);
  if (new Set(args.platforms).size !== args.platforms.length) {
    throw new Error(
      `MultiPlatformImage: platforms must not repeat, got ${JSON.stringify(args.platforms)}`,
    );
  }
  if (!OCI_TAG.test(args.platformTagPrefix))
    throw new Error(
      `MultiPlatformImage: platformTagPrefix "${args.platformTagPrefix}" is not a valid OCI tag`,
    );
  if (
    args.imageName.includes("@") ||
    /:[^/]*$/.test(args.imageName.split("/").slice(1).join("/"))
  ) {
    throw new Error(
      `MultiPlatformImage: imageName must not carry a tag or digest, got "${args.imageName}"`,
    );
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
  /** Per-platform `repo:tag@digest` refs, in `platforms` order (the manifest list's sources). */
  public readonly refs: pulumi.Output<string>[];
  public readonly platformDigests: pulumi.Output<Record<string, string>>;
  /** `repo:tag@digest` of the coverage stage's image (when `coverageTarget` is set). */
  public readonly coverageRef?: pulumi.Output<string>;

  constructor(name: string, args: MultiPlatformImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:image:MultiPlatformImage", name, {}, opts);
    validateMultiPlatformImage(args);
    const dockerfile = args.dockerfile ?? path.join(args.context, "Dockerfile");
    const push = args.push ?? true;
    const builders = args.builders ?? {};
    const registries = args.registry ? [args.registry] : [];
    const network = (args.network ?? "default") as dockerbuild.NetworkMode;
    // Dockerfile content is part of the resource's inputs (inline), so a Dockerfile edit is a diff
    // even when the context hash would not say why.
    const dockerfileText = fs.readFileSync(dockerfile, "utf8");
    const common = {
      context: { location: args.context },
      dockerfile: { inline: dockerfileText },
      buildArgs: args.buildArgs ?? {},
      labels: args.labels ?? {},
      push,
      registries,
      secrets: args.secrets,
      network,
      // Previews never build: in CI they hold no builder credentials (docs/delivery.md), and the
      // pull-request review (`npm run review`) does the real build of every platform instead, into
      // a quarantine repository. A preview then shows the plan without "Skipping preview build" noise.
      buildOnPreview: false,
    };

    this.images = {};
    for (const platform of args.platforms) {
      const builder = builders[HOST_ARCH[platform]];
      const cache = args.cache?.[platform];
      this.images[platform] = new dockerbuild.Image(
        `${name}-${platformSlug(platform)}`,
        {
          ...common,
          // docker-build's Platform enum lacks linux/arm/v7; buildx parses the variant itself.
          platforms: [platform as dockerbuild.Platform],
          builder: builder !== undefined ? { name: builder } : undefined,
          cacheFrom: cache?.cacheFrom,
          cacheTo: cache?.cacheTo,
          tags: [platformTag(args.imageName, args.platformTagPrefix, platform)],
        },
        { parent: this },
      );
    }
    if (args.coverageTarget !== undefined) {
      // The tests run on the build platform whatever the target, so the first platform's builder
      // and cache serve; the cache is only read, so the platform's own cache manifest stays its own.
      const first = args.platforms[0];
      const builder = builders[HOST_ARCH[first]];
      this.coverageRef = new dockerbuild.Image(
        `${name}-coverage`,
        {
          ...common,
          target: args.coverageTarget,
          platforms: [first as dockerbuild.Platform],
          builder: builder !== undefined ? { name: builder } : undefined,
          cacheFrom: args.cache?.[first]?.cacheFrom,
          tags: [`${args.imageName}:${args.platformTagPrefix}-coverage`],
        },
        { parent: this },
      ).ref;
    }

    this.refs = args.platforms.map((p) => this.images[p].ref);
    this.platformDigests = pulumi
      .all(args.platforms.map((p) => this.images[p].digest))
      .apply((ds) => Object.fromEntries(args.platforms.map((p, i) => [p, ds[i]])));
    this.registerOutputs({ platformDigests: this.platformDigests, coverageRef: this.coverageRef });
  }
}

// ---- config validation of the image (called by components/config.ts) ----------------------------

/** Checks `imageName` and returns its registry host. */
export function validateImageName(imageName: unknown): { problems: string[]; registry: string } {
  const key = `${NAMESPACE}:imageName`;
  if (typeof imageName !== "string" || imageName === "") {
    return {
      problems: [`${key} is required (e.g. "ghcr.io/acme/shop-api"), got ${show(imageName)}`],
      registry: "",
    };
  }
  if (imageName !== imageName.toLowerCase()) {
    return { problems: [`${key} must be lowercase, got ${show(imageName)}`], registry: "" };
  }
  if (/[@]/.test(imageName) || /:[^/]*$/.test(imageName.split("/").slice(1).join("/"))) {
    return {
      problems: [
        `${key} must not carry a tag or digest (tags come from git), got ${show(imageName)}`,
      ],
      registry: "",
    };
  }
  const parts = imageName.split("/");
  const host = parts[0];
  const repo = parts.slice(1);
  if (parts.length < 2 || !REGISTRY_HOST.test(host)) {
    return {
      problems: [
        `${key} must start with a registry host (e.g. "ghcr.io/<owner>/<name>"), got ${show(imageName)}`,
      ],
      registry: "",
    };
  }
  const bad = repo.find((c) => !PATH_COMPONENT.test(c));
  if (bad !== undefined || imageName.length > 255) {
    return {
      problems: [
        `${key} has an invalid repository path component ${show(bad ?? imageName)} in ${show(imageName)}`,
      ],
      registry: "",
    };
  }
  if (host === "ghcr.io" && repo.length < 2) {
    return {
      problems: [`${key} on ghcr.io must be "ghcr.io/<owner>/<name>", got ${show(imageName)}`],
      registry: host,
    };
  }
  return { problems: [], registry: host };
}

export function validatePlatforms(value: unknown): { problems: string[]; platforms: Platform[] } {
  const key = `${NAMESPACE}:platforms`;
  if (value === undefined) return { problems: [], platforms: [...KNOWN_PLATFORMS] };
  if (!Array.isArray(value))
    return { problems: [`${key} must be a list of platforms, got ${show(value)}`], platforms: [] };
  if (value.length === 0) {
    return {
      problems: [
        `${key} must name at least one platform (known: ${KNOWN_PLATFORMS.join(", ")}), got []`,
      ],
      platforms: [],
    };
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((p, i) => {
    if (typeof p !== "string" || !(KNOWN_PLATFORMS as readonly string[]).includes(p)) {
      problems.push(
        `${key}[${i}] is not a known platform (known: ${KNOWN_PLATFORMS.join(", ")}), got ${show(p)}`,
      );
    } else if (seen.has(p)) {
      problems.push(`${key}[${i}] duplicates platform ${show(p)}`);
    }
    seen.add(String(p));
  });
  return { problems, platforms: problems.length ? [] : (value as Platform[]) };
}
