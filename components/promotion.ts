// Promotion by digest: a stack with `promoteFrom` publishes its own tags pointing at the exact
// manifest list another stack built and checked. Nothing is rebuilt, so prod runs the bytes dev
// tested. docker-build's `Index` takes a single `tag`, so there is one Index per tag, each with the
// source image's digest as its only source (`buildx imagetools create` copies a single index
// source unchanged, so every tag resolves to the same digest).
//
// Verify, do not trust (docs/signing.md): with `verification` set (the program always sets it),
// a dynamic resource runs the engine's `verify` step (evidence/verify.ts) on the registry before
// any Index exists, and every Index depends on it: the signature on the list's digest, the gates
// attestation (passed, bound to this list, its platform digests and this repository, nothing
// unrun, judged again with this stack's gates), an SBOM attestation on every platform digest and
// provenance naming the released commit. The source stack's outputs only say WHICH digest to
// check (checkSourceOutputs: digest, imageRef, release.sha); whether it may ship comes from the
// signed attestations.
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as dockerBuild from "@pulumi/docker-build";
import type { GatesConfig } from "../evidence/gates";
import type { VerifyReport, VerifyRequest, VerifyTrust } from "../evidence/verify";
import { engineTail, runEngineProcess } from "./engineProcess";
import { OCI_TAG } from "./tags";

/** The registry a promoted tag is pushed to. */
export interface PromotionRegistry {
  /** Registry host, e.g. `ghcr.io` or `127.0.0.1:5000`. */
  address: string;
  username: string;
  /** Always a Pulumi secret. */
  password: pulumi.Input<string>;
}

export interface PromotedImageArgs {
  /** Stack whose image is promoted: `org/image-factory/dev` on Pulumi Cloud, `dev` (or
   *  `organization/image-factory/dev`) on a file backend. From config `promoteFrom`. */
  sourceStack: string;
  /** Repository the tags are published in, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  /** Tag names for this stack (not full refs), e.g. `1.2.3`, `1.2`, `1`, `latest`. */
  tags: string[];
  /** The release being promoted is a prerelease (`v1.2.3-rc.1`): `latest` is refused. */
  prerelease: boolean;
  registry: PromotionRegistry;
  /** Refuse unless the source stack's `gateResults.passed` is true. @default true */
  requireGatesPassed?: boolean;
  /** The commit being released (this stack's git sha). When set, the source stack's `release.sha`
   *  and `gateResults.sourceRevision` must both be this commit (a missing one is refused): a tag
   *  `v1.2.3` must not publish whatever dev deployed last if that is a later commit.
   *  @default unset (not checked) */
  expectedRevision?: string;
  /** This stack's own gates: the source's measured values are judged again against them. */
  gates?: GatesConfig;
  /** Verify the signature and attestations on the registry before publishing (the gates decision
   *  then comes from the verified gates attestation, not from the source's `gateResults` output).
   *  Needs `expectedRevision` and `gates`. Unset = trust the source stack's outputs (tests only). */
  verification?: PromotionVerification;
}

/** How promotion decides whom to trust (config `image-factory:signing` of the promoting stack). */
export interface PromotionVerification {
  mode: "key" | "kms" | "keyless";
  /** @default false */
  tlog?: boolean;
  /** key/kms: a PEM this stack pins. Unset = the source stack's exported `signing.publicKey`. */
  publicKey?: string;
  /** keyless: pinned identity and OIDC issuer. */
  identity?: string;
  issuer?: string;
}

/** The stack export `signing` (docs/contracts.md): who signs (or, on a promoting stack, whom it
 *  verified), and digest → signature referrer manifest. Nothing secret. */
export interface StackSigningExport {
  mode: "key" | "kms" | "keyless";
  publicKey?: string;
  keyRef?: string;
  keyArn?: string;
  alias?: string;
  identity?: string;
  issuer?: string;
  signatures: Record<string, string>;
}

/** The source stack's `signing` export, as far as promotion reads it. */
export interface SourceSigning {
  mode?: unknown;
  publicKey?: unknown;
  identity?: unknown;
  issuer?: unknown;
}

