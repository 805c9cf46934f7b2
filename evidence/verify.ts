// Verify before promoting: what a stack that republishes another stack's image checks on the
// registry itself, instead of trusting the other stack's outputs. Every check reads a signed
// statement through the real cosign (evidence/signing/cosign.ts), with the key (or keyless
// identity) the promoting stack trusts:
//
//   - the signature on the manifest list's digest;
//   - the gates attestation on that digest: passed, naming that list, exactly the platform digests
//     the list holds, this repository, nothing left unrun, and every measured value judged again
//     against the promoting stack's own gates (the same rules as components/promotion.ts
//     `checkBinding`, on the attested predicate instead of a stack output);
//   - an SPDX SBOM attestation on every platform digest in the list;
//   - SLSA provenance on the list and on every platform digest, naming the commit being released.
//
// Every missing or bad piece is collected and reported at once, each naming the piece and the
// digest. No Pulumi here: the CLI (`npm run evidence -- verify`) and the promoting stack's dynamic
// resource (components/promotion.ts, through components/engineProcess.ts) both call verifyRelease.
import { execTool, lastLines, requireTool } from "./exec";
import { CHECK_NAMES, type GatesConfig } from "./gates";
import {
  type RegistryAuth,
  indexPlatforms,
  isLoopbackRegistry,
  probeInsecure,
  registryOf,
  withDockerConfig,
} from "./oci";
import {
  type CosignOptions,
  type InTotoStatement,
  type Trust,
  verify,
  verifyAttestation,
} from "./signing/cosign";
import { COSIGN_SIGN_PREDICATE_TYPE, PREDICATE_TYPES } from "./signing/predicates";

/** What signatures must verify with: a PEM public key (key and kms modes) or a keyless identity. */
export type VerifyTrust = { publicKeyPem: string } | { identity: string; issuer: string };

export interface VerifyRequest {
  /** Repository without tag or digest, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  /** The manifest list being promoted, `sha256:…`. */
  digest: string;
  /** What the source stack says the list holds (its `platformDigests` export); compared with the
   *  list the registry serves. Unset = not compared. */
  platformDigests?: Record<string, string>;
  /** The commit being released (40 hex): the provenance must name it. */
  expectedRevision: string;
  /** This stack's gates: the attested measurements are judged again against them. */
  gates: GatesConfig;
  trust: VerifyTrust;
  /** Require (and check) transparency-log inclusion. Keyless needs it. @default false */
  tlog?: boolean;
  registryUsername?: string;
  /** From the environment only (IMAGE_FACTORY_REGISTRY_TOKEN). */
  registryToken?: string;
}

export interface VerifyReport {
  /** `<imageName>@<digest>`. */
  imageRef: string;
  digest: string;
  /** Platform → digest, as the manifest list in the registry holds them. */
  platformDigests: Record<string, string>;
  /** Digest → the signature's referrer manifest (`<repo>@sha256:…`) found on it. */
  signatures: Record<string, string>;
  /** From the verified gates attestation. */
  gates: { passed: boolean; sourceRevision: string; evaluatedAt: string; checks: number };
  /** Digest → commit and builder its verified provenance names. */
  provenance: Record<string, { commit: string; builder: string }>;
  /** Platform → SPDX document name and package count of its verified SBOM attestation. */
  sboms: Record<string, { name: string; packages: number }>;
  /** What was checked, in words, for the log. */
  checked: string[];
  seconds: number;
}

/** A refusal: every problem found, each naming the piece (signature, gates attestation, SBOM
 *  attestation, provenance) and the digest. */
