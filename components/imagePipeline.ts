// One image's pipeline on a stack's shared infrastructure: build (MultiPlatformImage, quarantined by
// digest) → evidence (SupplyChainEvidence) → publish (Publication), or, on a promoting stack, the
// promotion (PromotedImage) of what the source stack published. A second image on the same hosts
// is a second call with the same SharedInfrastructure.
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ValidatedConfig } from "./config";
import { GhcrPackage } from "./ghcrPackage";
import { dockerfileBaseImage, invocationId, ociLabels, sourceDateEpoch } from "./imageMetadata";
import { MultiPlatformImage } from "./multiPlatformImage";
import { PromotedImage, promotionTags, type StackSigningExport } from "./promotion";
import { Publication } from "./publication";
import { registryCredentials, type RegistryCredentials } from "./registryCredentials";
import type { SharedInfrastructure } from "./sharedInfrastructure";
import { SupplyChainEvidence } from "./supplyChain";
import { computeTags, type TagPlan } from "./tags";
import { HOST_ARCH } from "./types";

/** One image's settings; everything the stack shares comes with SharedInfrastructure. */
export type ImagePipelineArgs = Pick<
  ValidatedConfig,
  | "imageName"
  | "platforms"
  | "appPath"
  | "defaultBranch"
  | "git"
  | "github"
  | "gates"
  | "promoteFrom"
  | "push"
  | "publish"
  | "baseImage"
  | "npmCaFile"
  | "vulnerabilityDb"
>;

/** The image's part of the stack-export contract (design.md). */
export interface ImagePipelineOutputs {
  imageName: string;
  digest: pulumi.Output<string>;
  imageRef: pulumi.Output<string>;
  platformDigests: pulumi.Output<Record<string, string>>;
  tags: pulumi.Output<string[]>;
  sbomLocations: pulumi.Output<Record<string, string>>;
  /** Gate results bound to the digests they judged (`digest`, `platformDigests`, `sourceRevision`). */
  gateResults?: pulumi.Output<unknown>;
  /** What the tags were computed from, for humans reading `pulumi stack output`. */
  release: { ref: string; sha: string; version: string; prerelease: boolean };
  /** Who signs (or, promoting, whom this stack verified) and digest → signature referrer
   *  (docs/contracts.md, docs/signing.md). Publishing stacks and promoting stacks. */
  signing?: pulumi.Output<StackSigningExport>;
}

interface Stage {
  args: ImagePipelineArgs;
  shared: SharedInfrastructure;
  plan: TagPlan;
  release: ImagePipelineOutputs["release"];
  creds?: RegistryCredentials;
  name: string;
  child: (role: string) => string;
  parent?: pulumi.Resource;
  /** The lower bound of the provenance's build time (docs/signing.md: startedOn). */
  startedOn: string;
}

/**
 * `name` "" is the stack's first image: its resources keep the bare role names existing stacks
 * hold (`image`, `evidence`, `publish`, `promoted`, `ghcr`), so no resource is replaced. A further
 * image's are `${name}-<role>`.
 */
export function imagePipeline(
  name: string,
  args: ImagePipelineArgs,
  shared: SharedInfrastructure,
  opts?: { parent?: pulumi.Resource },
): ImagePipelineOutputs {
  const startedOn = new Date().toISOString();
  const plan = computeTags(args.git, { defaultBranch: args.defaultBranch });
  const { address, username, token } = shared.registry;
  const stage: Stage = {
    args,
    shared,
    plan,
    release: {
      ref: args.git.ref,
      sha: args.git.sha,
      version: plan.version,
      prerelease: plan.prerelease,
    },
    creds:
      token !== undefined && username !== undefined
        ? registryCredentials({
            address,
            username,
            token,
            repository: args.imageName.slice(address.length + 1),
          })
        : undefined,
    name,
    child: (role) => (name === "" ? role : `${name}-${role}`),
    parent: opts?.parent,
    startedOn,
  };
  // A review build (publish: false) administers nothing on GitHub.
  if (args.github !== undefined && address === "ghcr.io" && args.publish) {
    new GhcrPackage(
      stage.child("ghcr"),
      { imageName: args.imageName, github: args.github, platforms: args.platforms },
      { parent: stage.parent },
    );
  }
  return args.promoteFrom !== undefined ? promote(stage, args.promoteFrom) : build(stage);
}

