// Predicates the factory attests to an image, and the predicate types it signs and verifies.
// Pure builders (no I/O, no Pulumi): what they return is what `cosign attest --predicate` wraps in
// an in-toto statement whose subject is the image digest. docs/signing.md documents both schemas;
// admission policies (docs/signing.md) name these same type URIs, and a test holds them together.

import { DIGEST } from "../reference";

/** in-toto predicate type URIs, keyed by the `--type` name cosign takes for them. */
export const PREDICATE_TYPES = {
  /** SPDX 2.3 JSON SBOM (Syft's output), cosign `--type spdxjson`. */
  spdxjson: "https://spdx.dev/Document",
  /** SLSA provenance v1, cosign `--type slsaprovenance1`. */
  slsaprovenance1: "https://slsa.dev/provenance/v1",
  /** The factory's own gate results (schema below); cosign takes a URI as `--type`. */
  gates: "https://image-factory.dev/gates/v1",
} as const;

export type AttestationType = keyof typeof PREDICATE_TYPES;

/** What a plain `cosign sign` (v3, Sigstore bundle format) signs: an in-toto statement with this
 *  predicate type and an empty predicate. */
export const COSIGN_SIGN_PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1";

/** `buildDefinition.buildType` of the factory's provenance: a BuildKit build driven by docker-build. */
export const BUILD_TYPE = "https://image-factory.dev/buildkit/v1";

/** The `--type` cosign needs for an attestation type (the URI for the factory's own predicate). */
export function cosignType(type: AttestationType): string {
  return type === "gates" ? PREDICATE_TYPES.gates : type;
}

const GIT_COMMIT = /^[0-9a-f]{40}$/;

function requireDigest(what: string, value: unknown): string {
  if (typeof value !== "string" || !DIGEST.test(value)) {
    throw new Error(
      `${what} must be a sha256 digest (sha256:<64 hex>), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function requireText(what: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new Error(`${what} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** RFC 3339 in UTC, in the form protobuf's JSON mapping prints (no fraction when the milliseconds
 *  are zero): cosign re-serializes SLSA provenance through protobuf, so this is what a verifier
 *  reads back, and the built predicate compares equal to the attested one. */
function isoTime(what: string, value: Date | string): string {
  const d = typeof value === "string" ? new Date(value) : value;
  if (Number.isNaN(d.getTime()))
    throw new Error(`${what} must be a date, got ${JSON.stringify(value)}`);
  return d.toISOString().replace(/\.000Z$/, "Z");
}

// ------------------------------------------------------------------------------------------------
// Gates predicate: https://image-factory.dev/gates/v1
// ------------------------------------------------------------------------------------------------

export type GateStatus = "passed" | "failed" | "not-run" | "waived";

export interface GatesPredicateCheck {
  /** e.g. `imageSize[linux/amd64]`, `coverage`, `secrets`. */
  name: string;
  status: GateStatus;
  /** In the limit's unit; null when the check could not run. */
  measured: number | null;
  limit: number;
  unit?: string;
  /** Why it failed, did not run, or was waived (absent on a pass). */
  reason?: string;
}

export interface GatesPredicate {
  /** The manifest list the gates judged (what is signed and promoted). */
  indexDigest: string;
  /** Platform → manifest digest the scanners read. */
  platformDigests: Record<string, string>;
  /** Git commit the images were built from. */
  sourceRevision: string;
  /** Image repository without tag or digest, e.g. `ghcr.io/acme/shop-api`. */
  repository: string;
  /** Nothing failed and nothing required was left unrun. */
  passed: boolean;
  checks: GatesPredicateCheck[];
  /** Check → reason it was waived by the stack's `gates.waive`. */
  waived: Record<string, string>;
  /** Checks that did not run (never counted as passed). */
  notRun: string[];
  /** Tool → version that measured (syft, trivy, hadolint, dive, ...). */
  tools: Record<string, string>;
  /** RFC 3339, UTC. */
  evaluatedAt: string;
}

/** The shape of the evidence engine's gate results this builder reads (structural, so this module
 *  does not depend on the engine's internals). */
export interface GateResultsLike {
  passed: boolean;
  checks: Array<{
    gate: string;
    status: GateStatus;
    measured: number | null;
    limit: number;
    unit?: string;
    detail?: string;
    waiver?: string;
  }>;
  waived: Record<string, string>;
  notRun: string[];
  tools: Record<string, string>;
}

export interface GatesPredicateInput {
  indexDigest: string;
  platformDigests: Record<string, string>;
  sourceRevision: string;
  repository: string;
  results: GateResultsLike;
  /** @default now */
  evaluatedAt?: Date | string;
}

/** Builds the gates predicate, binding the results to the digests and commit they judged. */
export function gatesPredicate(input: GatesPredicateInput): GatesPredicate {
  const indexDigest = requireDigest("gates predicate: indexDigest", input.indexDigest);
  const platforms = Object.keys(input.platformDigests ?? {}).sort();
  if (platforms.length === 0)
    throw new Error("gates predicate: platformDigests must name at least one platform");
  const platformDigests: Record<string, string> = {};
  for (const p of platforms)
    platformDigests[p] = requireDigest(
      `gates predicate: platformDigests["${p}"]`,
      input.platformDigests[p],
    );
  if (typeof input.sourceRevision !== "string" || !GIT_COMMIT.test(input.sourceRevision)) {
    throw new Error(
      `gates predicate: sourceRevision must be a full git commit (40 hex), got ${JSON.stringify(input.sourceRevision)}`,
    );
  }
  const repository = requireText("gates predicate: repository", input.repository);
  // `127.0.0.1:5443/image-factory/app` has a port, not a tag: only the last path segment can carry one.
  if (repository.includes("@") || (repository.split("/").pop() ?? "").includes(":")) {
    throw new Error(
      `gates predicate: repository must have no tag or digest, got ${JSON.stringify(repository)}`,
    );
  }
  const r = input.results;
  const checks = r.checks.map((c): GatesPredicateCheck => {
    const check: GatesPredicateCheck = {
      name: c.gate,
      status: c.status,
      measured: c.measured,
      limit: c.limit,
    };
    if (c.unit !== undefined && c.unit !== "") check.unit = c.unit;
    // A pass needs no explanation; everything else says why, a waiver first.
    const reason =
      c.status === "waived" ? (c.waiver ?? c.detail) : c.status === "passed" ? undefined : c.detail;
    if (reason !== undefined && reason !== "") check.reason = reason;
    return check;
  });
  return {
    indexDigest,
    platformDigests,
    sourceRevision: input.sourceRevision,
    repository,
    passed: r.passed,
    checks,
    waived: { ...r.waived },
    notRun: [...r.notRun],
    tools: { ...r.tools },
    evaluatedAt: isoTime("gates predicate: evaluatedAt", input.evaluatedAt ?? new Date()),
  };
}

// ------------------------------------------------------------------------------------------------
// SLSA provenance v1: https://slsa.dev/provenance/v1
// ------------------------------------------------------------------------------------------------

export interface ResourceDescriptor {
  uri: string;
  digest: Record<string, string>;
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: {
      repository: string;
      ref: string;
      commit: string;
      dockerfile: string;
      platforms: string[];
      buildArgs: Record<string, string>;
    };
    internalParameters: { stack: string };
    resolvedDependencies: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version: Record<string, string> };
    metadata: { invocationId: string; startedOn: string; finishedOn: string };
  };
}