export class VerificationError extends Error {
  constructor(
    public readonly imageRef: string,
    public readonly problems: string[],
  ) {
    super(
      `refusing to promote ${imageRef}: ${problems.length} problem${problems.length === 1 ? "" : "s"} with its signature and attestations:\n  - ${problems.join("\n  - ")}`,
    );
    this.name = "VerificationError";
  }
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const COMMIT = /^[0-9a-f]{40}$/;

const short = (d: string): string => (DIGEST.test(d) ? `${d.slice(0, 19)}…` : JSON.stringify(d));
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

// ------------------------------------------------------------------------------------------------
// Pure judges of decoded predicates (table-tested in test/mocks/promotion.test.ts)
// ------------------------------------------------------------------------------------------------

/** How each numeric check reads its limit, by check name (the gates predicate carries no config
 *  key): what promotion re-judges with this stack's gates. */
export const CHECK_LIMITS: Record<
  string,
  { field: Exclude<keyof GatesConfig, "waive">; direction: "atMost" | "atLeast" }
> = {
  imageSize: { field: "maxImageSizeMb", direction: "atMost" },
  efficiency: { field: "minEfficiency", direction: "atLeast" },
  wasted: { field: "maxWastedMb", direction: "atMost" },
  criticalVulnerabilities: { field: "maxCritical", direction: "atMost" },
  coverage: { field: "minCoverage", direction: "atLeast" },
  branchCoverage: { field: "minBranchCoverage", direction: "atLeast" },
  functionCoverage: { field: "minFunctionCoverage", direction: "atLeast" },
};

/** Checks measured once per platform (named `<check>[<platform>]`). */
export const PER_PLATFORM_CHECKS = [
  "imageSize",
  "efficiency",
  "wasted",
  "criticalVulnerabilities",
  "imageSecrets",
];

export interface GatesExpectation {
  /** The manifest list being promoted. */
  digest: string;
  /** Platform → digest the list holds. */
  platformDigests: Record<string, string>;
  /** This repository. */
  repository: string;
  /** This stack's gates and waivers. */
  gates: GatesConfig;
}

/**
 * Why the verified gates predicates on `expect.digest` cannot vouch for promoting it ([] when they
 * can). Every verified gates attestation on the digest must vouch: one that judged other bytes is
 * a refusal even beside a good one.
 */
export function gatesProblems(predicates: unknown[], expect: GatesExpectation): string[] {
  const at = `gates attestation on ${expect.digest}`;
  if (predicates.length === 0) return [`${at}: none verified`];
  const problems: string[] = [];
  for (const raw of predicates) {
    if (!isRecord(raw)) {
      problems.push(`${at}: the predicate is not an object`);
      continue;
    }
    const p = raw;
    if (p.indexDigest !== expect.digest) {
      problems.push(
        `${at} names indexDigest ${JSON.stringify(p.indexDigest)}: the gates judged another manifest list`,
      );
      continue;
    }
    if (p.repository !== expect.repository) {
      problems.push(
        `${at} names repository ${JSON.stringify(p.repository)}, not ${JSON.stringify(expect.repository)}`,
      );
    }
    const judged = isRecord(p.platformDigests) ? p.platformDigests : {};
    const platforms = [
      ...new Set([...Object.keys(judged), ...Object.keys(expect.platformDigests)]),
    ].sort();
    if (Object.keys(judged).length === 0)
      problems.push(`${at} names no platformDigests: nothing binds the gates to platform images`);
    for (const pl of platforms) {
      if (judged[pl] !== expect.platformDigests[pl]) {
        problems.push(
          `${at}: platform ${pl} was judged at ${JSON.stringify(judged[pl] ?? null)}, but the manifest list holds ${JSON.stringify(expect.platformDigests[pl] ?? null)}`,
        );
      }
    }
    const checks = Array.isArray(p.checks) ? (p.checks as unknown[]).filter(isRecord) : [];
    if (p.passed !== true) {
      const failed = checks
        .filter((c) => c.status !== "passed" && c.status !== "waived")
        .map(
          (c) =>
            `${String(c.name)} (${String(c.status)}${c.reason ? `: ${String(c.reason)}` : ""})`,
        );
      problems.push(
        `${at} says passed = ${JSON.stringify(p.passed)}${failed.length > 0 ? `; failed: ${failed.join("; ")}` : ""}`,
      );
    }
    if (!Array.isArray(p.notRun) || p.notRun.length > 0) {
      problems.push(
        `${at} lists checks that did not run: notRun = ${JSON.stringify(p.notRun ?? null)}`,
      );
    }
    // Every check the factory makes must be there: results without, say, the vulnerability check
    // cannot be judged again here.
    const names = new Set(checks.map((c) => String(c.name)));
    for (const base of CHECK_NAMES) {
      const wanted = PER_PLATFORM_CHECKS.includes(base)
        ? Object.keys(expect.platformDigests).map((pl) => `${base}[${pl}]`)
        : [base];
      for (const w of wanted) if (!names.has(w)) problems.push(`${at} has no ${w} check`);
    }
    for (const c of checks) {
      const name = String(c.name);
      const base = name.replace(/\[[^\]]+\]$/, "");
      if (c.status === "waived") {
        const here = Object.keys(expect.gates.waive).find(
          (w) => name === w || name.startsWith(`${w}[`),
        );
        if (here === undefined) {
          problems.push(
            `${at}: check ${name} was waived by the source stack (${JSON.stringify(c.reason ?? "")}) but this stack does not waive it (gates.waive)`,
          );
        }
        continue;
      }
      if (c.status !== "passed") continue; // already named through `passed`
      const rule = CHECK_LIMITS[base];
      if (rule === undefined || typeof c.measured !== "number") continue;
      const limit = expect.gates[rule.field];
      const ok = rule.direction === "atMost" ? c.measured <= limit : c.measured >= limit;
      if (!ok) {
        problems.push(
          `${at}: check ${name} measured ${c.measured}${c.unit ? ` ${String(c.unit)}` : ""}, which fails this stack's gates.${rule.field} = ${limit}`,
        );
      }
    }
  }
  return problems;
}