/** What the signatures must verify with: this stack's pinned key or identity, else the key the
 *  source stack exports. Errors name the config key and the export. */
export function trustFor(v: PromotionVerification, sourceStack: string, exported: unknown): VerifyTrust {
  const src = JSON.stringify(sourceStack);
  if (v.mode === "keyless") {
    if (!v.identity || !v.issuer) {
      fail("image-factory:signing.identity and signing.issuer must pin the signing workflow in keyless mode; refusing to trust an identity the source stack exports");
    }
    return { identity: v.identity, issuer: v.issuer };
  }
  if (v.publicKey !== undefined && v.publicKey !== "") return { publicKeyPem: v.publicKey };
  const e = (typeof exported === "object" && exported !== null ? exported : {}) as SourceSigning;
  if (typeof e.publicKey !== "string" || !e.publicKey.includes("-----BEGIN PUBLIC KEY-----")) {
    fail(
      `source stack ${src} exports no "signing.publicKey" (got ${JSON.stringify(exported ?? null)}) and this stack pins none (image-factory:signing.publicKey): nothing to verify its signatures with; refusing to promote`,
    );
  }
  return { publicKeyPem: e.publicKey };
}

/** The request the Verify resource hands the engine (no token: that goes in its environment). */
type VerifyInputs = Omit<VerifyRequest, "registryToken"> & { registryToken?: string };

/** Everything but the token decides whether verification runs again. */
export function verifyFingerprint(inputs: VerifyInputs): string {
  const rest: Record<string, unknown> = { ...inputs };
  delete rest.registryToken;
  const stable = (v: unknown): string =>
    Array.isArray(v)
      ? `[${v.map(stable).join(",")}]`
      : v !== null && typeof v === "object"
        ? `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
            .join(",")}}`
        : (JSON.stringify(v) ?? "null");
  return crypto.createHash("sha256").update(stable(rest)).digest("hex");
}

async function runVerify(inputs: VerifyInputs): Promise<pulumi.dynamic.CreateResult> {
  const { registryToken, ...request } = inputs;
  const child = await runEngineProcess(["verify"], request, registryToken);
  if (child.code !== 0) {
    const why = child.code === 1 ? child.stderr.trim() : `the verification could not run (exit ${child.code}): ${engineTail(child)}`;
    throw new Error(`PromotedImage: ${why}\nNo tag was published.`);
  }
  const report = JSON.parse(child.stdout) as VerifyReport;
  return {
    id: inputs.digest,
    outs: {
      fingerprint: verifyFingerprint(inputs),
      digest: report.digest,
      platformDigests: report.platformDigests,
      signatures: report.signatures,
      attestedGates: report.gates,
      provenance: report.provenance,
      sboms: report.sboms,
      checked: report.checked,
      seconds: report.seconds,
    },
  };
}

/** Capture-free, serialized into the state: it holds no secret and no Pulumi object. */
export const verifyProvider: pulumi.dynamic.ResourceProvider = {
  create: (inputs: VerifyInputs) => runVerify(inputs),
  diff: async (_id: string, olds: { fingerprint?: string }, news: VerifyInputs) => ({
    changes: olds.fingerprint !== verifyFingerprint(news),
    replaces: [],
    deleteBeforeReplace: false,
  }),
  update: async (_id: string, _olds: unknown, news: VerifyInputs) => ({ outs: (await runVerify(news)).outs }),
  delete: async () => undefined,
};

/** `pulumi-nodejs:dynamic/promotion:Verify`: the engine's verify step on the registry. */
export class VerifiedRelease extends pulumi.dynamic.Resource {
  declare public readonly digest: pulumi.Output<string>;
  declare public readonly platformDigests: pulumi.Output<Record<string, string>>;
  declare public readonly signatures: pulumi.Output<Record<string, string>>;
  declare public readonly checked: pulumi.Output<string[]>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(
      verifyProvider,
      name,
      { ...props, fingerprint: undefined, signatures: undefined, attestedGates: undefined, provenance: undefined, sboms: undefined, checked: undefined, seconds: undefined },
      opts,
      "promotion",
      "Verify",
    );
  }
}

