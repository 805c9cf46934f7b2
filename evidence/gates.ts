// Quality gates: pure validation of the `gates` config and pure evaluation of what the scanners
// measured. No I/O here, so every rule is table-tested; evidence/run.ts feeds it.

export interface GatesConfig {
  /** @default 500 */
  maxImageSizeMb: number;
  /** Line coverage of app/ in percent. @default 80 */
  minCoverage: number;
  /** Branch coverage of app/ in percent. @default 80 */
  minBranchCoverage: number;
  /** Function coverage of app/ in percent. @default 80 */
  minFunctionCoverage: number;
  /** @default 0 */
  maxCritical: number;
  /** Dive efficiency lower bound, 0..1. @default 0.95 */
  minEfficiency: number;
  /** Dive wasted bytes upper bound in MB. @default 20 */
  maxWastedMb: number;
  /** Checks a stack deliberately does without, each with its reason (shown wherever results are). @default {} */
  waive: Record<string, string>;
}

/** Defaults documented in docs/contracts.md. */
export const DEFAULT_GATES: GatesConfig = {
  maxImageSizeMb: 500,
  minCoverage: 80,
  minBranchCoverage: 80,
  minFunctionCoverage: 80,
  maxCritical: 0,
  minEfficiency: 0.95,
  maxWastedMb: 20,
  waive: {},
};

/** Every check the evaluation emits; per-platform ones carry `[<platform>]`. A waiver names one
 *  of these, with or without the platform. */
export const CHECK_NAMES = [
  "imageSize",
  "efficiency",
  "wasted",
  "criticalVulnerabilities",
  "imageSecrets",
  "coverage",
  "branchCoverage",
  "functionCoverage",
  "dockerfileLint",
  "misconfigurations",
  "secrets",
] as const;

interface FieldRule {
  min: number;
  max: number;
  integer: boolean;
  meaning: string;
}

type NumericGate = Exclude<keyof GatesConfig, "waive">;

const FIELD_RULES: Record<NumericGate, FieldRule> = {
  // 0 MB cannot hold any image; an upper bound keeps a typo (5000000) from disabling the gate.
  maxImageSizeMb: {
    min: 1,
    max: 100_000,
    integer: false,
    meaning: "a size in MB between 1 and 100000",
  },
  minCoverage: { min: 0, max: 100, integer: false, meaning: "a percentage between 0 and 100" },
  minBranchCoverage: {
    min: 0,
    max: 100,
    integer: false,
    meaning: "a percentage between 0 and 100",
  },
  minFunctionCoverage: {
    min: 0,
    max: 100,
    integer: false,
    meaning: "a percentage between 0 and 100",
  },
  maxCritical: {
    min: 0,
    max: 1_000_000,
    integer: true,
    meaning: "a whole number of findings >= 0",
  },
  minEfficiency: {
    min: 0,
    max: 1,
    integer: false,
    meaning: "a ratio between 0 and 1 (Dive efficiency)",
  },
  maxWastedMb: { min: 0, max: 100_000, integer: false, meaning: "a size in MB >= 0" },
};

/** Checks the `gates` config object (partial: missing fields take DEFAULT_GATES) and returns the
 *  complete, validated gates. Errors name `gates.<field>` and the offending value. */