/** Why the verified provenance on `digest` does not show the build of `commit` ([] when it does). */
export function provenanceProblems(
  digest: string,
  predicates: unknown[],
  commit: string,
): string[] {
  const at = `provenance (${PREDICATE_TYPES.slsaprovenance1}) on ${digest}`;
  if (predicates.length === 0) return [`${at}: none verified`];
  const problems: string[] = [];
  for (const raw of predicates) {
    const def = isRecord(raw) && isRecord(raw.buildDefinition) ? raw.buildDefinition : undefined;
    const ext = def !== undefined && isRecord(def.externalParameters) ? def.externalParameters : {};
    const deps =
      def !== undefined && Array.isArray(def.resolvedDependencies) ? def.resolvedDependencies : [];
    const gitCommits = deps
      .filter(isRecord)
      .map((d) => (isRecord(d.digest) ? d.digest.gitCommit : undefined))
      .filter((c): c is string => typeof c === "string");
    if (ext.commit !== commit) {
      problems.push(
        `${at} names source commit ${JSON.stringify(ext.commit ?? null)}, but this release is ${commit}: the image was built from another commit`,
      );
    } else if (!gitCommits.includes(commit)) {
      problems.push(
        `${at}: resolvedDependencies name git commit(s) ${JSON.stringify(gitCommits)}, not ${commit}`,
      );
    }
  }
  return problems;
}

/** Why the verified SBOM attestations on a platform digest are not an SPDX SBOM ([] when one is). */
export function sbomProblems(platform: string, digest: string, predicates: unknown[]): string[] {
  const at = `SBOM attestation (${PREDICATE_TYPES.spdxjson}) for ${platform} on ${digest}`;
  if (predicates.length === 0) return [`${at}: none verified`];
  const good = predicates.some(
    (p) =>
      isRecord(p) &&
      typeof p.spdxVersion === "string" &&
      p.spdxVersion.startsWith("SPDX-") &&
      Array.isArray(p.packages),
  );
  return good ? [] : [`${at}: the predicate is not an SPDX document (no spdxVersion and packages)`];
}

// ------------------------------------------------------------------------------------------------
// Registry side
// ------------------------------------------------------------------------------------------------

/** cosign's options for this registry and trust. The CA bundle comes from SSL_CERT_FILE. */
export function cosignOptions(auth: RegistryAuth, tlog: boolean): CosignOptions {
  return {
    registry:
      auth.username !== undefined && auth.password !== undefined
        ? { address: auth.registry, username: auth.username, password: auth.password }
        : undefined,
    tlog,
  };
}