/** The slice of the source stack's exports that promotion reads. */
export interface SourceStackOutputs {
  imageName?: unknown;
  digest?: unknown;
  imageRef?: unknown;
  platformDigests?: unknown;
  sbomLocations?: unknown;
  gateResults?: unknown;
  release?: unknown;
}

/** What promotion checked and will publish, derived from the source stack's exports. */
export interface CheckedSource {
  digest: string;
  /** The image the Index copies from: `<source repository>@<digest>`. */
  sourceRef: string;
  platformDigests: Record<string, string>;
  sbomLocations: Record<string, string>;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
// Lowercase repository path with a registry host (optionally with a port) first.
const IMAGE_NAME = /^[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+$/;
// `stack`, `project/stack` or `org/project/stack`.
const STACK_NAME = /^([A-Za-z0-9_.-]+\/){0,2}[A-Za-z0-9_.-]+$/;
// A semver prerelease version as a tag: `1.2.3-rc.1`.
const SEMVER_PRERELEASE = /^v?\d+\.\d+\.\d+-[0-9A-Za-z.-]+$/;

function fail(message: string): never {
  throw new Error(`PromotedImage: ${message}`);
}

/**
 * Validates the arguments that are known before any resource exists and returns the tag names to
 * publish (deduplicated, order kept). Refuses `latest` for a prerelease — whether the caller says
 * so with `prerelease` or a tag names a prerelease version — because `latest` must only ever move to
 * a stable release.
 */
export function validatePromotion(
  args: PromotedImageArgs,
  current?: { project: string; stack: string },
): string[] {
  const { sourceStack, imageName, tags, registry } = args;
  if (typeof sourceStack !== "string" || !STACK_NAME.test(sourceStack)) {
    fail(
      `promoteFrom (sourceStack) must be a stack name like "dev" or "acme/image-factory/dev", got ${JSON.stringify(sourceStack)}`,
    );
  }
  const parts = sourceStack.split("/");
  const sameProject = parts.length < 2 || parts[parts.length - 2] === current?.project;
  if (current !== undefined && parts[parts.length - 1] === current.stack && sameProject) {
    fail(
      `promoteFrom (sourceStack) ${JSON.stringify(sourceStack)} is this stack itself; promote from another stack`,
    );
  }
  if (typeof imageName !== "string" || !IMAGE_NAME.test(imageName)) {
    fail(
      `imageName must be a lowercase repository with its registry host first (e.g. "ghcr.io/acme/shop-api"), got ${JSON.stringify(imageName)}`,
    );
  }
  if (!Array.isArray(tags) || tags.length === 0) {
    fail(
      `tags must list at least one tag to publish for promotion from ${JSON.stringify(sourceStack)}, got ${JSON.stringify(tags)}`,
    );
  }
  for (const tag of tags) {
    if (typeof tag !== "string" || !OCI_TAG.test(tag)) {
      fail(
        `tags: ${JSON.stringify(tag)} is not a valid tag name ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}); pass tag names, not full refs`,
      );
    }
  }
  if (tags.includes("latest")) {
    const prereleaseTag = tags.find((t) => SEMVER_PRERELEASE.test(t));
    if (args.prerelease) {
      fail(
        `refusing to move "latest" to a prerelease (tags ${JSON.stringify(tags)}, prerelease: true); "latest" only follows stable releases`,
      );
    }
    if (prereleaseTag !== undefined) {
      fail(
        `refusing to move "latest" to a prerelease: tag ${JSON.stringify(prereleaseTag)} is a prerelease version (tags ${JSON.stringify(tags)})`,
      );
    }
  }
  if (registry === undefined || typeof registry.address !== "string" || registry.address === "") {
    fail(
      `registry.address must be the registry host (e.g. "ghcr.io"), got ${JSON.stringify(registry?.address)}`,
    );
  }
  if (!imageName.startsWith(`${registry.address}/`)) {
    fail(
      `imageName ${JSON.stringify(imageName)} is not on registry.address ${JSON.stringify(registry.address)}`,
    );
  }
  if (typeof registry.username !== "string" || registry.username === "") {
    fail(
      `registry.username (config registryUsername) is required to push promoted tags, got ${JSON.stringify(registry.username)}`,
    );
  }
  if (registry.password === undefined || registry.password === null || registry.password === "") {
    fail("registry.password (config registryToken, a secret) is required to push promoted tags");
  }
  return [...new Set(tags)];
}

/**
 * The tag names to publish for a release, given the candidate tags: drops `latest` for a
 * prerelease (for callers that compute tags generically) and deduplicates. `validatePromotion`
 * then refuses anything that still pairs `latest` with a prerelease.
 */
export function promotionTags(tags: string[], prerelease: boolean): string[] {
  const unique = [...new Set(tags)];
  return prerelease ? unique.filter((t) => t !== "latest") : unique;
}

function stringRecord(value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === "string") out[k] = v;
  }
  return out;
}

