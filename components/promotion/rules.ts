// Promotion's pure rules: what a promoting stack may publish, and what the source stack's outputs
// must say (digest, repository, release commit) before the signed evidence is even looked at.
import type * as pulumi from "@pulumi/pulumi";
import type { GatesConfig } from "../../evidence/gates";
import { DIGEST, STACK_NAME, imageNameProblem } from "../reference";
import { OCI_TAG } from "../tags";
import type { PromotionVerification } from "./verification";

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

/** The slice of the source stack's exports that promotion reads. */
export type SourceStackOutputs = Partial<
  Record<
    | "imageName"
    | "digest"
    | "imageRef"
    | "platformDigests"
    | "sbomLocations"
    | "gateResults"
    | "release",
    unknown
  >
>;

/** What promotion checked and will publish, derived from the source stack's exports. */
export interface CheckedSource {
  digest: string;
  /** The image the Index copies from: `<source repository>@<digest>`. */
  sourceRef: string;
  platformDigests: Record<string, string>;
  sbomLocations: Record<string, string>;
}

// A semver prerelease version as a tag: `1.2.3-rc.1`.
const SEMVER_PRERELEASE = /^v?\d+\.\d+\.\d+-[0-9A-Za-z.-]+$/;

export function fail(message: string): never {
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
  if (typeof imageName !== "string" || imageNameProblem(imageName) !== undefined) {
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
    fail(
      `source stack ${src} "gateResults.digest" is ${JSON.stringify(judgedDigest)}, not its "digest" ${digest}: the gates judged other bytes; refusing to promote`,
    );
  }
  const judged = stringRecord(gates.platformDigests);
  if (Object.keys(judged).length === 0 || Object.keys(platformDigests).length === 0) {
    fail(
      `source stack ${src} exports no "platformDigests" or no "gateResults.platformDigests": nothing binds the gates to platform images; refusing to promote ${digest}`,
    );
  }
  for (const p of [...new Set([...Object.keys(judged), ...Object.keys(platformDigests)])].sort()) {
    if (judged[p] !== platformDigests[p]) {
      fail(
        `source stack ${src} "gateResults.platformDigests" ${p} is ${JSON.stringify(judged[p])}, but "platformDigests" ${p} is ${JSON.stringify(platformDigests[p])}; refusing to promote ${digest}`,
      );
    }
  }
  if (gates.imageName !== imageName) {
    fail(
      `source stack ${src} "gateResults.imageName" is ${JSON.stringify(gates.imageName)}, not ${JSON.stringify(imageName)}; refusing to promote ${digest}`,
    );
  }
  const notRun = Array.isArray(gates.notRun) ? (gates.notRun as unknown[]) : [];
  if (!Array.isArray(gates.notRun) || notRun.length > 0) {
    fail(
      `source stack ${src} "gateResults.notRun" is ${JSON.stringify(gates.notRun)}: every check must have run; refusing to promote ${digest}`,
    );
  }
  if (prodGates === undefined) return;
  const checks = Array.isArray(gates.checks)
    ? (gates.checks as Array<Record<string, unknown>>)
    : [];
  for (const c of checks) {
    const name = String(c.gate);
    if (c.status === "waived") {
      const here = Object.keys(prodGates.waive).find((w) => name === w || name.startsWith(`${w}[`));
      if (here === undefined)
        fail(
          `source stack ${src} "gateResults" check ${name} was waived there (${JSON.stringify(c.waiver)}) but this stack does not waive it (gates.waive); refusing to promote ${digest}`,
        );
      continue;
    }
    const rule = LIMITS[String(c.configKey)];
    if (rule === undefined || typeof c.measured !== "number") continue;
    const limit = prodGates[rule.field] as number;
    const ok = rule.direction === "atMost" ? c.measured <= limit : c.measured >= limit;
    if (!ok) {
      fail(
        `source stack ${src} check ${name} measured ${c.measured}${c.unit ? ` ${String(c.unit)}` : ""}, which fails this stack's ${String(c.configKey)} = ${limit}; refusing to promote ${digest}`,
      );
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
    fail(
      `source stack ${src} "imageRef" is in ${JSON.stringify(sourceRepository)}, not in this stack's imageName ${JSON.stringify(imageName)}; promotion copies within one repository only`,
    );
  }
  if (requireGatesPassed) {
    const gates = outputs.gateResults as Record<string, unknown>;
    checkBinding(src, imageName, digest, stringRecord(outputs.platformDigests), gates, prodGates);
    if (expectedRevision !== undefined && gates.sourceRevision !== expectedRevision) {
      fail(
        `source stack ${src} "gateResults.sourceRevision" is ${JSON.stringify(gates.sourceRevision)}, but this release is ${expectedRevision}: the gates judged another commit; refusing to promote ${digest}`,
      );
    }
  }
  if (expectedRevision !== undefined) {
    const sourceSha =
      typeof outputs.release === "object" && outputs.release !== null
        ? (outputs.release as Record<string, unknown>).sha
        : undefined;
    if (typeof sourceSha !== "string" || sourceSha === "") {
      fail(
        `source stack ${src} exports no "release.sha", so the promoted digest cannot be shown to be commit ${expectedRevision}; refusing to promote ${digest}`,
      );
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
