// The whole factory as one plain function of validated config: index.ts only reads config and
// exports what this returns, so tests drive exactly the program `pulumi up` runs.
import * as fs from "node:fs";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { BuildCache } from "./buildCache";
import { BuildHosts } from "./buildHosts";
import type { ValidatedConfig } from "./config";
import { GhcrPackage } from "./ghcrPackage";
import { MultiPlatformImage } from "./multiPlatformImage";
import { builderName } from "./naming";
import { PromotedImage, promotionTags, type StackSigningExport } from "./promotion";
import { Publication } from "./publication";
import { SigningKey } from "./signing";
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
  /** Who signs (or, promoting, whom this stack verified) and digest → signature referrer
   *  (docs/contracts.md, docs/signing.md). Publishing stacks and promoting stacks. */
  signing?: pulumi.Output<StackSigningExport>;
}

/** The Dockerfile's `ARG BASE_IMAGE=` default: what the build resolves when `baseImage` is unset. */
export function dockerfileBaseImage(appPath: string): string {
  const text = fs.readFileSync(path.join(appPath, "Dockerfile"), "utf8");
  const m = /^\s*ARG\s+BASE_IMAGE=(\S+)/m.exec(text);
  if (m === null)
    throw new Error(
      `${path.join(appPath, "Dockerfile")} has no ARG BASE_IMAGE=<default>; set image-factory:baseImage so provenance can name the base image`,
    );
  return m[1];
}

/** The role `pulumi up` runs as (an assumed role's session ARN → the role's ARN): who may sign with
 *  a kms key when `signing.signerRoleArns` is not set. */
function callerRoleArn(parent?: pulumi.Resource): pulumi.Output<string> {
  return aws.getCallerIdentityOutput({}, { parent }).arn.apply((arn) => {
    const m =
      /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(arn) ??
      /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn);
    if (m === null) {
      throw new Error(
        `image-factory:signing.signerRoleArns is not set and \`pulumi up\` does not run as a role (${arn}): name the roles that may sign with the kms key`,
      );
    }
    return `arn:${m[1]}:iam::${m[2]}:role/${m[3]}`;
  });
}

/** A CI run's URL, else `<stack>/<program start>`: the provenance's invocationId. */
export function invocationId(
  stack: string,
  startedOn: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const {
    GITHUB_SERVER_URL: server,
    GITHUB_REPOSITORY: repo,
    GITHUB_RUN_ID: run,
    GITHUB_RUN_ATTEMPT: attempt,
  } = env;
  return server && repo && run
    ? `${server}/${repo}/actions/runs/${run}/attempts/${attempt ?? "1"}`
    : `${stack}/${startedOn}`;
}

/** SOURCE_DATE_EPOCH from the commit time: BuildKit stamps the image config and history with it. */
export function sourceDateEpoch(created: string): string {
  const t = Date.parse(created);
  return Number.isNaN(t) ? "0" : String(Math.floor(t / 1000));
}