function describeFailedChecks(gateResults: Record<string, unknown>): string {
  const checks = Array.isArray(gateResults.checks) ? (gateResults.checks as unknown[]) : [];
  const failed = checks
    .filter(
      (c): c is Record<string, unknown> =>
        typeof c === "object" && c !== null && (c as Record<string, unknown>).passed !== true,
    )
    .map((c) => {
      const name = String(c.name ?? c.gate ?? c.id ?? "unnamed check");
      const detail =
        c.message ??
        (c.measured !== undefined || c.limit !== undefined
          ? `measured ${String(c.measured)}, limit ${String(c.limit)}`
          : undefined);
      return detail === undefined ? name : `${name} (${String(detail)})`;
    });
  return failed.length > 0 ? `failed checks: ${failed.join("; ")}` : "no check names were exported";
}

/** How each limit reads, so a check measured on dev can be judged again with prod's limits. */
const LIMITS: Record<string, { field: keyof GatesConfig; direction: "atMost" | "atLeast" }> = {
  "gates.maxImageSizeMb": { field: "maxImageSizeMb", direction: "atMost" },
  "gates.minCoverage": { field: "minCoverage", direction: "atLeast" },
  "gates.minBranchCoverage": { field: "minBranchCoverage", direction: "atLeast" },
  "gates.minFunctionCoverage": { field: "minFunctionCoverage", direction: "atLeast" },
  "gates.maxCritical": { field: "maxCritical", direction: "atMost" },
  "gates.minEfficiency": { field: "minEfficiency", direction: "atLeast" },
  "gates.maxWastedMb": { field: "maxWastedMb", direction: "atMost" },
};

/**
 * The gate results must vouch for exactly these bytes: the same manifest list and platform
 * digests, this repository, every check run (waivers aside, and only those this stack waives too),
 * and every measured value within this stack's own limits.
 */
