// What a `buildHosts` configuration may say, judged before anything exists: who may reach the
// BuildKit port, which instance families serve which architecture, the port, the cache volume, the
// subnet and how the hosts reach Systems Manager. No resources here: config.ts calls these while it
// validates the namespace, and the policy pack (policy/rules.ts) applies the same CIDR rule to the
// security-group ingress of a plan, so the program and the pack cannot drift apart.
import * as pulumi from "@pulumi/pulumi";
import { Address4, Address6 } from "ip-address";
import type { BuildHostsConfig, HostArch, SsmAccess } from "../types";

export const HOST_ARCHS: readonly HostArch[] = ["amd64", "arm64"];
export const SSM_ACCESS: readonly SsmAccess[] = ["scoped", "managed-core", "none"];

// ---- allowedCidrs -------------------------------------------------------------------------------

/** The widest single range per family without `buildHosts.allowWideCidrs`, and the most addresses
 *  all ranges of a family may cover together (a /16 of IPv4, a /48 of IPv6: one site). */
export const CIDR_LIMITS = {
  4: { bits: 32, prefix: 16 },
  6: { bits: 128, prefix: 48 },
} as const;

export interface ParsedCidr {
  family: 4 | 6;
  prefix: number;
  /** Canonical network, e.g. `198.51.100.0/24`, `2001:db8::/64` (RFC 5952). */
  network: string;
  /** First address and number of addresses, for merging overlaps. */
  start: bigint;
  size: bigint;
  /** Bits set beyond the prefix: AWS would store the network and the config would not say what
   *  the rule admits. */
  hostBits: boolean;
}

// An explicit prefix without leading zeros; the address itself is ip-address's to judge.
const CIDR_SHAPE = /^([0-9A-Fa-f:.]+)\/(0|[1-9][0-9]{0,2})$/;

/** Parses an IPv4 or IPv6 CIDR with ip-address; undefined when it is not one. */
export function parseCidr(cidr: string): ParsedCidr | undefined {
  const m = CIDR_SHAPE.exec(cidr);
  if (m === null) return undefined;
  const [, address, prefixText] = m;
  const family = address.includes(":") ? 6 : 4;
  const prefix = Number(prefixText);
  const bits = CIDR_LIMITS[family].bits;
  if (prefix > bits) return undefined;
  let range: Address4 | Address6;
  let host: Address4 | Address6;
  try {
    range = family === 4 ? new Address4(cidr) : new Address6(cidr);
    host = family === 4 ? new Address4(address) : new Address6(address);
  } catch {
    return undefined;
  }
  const first = range.startAddress();
  return {
    family,
    prefix,
    network: `${first.correctForm()}/${prefix}`,
    start: first.bigInt(),
    size: 1n << BigInt(bits - prefix),
    hostBits: host.bigInt() !== first.bigInt(),
  };
}

export type CidrProblemKind = "invalid" | "world" | "hostBits" | "wide";

/** What is wrong with one range, or undefined. `allowWideCidrs` (the reason) admits ranges wider
 *  than CIDR_LIMITS; nothing admits a /0. */
export function cidrProblem(
  cidr: unknown,
  allowWideCidrs?: string,
): { kind: CidrProblemKind; reason: string } | undefined {
  const parsed = typeof cidr === "string" ? parseCidr(cidr) : undefined;
  if (parsed === undefined) {
    return {
      kind: "invalid",
      reason: `'${String(cidr)}' is not a CIDR (expected e.g. 203.0.113.7/32 or 2001:db8::/64)`,
    };
  }
  if (parsed.prefix === 0) {
    return {
      kind: "world",
      reason: `'${String(cidr)}' opens the BuildKit port to the whole internet; list your CI's addresses instead`,
    };
  }
  if (parsed.hostBits) {
    return {
      kind: "hostBits",
      reason: `'${String(cidr)}' has host bits set; the network is '${parsed.network}'`,
    };
  }
  const limit = CIDR_LIMITS[parsed.family].prefix;
  if (parsed.prefix < limit && !hasReason(allowWideCidrs)) {
    return {
      kind: "wide",
      reason:
        `'${String(cidr)}' admits ${parsed.size} addresses, wider than IPv${parsed.family}'s /${limit} limit; ` +
        "list your CI's addresses, or set buildHosts.allowWideCidrs to the reason this range is needed",
    };
  }
  return undefined;
}

const hasReason = (reason: string | undefined): boolean =>
  typeof reason === "string" && reason.trim() !== "";

/** Addresses covered by a family's ranges once overlaps are merged. */
export function coveredAddresses(ranges: readonly ParsedCidr[]): bigint {
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  let total = 0n;
  let end = -1n; // exclusive end of the merged run so far
  for (const r of sorted) {
    const rEnd = r.start + r.size;
    if (r.start >= end) {
      total += r.size;
      end = rEnd;
    } else if (rEnd > end) {
      total += rEnd - end;
      end = rEnd;
    }
  }
  return total;
}

