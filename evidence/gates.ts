// Quality gates: pure validation of the `gates` config and pure evaluation of what the scanners
// measured. No I/O here, so every rule is table-tested; components/supplyChain.ts feeds it.
import type { GatesConfig } from "./types";

/** Defaults documented in the config contract (design.md) and components/types.ts. */
export const DEFAULT_GATES: GatesConfig = {
  maxImageSizeMb: 500,
  minCoverage: 80,
  maxCritical: 0,
  minEfficiency: 0.95,
  maxWastedMb: 20,
};

interface FieldRule {
  min: number;
  max: number;
  integer: boolean;
  meaning: string;
}

const FIELD_RULES: Record<keyof GatesConfig, FieldRule> = {
  // 0 MB cannot hold any image; an upper bound keeps a typo (5000000) from disabling the gate.
  maxImageSizeMb: { min: 1, max: 100_000, integer: false, meaning: "a size in MB between 1 and 100000" },
  minCoverage: { min: 0, max: 100, integer: false, meaning: "a percentage between 0 and 100" },
  maxCritical: { min: 0, max: 1_000_000, integer: true, meaning: "a whole number of findings >= 0" },
  minEfficiency: { min: 0, max: 1, integer: false, meaning: "a ratio between 0 and 1 (Dive efficiency)" },
  maxWastedMb: { min: 0, max: 100_000, integer: false, meaning: "a size in MB >= 0" },
};

/** Checks the `gates` config object (partial: missing fields take DEFAULT_GATES) and returns the
 *  complete, validated gates. Errors name `gates.<field>` and the offending value. */
