// Quality gates: what the engine judges and what a failed judgement says. The config (its shape,
// defaults and validation) is in gatesConfig.ts, the measurements the scanners hand over in
// measurements.ts, the checks and their evaluation in gateChecks.ts; all pure, so every rule is
// table-tested. This module binds results to what they judged and words failures; callers import
// the whole vocabulary from here.
import type { GateCheck, GateResults } from "./gateChecks";

export * from "./gatesConfig";
export * from "./measurements";
export * from "./gateChecks";

/** What was judged: results are bound to these bytes and this source. */
export interface JudgedSubject {
  /** Repository, e.g. `ghcr.io/acme/shop-api`. */
  imageName: string;
  /** Platform → manifest digest the scanners read. */
  platformDigests: Record<string, string>;
  /** Commit the images were built from. */
  sourceRevision: string;
  /** Digest of the manifest list, once published (the publish step fills it in). */
  digest?: string;
}

/** Gate results bound to what they judged (what the stack exports and the gates attestation carries). */
export type BoundGateResults = GateResults & JudgedSubject;

function failureLine(c: GateCheck): string {
  const value =
    c.measured === null ? "not measured" : `measured ${c.measured}${c.unit ? ` ${c.unit}` : ""}`;
  return `gate ${c.gate} failed: ${value}, limit ${c.limit}${c.unit ? ` ${c.unit}` : ""} — ${c.detail}`;
}

/** What a user reads when gates fail: each failing gate with its measured value and limit, what
 *  was judged, and that nothing was published. */
export function formatGateFailures(results: GateResults & Partial<JudgedSubject>): string {
  const failures = results.checks.filter((c) => c.status === "failed" || c.status === "not-run");
  const subject =
    results.platformDigests !== undefined
      ? ` on ${Object.entries(results.platformDigests)
          .map(([p, d]) => `${p}=${d.slice(0, 19)}`)
          .join(", ")}`
      : "";
  return (
    `${failures.length} quality gate${failures.length === 1 ? "" : "s"} failed${subject}:\n  ${failures.map(failureLine).join("\n  ")}\n` +
    `No tag was moved: the images stay pushed by digest only. Fix the cause and run \`pulumi up\` again` +
    (Object.keys(results.waived ?? {}).length > 0
      ? ` (waived: ${Object.keys(results.waived).join(", ")})`
      : "") +
    "."
  );
}

/** A failed gate: the message names each failing gate, its measured value and its limit. */
export class GateError extends Error {
  readonly failures: GateCheck[];
  constructor(failures: GateCheck[]) {
    const message = `${failures.length} quality gate${failures.length === 1 ? "" : "s"} failed:\n  ${failures.map(failureLine).join("\n  ")}`;
    super(message);
    this.name = "GateError";
    this.failures = failures;
  }
}

/** Throws a GateError when any gate failed; returns the results otherwise. */
export function assertGates(results: GateResults): GateResults {
  if (!results.passed) {
    throw new GateError(
      results.checks.filter((c) => c.status === "failed" || c.status === "not-run"),
    );
  }
  return results;
}