export function trustOf(t: VerifyTrust): Trust {
  return "identity" in t
    ? { identity: t.identity, issuer: t.issuer }
    : { publicKeyPem: t.publicKeyPem };
}

export interface Referrer {
  predicateType: string;
  /** The bundle's manifest, `<repo>@sha256:…`. */
  ref: string;
}

/** The Sigstore bundles `cosign tree` lists for an image (OCI referrers, or the fallback tag on a
 *  registry without the referrers API). Nothing is verified here: this is what exists. */
export async function listReferrers(imageRef: string, auth: RegistryAuth): Promise<Referrer[]> {
  const bin = requireTool("cosign");
  return withDockerConfig(auth, async (env) => {
    const r = await execTool(bin, ["tree", imageRef], {
      env,
      timeoutMs: 120_000,
      redact: [auth.password ?? ""],
    });
    if (r.code !== 0)
      throw new Error(`cosign tree ${imageRef} failed (exit ${r.code}): ${lastLines(r.stderr, 4)}`);
    const out: Referrer[] = [];
    for (const line of r.stdout.split("\n")) {
      const m = /\s(\S+) artifacts via OCI referrer: (\S+@sha256:[0-9a-f]{64})/.exec(line);
      if (m) out.push({ predicateType: m[1], ref: m[2] });
    }
    return out;
  });
}

/** The last plain signature (`https://sigstore.dev/cosign/sign/v1`) bundle listed on an image. */
export function signatureRefOf(referrers: Referrer[]): string | undefined {
  return referrers.filter((r) => r.predicateType === COSIGN_SIGN_PREDICATE_TYPE).pop()?.ref;
}

/** Registry access for the image's registry; plain HTTP only for a loopback registry that says so. */
export async function registryAuth(
  imageName: string,
  username?: string,
  password?: string,
): Promise<RegistryAuth> {
  const registry = registryOf(imageName);
  return {
    registry,
    username,
    password,
    insecure: isLoopbackRegistry(registry) ? await probeInsecure(registry) : false,
  };
}

/** Runs `fn` over `items`, at most `limit` at a time, results in order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));
/** cosign's message up to its own log lines (the first line names what is missing or wrong). */
const firstLine = (e: unknown): string => message(e).split("\n")[0];

/** Verifies everything promotion needs on `<imageName>@<digest>`; throws a VerificationError
 *  naming every missing or bad piece. */