export function validateGates(raw: unknown, key = "gates"): GatesConfig {
  if (raw === undefined || raw === null) {
    return { ...DEFAULT_GATES, waive: {} };
  }
  const known = [...Object.keys(FIELD_RULES), "waive"];
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(
      `${key} must be an object with ${known.join(", ")}; got ${JSON.stringify(raw)}`,
    );
  }
  const input = raw as Record<string, unknown>;
  for (const field of Object.keys(input)) {
    if (!known.includes(field)) {
      throw new Error(
        `${key}.${field} is not a known gate (known: ${known.join(", ")}); got ${JSON.stringify(input[field])}`,
      );
    }
  }
  const out: GatesConfig = {
    ...DEFAULT_GATES,
    waive: validateWaivers(input.waive, `${key}.waive`),
  };
  for (const field of Object.keys(FIELD_RULES) as NumericGate[]) {
    const value = input[field];
    if (value === undefined) {
      continue;
    }
    const rule = FIELD_RULES[field];
    // Pulumi config values set with `pulumi config set` arrive as strings; accept numeric strings.
    const num = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
    if (typeof num !== "number" || !Number.isFinite(num)) {
      throw new Error(`${key}.${field} must be ${rule.meaning}; got ${JSON.stringify(value)}`);
    }
    if (num < rule.min || num > rule.max || (rule.integer && !Number.isInteger(num))) {
      throw new Error(`${key}.${field} must be ${rule.meaning}; got ${JSON.stringify(value)}`);
    }
    out[field] = num;
  }
  return out;
}

/** `waive: { <check>: "<reason>" }`: the check is a known name (optionally `name[<platform>]`) and
 *  the reason says why in words, so a waiver is never an accident. */
export function validateWaivers(raw: unknown, key = "gates.waive"): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(
      `${key} must map a check name to the reason it is waived; got ${JSON.stringify(raw)}`,
    );
  }
  const out: Record<string, string> = {};
  for (const [check, reason] of Object.entries(raw as Record<string, unknown>)) {
    const base = check.replace(/\[[^\]]+\]$/, "");
    if (!(CHECK_NAMES as readonly string[]).includes(base)) {
      throw new Error(
        `${key}.${check} is not a known check (known: ${CHECK_NAMES.join(", ")}); got ${JSON.stringify(reason)}`,
      );
    }
    if (typeof reason !== "string" || reason.trim().length < 10) {
      throw new Error(
        `${key}.${check} needs a reason of at least 10 characters saying why the check is waived; got ${JSON.stringify(reason)}`,
      );
    }
    out[check] = reason.trim();
  }
  return out;
}

/** A value a scanner measured, or the reason it could not be measured. */
export type Measured<T> = { value: T } | { notRun: string };

export function measured<T>(value: T): Measured<T> {
  return { value };
}
export function notRun<T>(reason: string): Measured<T> {
  return { notRun: reason };
}

export interface Finding {
  /** Rule id, e.g. `DL3002`, `DS002`, `aws-access-key-id`. */
  id: string;
  severity: string;
  message: string;
  /** File (and line) or image layer the finding points at. */
  where?: string;
}

export interface PlatformMeasurements {
  /** Uncompressed image size in bytes, as the engine reports it after pulling by digest. */
  sizeBytes: Measured<number>;
  /** Dive efficiency 0..1. */
  efficiency: Measured<number>;
  /** Dive wasted bytes. */
  wastedBytes: Measured<number>;
  /** Trivy CRITICAL vulnerabilities in the image. */
  criticalVulnerabilities: Measured<number>;
  /** Trivy secrets found in the image (layers and config). */
  imageSecrets: Measured<Finding[]>;
}

export interface CoverageMeasurement {
  lines: number;
  branches: number;
  functions: number;
}

export interface Measurements {
  platforms: Record<string, PlatformMeasurements>;
  /** Line, branch and function coverage percent of app/, measured in the build (Dockerfile `coverage` stage). */
  coverage: Measured<CoverageMeasurement>;
  /** Hadolint findings at error or warning level on the Dockerfile. */
  lint: Measured<Finding[]>;
  /** Trivy misconfigurations (HIGH, CRITICAL) on the Dockerfile. */
  misconfigurations: Measured<Finding[]>;
  /** Trivy secrets in the build context (Dockerfile and sources). */
  secrets: Measured<Finding[]>;
}

export type CheckStatus = "passed" | "failed" | "not-run" | "waived";