/** OCI labels from the git context: the image says where it came from without the registry. */
export function ociLabels(cfg: ValidatedConfig, plan: TagPlan): Record<string, string> {
  const source = cfg.github
    ? `https://github.com/${cfg.github.owner}/${cfg.github.repository}`
    : cfg.imageName;
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
export function buildersFor(
  cfg: ValidatedConfig,
  stack: string,
): Partial<Record<HostArch, string>> {
  if (cfg.buildHosts.localBuilder !== undefined) {
    return { amd64: cfg.buildHosts.localBuilder, arm64: cfg.buildHosts.localBuilder };
  }
  if (cfg.buildHosts.enabled)
    return { amd64: builderName(stack, "amd64"), arm64: builderName(stack, "arm64") };
  return {};
}

export function createFactory(
  cfg: FactoryArgs,
  opts?: { parent?: pulumi.Resource },
): FactoryOutputs {
  // The lower bound of the provenance's build time (docs/signing.md: startedOn).
  const startedOn = new Date().toISOString();
  const plan = computeTags(cfg.git, { defaultBranch: cfg.defaultBranch });
  const release = {
    ref: cfg.git.ref,
    sha: cfg.git.sha,
    version: plan.version,
    prerelease: plan.prerelease,
  };
  const parent = opts?.parent;

  const creds =
    cfg.registryToken !== undefined && cfg.registryUsername !== undefined
      ? registryCredentials({
          address: cfg.registry,
          username: cfg.registryUsername,
          token: cfg.registryToken,
          repository: cfg.imageName.slice(cfg.registry.length + 1),
        })
      : undefined;

  // A review build (publish: false) administers nothing on GitHub.
  if (cfg.github !== undefined && cfg.registry === "ghcr.io" && cfg.publish) {
    new GhcrPackage(
      "ghcr",
      { imageName: cfg.imageName, github: cfg.github, platforms: cfg.platforms },
      { parent },
    );
  }

  if (cfg.promoteFrom !== undefined) {
    if (creds === undefined)
      throw new Error(
        `image-factory:registryToken is required to promote from "${cfg.promoteFrom}"`,
      );
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
        registry: {
          address: cfg.registry,
          username: cfg.registryUsername ?? "",
          password: creds.token,
        },
        // Verify the signature and attestations on the registry, never the source's outputs.
        verification: {
          mode: cfg.signing.mode,
          tlog: cfg.signing.tlog,
          publicKey: cfg.signing.publicKey,
          identity: cfg.signing.identity,
          issuer: cfg.signing.issuer,
        },
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
      signing: promoted.signing,
    };
  }

  // A pull request never writes the cache main's builds import (docs/delivery.md: cache poisoning);
  // nor does a review build (publish: false), whatever ref it names.
  const pr = /^refs\/pull\/(\d+)\//.exec(cfg.git.ref)?.[1];
  const scope = pr !== undefined ? `pr-${pr}` : cfg.publish ? undefined : "review";
  const cache = new BuildCache(
    "cache",
    { cache: cfg.cache, platforms: cfg.platforms, stack: cfg.stack, scope },
    { parent },
  );
  const buildArgs: Record<string, string> = {
    VERSION: plan.version,
    REVISION: cfg.git.sha,
    CREATED: cfg.git.created,
    SOURCE: ociLabels(cfg, plan)["org.opencontainers.image.source"],
    // Reproducible timestamps: BuildKit uses this build argument for the image config's `created`
    // and the history (docs/signing.md, "Reproducibility").
    SOURCE_DATE_EPOCH: sourceDateEpoch(cfg.git.created),
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

  // The signing key (or keyless identity): shared infrastructure beside the image pipeline, created
  // in parallel with the builds, used by the publish step (docs/signing.md). Only where something
  // is pushed and published.
  const signingKey = cfg.push
    ? new SigningKey(
        "signing",
        {
          mode: cfg.signing.mode,
          signerRoleArns:
            cfg.signing.mode === "kms"
              ? (cfg.signing.signerRoleArns ?? [callerRoleArn(parent)])
              : undefined,
          readerRoleArns: cfg.signing.readerRoleArns,
          identity:
            cfg.signing.mode === "keyless"
              ? { workflowRef: cfg.signing.identity ?? "", issuer: cfg.signing.issuer ?? "" }
              : undefined,
        },
        { parent },
      )
    : undefined;

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
      // Signed and attested after the binding check, before any tag moves.
      signing:
        signingKey !== undefined
          ? {
              mode: cfg.signing.mode,
              tlog: cfg.signing.tlog,
              keyRef: signingKey.keyRef,
              publicKeyPem: signingKey.publicKeyPem,
              privateKeyPem: signingKey.privateKeyPem,
              identity: cfg.signing.identity,
              issuer: cfg.signing.issuer,
              sbomPaths: evidence.platforms.apply((ps) =>
                Object.fromEntries(Object.entries(ps ?? {}).map(([p, e]) => [p, e.sbomPath])),
              ),
              provenance: {
                repository: ociLabels(cfg, plan)["org.opencontainers.image.source"],
                ref: cfg.git.ref,
                commit: cfg.git.sha,
                dockerfile: path.relative(process.cwd(), path.join(cfg.appPath, "Dockerfile")),
                buildArgs,
                secretBuildArgs: Object.keys(secrets ?? {}),
                baseImage: cfg.baseImage ?? dockerfileBaseImage(cfg.appPath),
                stack: cfg.stack,
                builders: Object.fromEntries(
                  cfg.platforms.map((p) => [
                    p,
                    buildersFor(cfg, cfg.stack)[HOST_ARCH[p]] ?? "default",
                  ]),
                ),
                invocationId: invocationId(cfg.stack, startedOn),
                startedOn,
              },
            }
          : undefined,
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
        ? pulumi.secret(
            pulumi
              .all([hosts.caCertPem, hosts.clientCertPem, hosts.clientKeyPem])
              .apply(([caCertPem, clientCertPem, clientKeyPem]) => ({
                caCertPem,
                clientCertPem,
                clientKeyPem,
              })),
          )
        : undefined,
    cacheRefs: cache.cacheRefs,
    release,
    signing:
      signingKey !== undefined
        ? pulumi
            .all([signingKey.signingExport, publication.signatures])
            .apply(([e, signatures]): StackSigningExport => ({
              ...e,
              signatures: signatures ?? {},
            }))
        : undefined,
  };
}