export async function verifyRelease(req: VerifyRequest): Promise<VerifyReport> {
  const started = Date.now();
  if (!DIGEST.test(req.digest))
    throw new Error(`verify: digest must be sha256:<64 hex>, got ${JSON.stringify(req.digest)}`);
  if (!COMMIT.test(req.expectedRevision)) {
    throw new Error(
      `verify: expectedRevision must be a full commit (40 hex), got ${JSON.stringify(req.expectedRevision)}`,
    );
  }
  const imageRef = `${req.imageName}@${req.digest}`;
  const auth = await registryAuth(req.imageName, req.registryUsername, req.registryToken);
  const opts = cosignOptions(auth, req.tlog ?? false);
  const trust = trustOf(req.trust);
  const problems: string[] = [];
  const checked: string[] = [];

  let listed: Record<string, string>;
  try {
    listed = await indexPlatforms(auth, imageRef);
  } catch (e) {
    throw new VerificationError(imageRef, [
      `manifest list ${req.digest}: cannot be read from the registry: ${firstLine(e)}`,
    ]);
  }
  if (Object.keys(listed).length === 0)
    problems.push(`manifest list ${req.digest} holds no platform image`);
  if (req.platformDigests !== undefined) {
    for (const p of [
      ...new Set([...Object.keys(listed), ...Object.keys(req.platformDigests)]),
    ].sort()) {
      if (listed[p] !== req.platformDigests[p]) {
        problems.push(
          `platform digests: the source stack exports ${p} = ${JSON.stringify(req.platformDigests[p] ?? null)}, but the manifest list ${short(req.digest)} holds ${JSON.stringify(listed[p] ?? null)}`,
        );
      }
    }
  }
  checked.push(
    `manifest list ${req.digest}: ${Object.entries(listed)
      .map(([p, d]) => `${p}=${short(d)}`)
      .join(", ")}`,
  );

  const report: VerifyReport = {
    imageRef,
    digest: req.digest,
    platformDigests: listed,
    signatures: {},
    gates: { passed: false, sourceRevision: "", evaluatedAt: "", checks: 0 },
    provenance: {},
    sboms: {},
    checked,
    seconds: 0,
  };
  const platforms = Object.keys(listed).sort();
  const predicatesOf = (sts: InTotoStatement[]): unknown[] => sts.map((s) => s.predicate);

  type Task = () => Promise<void>;
  const tasks: Task[] = [
    async () => {
      try {
        await verify(imageRef, trust, opts);
        checked.push(`signature on ${req.digest}`);
        const sig = signatureRefOf(await listReferrers(imageRef, auth));
        if (sig !== undefined) report.signatures[req.digest] = sig;
      } catch (e) {
        problems.push(`signature on ${req.digest}: ${firstLine(e)}`);
      }
    },
    async () => {
      try {
        const v = await verifyAttestation(imageRef, "gates", trust, opts);
        const preds = predicatesOf(v.statements);
        const found = gatesProblems(preds, {
          digest: req.digest,
          platformDigests: listed,
          repository: req.imageName,
          gates: req.gates,
        });
        problems.push(...found);
        const mine = preds.filter(isRecord).find((p) => p.indexDigest === req.digest);
        if (found.length === 0 && mine !== undefined) {
          report.gates = {
            passed: mine.passed === true,
            sourceRevision: String(mine.sourceRevision ?? ""),
            evaluatedAt: String(mine.evaluatedAt ?? ""),
            checks: Array.isArray(mine.checks) ? mine.checks.length : 0,
          };
          checked.push(
            `gates attestation on ${req.digest} (passed, ${report.gates.checks} checks judged again with this stack's gates)`,
          );
        }
      } catch (e) {
        problems.push(
          `gates attestation (${PREDICATE_TYPES.gates}) on ${req.digest}: ${firstLine(e)}`,
        );
      }
    },
    ...[req.digest, ...platforms.map((p) => listed[p])].map((d): Task => async () => {
      try {
        const v = await verifyAttestation(`${req.imageName}@${d}`, "slsaprovenance1", trust, opts);
        const preds = predicatesOf(v.statements);
        const found = provenanceProblems(d, preds, req.expectedRevision);
        problems.push(...found);
        if (found.length === 0) {
          const p = preds[0] as { runDetails?: { builder?: { id?: string } } };
          report.provenance[d] = {
            commit: req.expectedRevision,
            builder: String(p.runDetails?.builder?.id ?? ""),
          };
          checked.push(`provenance on ${d} (commit ${req.expectedRevision})`);
        }
      } catch (e) {
        problems.push(`provenance (${PREDICATE_TYPES.slsaprovenance1}) on ${d}: ${firstLine(e)}`);
      }
    }),
    ...platforms.map((p): Task => async () => {
      const d = listed[p];
      try {
        const v = await verifyAttestation(`${req.imageName}@${d}`, "spdxjson", trust, opts);
        const preds = predicatesOf(v.statements);
        const found = sbomProblems(p, d, preds);
        problems.push(...found);
        if (found.length === 0) {
          const doc = preds.find(isRecord) as { name?: string; packages?: unknown[] };
          report.sboms[p] = { name: String(doc.name ?? ""), packages: doc.packages?.length ?? 0 };
          checked.push(`SBOM attestation for ${p} on ${d} (${report.sboms[p].packages} packages)`);
        }
      } catch (e) {
        problems.push(
          `SBOM attestation (${PREDICATE_TYPES.spdxjson}) for ${p} on ${d}: ${firstLine(e)}`,
        );
      }
    }),
  ];
  // Two at a time: cosign is mostly waiting on the registry, and this machine has two cores.
  await mapLimit(tasks, 2, (t) => t());
  if (problems.length > 0) throw new VerificationError(imageRef, problems);
  report.seconds = (Date.now() - started) / 1000;
  return report;
}