export function checkBinding(
  src: string,
  imageName: string,
  digest: string,
  platformDigests: Record<string, string>,
  gates: Record<string, unknown>,
  prodGates?: GatesConfig,
): void {
  const judgedDigest = gates.digest;
  if (judgedDigest !== digest) {
    fail(`source stack ${src} "gateResults.digest" is ${JSON.stringify(judgedDigest)}, not its "digest" ${digest}: the gates judged other bytes; refusing to promote`);
  }
  const judged = stringRecord(gates.platformDigests);
  if (Object.keys(judged).length === 0 || Object.keys(platformDigests).length === 0) {
    fail(`source stack ${src} exports no "platformDigests" or no "gateResults.platformDigests": nothing binds the gates to platform images; refusing to promote ${digest}`);
  }
  for (const p of [...new Set([...Object.keys(judged), ...Object.keys(platformDigests)])].sort()) {
    if (judged[p] !== platformDigests[p]) {
      fail(`source stack ${src} "gateResults.platformDigests" ${p} is ${JSON.stringify(judged[p])}, but "platformDigests" ${p} is ${JSON.stringify(platformDigests[p])}; refusing to promote ${digest}`);
    }
  }
  if (gates.imageName !== imageName) {
    fail(`source stack ${src} "gateResults.imageName" is ${JSON.stringify(gates.imageName)}, not ${JSON.stringify(imageName)}; refusing to promote ${digest}`);
  }
  const notRun = Array.isArray(gates.notRun) ? (gates.notRun as unknown[]) : [];
  if (!Array.isArray(gates.notRun) || notRun.length > 0) {
    fail(`source stack ${src} "gateResults.notRun" is ${JSON.stringify(gates.notRun)}: every check must have run; refusing to promote ${digest}`);
  }
  if (prodGates === undefined) return;
  const checks = Array.isArray(gates.checks) ? (gates.checks as Array<Record<string, unknown>>) : [];
  for (const c of checks) {
    const name = String(c.gate);
    if (c.status === "waived") {
      const here = Object.keys(prodGates.waive).find((w) => name === w || name.startsWith(`${w}[`));
      if (here === undefined) fail(`source stack ${src} "gateResults" check ${name} was waived there (${JSON.stringify(c.waiver)}) but this stack does not waive it (gates.waive); refusing to promote ${digest}`);
      continue;
    }
    const rule = LIMITS[String(c.configKey)];
    if (rule === undefined || typeof c.measured !== "number") continue;
    const limit = prodGates[rule.field] as number;
    const ok = rule.direction === "atMost" ? c.measured <= limit : c.measured >= limit;
    if (!ok) {
      fail(`source stack ${src} check ${name} measured ${c.measured}${c.unit ? ` ${String(c.unit)}` : ""}, which fails this stack's ${String(c.configKey)} = ${limit}; refusing to promote ${digest}`);
    }
  }
}

/**
 * Checks the source stack's exports: a `sha256:` digest must be there, and (unless
 * `requireGatesPassed` is false) `gateResults.passed` must be true. Returns what to publish.
 * Errors name the source stack and the missing or failing export.
 */
export function checkSourceOutputs(
  sourceStack: string,
  imageName: string,
  outputs: SourceStackOutputs,
  requireGatesPassed = true,
  expectedRevision?: string,
  prodGates?: GatesConfig,
): CheckedSource {
  const src = JSON.stringify(sourceStack);
  const { digest } = outputs;
  if (digest === undefined || digest === null || digest === "") {
    fail(
      `source stack ${src} has no "digest" output; run \`pulumi up\` on ${src} first (promoteFrom=${src})`,
    );
  }
  if (typeof digest !== "string" || !DIGEST.test(digest)) {
    fail(
      `source stack ${src} exports "digest" = ${JSON.stringify(digest)}, which is not a sha256:<64 hex> digest`,
    );
  }
  let sourceRepository = imageName;
  if (outputs.imageRef !== undefined && outputs.imageRef !== null) {
    const ref = outputs.imageRef;
    if (typeof ref !== "string" || !ref.endsWith(`@${digest}`)) {
      fail(
        `source stack ${src} exports "imageRef" = ${JSON.stringify(ref)}, which does not point at its digest ${digest}`,
      );
    }
    sourceRepository = ref.slice(0, ref.length - digest.length - 1);
  }
  if (requireGatesPassed) {
    const gates = outputs.gateResults;
    if (gates === undefined || gates === null) {
      fail(
        `source stack ${src} has no "gateResults" output, so its quality gates cannot be shown to have passed; refusing to promote ${digest}`,
      );
    }
    if (typeof gates !== "object" || Array.isArray(gates)) {
      fail(
        `source stack ${src} exports "gateResults" = ${JSON.stringify(gates)}, expected { passed, checks }`,
      );
    }
    const record = gates as Record<string, unknown>;
    if (record.passed !== true) {
      fail(
        `source stack ${src} "gateResults.passed" is ${JSON.stringify(record.passed)}: its quality gates did not pass (${describeFailedChecks(record)}); refusing to promote ${digest}`,
      );
    }
  }
  if (sourceRepository !== imageName) {
    fail(`source stack ${src} "imageRef" is in ${JSON.stringify(sourceRepository)}, not in this stack's imageName ${JSON.stringify(imageName)}; promotion copies within one repository only`);
  }
  if (requireGatesPassed) {
    const gates = outputs.gateResults as Record<string, unknown>;
    checkBinding(src, imageName, digest, stringRecord(outputs.platformDigests), gates, prodGates);
    if (expectedRevision !== undefined && gates.sourceRevision !== expectedRevision) {
      fail(`source stack ${src} "gateResults.sourceRevision" is ${JSON.stringify(gates.sourceRevision)}, but this release is ${expectedRevision}: the gates judged another commit; refusing to promote ${digest}`);
    }
  }
  if (expectedRevision !== undefined) {
    const sourceSha = typeof outputs.release === "object" && outputs.release !== null ? (outputs.release as Record<string, unknown>).sha : undefined;
    if (typeof sourceSha !== "string" || sourceSha === "") {
      fail(`source stack ${src} exports no "release.sha", so the promoted digest cannot be shown to be commit ${expectedRevision}; refusing to promote ${digest}`);
    }
    if (sourceSha !== expectedRevision) {
      fail(
        `source stack ${src} "release.sha" is ${sourceSha}, but this release is ${expectedRevision}; deploy ${expectedRevision} to ${src} first so the promoted digest is the commit being released`,
      );
    }
  }
  return {
    digest,
    sourceRef: `${sourceRepository}@${digest}`,
    platformDigests: stringRecord(outputs.platformDigests),
    sbomLocations: stringRecord(outputs.sbomLocations),
  };
}

