// Gate results as the stacks export them (`gateResults`), normalised into a GateSummary. Two
// spellings are read: the gate evaluator's (`evaluateGates`, components/gates.ts at the time of writing:
// `{ passed, checks: [{ gate, status, measured, limit, unit, detail, passed }], failed, notRun }`)
// and the review's (`{ passed, checks: [{ name, status, measured?, limit?, reason? }], notRun,
// waived? }`, status also "waived"). Pure; errors name `what` and the offending value.
import type { GateCheckSummary, GateStatus, GateSummary } from "./model";

const STATUSES: readonly GateStatus[] = ["passed", "failed", "not-run", "waived"];

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

/** Parses a `gateResults` value. A check named in `waived` that did not pass counts as waived
 *  (with that reason); a name in `waived` that matches no check is added as a waived check. */
export function parseGateResults(raw: unknown, what = "gateResults"): GateSummary {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${what} must be an object { passed, checks }, got ${show(raw)}`);
  }
  const r = raw as Record<string, unknown>;
  if (typeof r.passed !== "boolean") {
    throw new Error(`${what}.passed must be true or false, got ${show(r.passed)}`);
  }
  if (r.checks !== undefined && !Array.isArray(r.checks)) {
    throw new Error(`${what}.checks must be an array, got ${show(r.checks)}`);
  }
  const waived: Record<string, string> = {};
  if (r.waived !== undefined && r.waived !== null) {
    if (typeof r.waived !== "object" || Array.isArray(r.waived)) {
      throw new Error(`${what}.waived must map check names to reasons, got ${show(r.waived)}`);
    }
    for (const [name, reason] of Object.entries(r.waived as Record<string, unknown>)) {
      if (typeof reason !== "string") {
        throw new Error(`${what}.waived.${name} must be a reason (string), got ${show(reason)}`);
      }
      waived[name] = reason;
    }
  }

  const checks: GateCheckSummary[] = [];
  ((r.checks as unknown[] | undefined) ?? []).forEach((c, i) => {
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
      throw new Error(`${what}.checks[${i}] must be an object, got ${show(c)}`);
    }
    const check = c as Record<string, unknown>;
    const name = check.name ?? check.gate;
    if (typeof name !== "string" || name === "") {
      throw new Error(`${what}.checks[${i}] has no name (or gate), got ${show(c)}`);
    }
    let status: GateStatus;
    if (check.status === undefined && typeof check.passed === "boolean") {
      status = check.passed ? "passed" : "failed";
    } else if (STATUSES.includes(check.status as GateStatus)) {
      status = check.status as GateStatus;
    } else {
      throw new Error(
        `${what}.checks[${i}].status must be one of ${STATUSES.join(", ")}, got ${show(check.status)}`,
      );
    }
    if (status !== "passed" && name in waived) status = "waived";
    const out: GateCheckSummary = { name, status };
    if (typeof check.measured === "number" && Number.isFinite(check.measured))
      out.measured = check.measured;
    if (typeof check.limit === "number" && Number.isFinite(check.limit)) out.limit = check.limit;
    if (typeof check.unit === "string" && check.unit !== "") out.unit = check.unit;
    const reason =
      typeof check.reason === "string" && check.reason !== ""
        ? check.reason
        : status === "waived"
          ? waived[name]
          : status === "not-run" &&
              typeof check.detail === "string" &&
              check.detail.startsWith("not run: ")
            ? check.detail.slice("not run: ".length)
            : undefined;
    if (reason !== undefined && reason !== "") out.reason = reason;
    checks.push(out);
  });
  for (const [name, reason] of Object.entries(waived)) {
    if (!checks.some((c) => c.name === name)) checks.push({ name, status: "waived", reason });
  }
  for (const c of checks) {
    if (c.status === "waived" && waived[c.name] === undefined) waived[c.name] = c.reason ?? "";
  }

  if (r.notRun !== undefined && !Array.isArray(r.notRun)) {
    throw new Error(`${what}.notRun must be an array of check names, got ${show(r.notRun)}`);
  }
  const notRun: string[] = [];
  const addNotRun = (name: string): void => {
    if (!notRun.includes(name) && waived[name] === undefined) notRun.push(name);
  };
  for (const c of checks) if (c.status === "not-run") addNotRun(c.name);
  for (const n of (r.notRun as unknown[] | undefined) ?? []) {
    if (typeof n !== "string") {
      throw new Error(`${what}.notRun must be an array of check names, got ${show(r.notRun)}`);
    }
    addNotRun(n);
  }

  const summary: GateSummary = { passed: r.passed, checks, notRun };
  if (Object.keys(waived).length > 0) summary.waived = waived;
  return summary;
}

/** Names of the checks with a status, in the results' order. */
export function checksWithStatus(summary: GateSummary, status: GateStatus): string[] {
  return summary.checks.filter((c) => c.status === status).map((c) => c.name);
}

/** The checks that concern one platform (`name[<platform>]`), named without the suffix. */
export function platformChecks(summary: GateSummary, platform: string): GateSummary {
  const suffix = `[${platform}]`;
  const strip = (name: string): string => name.slice(0, -suffix.length);
  const checks = summary.checks
    .filter((c) => c.name.endsWith(suffix))
    .map((c) => ({ ...c, name: strip(c.name) }));
  const out: GateSummary = {
    passed: checks.every((c) => c.status !== "failed"),
    checks,
    notRun: summary.notRun.filter((n) => n.endsWith(suffix)).map(strip),
  };
  const waived = Object.entries(summary.waived ?? {}).filter(([n]) => n.endsWith(suffix));
  if (waived.length > 0) out.waived = Object.fromEntries(waived.map(([n, r]) => [strip(n), r]));
  return out;
}

/** The checks that concern no platform (`coverage`, `secrets`, …). */
export function sharedChecks(summary: GateSummary): GateSummary {
  const isShared = (name: string): boolean => !/\[[^\]]+\]$/.test(name);
  const checks = summary.checks.filter((c) => isShared(c.name));
  const out: GateSummary = {
    passed: checks.every((c) => c.status !== "failed"),
    checks,
    notRun: summary.notRun.filter(isShared),
  };
  const waived = Object.entries(summary.waived ?? {}).filter(([n]) => isShared(n));
  if (waived.length > 0) out.waived = Object.fromEntries(waived);
  return out;
}

export interface GateChange {
  name: string;
  /** Absent for a check the current results do not have. */
  before?: GateStatus;
  /** Absent for a check the candidate results no longer have. */
  after?: GateStatus;
}

/** Checks whose status differs between the current and the candidate results, in the candidate's
 *  order, then the checks that disappeared. Without current results, only the candidate checks
 *  that did not pass are listed (a new stack has nothing to compare with). */
export function gateChanges(
  current: GateSummary | undefined,
  candidate: GateSummary,
): GateChange[] {
  const changes: GateChange[] = [];
  for (const c of candidate.checks) {
    const before = current?.checks.find((b) => b.name === c.name)?.status;
    if (current === undefined ? c.status !== "passed" : before !== c.status) {
      changes.push(
        before === undefined
          ? { name: c.name, after: c.status }
          : { name: c.name, before, after: c.status },
      );
    }
  }
  for (const b of current?.checks ?? []) {
    if (!candidate.checks.some((c) => c.name === b.name))
      changes.push({ name: b.name, before: b.status });
  }
  return changes;
}
