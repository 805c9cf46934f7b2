// The `gates` config: its shape, its defaults and its validation. Each numeric gate's default,
// range and meaning live in one row of FIELD_RULES, so the defaults cannot drift from the rules
// that check a stack's values.
import { CHECK_NAMES } from "./gateChecks";

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

/** What a scan needs of the gates: only the limits Dive is told, so that its own report says pass
 *  or fail. Everything else is applied when judging, so a changed waiver never rescans. */
export type DiveLimits = Pick<GatesConfig, "minEfficiency" | "maxWastedMb">;

export function diveLimits(gates: GatesConfig): DiveLimits {
  return { minEfficiency: gates.minEfficiency, maxWastedMb: gates.maxWastedMb };
}

export type NumericGate = Exclude<keyof GatesConfig, "waive">;

interface FieldRule {
  default: number;
  min: number;
  max: number;
  integer: boolean;
  meaning: string;
}

function percentage(dflt: number): FieldRule {
  return {
    default: dflt,
    min: 0,
    max: 100,
    integer: false,
    meaning: "a percentage between 0 and 100",
  };
}

// The defaults are documented in docs/contracts.md.
const FIELD_RULES: Record<NumericGate, FieldRule> = {
  // 0 MB cannot hold any image; an upper bound keeps a typo (5000000) from disabling the gate.
  maxImageSizeMb: {
    default: 500,
    min: 1,
    max: 100_000,
    integer: false,
    meaning: "a size in MB between 1 and 100000",
  },
  minCoverage: percentage(80),
  minBranchCoverage: percentage(80),
  minFunctionCoverage: percentage(80),
  maxCritical: {
    default: 0,
    min: 0,
    max: 1_000_000,
    integer: true,
    meaning: "a whole number of findings >= 0",
  },
  minEfficiency: {
    default: 0.95,
    min: 0,
    max: 1,
    integer: false,
    meaning: "a ratio between 0 and 1 (Dive efficiency)",
  },
  maxWastedMb: { default: 20, min: 0, max: 100_000, integer: false, meaning: "a size in MB >= 0" },
};

const NUMERIC_GATES = Object.keys(FIELD_RULES) as NumericGate[];

/** Every limit at its default, and no waivers. */
export const DEFAULT_GATES: GatesConfig = {
  ...(Object.fromEntries(NUMERIC_GATES.map((f) => [f, FIELD_RULES[f].default])) as Record<
    NumericGate,
    number
  >),
  waive: {},
};

/** One numeric gate from the config: a number or (as `pulumi config set` stores every value) a
 *  numeric string, within its rule's range. */
function validateField(field: NumericGate, value: unknown, key: string): number {
  const rule = FIELD_RULES[field];
  const num = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (
    typeof num !== "number" ||
    !Number.isFinite(num) ||
    num < rule.min ||
    num > rule.max ||
    (rule.integer && !Number.isInteger(num))
  ) {
    throw new Error(`${key}.${field} must be ${rule.meaning}; got ${JSON.stringify(value)}`);
  }
  return num;
}

/** Checks the `gates` config object (partial: missing fields take DEFAULT_GATES) and returns the
 *  complete, validated gates. Errors name `gates.<field>` and the offending value. */
export function validateGates(raw: unknown, key = "gates"): GatesConfig {
  if (raw === undefined || raw === null) {
    return { ...DEFAULT_GATES, waive: {} };
  }
  const known = [...NUMERIC_GATES, "waive"];
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
  for (const field of NUMERIC_GATES) {
    if (input[field] !== undefined) out[field] = validateField(field, input[field], key);
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
    if (!CHECK_NAMES.includes(base)) {
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