/** Problems of a whole list taken together, per family: the merged ranges must not cover more
 *  than one /16 (IPv4) or /48 (IPv6) unless `allowWideCidrs` gives a reason, and never the whole
 *  address space (two /1 halves are the internet as much as a /0 is). */
export function coverageProblems(cidrs: readonly unknown[], allowWideCidrs?: string): string[] {
  const problems: string[] = [];
  for (const family of [4, 6] as const) {
    const entries = cidrs
      .filter((c): c is string => typeof c === "string")
      .map((c) => [c, parseCidr(c)] as const)
      .filter(
        (e): e is readonly [string, ParsedCidr] => e[1] !== undefined && e[1].family === family,
      );
    // A /0 is already refused on its own; saying it again for the set adds nothing.
    if (entries.length === 0 || entries.some(([, p]) => p.prefix === 0)) continue;
    const { bits, prefix } = CIDR_LIMITS[family];
    const covered = coveredAddresses(entries.map(([, p]) => p));
    const listed = `[${entries.map(([c]) => `'${c}'`).join(", ")}]`;
    if (covered === 1n << BigInt(bits)) {
      problems.push(
        `${listed} together cover the whole IPv${family} internet; list your CI's addresses instead`,
      );
    } else if (covered > 1n << BigInt(bits - prefix) && !hasReason(allowWideCidrs)) {
      problems.push(
        `${listed} together cover ${covered} IPv${family} addresses, more than a /${prefix} ` +
          `(${1n << BigInt(bits - prefix)}); narrow them, or set buildHosts.allowWideCidrs to the reason`,
      );
    }
  }
  return problems;
}

/** Every problem of `allowedCidrs`, each naming its key (`<key>[i]` or `<key>`) and value. */
export function allowedCidrsProblems(
  cidrs: readonly unknown[],
  allowWideCidrs?: string,
  key = "buildHosts.allowedCidrs",
): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  cidrs.forEach((cidr, i) => {
    const problem = cidrProblem(cidr, allowWideCidrs);
    const network = typeof cidr === "string" ? parseCidr(cidr)?.network : undefined;
    if (problem !== undefined) {
      problems.push(`${key}[${i}]: ${problem.reason}`);
    } else if (network !== undefined && seen.has(network)) {
      problems.push(`${key}[${i}]: '${String(cidr)}' repeats ${key}[${seen.get(network)}]`);
    } else if (network !== undefined) {
      seen.set(network, i);
    }
  });
  return [...problems, ...coverageProblems(cidrs, allowWideCidrs).map((p) => `${key}: ${p}`)];
}

// ---- instance families ----------------------------------------------------------------------

/** Instance class prefixes EC2 sells (the letters before the generation digit). */
const KNOWN_PREFIXES = new Set([
  "a",
  "c",
  "d",
  "dl",
  "f",
  "g",
  "gr",
  "h",
  "hpc",
  "i",
  "im",
  "inf",
  "is",
  "m",
  "p",
  "r",
  "t",
  "trn",
  "u",
  "vt",
  "x",
  "z",
]);
const INSTANCE_TYPE =
  /^([a-z]+)(\d+)([a-z]*)(-[a-z0-9]+)?\.(nano|micro|small|medium|large|xlarge|\d+xlarge|metal(-\d+xl)?)$/;

/** The CPU architecture of an EC2 instance type from its name alone, or why it cannot tell: the
 *  offline check that runs before any AWS call. Graviton families carry a `g` among the attribute
 *  letters after the generation (c7g, c7gd, c6gn, im4gn, is4gen, x2gd, g5g, t4g) plus the
 *  first-generation `a1`; every other family is x86. BuildHosts asks EC2 as well
 *  (hostArchFromEc2) and refuses a host whose answer disagrees. */
export function instanceArch(instanceType: string): HostArch | { problem: string } {
  const m = INSTANCE_TYPE.exec(instanceType);
  if (m === null) return { problem: "not an EC2 instance type like c7g.xlarge" };
  const [, prefix, , attributes] = m;
  if (prefix === "mac") return { problem: "mac instances run macOS, not the Linux BuildKit host" };
  if (!KNOWN_PREFIXES.has(prefix)) return { problem: `unknown instance family '${prefix}'` };
  if (prefix === "a") return "arm64";
  return attributes.includes("g") ? "arm64" : "amd64";
}

/** The Linux host architecture in EC2's `supportedArchitectures` (i386, x86_64, arm64,
 *  x86_64_mac, arm64_mac), or undefined when it names neither. */
export function hostArchFromEc2(supported: readonly string[]): HostArch | undefined {
  if (supported.includes("arm64")) return "arm64";
  if (supported.includes("x86_64")) return "amd64";
  return undefined;
}

/** Why EC2's answer for the `arch` host's instance type rules it out, or undefined when it fits.
 *  An empty answer judges nothing (the offline check already ran). */