export interface ProvenanceInput {
  /** Source repository URL, e.g. `https://github.com/acme/image-factory`. */
  repository: string;
  /** Git ref built, e.g. `refs/heads/main`. */
  ref: string;
  /** Full commit SHA. */
  commit: string;
  /** Dockerfile path relative to the repository, e.g. `app/Dockerfile`. */
  dockerfile: string;
  platforms: string[];
  /** Build arguments. Those named in `secretBuildArgs`, or whose name looks like a credential, are
   *  left out: provenance is public to anyone who can pull the image. */
  buildArgs?: Record<string, string>;
  secretBuildArgs?: string[];
  /** Base images resolved for the build (ref without digest, and its digest). */
  baseImages: Array<{ ref: string; digest: string }>;
  /** Pulumi stack, e.g. `dev`. */
  stack: string;
  /** BuildKit builder name, e.g. `image-factory-dev-arm64`. */
  builder: string;
  buildkitVersion: string;
  /** e.g. the CI run URL or `<stack>/<update id>`. */
  invocationId: string;
  startedOn: Date | string;
  finishedOn: Date | string;
}

/** Build-argument names that carry credentials by convention; never written into provenance. */
export const SECRET_BUILD_ARG =
  /(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|_KEY$|^KEY$|AUTH)/i;

/** Builds a SLSA provenance v1 predicate for one factory build. */
export function slsaProvenance(input: ProvenanceInput): SlsaProvenanceV1 {
  const repository = requireText("provenance: repository", input.repository);
  const ref = requireText("provenance: ref", input.ref);
  if (typeof input.commit !== "string" || !GIT_COMMIT.test(input.commit)) {
    throw new Error(
      `provenance: commit must be a full git commit (40 hex), got ${JSON.stringify(input.commit)}`,
    );
  }
  if (!Array.isArray(input.platforms) || input.platforms.length === 0) {
    throw new Error("provenance: platforms must name at least one platform");
  }
  if (!Array.isArray(input.baseImages) || input.baseImages.length === 0) {
    throw new Error("provenance: baseImages must name the base image(s) the build resolved");
  }
  const secret = new Set(input.secretBuildArgs ?? []);
  const buildArgs: Record<string, string> = {};
  for (const k of Object.keys(input.buildArgs ?? {}).sort()) {
    if (!secret.has(k) && !SECRET_BUILD_ARG.test(k))
      buildArgs[k] = (input.buildArgs as Record<string, string>)[k];
  }
  const bases = input.baseImages.map((b, i): ResourceDescriptor => {
    const uri = requireText(`provenance: baseImages[${i}].ref`, b.ref);
    if (uri.includes("@"))
      throw new Error(
        `provenance: baseImages[${i}].ref must not carry a digest (give it in digest), got ${JSON.stringify(uri)}`,
      );
    const digest = requireDigest(`provenance: baseImages[${i}].digest`, b.digest);
    return { uri, digest: { sha256: digest.slice("sha256:".length) } };
  });
  const startedOn = isoTime("provenance: startedOn", input.startedOn);
  const finishedOn = isoTime("provenance: finishedOn", input.finishedOn);
  if (Date.parse(finishedOn) < Date.parse(startedOn))
    throw new Error(`provenance: finishedOn (${finishedOn}) is before startedOn (${startedOn})`);
  const stack = requireText("provenance: stack", input.stack);
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: {
        repository,
        ref,
        commit: input.commit,
        dockerfile: requireText("provenance: dockerfile", input.dockerfile),
        platforms: [...input.platforms],
        buildArgs,
      },
      internalParameters: { stack },
      resolvedDependencies: [
        { uri: `git+${repository}@${ref}`, digest: { gitCommit: input.commit } },
        ...bases,
      ],
    },
    runDetails: {
      builder: {
        id: `${stack}/${requireText("provenance: builder", input.builder)}`,
        version: { buildkit: requireText("provenance: buildkitVersion", input.buildkitVersion) },
      },
      metadata: {
        invocationId: requireText("provenance: invocationId", input.invocationId),
        startedOn,
        finishedOn,
      },
    },
  };
}