function promote(s: Stage, sourceStack: string): ImagePipelineOutputs {
  const { args, shared, plan } = s;
  if (s.creds === undefined)
    throw new Error(`image-factory:registryToken is required to promote from "${sourceStack}"`);
  const sg = shared.signing;
  const promoted = new PromotedImage(
    s.child("promoted"),
    {
      sourceStack,
      imageName: args.imageName,
      tags: promotionTags(plan.tags, plan.prerelease),
      prerelease: plan.prerelease,
      // The release tag must name the commit dev built; otherwise a later dev deploy would ship.
      expectedRevision: args.git.sha,
      gates: args.gates,
      registry: { address: s.creds.address, username: s.creds.username, password: s.creds.token },
      // Verify the signature and attestations on the registry, never the source's outputs.
      verification: {
        mode: sg.mode,
        tlog: sg.tlog,
        publicKey: sg.publicKey,
        identity: sg.identity,
        issuer: sg.issuer,
      },
    },
    { parent: s.parent },
  );
  return {
    imageName: args.imageName,
    digest: promoted.digest,
    imageRef: promoted.imageRef,
    platformDigests: promoted.platformDigests,
    tags: promoted.tags,
    sbomLocations: promoted.sbomLocations,
    release: s.release,
    signing: promoted.signing,
  };
}

function build(s: Stage): ImagePipelineOutputs {
  const { args, shared, plan } = s;
  if (shared.cache === undefined)
    throw new Error(
      `imagePipeline ${args.imageName}: the shared infrastructure has no build cache`,
    );
  const labels = ociLabels(args, plan);
  const buildArgs: Record<string, string> = {
    VERSION: plan.version,
    REVISION: args.git.sha,
    CREATED: args.git.created,
    SOURCE: labels["org.opencontainers.image.source"],
    // Reproducible timestamps: BuildKit uses this build argument for the image config's `created`
    // and the history (docs/signing.md, "Reproducibility").
    SOURCE_DATE_EPOCH: sourceDateEpoch(args.git.created),
  };
  if (args.baseImage !== undefined) buildArgs.BASE_IMAGE = args.baseImage;
  const secrets: Record<string, pulumi.Input<string>> | undefined =
    args.npmCaFile !== undefined ? { npm_ca: fs.readFileSync(args.npmCaFile, "utf8") } : undefined;

  // Quarantine: per-platform images (and the coverage stage) pushed by digest only.
  const image = new MultiPlatformImage(
    s.child("image"),
    {
      imageName: args.imageName,
      platforms: args.platforms,
      context: args.appPath,
      platformTagPrefix: `sha-${args.git.sha.slice(0, 7)}`,
      labels,
      buildArgs,
      builders: shared.builders,
      cache: shared.cache.settings,
      registry: s.creds?.registry,
      push: args.push,
      secrets,
      // Every builder runs the hosts' buildkitd.toml, which grants no entitlement: `host` is refused.
      // `default` is the daemon's networkMode: a bridge on the hosts, the host's loopback-only
      // namespace on the local daemon (docs/build-hosts.md, "The local daemon is a host").
      network: "default",
      coverageTarget: "coverage",
    },
    // The builders exist once CI has run the hosts' builderCommands (see docs/delivery.md).
    { parent: s.parent, dependsOn: shared.hosts !== undefined ? [shared.hosts] : [] },
  );

  // A review build (publish: false, scripts/review.ts) stops at quarantine: the per-platform images
  // (and the coverage image) exist only in its own repository, by digest. The review runs the
  // evidence engine on them itself, so a failing gate is reported rather than fatal; no manifest
  // list, no tag.
  if (!args.publish) {
    return {
      imageName: args.imageName,
      digest: pulumi.output(""),
      imageRef: pulumi.output(""),
      platformDigests: image.platformDigests,
      tags: pulumi.output<string[]>([]),
      sbomLocations: pulumi.output<Record<string, string>>({}),
      release: s.release,
    };
  }
  return publish(s, image, buildArgs, Object.keys(secrets ?? {}));
}