export function validateGates(raw: unknown, key = "gates"): GatesConfig {
  if (raw === undefined || raw === null) {
    return { ...DEFAULT_GATES };
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new Error(`${key} must be an object with ${Object.keys(FIELD_RULES).join(", ")}; got ${JSON.stringify(raw)}`);
  }
  const input = raw as Record<string, unknown>;
  for (const field of Object.keys(input)) {
    if (!(field in FIELD_RULES)) {
      throw new Error(
        `${key}.${field} is not a known gate (known: ${Object.keys(FIELD_RULES).join(", ")}); got ${JSON.stringify(input[field])}`,
      );
    }
  }
  const out: GatesConfig = { ...DEFAULT_GATES };
  for (const field of Object.keys(FIELD_RULES) as Array<keyof GatesConfig>) {
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

export interface Measurements {
  platforms: Record<string, PlatformMeasurements>;
  /** Line coverage percent of app/. */
  coverage: Measured<number>;
  /** Hadolint findings at error or warning level on the Dockerfile. */
  lint: Measured<Finding[]>;
  /** Trivy misconfigurations (HIGH, CRITICAL) on the Dockerfile. */
  misconfigurations: Measured<Finding[]>;
  /** Trivy secrets in the build context (Dockerfile and sources). */
  secrets: Measured<Finding[]>;
}

export type CheckStatus = "passed" | "failed" | "not-run";

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
}

export interface GateResults {
  /** No check failed. Checks that did not run are listed in `notRun`, never counted as passed;
   *  a gate named in `required` that did not run fails instead. */
  passed: boolean;
  checks: GateCheck[];
  failed: string[];
  notRun: string[];
}

export interface EvaluateOptions {
  /** Gate names (or prefixes such as `criticalVulnerabilities`) that must run: not-run → failed.
   *  CI sets `criticalVulnerabilities` where the Trivy DB is reachable. */
  required?: string[];
}

const MB = 1024 * 1024;

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function describeFindings(findings: Finding[], max = 5): string {
  const shown = findings.slice(0, max).map((f) => `${f.id} (${f.severity})${f.where ? ` at ${f.where}` : ""}: ${f.message}`);
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
    return { gate, configKey, measured: null, limit, unit, status: "not-run", passed: false, detail: `not run: ${m.notRun}` };
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

function findingsCheck(gate: string, configKey: string, m: Measured<Finding[]>, what: string): GateCheck {
  if ("notRun" in m) {
    return { gate, configKey, measured: null, limit: 0, unit: "findings", status: "not-run", passed: false, detail: `not run: ${m.notRun}` };
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
    detail: n === 0 ? `no ${what}` : `${n} ${what}, limit 0 (${configKey}): ${describeFindings(m.value)}`,
  };
}

/** Turns measurements into gate checks. Pure: the same inputs always give the same results. */
export function evaluateGates(m: Measurements, gates: GatesConfig, options: EvaluateOptions = {}): GateResults {
  const checks: GateCheck[] = [];
  for (const platform of Object.keys(m.platforms).sort()) {
    const p = m.platforms[platform];
    checks.push(numericCheck(`imageSize[${platform}]`, "gates.maxImageSizeMb", p.sizeBytes, gates.maxImageSizeMb, "MB", "atMost", (b) => b / MB));
    checks.push(numericCheck(`efficiency[${platform}]`, "gates.minEfficiency", p.efficiency, gates.minEfficiency, "", "atLeast"));
    checks.push(numericCheck(`wasted[${platform}]`, "gates.maxWastedMb", p.wastedBytes, gates.maxWastedMb, "MB", "atMost", (b) => b / MB));
    checks.push(numericCheck(`criticalVulnerabilities[${platform}]`, "gates.maxCritical", p.criticalVulnerabilities, gates.maxCritical, "", "atMost"));
    checks.push(findingsCheck(`imageSecrets[${platform}]`, "fixed: no secrets in the image", p.imageSecrets, "secrets in the image"));
  }
  checks.push(numericCheck("coverage", "gates.minCoverage", m.coverage, gates.minCoverage, "%", "atLeast"));
  checks.push(findingsCheck("dockerfileLint", "fixed: Hadolint clean (ignores justified inline)", m.lint, "Hadolint findings"));
  checks.push(findingsCheck("misconfigurations", "fixed: no HIGH/CRITICAL Trivy misconfigurations", m.misconfigurations, "Trivy misconfigurations"));
  checks.push(findingsCheck("secrets", "fixed: no secrets in the build context", m.secrets, "secrets in the build context"));

  const required = options.required ?? [];
  const isRequired = (gate: string): boolean => required.some((r) => gate === r || gate.startsWith(`${r}[`));
  for (const c of checks) {
    if (c.status === "not-run" && isRequired(c.gate)) {
      c.status = "failed";
      c.detail = `required but ${c.detail}`;
    }
  }
  const failed = checks.filter((c) => c.status === "failed").map((c) => c.gate);
  const notRunList = checks.filter((c) => c.status === "not-run").map((c) => c.gate);
  return { passed: failed.length === 0, checks, failed, notRun: notRunList };
}

/** A failed gate: the message names each failing gate, its measured value and its limit. */
export class GateError extends Error {
  readonly failures: GateCheck[];
  constructor(failures: GateCheck[]) {
    const lines = failures.map(
      (c) => `gate ${c.gate} failed: ${c.measured === null ? "not measured" : `measured ${c.measured}${c.unit ? ` ${c.unit}` : ""}`}, limit ${c.limit}${c.unit ? ` ${c.unit}` : ""} — ${c.detail}`,
    );
    const message = `${failures.length} quality gate${failures.length === 1 ? "" : "s"} failed:\n  ${lines.join("\n  ")}`;
    super(message);
    // Set explicitly: inside Pulumi's serialized dynamic provider the class becomes a function
    // that calls `Error.call(this, …)`, which does not set `message` on `this`.
    this.message = message;
    this.name = "GateError";
    this.failures = failures;
  }
}

/** Throws a GateError when any gate failed; returns the results otherwise. */
export function assertGates(results: GateResults): GateResults {
  if (!results.passed) {
    throw new GateError(results.checks.filter((c) => c.status === "failed"));
  }
  return results;
}
