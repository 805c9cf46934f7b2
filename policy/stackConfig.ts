// The stack config the rules read (namespace `image-factory`): from PULUMI_CONFIG or the stack's
// `Pulumi.<stack>.yaml`, with the program's documented defaults where a value is missing or bad.
import { type Props } from "./resources";

/** What the rules need from the stack config (namespace `image-factory`). */
export interface PolicyStackConfig {
  platforms: string[];
  buildkitPort: number;
  cacheMode: "max" | "min";
  /** A promotion stack builds nothing: the platform rule does not apply. */
  promoteFrom?: string;
  /** `image-factory:buildHosts.allowWideCidrs`: the reason wide ingress ranges are accepted. */
  allowWideCidrs?: string;
  /** `image-factory:gates.waive`: check → reason. */
  waivers: Record<string, string>;
}

export const DEFAULT_PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
export const DEFAULT_BUILDKIT_PORT = 1234;

function parseJsonish(raw: string | undefined): unknown {
  if (raw === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Reads the stack config from `PULUMI_CONFIG` (a JSON object of `namespace:key` → string), which
 *  older engines hand every analyzer. Malformed values fall back to the documented defaults; the
 *  program's own validation rejects them before any resource exists. */
export function stackConfigFrom(pulumiConfigJson: string | undefined): PolicyStackConfig {
  let all: Record<string, string> = {};
  if (pulumiConfigJson) {
    try {
      all = JSON.parse(pulumiConfigJson) as Record<string, string>;
    } catch {
      all = {};
    }
  }
  return stackConfigFromValues(all);
}

/** The stack name from any resource URN (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
export function stackFromUrn(urn: string): string | undefined {
  const m = /^urn:pulumi:([^:]+)::/.exec(urn);
  return m ? m[1] : undefined;
}

/** `Pulumi.<stack>.yaml`'s `config:` map (already parsed from YAML) as `namespace:key` → string,
 *  the shape PULUMI_CONFIG has: structured values become JSON, secure values are left out. */
export function configValuesFromStackFile(parsed: unknown): Record<string, string> {
  const config =
    typeof parsed === "object" && parsed !== null ? (parsed as Props).config : undefined;
  const out: Record<string, string> = {};
  if (typeof config !== "object" || config === null) {
    return out;
  }
  for (const [k, v] of Object.entries(config as Props)) {
    if (typeof v === "object" && v !== null && "secure" in (v as Props)) {
      continue;
    }
    out[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return out;
}

export function stackConfigFromValues(all: Record<string, string>): PolicyStackConfig {
  const platforms = parseJsonish(all["image-factory:platforms"]);
  const buildHosts = parseJsonish(all["image-factory:buildHosts"]);
  const cache = parseJsonish(all["image-factory:cache"]);
  const port =
    typeof buildHosts === "object" && buildHosts !== null ? (buildHosts as Props).port : undefined;
  const mode = typeof cache === "object" && cache !== null ? (cache as Props).mode : undefined;
  const promoteFrom = all["image-factory:promoteFrom"];
  const wide =
    typeof buildHosts === "object" && buildHosts !== null
      ? (buildHosts as Props).allowWideCidrs
      : undefined;
  const gates = parseJsonish(all["image-factory:gates"]);
  const waive = typeof gates === "object" && gates !== null ? (gates as Props).waive : undefined;
  const waivers = Object.fromEntries(
    Object.entries(typeof waive === "object" && waive !== null ? (waive as Props) : {}).filter(
      (e): e is [string, string] => typeof e[1] === "string",
    ),
  );
  return {
    waivers,
    platforms:
      Array.isArray(platforms) && platforms.every((p) => typeof p === "string")
        ? platforms
        : DEFAULT_PLATFORMS,
    buildkitPort:
      typeof port === "number"
        ? port
        : typeof port === "string" && /^\d+$/.test(port)
          ? Number(port)
          : DEFAULT_BUILDKIT_PORT,
    cacheMode: mode === "min" ? "min" : "max",
    promoteFrom: promoteFrom === undefined || promoteFrom === "" ? undefined : promoteFrom,
    ...(typeof wide === "string" ? { allowWideCidrs: wide } : {}),
  };
}

/** Every waived gate with its reason: reported (advisory) in each preview's policy report, so a
 *  waiver is never silent. */
export function describeWaivers(cfg: PolicyStackConfig): string[] {
  return Object.keys(cfg.waivers)
    .sort()
    .map(
      (check) =>
        `gate ${check} is waived on this stack (image-factory:gates.waive): ${cfg.waivers[check]}`,
    );
}
