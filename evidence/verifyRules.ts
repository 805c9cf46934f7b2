// The pure rules of promotion's verification: what a gates, SBOM or provenance predicate must say
// about the digests and the commit being promoted. evidence/verify.ts reads the predicates through
// cosign and applies these; each problem is a sentence naming the piece and the digest.
import { CHECK_NAMES, type GatesConfig } from "./gates";
import { PREDICATE_TYPES } from "./signing/predicates";

export { DIGEST } from "./reference";
import { DIGEST } from "./reference";
export const COMMIT = /^[0-9a-f]{40}$/;

export const short = (d: string): string =>
  DIGEST.test(d) ? `${d.slice(0, 19)}…` : JSON.stringify(d);
export const isRecord = (v: unknown): v is Record<string, unknown> =>
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
