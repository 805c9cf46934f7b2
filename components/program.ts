// The whole factory as one plain function of validated config: index.ts only reads config and
// exports what this returns, so tests drive exactly the program `pulumi up` runs.
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { BuildCache } from "./buildCache";
import { BuildHosts } from "./buildHosts";
import type { ValidatedConfig } from "./config";
import { GhcrPackage } from "./ghcrPackage";
import { MultiPlatformImage } from "./multiPlatformImage";
import { builderName } from "./naming";
import { PromotedImage, promotionTags } from "./promotion";
import { Publication } from "./publication";
import { registryCredentials } from "./registryCredentials";
import { SupplyChainEvidence } from "./supplyChain";
import { computeTags, type TagPlan } from "./tags";
import { HOST_ARCH, type HostArch } from "./types";

export interface FactoryArgs extends ValidatedConfig {
  stack: string;
  /** Secret registry token; required when pushing (validated before this is called). */
  registryToken?: pulumi.Output<string>;
}

/** The stack-export contract (design.md), plus gate results for promotion to check. */
export interface FactoryOutputs {
  imageName: string;
  digest: pulumi.Output<string>;
  imageRef: pulumi.Output<string>;
  platformDigests: pulumi.Output<Record<string, string>>;
  tags: pulumi.Output<string[]>;
  sbomLocations: pulumi.Output<Record<string, string>>;
  buildHosts?: pulumi.Output<Record<string, string>>;
  /** `docker buildx create --driver remote …` per architecture, for CI (no secret material). */
  builderCommands?: pulumi.Output<Record<string, string>>;
  /** What CI writes to the builderCommands' cert paths, one secret object: tools treat an output
   *  as secret only when the whole top-level value is. */
  builderTls?: pulumi.Output<{ caCertPem: string; clientCertPem: string; clientKeyPem: string }>;
  cacheRefs: pulumi.Output<Record<string, string>>;
  /** Gate results bound to the digests they judged (`digest`, `platformDigests`, `sourceRevision`). */
  gateResults?: pulumi.Output<unknown>;
  /** What the tags were computed from, for humans reading `pulumi stack output`. */
  release: { ref: string; sha: string; version: string; prerelease: boolean };
}

/** OCI labels from the git context: the image says where it came from without the registry. */
export function ociLabels(cfg: ValidatedConfig, plan: TagPlan): Record<string, string> {
  const source = cfg.github ? `https://github.com/${cfg.github.owner}/${cfg.github.repository}` : cfg.imageName;
  return {
    "org.opencontainers.image.title": cfg.imageName.split("/").pop() ?? cfg.imageName,
    "org.opencontainers.image.source": source,
    "org.opencontainers.image.revision": cfg.git.sha,
    "org.opencontainers.image.version": plan.version,
    "org.opencontainers.image.created": cfg.git.created,
    "org.opencontainers.image.ref.name": cfg.git.ref,
  };
}

/** Which buildx builder serves each host architecture on this stack. */
export function buildersFor(cfg: ValidatedConfig, stack: string): Partial<Record<HostArch, string>> {
  if (cfg.buildHosts.localBuilder !== undefined) {
    return { amd64: cfg.buildHosts.localBuilder, arm64: cfg.buildHosts.localBuilder };
  }
  if (cfg.buildHosts.enabled) return { amd64: builderName(stack, "amd64"), arm64: builderName(stack, "arm64") };
  return {};
}

