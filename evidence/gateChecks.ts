// The judging: every check as one row (what it reads, what limits it), and the evaluation that
// turns measurements into pass, fail, not-run or waived. Pure, so every rule is table-tested.
import type { GatesConfig, NumericGate } from "./gatesConfig";
import {
  type Finding,
  type Measured,
  type Measurements,
  type PlatformMeasurements,
  mapMeasured,
} from "./measurements";

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

export interface EvaluateOptions {
  /** Gate names (or prefixes such as `criticalVulnerabilities`) that must run: not-run → failed.
   *  @default every check */
  required?: string[];
  tools?: Record<string, string>;
}

/** A figure held against a numeric gate of the config. */
interface LimitSpec<S> {
  name: string;
  limit: NumericGate;
  unit: string;
  read: (s: S) => Measured<number>;
}

/** Findings, of which a fixed rule allows none. */
interface FindingsSpec<S> {
  name: string;
  rule: string;
  what: string;
  findings: (s: S) => Measured<Finding[]>;
}

type CheckSpec<S> = LimitSpec<S> | FindingsSpec<S>;

const MB = 1024 * 1024;
const inMb = (bytes: Measured<number>): Measured<number> => mapMeasured(bytes, (b) => b / MB);
const limit = <S>(
  name: string,
  key: NumericGate,
  unit: string,
  read: (s: S) => Measured<number>,
): CheckSpec<S> => ({ name, limit: key, unit, read });
const none = <S>(
  name: string,
  rule: string,
  what: string,
  findings: (s: S) => Measured<Finding[]>,
): CheckSpec<S> => ({ name, rule: `fixed: ${rule}`, what, findings });

/** Checked once per platform image, as `<name>[<platform>]`. */
const PLATFORM_CHECKS: CheckSpec<PlatformMeasurements>[] = [
  limit("imageSize", "maxImageSizeMb", "MB", (p) => inMb(p.sizeBytes)),
  limit("efficiency", "minEfficiency", "", (p) => p.efficiency),
  limit("wasted", "maxWastedMb", "MB", (p) => inMb(p.wastedBytes)),
  limit("criticalVulnerabilities", "maxCritical", "", (p) => p.criticalVulnerabilities),
  none("imageSecrets", "no secrets in the image", "secrets in the image", (p) => p.imageSecrets),
];

/** Checked once on the build (its source and Dockerfile). */
const BUILD_CHECKS: CheckSpec<Measurements>[] = [
  limit("coverage", "minCoverage", "%", (m) => mapMeasured(m.coverage, (c) => c.lines)),
  limit("branchCoverage", "minBranchCoverage", "%", (m) =>
    mapMeasured(m.coverage, (c) => c.branches),
  ),
  limit("functionCoverage", "minFunctionCoverage", "%", (m) =>
    mapMeasured(m.coverage, (c) => c.functions),
  ),
  none(
    "dockerfileLint",
    "Hadolint clean (ignores justified inline)",
    "Hadolint findings",
    (m) => m.lint,
  ),
  none(
    "misconfigurations",
    "no HIGH/CRITICAL Trivy misconfigurations",
    "Trivy misconfigurations",
    (m) => m.misconfigurations,
  ),
  none(
    "secrets",
    "no secrets in the build context",
    "secrets in the build context",
    (m) => m.secrets,
  ),
];

/** Every check the evaluation emits; per-platform ones carry `[<platform>]`. A waiver names one
 *  of these, with or without the platform. */
export const CHECK_NAMES: readonly string[] = [...PLATFORM_CHECKS, ...BUILD_CHECKS].map(
  (c) => c.name,
);

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

type Subject = Pick<GateCheck, "gate" | "configKey" | "limit" | "unit">;

/** The check as measured: `ok` decides pass or fail, `detail` says what was measured against what.
 *  (Fields in the order the results have always been written in.) */
function judge<T>(
  { gate, configKey, limit, unit }: Subject,
  m: Measured<T>,
  count: (v: T) => number,
  ok: (n: number) => boolean,
  detail: (n: number, v: T) => string,
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
  const n = count(m.value);
  const passed = ok(n);
  const status = passed ? "passed" : "failed";
  return { gate, configKey, measured: n, limit, unit, status, passed, detail: detail(n, m.value) };
}

function check<S>(spec: CheckSpec<S>, gate: string, source: S, gates: GatesConfig): GateCheck {
  if ("findings" in spec) {
    const configKey = spec.rule;
    return judge(
      { gate, configKey, limit: 0, unit: "findings" },
      spec.findings(source),
      (f) => f.length,
      (n) => n === 0,
      (n, f) =>
        n === 0
          ? `no ${spec.what}`
          : `${n} ${spec.what}, limit 0 (${configKey}): ${describeFindings(f)}`,
    );
  }
  const configKey = `gates.${spec.limit}`;
  const limitValue = gates[spec.limit];
  // A `min…` gate is a lower bound, a `max…` gate an upper one.
  const atLeast = spec.limit.startsWith("min");
  const unit = spec.unit ? ` ${spec.unit}` : "";
  return judge(
    { gate, configKey, limit: limitValue, unit: spec.unit },
    spec.read(source),
    (v) => round(v, 4),
    (n) => (atLeast ? n >= limitValue : n <= limitValue),
    (n) =>
      `measured ${n}${unit}, limit ${atLeast ? "at least" : "at most"} ${limitValue}${unit} (${configKey})`,
  );
}

/** Turns measurements into gate checks. Pure: the same inputs always give the same results. */
export function evaluateGates(
  m: Measurements,
  gates: GatesConfig,
  options: EvaluateOptions = {},
): GateResults {
  const checks: GateCheck[] = [
    ...Object.keys(m.platforms)
      .sort()
      .flatMap((platform) =>
        PLATFORM_CHECKS.map((spec) =>
          check(spec, `${spec.name}[${platform}]`, m.platforms[platform], gates),
        ),
      ),
    ...BUILD_CHECKS.map((spec) => check(spec, spec.name, m, gates)),
  ];

  const required = options.required ?? [...CHECK_NAMES];
  const matches = (gate: string, names: string[]): string | undefined =>
    names.find((r) => gate === r || gate.startsWith(`${r}[`));
  const waived: Record<string, string> = {};
  for (const c of checks) {
    const waiverKey = matches(c.gate, Object.keys(gates.waive));
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