export interface GateCheck {
  /** e.g. `imageSize[linux/amd64]`, `coverage`, `secrets`. */
  gate: string;
  /** The config key that sets the limit, or a fixed rule (`fixed: no secrets`). */
  configKey: string;
  /** Measured value in the limit's unit; null when the check could not run. */
  measured: number | null;
  limit: number;
  unit: string;
  status: CheckStatus;
  /** Only `status === "passed"` counts as passed; a check that did not run never does. */
  passed: boolean;
  detail: string;
  /** Set when the stack waived this check (`gates.waive`). */
  waiver?: string;
}

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

export interface GateResults {
  /** No check failed. Checks that did not run are listed in `notRun`, never counted as passed;
   *  a gate named in `required` that did not run fails instead. */
  passed: boolean;
  checks: GateCheck[];
  failed: string[];
  /** Checks that did not run and were not waived. Every check is required, so this is empty
   *  whenever `passed` is true. */
  notRun: string[];
  /** Waived check → reason (from `gates.waive`). */
  waived: Record<string, string>;
  /** Tool → version that measured (syft, trivy, trivyDb, hadolint, dive, coverage). */
  tools: Record<string, string>;
  /** The limits the checks were judged against, so a reader (promotion) can re-check them. */
  gates: GatesConfig;
}

/** Gate results bound to what they judged (what the stack exports and the gates attestation carries). */
export type BoundGateResults = GateResults & JudgedSubject;

export interface EvaluateOptions {
  /** Gate names (or prefixes such as `criticalVulnerabilities`) that must run: not-run → failed.
   *  @default every check */
  required?: string[];
  tools?: Record<string, string>;
}

const MB = 1024 * 1024;

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function describeFindings(findings: Finding[], max = 5): string {
  const shown = findings
    .slice(0, max)
    .map((f) => `${f.id} (${f.severity})${f.where ? ` at ${f.where}` : ""}: ${f.message}`);
  const more = findings.length > max ? `; and ${findings.length - max} more` : "";
  return shown.join("; ") + more;
}

type Direction = "atMost" | "atLeast";

function numericCheck(
  gate: string,
  configKey: string,
  m: Measured<number>,
  limit: number,
  unit: string,
  direction: Direction,
  scale: (v: number) => number = (v) => v,
): GateCheck {
  if ("notRun" in m) {
    return {
      gate,
      configKey,
      measured: null,
      limit,
      unit,
      status: "not-run",
      passed: false,
      detail: `not run: ${m.notRun}`,
    };
  }
  const value = round(scale(m.value), 4);
  const ok = direction === "atMost" ? value <= limit : value >= limit;
  const relation = direction === "atMost" ? "at most" : "at least";
  return {
    gate,
    configKey,
    measured: value,
    limit,
    unit,
    status: ok ? "passed" : "failed",
    passed: ok,
    detail: `measured ${value}${unit ? ` ${unit}` : ""}, limit ${relation} ${limit}${unit ? ` ${unit}` : ""} (${configKey})`,
  };
}

function findingsCheck(
  gate: string,
  configKey: string,
  m: Measured<Finding[]>,
  what: string,
): GateCheck {
  if ("notRun" in m) {
    return {
      gate,
      configKey,
      measured: null,
      limit: 0,
      unit: "findings",
      status: "not-run",
      passed: false,
      detail: `not run: ${m.notRun}`,
    };
  }
  const n = m.value.length;
  return {
    gate,
    configKey,
    measured: n,
    limit: 0,
    unit: "findings",
    status: n === 0 ? "passed" : "failed",
    passed: n === 0,
    detail:
      n === 0 ? `no ${what}` : `${n} ${what}, limit 0 (${configKey}): ${describeFindings(m.value)}`,
  };
}