function publish(
  s: Stage,
  image: MultiPlatformImage,
  buildArgs: Record<string, string>,
  secretBuildArgs: string[],
): ImagePipelineOutputs {
  const { args, shared, plan } = s;
  // Evidence on those digests: SBOM per platform, scans, coverage, gates. A failing gate fails this
  // resource, so the publication below (which depends on it) never runs and no tag moves.
  const evidence = new SupplyChainEvidence(
    s.child("evidence"),
    {
      imageName: args.imageName,
      platformDigests: Object.fromEntries(
        Object.entries(image.images).map(([platform, img]) => [platform, img.digest]),
      ),
      sourceRevision: args.git.sha,
      coverageImage: image.coverageRef ?? pulumi.output(""),
      registryUsername: shared.registry.username,
      registryToken: s.creds?.token,
      contextDir: args.appPath,
      gates: args.gates,
      outputDir: path.join(".local/evidence", shared.stack, s.name),
      vulnerabilityDb: args.vulnerabilityDb,
    },
    { parent: s.parent },
  );

  const key = shared.signingKey;
  const sg = shared.signing;
  const publication = new Publication(
    s.child("publish"),
    {
      imageName: args.imageName,
      sources: image.refs,
      tags: plan.tags,
      gateResults: evidence.gateResults,
      registry: s.creds?.registry,
      registryUsername: shared.registry.username,
      registryToken: s.creds?.token,
      push: args.push,
      // Signed and attested after the binding check, before any tag moves.
      signing:
        key !== undefined
          ? {
              mode: sg.mode,
              tlog: sg.tlog,
              keyRef: key.keyRef,
              publicKeyPem: key.publicKeyPem,
              privateKeyPem: key.privateKeyPem,
              identity: sg.identity,
              issuer: sg.issuer,
              sbomPaths: evidence.platforms.apply((ps) =>
                Object.fromEntries(Object.entries(ps ?? {}).map(([p, e]) => [p, e.sbomPath])),
              ),
              provenance: {
                repository: ociLabels(args, plan)["org.opencontainers.image.source"],
                ref: args.git.ref,
                commit: args.git.sha,
                dockerfile: path.relative(process.cwd(), path.join(args.appPath, "Dockerfile")),
                buildArgs,
                secretBuildArgs,
                baseImage: args.baseImage ?? dockerfileBaseImage(args.appPath),
                stack: shared.stack,
                builders: Object.fromEntries(
                  args.platforms.map((p) => [p, shared.builders[HOST_ARCH[p]] ?? "default"]),
                ),
                invocationId: invocationId(shared.stack, s.startedOn),
                startedOn: s.startedOn,
              },
            }
          : undefined,
    },
    { parent: s.parent, dependsOn: [evidence] },
  );

  return {
    imageName: args.imageName,
    digest: publication.digest,
    imageRef: pulumi.interpolate`${args.imageName}@${publication.digest}`,
    platformDigests: image.platformDigests,
    tags: publication.tags,
    sbomLocations: evidence.sbomLocations,
    gateResults: publication.gateResults,
    release: s.release,
    signing:
      key !== undefined
        ? pulumi
            .all([key.signingExport, publication.signatures])
            .apply(([e, signatures]): StackSigningExport => ({
              ...e,
              signatures: signatures ?? {},
            }))
        : undefined,
  };
}