export function ec2ArchProblem(
  arch: HostArch,
  instanceType: string,
  supported: readonly string[] | undefined,
): string | undefined {
  if (supported === undefined || supported.length === 0) return undefined;
  const found = hostArchFromEc2(supported);
  if (found === arch) return undefined;
  return (
    `buildHosts.${arch}InstanceType: '${instanceType}' supports ${supported.join(", ")} according to EC2; ` +
    `the ${arch} host needs ${arch === "arm64" ? "an arm64 (Graviton)" : "an x86_64"} type`
  );
}

// ---- the whole block ----------------------------------------------------------------------------

const MAX_GP3_GIB = 16384;

/** Sub-keys of `image-factory:buildHosts` and their types (config.ts checks the shape). */
export const BUILD_HOSTS_SHAPE = {
  enabled: "boolean",
  amd64InstanceType: "string",
  arm64InstanceType: "string",
  allowedCidrs: "string[]",
  allowWideCidrs: "string",
  port: "number",
  cacheVolumeGb: "number",
  subnetId: "string",
  localBuilder: "string",
  ssmAccess: "string",
} as const;

/** The `buildHosts` block with its defaults, from an object whose shape config.ts has checked. */
export function buildHostsConfig(o: Record<string, unknown>, stack: string): BuildHostsConfig {
  const localBuilder = o.localBuilder as string | undefined;
  return {
    // Hosts are the point of dev/prod; any other stack (local, a developer's) opts in explicitly.
    enabled:
      (o.enabled as boolean | undefined) ??
      (localBuilder === undefined && (stack === "dev" || stack === "prod")),
    amd64InstanceType: (o.amd64InstanceType as string | undefined) ?? "c7i.xlarge",
    arm64InstanceType: (o.arm64InstanceType as string | undefined) ?? "c7g.xlarge",
    allowedCidrs: (o.allowedCidrs as string[] | undefined) ?? [],
    allowWideCidrs: o.allowWideCidrs as string | undefined,
    port: (o.port as number | undefined) ?? 1234,
    cacheVolumeGb: (o.cacheVolumeGb as number | undefined) ?? 200,
    subnetId: o.subnetId as string | undefined,
    localBuilder,
    ssmAccess: (o.ssmAccess as SsmAccess | undefined) ?? "scoped",
  };
}

/** Every problem of a BuildHostsConfig, each naming its key and value. Empty for a disabled
 *  config: nothing will be created from it. */
export function buildHostsProblems(cfg: BuildHostsConfig): string[] {
  if (!cfg.enabled) return [];
  const problems = allowedCidrsProblems(cfg.allowedCidrs, cfg.allowWideCidrs);
  if (cfg.allowWideCidrs !== undefined && !hasReason(cfg.allowWideCidrs)) {
    problems.push(
      `buildHosts.allowWideCidrs: '${cfg.allowWideCidrs}' must say why wide ranges are needed (a non-empty reason)`,
    );
  }
  if (!Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) {
    problems.push(`buildHosts.port: ${String(cfg.port)} is not a TCP port (1-65535)`);
  } else if (cfg.port === 22) {
    problems.push(
      "buildHosts.port: 22 is refused: the hosts have no SSH, and BuildKit on 22 would look like it",
    );
  }
  if (
    !Number.isInteger(cfg.cacheVolumeGb) ||
    cfg.cacheVolumeGb <= 0 ||
    cfg.cacheVolumeGb > MAX_GP3_GIB
  ) {
    problems.push(
      `buildHosts.cacheVolumeGb: ${String(cfg.cacheVolumeGb)} must be a whole number of GiB from 1 to ${MAX_GP3_GIB}`,
    );
  }
  for (const arch of HOST_ARCHS) {
    const key = arch === "amd64" ? "amd64InstanceType" : "arm64InstanceType";
    const type = cfg[key];
    const found = instanceArch(type);
    if (typeof found !== "string") {
      problems.push(`buildHosts.${key}: '${type}': ${found.problem}`);
    } else if (found !== arch) {
      const want =
        arch === "arm64" ? "a Graviton type such as c7g.xlarge" : "an x86 type such as c7i.xlarge";
      problems.push(
        `buildHosts.${key}: '${type}' is an ${found} instance type; the ${arch} host needs ${want}`,
      );
    }
  }
  if (cfg.subnetId !== undefined && !/^subnet-[0-9a-f]{8,17}$/.test(cfg.subnetId)) {
    problems.push(`buildHosts.subnetId: '${cfg.subnetId}' is not a subnet id (subnet-<hex>)`);
  }
  if (!SSM_ACCESS.includes(cfg.ssmAccess)) {
    problems.push(
      `buildHosts.ssmAccess: '${String(cfg.ssmAccess)}' is not one of ${SSM_ACCESS.join(", ")}`,
    );
  }
  return problems;
}

/** Throws one InputPropertyError (property `config`) listing every problem of buildHostsProblems. */
export function validateBuildHosts(cfg: BuildHostsConfig): void {
  const problems = buildHostsProblems(cfg);
  if (problems.length > 0) {
    throw new pulumi.InputPropertyError({
      propertyPath: "config",
      reason: `invalid buildHosts configuration:\n  ${problems.join("\n  ")}`,
    });
  }
}