/** Turns measurements into gate checks. Pure: the same inputs always give the same results. */
export function evaluateGates(
  m: Measurements,
  gates: GatesConfig,
  options: EvaluateOptions = {},
): GateResults {
  const checks: GateCheck[] = [];
  for (const platform of Object.keys(m.platforms).sort()) {
    const p = m.platforms[platform];
    checks.push(
      numericCheck(
        `imageSize[${platform}]`,
        "gates.maxImageSizeMb",
        p.sizeBytes,
        gates.maxImageSizeMb,
        "MB",
        "atMost",
        (b) => b / MB,
      ),
    );
    checks.push(
      numericCheck(
        `efficiency[${platform}]`,
        "gates.minEfficiency",
        p.efficiency,
        gates.minEfficiency,
        "",
        "atLeast",
      ),
    );
    checks.push(
      numericCheck(
        `wasted[${platform}]`,
        "gates.maxWastedMb",
        p.wastedBytes,
        gates.maxWastedMb,
        "MB",
        "atMost",
        (b) => b / MB,
      ),
    );
    checks.push(
      numericCheck(
        `criticalVulnerabilities[${platform}]`,
        "gates.maxCritical",
        p.criticalVulnerabilities,
        gates.maxCritical,
        "",
        "atMost",
      ),
    );
    checks.push(
      findingsCheck(
        `imageSecrets[${platform}]`,
        "fixed: no secrets in the image",
        p.imageSecrets,
        "secrets in the image",
      ),
    );
  }
  const cov = (pick: (c: CoverageMeasurement) => number): Measured<number> =>
    "notRun" in m.coverage ? m.coverage : measured(pick(m.coverage.value));
  checks.push(
    numericCheck(
      "coverage",
      "gates.minCoverage",
      cov((c) => c.lines),
      gates.minCoverage,
      "%",
      "atLeast",
    ),
  );
  checks.push(
    numericCheck(
      "branchCoverage",
      "gates.minBranchCoverage",
      cov((c) => c.branches),
      gates.minBranchCoverage,
      "%",
      "atLeast",
    ),
  );
  checks.push(
    numericCheck(
      "functionCoverage",
      "gates.minFunctionCoverage",
      cov((c) => c.functions),
      gates.minFunctionCoverage,
      "%",
      "atLeast",
    ),
  );
  checks.push(
    findingsCheck(
      "dockerfileLint",
      "fixed: Hadolint clean (ignores justified inline)",
      m.lint,
      "Hadolint findings",
    ),
  );
  checks.push(
    findingsCheck(
      "misconfigurations",
      "fixed: no HIGH/CRITICAL Trivy misconfigurations",
      m.misconfigurations,
      "Trivy misconfigurations",
    ),
  );
  checks.push(
    findingsCheck(
      "secrets",
      "fixed: no secrets in the build context",
      m.secrets,
      "secrets in the build context",
    ),
  );

  const required = options.required ?? [...CHECK_NAMES];
  const matches = (gate: string, names: string[]): string | undefined =>
    names.find((r) => gate === r || gate.startsWith(`${r}[`));
  const waived: Record<string, string> = {};
  for (const c of checks) {
    const waiverKey = matches(c.gate, Object.keys(gates.waive)) ?? undefined;
    // A waiver only ever turns a failure or a missing measurement into "waived"; a pass stays a pass.
    if (waiverKey !== undefined && c.status !== "passed") {
      c.waiver = gates.waive[waiverKey];
      waived[c.gate] = c.waiver;
      c.detail = `waived (${c.waiver}); ${c.detail}`;
      c.status = "waived";
      continue;
    }
    if (c.status === "not-run" && matches(c.gate, required) !== undefined) {
      c.status = "failed";
      c.detail = `required but ${c.detail}`;
    }
  }
  const failed = checks.filter((c) => c.status === "failed").map((c) => c.gate);
  const notRunList = checks.filter((c) => c.status === "not-run").map((c) => c.gate);
  return {
    passed: failed.length === 0 && notRunList.length === 0,
    checks,
    failed,
    notRun: notRunList,
    waived,
    tools: options.tools ?? {},
    gates,
  };
}

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