/** Publishes `tags` at the digest of another stack's image; builds nothing. */
export class PromotedImage extends pulumi.ComponentResource {
  /** Digest of the promoted manifest list: the source stack's digest, unchanged. */
  public readonly digest: pulumi.Output<string>;
  /** `imageName@digest` in this stack's repository. */
  public readonly imageRef: pulumi.Output<string>;
  public readonly platformDigests: pulumi.Output<Record<string, string>>;
  public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  /** Full refs of the published tags, e.g. `ghcr.io/acme/shop-api:1.2.3`. */
  public readonly tags: pulumi.Output<string[]>;
  /** What each Index reported after pushing (`tag@digest`). */
  public readonly publishedRefs: pulumi.Output<string[]>;
  public readonly sourceStack: pulumi.Output<string>;
  public readonly indexes: dockerBuild.Index[];
  /** The verification every Index depends on (unset without `verification`). */
  public readonly verified?: VerifiedRelease;
  /** What signatures were verified with, as the stack export `signing` shows it, plus digest →
   *  signature referrer found on the registry (unset without `verification`). */
  public readonly signing?: pulumi.Output<StackSigningExport>;

  constructor(name: string, args: PromotedImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:promotion:PromotedImage", name, {}, opts);
    const tagNames = validatePromotion(args, {
      project: pulumi.getProject(),
      stack: pulumi.getStack(),
    });
    const verification = args.verification;
    if (verification !== undefined && (args.expectedRevision === undefined || args.gates === undefined)) {
      fail("verification needs expectedRevision (the released commit) and gates (this stack's limits)");
    }
    // With verification the gates decision comes from the signed gates attestation, not from the
    // source stack's gateResults output.
    const requireGatesPassed = verification !== undefined ? false : (args.requireGatesPassed ?? true);
    const { sourceStack, imageName } = args;

    const ref = new pulumi.StackReference(
      `${name}-source`,
      { name: sourceStack },
      { parent: this },
    );
    // During a preview the reference may be unknown; the apply then does not run and the check
    // happens on `up`, before any Index is pushed, because every Index input hangs off it.
    const checked = pulumi
      .all([
        ref.getOutput("imageName"),
        ref.getOutput("digest"),
        ref.getOutput("imageRef"),
        ref.getOutput("platformDigests"),
        ref.getOutput("sbomLocations"),
        ref.getOutput("gateResults"),
        ref.getOutput("release"),
      ])
      .apply(
        ([srcImageName, digest, imageRef, platformDigests, sbomLocations, gateResults, release]) =>
          checkSourceOutputs(
            sourceStack,
            imageName,
            {
              imageName: srcImageName,
              digest,
              imageRef,
              platformDigests,
              sbomLocations,
              gateResults,
              release,
            },
            requireGatesPassed,
            args.expectedRevision,
            args.gates,
          ),
      );

    const registry = {
      address: args.registry.address,
      username: args.registry.username,
      password: pulumi.secret(args.registry.password),
    };
    let sourceRef: pulumi.Output<string> = checked.sourceRef;
    if (verification !== undefined) {
      // After the digest basics: a source without a digest is refused for that, not for its key.
      const trust = pulumi
        .all([checked.digest, ref.getOutput("signing")])
        .apply(([, exported]) => trustFor(verification, sourceStack, exported));
      this.verified = new VerifiedRelease(
        `${name}-verify`,
        {
          imageName,
          digest: checked.digest,
          platformDigests: checked.platformDigests,
          expectedRevision: args.expectedRevision,
          gates: args.gates,
          trust,
          tlog: verification.tlog ?? false,
          registryUsername: args.registry.username,
          registryToken: pulumi.secret(args.registry.password),
        },
        { parent: this, additionalSecretOutputs: ["registryToken"] },
      );
      // The Index copies what was verified: the verified digest flows into its source.
      sourceRef = pulumi.interpolate`${checked.sourceRef.apply((r) => r.slice(0, r.lastIndexOf("@")))}@${this.verified.digest}`;
      this.signing = pulumi
        .all([trust, this.verified.signatures])
        .apply(
          ([t, signatures]): StackSigningExport => ({
            mode: verification.mode,
            ...("identity" in t ? { identity: t.identity, issuer: t.issuer } : { publicKey: t.publicKeyPem }),
            signatures: signatures ?? {},
          }),
        );
    }
    const verified = this.verified;
    this.indexes = tagNames.map(
      (tag) =>
        new dockerBuild.Index(
          `${name}-${tag}`,
          {
            tag: `${imageName}:${tag}`,
            sources: [sourceRef],
            push: true,
            registry,
          },
          // A replaced Index is deleted BY DIGEST by docker-build, which would remove the released
          // image under every tag (and rollbacks with it). Retention belongs to the registry.
          // Nothing is pushed before the verification succeeded.
          { parent: this, retainOnDelete: true, dependsOn: verified !== undefined ? [verified] : [] },
        ),
    );

    this.digest = checked.digest;
    this.imageRef = pulumi.interpolate`${imageName}@${checked.digest}`;
    this.platformDigests = checked.platformDigests;
    this.sbomLocations = checked.sbomLocations;
    this.sourceStack = pulumi.output(sourceStack);
    this.publishedRefs = pulumi.all(this.indexes.map((i) => i.ref));
    // The tags export resolves only once every Index is pushed, and only if each landed on the
    // source digest (a registry that rewrote the index would break "prod runs what dev tested").
    this.tags = pulumi
      .all([checked.digest, this.publishedRefs, pulumi.all(this.indexes.map((i) => i.tag))])
      .apply(([digest, refs, tags]) => {
        refs.forEach((r, i) => {
          const at = r.lastIndexOf("@");
          if (at >= 0 && r.slice(at + 1) !== digest) {
            fail(
              `tag ${tags[i]} was published at ${r.slice(at + 1)}, not at the source digest ${digest} from ${JSON.stringify(sourceStack)}`,
            );
          }
        });
        return tags;
      });

    this.registerOutputs({
      digest: this.digest,
      imageRef: this.imageRef,
      platformDigests: this.platformDigests,
      sbomLocations: this.sbomLocations,
      tags: this.tags,
      publishedRefs: this.publishedRefs,
      sourceStack: this.sourceStack,
      signing: this.signing,
    });
  }
}