export function createFactory(cfg: FactoryArgs, opts?: { parent?: pulumi.Resource }): FactoryOutputs {
  const plan = computeTags(cfg.git, { defaultBranch: cfg.defaultBranch });
  const release = { ref: cfg.git.ref, sha: cfg.git.sha, version: plan.version, prerelease: plan.prerelease };
  const parent = opts?.parent;

  const creds =
    cfg.registryToken !== undefined && cfg.registryUsername !== undefined
      ? registryCredentials({ address: cfg.registry, username: cfg.registryUsername, token: cfg.registryToken, repository: cfg.imageName.slice(cfg.registry.length + 1) })
      : undefined;

  // A review build (publish: false) administers nothing on GitHub.
  if (cfg.github !== undefined && cfg.registry === "ghcr.io" && cfg.publish) {
    new GhcrPackage("ghcr", { imageName: cfg.imageName, github: cfg.github, platforms: cfg.platforms }, { parent });
  }

  if (cfg.promoteFrom !== undefined) {
    if (creds === undefined) throw new Error(`image-factory:registryToken is required to promote from "${cfg.promoteFrom}"`);
    const promoted = new PromotedImage(
      "promoted",
      {
        sourceStack: cfg.promoteFrom,
        imageName: cfg.imageName,
        tags: promotionTags(plan.tags, plan.prerelease),
        prerelease: plan.prerelease,
        // The release tag must name the commit dev built; otherwise a later dev deploy would ship.
        expectedRevision: cfg.git.sha,
        gates: cfg.gates,
        registry: { address: cfg.registry, username: cfg.registryUsername ?? "", password: creds.token },
      },
      { parent },
    );
    return {
      imageName: cfg.imageName,
      digest: promoted.digest,
      imageRef: promoted.imageRef,
      platformDigests: promoted.platformDigests,
      tags: promoted.tags,
      sbomLocations: promoted.sbomLocations,
      cacheRefs: pulumi.output<Record<string, string>>({}),
      release,
    };
  }

  // A pull request never writes the cache main's builds import (docs/delivery.md: cache poisoning);
  // nor does a review build (publish: false), whatever ref it names.
  const pr = /^refs\/pull\/(\d+)\//.exec(cfg.git.ref)?.[1];
  const scope = pr !== undefined ? `pr-${pr}` : cfg.publish ? undefined : "review";
  const cache = new BuildCache("cache", { cache: cfg.cache, platforms: cfg.platforms, stack: cfg.stack, scope }, { parent });
  const buildArgs: Record<string, string> = {
    VERSION: plan.version,
    REVISION: cfg.git.sha,
    CREATED: cfg.git.created,
    SOURCE: ociLabels(cfg, plan)["org.opencontainers.image.source"],
  };
  if (cfg.baseImage !== undefined) buildArgs.BASE_IMAGE = cfg.baseImage;
  const secrets: Record<string, pulumi.Input<string>> | undefined =
    cfg.npmCaFile !== undefined ? { npm_ca: fs.readFileSync(cfg.npmCaFile, "utf8") } : undefined;

  // Native hosts, only for the architectures the configured platforms need. A review build
  // (publish: false) runs under the target stack's name, so it uses that stack's builders and
  // never provisions hosts of its own.
  const hosts =
    cfg.buildHosts.enabled && cfg.buildHosts.localBuilder === undefined && cfg.publish
      ? new BuildHosts(
          "buildhosts",
          {
            config: cfg.buildHosts,
            stack: cfg.stack,
            architectures: [...new Set(cfg.platforms.map((p) => HOST_ARCH[p]))],
            cacheBucketArn: cache.bucket?.arn,
          },
          { parent },
        )
      : undefined;

  // Quarantine: per-platform images (and the coverage stage) pushed by digest only.
  const image = new MultiPlatformImage(
    "image",
    {
      imageName: cfg.imageName,
      platforms: cfg.platforms,
      context: cfg.appPath,
      platformTagPrefix: `sha-${cfg.git.sha.slice(0, 7)}`,
      labels: ociLabels(cfg, plan),
      buildArgs,
      builders: buildersFor(cfg, cfg.stack),
      cache: cache.settings,
      registry: creds?.registry,
      push: cfg.push,
      secrets,
      // Every builder runs the hosts' buildkitd.toml, which grants no entitlement: `host` is refused.
      // `default` is the daemon's networkMode: a bridge on the hosts, the host's loopback-only
      // namespace on the local daemon (docs/build-hosts.md, "The local daemon is a host").
      network: "default",
      coverageTarget: "coverage",
    },
    // The builders exist once CI has run the hosts' builderCommands (see docs/delivery.md).
    { parent, dependsOn: hosts !== undefined ? [hosts] : [] },
  );

  // A review build (publish: false, scripts/review.ts) stops at quarantine: the per-platform images
  // (and the coverage image) exist only in its own repository, by digest. The review runs the
  // evidence engine on them itself, so a failing gate is reported rather than fatal; no manifest
  // list, no tag.
  if (!cfg.publish) {
    return {
      imageName: cfg.imageName,
      digest: pulumi.output(""),
      imageRef: pulumi.output(""),
      platformDigests: image.platformDigests,
      tags: pulumi.output<string[]>([]),
      sbomLocations: pulumi.output<Record<string, string>>({}),
      cacheRefs: cache.cacheRefs,
      release,
    };
  }

  // Evidence on those digests: SBOM per platform, scans, coverage, gates. A failing gate fails this
  // resource, so the publication below (which depends on it) never runs and no tag moves.
  const evidence = new SupplyChainEvidence(
    "evidence",
    {
      imageName: cfg.imageName,
      platformDigests: image.platformDigests,
      sourceRevision: cfg.git.sha,
      coverageImage: image.coverageRef ?? pulumi.output(""),
      registryUsername: cfg.registryUsername,
      registryToken: creds?.token,
      contextDir: cfg.appPath,
      gates: cfg.gates,
      outputDir: `.local/evidence/${cfg.stack}`,
      vulnerabilityDb: cfg.vulnerabilityDb,
    },
    { parent },
  );

  const publication = new Publication(
    "publish",
    {
      imageName: cfg.imageName,
      sources: image.refs,
      tags: plan.tags,
      gateResults: evidence.gateResults,
      registry: creds?.registry,
      registryUsername: cfg.registryUsername,
      registryToken: creds?.token,
      push: cfg.push,
    },
    { parent, dependsOn: [evidence] },
  );

  return {
    imageName: cfg.imageName,
    digest: publication.digest,
    imageRef: pulumi.interpolate`${cfg.imageName}@${publication.digest}`,
    platformDigests: image.platformDigests,
    tags: publication.tags,
    sbomLocations: evidence.sbomLocations,
    gateResults: publication.gateResults,
    buildHosts: hosts?.endpoints,
    builderCommands: hosts?.builderCommands,
    builderTls:
      hosts !== undefined
        ? pulumi.secret(pulumi.all([hosts.caCertPem, hosts.clientCertPem, hosts.clientKeyPem]).apply(([caCertPem, clientCertPem, clientKeyPem]) => ({ caCertPem, clientCertPem, clientKeyPem })))
        : undefined,
    cacheRefs: cache.cacheRefs,
    release,
  };
}
