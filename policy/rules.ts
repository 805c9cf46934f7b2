// The policy pack's rules as pure functions: resource props (and the stack config) in, violation
// messages out. policy/index.ts wires them into @pulumi/policy; test/unit/policy.test.ts calls them
// directly with resource-shaped arguments. The pack runs in its own analyzer process from this
// folder, so it imports nothing from the program but its pure CIDR rule
// (components/buildHosts/rules.ts): a plan is held to exactly what the config validation allows.
import { cidrProblem, coverageProblems, parseCidr } from "../components/buildHosts/rules";

/** Resource type tokens the rules look at (strings, so the pack does not load the AWS SDK). */
export const TYPES = {
  securityGroup: "aws:ec2/securityGroup:SecurityGroup",
  securityGroupRule: "aws:ec2/securityGroupRule:SecurityGroupRule",
  vpcIngressRule: "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
  instance: "aws:ec2/instance:Instance",
  launchTemplate: "aws:ec2/launchTemplate:LaunchTemplate",
  ebsVolume: "aws:ebs/volume:Volume",
  image: "docker-build:index:Image",
  index: "docker-build:index:Index",
} as const;

export type Props = Record<string, unknown>;

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

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function asStrings(v: unknown): string[] {
  return asArray(v).filter((x): x is string => typeof x === "string");
}
function asNumber(v: unknown): number | undefined {
  if (typeof v === "number") {
    return v;
  }
  if (typeof v === "string" && /^-?\d+$/.test(v)) {
    return Number(v);
  }
  return undefined;
}

/** Whether an ingress rule's protocol and port range admit TCP traffic to `port`. */
export function coversPort(
  protocol: unknown,
  fromPort: unknown,
  toPort: unknown,
  port: number,
): boolean {
  const proto = typeof protocol === "string" ? protocol.toLowerCase() : String(protocol ?? "");
  if (proto === "-1" || proto === "all") {
    return true;
  }
  if (proto !== "tcp" && proto !== "6") {
    return false;
  }
  const from = asNumber(fromPort);
  const to = asNumber(toPort);
  // Unknown ports (computed during preview) are treated as covering: a policy must not pass on
  // what it cannot see.
  if (from === undefined || to === undefined) {
    return true;
  }
  return from <= port && port <= to;
}

function cidrsOf(...lists: unknown[]): string[] {
  return lists.flatMap((l) => (typeof l === "string" ? [l] : asStrings(l))).map((c) => c.trim());
}

// Any /0 is the whole internet, however its address is written (192.0.2.1/0 too).
function worldCidrs(...lists: unknown[]): string[] {
  return cidrsOf(...lists).filter((c) => parseCidr(c)?.prefix === 0);
}

/** Rule: no security group (inline ingress, SecurityGroupRule, vpc SecurityGroupIngressRule)
 *  opens the BuildKit port to 0.0.0.0/0 or ::/0. */
export function checkBuildkitPortNotWorldOpen(type: string, props: Props, port: number): string[] {
  const out: string[] = [];
  const report = (cidrs: string[], where: string): void => {
    for (const cidr of cidrs) {
      out.push(
        `${where} opens the BuildKit port ${port} to ${cidr}; admit only the factory's CI CIDRs (image-factory:buildHosts.allowedCidrs)`,
      );
    }
  };
  if (type === TYPES.securityGroup) {
    asArray(props.ingress).forEach((raw, i) => {
      const r = (raw ?? {}) as Props;
      if (coversPort(r.protocol, r.fromPort, r.toPort, port)) {
        report(worldCidrs(r.cidrBlocks, r.ipv6CidrBlocks), `ingress[${i}]`);
      }
    });
  } else if (type === TYPES.securityGroupRule) {
    if (
      props.type === "ingress" &&
      coversPort(props.protocol, props.fromPort, props.toPort, port)
    ) {
      report(worldCidrs(props.cidrBlocks, props.ipv6CidrBlocks), "ingress rule");
    }
  } else if (type === TYPES.vpcIngressRule) {
    if (coversPort(props.ipProtocol, props.fromPort, props.toPort, port)) {
      report(worldCidrs(props.cidrIpv4, props.cidrIpv6), "ingress rule");
    }
  }
  return out;
}

/** A CIDR an ingress rule admits to the BuildKit port, and where in the resource it sits. */
export interface IngressCidr {
  where: string;
  cidr: string;
}

/** The props of the three ways to write ingress, as far as the CIDR rule reads them (structural, so
 *  @pulumi/aws's typed args fit without the pack importing them here). */
export interface VpcIngressRuleProps {
  ipProtocol?: string;
  fromPort?: number;
  toPort?: number;
  cidrIpv4?: string;
  cidrIpv6?: string;
}
export interface SecurityGroupRuleProps {
  type?: string;
  protocol?: string;
  fromPort?: number;
  toPort?: number;
  cidrBlocks?: string[];
  ipv6CidrBlocks?: string[];
}
export interface SecurityGroupProps {
  ingress?: Array<{
    protocol?: string;
    fromPort?: number;
    toPort?: number;
    cidrBlocks?: string[];
    ipv6CidrBlocks?: string[];
  }>;
}

export function vpcIngressRuleCidrs(rule: VpcIngressRuleProps, port: number): IngressCidr[] {
  if (!coversPort(rule.ipProtocol, rule.fromPort, rule.toPort, port)) {
    return [];
  }
  return cidrsOf(rule.cidrIpv4, rule.cidrIpv6).map((cidr) => ({ where: "ingress rule", cidr }));
}

export function securityGroupRuleCidrs(rule: SecurityGroupRuleProps, port: number): IngressCidr[] {
  if (rule.type !== "ingress" || !coversPort(rule.protocol, rule.fromPort, rule.toPort, port)) {
    return [];
  }
  return cidrsOf(rule.cidrBlocks, rule.ipv6CidrBlocks).map((cidr) => ({
    where: "ingress rule",
    cidr,
  }));
}

export function securityGroupCidrs(sg: SecurityGroupProps, port: number): IngressCidr[] {
  return asArray(sg.ingress).flatMap((raw, i) => {
    const r = (raw ?? {}) as Props;
    return coversPort(r.protocol, r.fromPort, r.toPort, port)
      ? cidrsOf(r.cidrBlocks, r.ipv6CidrBlocks).map((cidr) => ({ where: `ingress[${i}]`, cidr }))
      : [];
  });
}

/** The CIDRs any resource of the plan admits to the BuildKit port. */
export function buildkitIngressCidrs(type: string, props: Props, port: number): IngressCidr[] {
  if (type === TYPES.vpcIngressRule) {
    return vpcIngressRuleCidrs(props as VpcIngressRuleProps, port);
  }
  if (type === TYPES.securityGroupRule) {
    return securityGroupRuleCidrs(props as SecurityGroupRuleProps, port);
  }
  if (type === TYPES.securityGroup) {
    return securityGroupCidrs(props as SecurityGroupProps, port);
  }
  return [];
}

/** Rule: each CIDR admitted to the BuildKit port passes the config's own allowedCidrs rule (no
 *  host bits, IPv4 no wider than /16 and IPv6 no wider than /48 unless
 *  image-factory:buildHosts.allowWideCidrs gives a reason). A /0 is left to
 *  checkBuildkitPortNotWorldOpen, so it is reported once. */
export function checkBuildkitIngressWidth(
  entries: IngressCidr[],
  config: PolicyStackConfig,
): string[] {
  return entries.flatMap(({ where, cidr }) => {
    const problem = cidrProblem(cidr, config.allowWideCidrs);
    return problem === undefined || problem.kind === "world"
      ? []
      : [
          `${where} on the BuildKit port ${config.buildkitPort}: ${problem.reason} (image-factory:buildHosts.allowedCidrs)`,
        ];
  });
}

/** Stack rule: all CIDRs admitted to the BuildKit port, merged, cover no more than the config's
 *  rule allows (a /16 of IPv4, a /48 of IPv6, never a whole family). */
export function checkBuildkitIngressTotal(
  resources: StackResource[],
  config: PolicyStackConfig,
): string[] {
  const cidrs = resources.flatMap((r) =>
    buildkitIngressCidrs(r.type, r.props, config.buildkitPort).map((e) => e.cidr),
  );
  return coverageProblems(cidrs, config.allowWideCidrs).map(
    (p) =>
      `ingress to the BuildKit port ${config.buildkitPort}: ${p} (image-factory:buildHosts.allowedCidrs)`,
  );
}

/** Rule: instances and launch templates require IMDSv2 (metadataOptions.httpTokens = required). */
export function checkImdsV2(type: string, props: Props): string[] {
  if (type !== TYPES.instance && type !== TYPES.launchTemplate) {
    return [];
  }
  const tokens = ((props.metadataOptions ?? {}) as Props).httpTokens;
  return tokens === "required"
    ? []
    : [
        `metadataOptions.httpTokens is ${JSON.stringify(tokens ?? null)}; IMDSv2 requires "required"`,
      ];
}

function isTrue(v: unknown): boolean {
  return v === true || v === "true";
}

/** Rule: every root and EBS volume of an instance or launch template, and every EBS volume, is
 *  encrypted (explicitly: an account-level default is invisible to the plan). */
export function checkVolumesEncrypted(type: string, props: Props): string[] {
  const out: string[] = [];
  if (type === TYPES.instance) {
    const root = props.rootBlockDevice as Props | undefined;
    if (!root || !isTrue(root.encrypted)) {
      out.push(
        `rootBlockDevice.encrypted is ${JSON.stringify(root?.encrypted ?? null)}; the root volume must be encrypted`,
      );
    }
    asArray(props.ebsBlockDevices).forEach((raw, i) => {
      const d = (raw ?? {}) as Props;
      if (!isTrue(d.encrypted)) {
        out.push(`ebsBlockDevices[${i}] (${String(d.deviceName ?? "?")}) is not encrypted`);
      }
    });
  } else if (type === TYPES.launchTemplate) {
    asArray(props.blockDeviceMappings).forEach((raw, i) => {
      const ebs = ((raw ?? {}) as Props).ebs as Props | undefined;
      if (ebs && !isTrue(ebs.encrypted)) {
        out.push(
          `blockDeviceMappings[${i}].ebs.encrypted is ${JSON.stringify(ebs.encrypted ?? null)}; must be "true"`,
        );
      }
    });
  } else if (type === TYPES.ebsVolume) {
    if (!isTrue(props.encrypted)) {
      out.push(
        `encrypted is ${JSON.stringify(props.encrypted ?? null)}; EBS volumes must be encrypted`,
      );
    }
  }
  return out;
}

/** buildx treats `linux/arm` as `linux/arm/v7`; docker-build's Platform enum only has the former. */
export function normalizePlatform(p: string): string {
  return p === "linux/arm" ? "linux/arm/v7" : p;
}

export interface StackResource {
  type: string;
  name: string;
  props: Props;
}

/** Stack rule: the docker-build Images together build every platform in the stack config. */
export function checkPlatformsBuilt(
  resources: StackResource[],
  config: PolicyStackConfig,
): string[] {
  if (config.promoteFrom) {
    return [];
  }
  const built = new Set(
    resources
      .filter((r) => r.type === TYPES.image)
      .flatMap((r) => asStrings(r.props.platforms).map(normalizePlatform)),
  );
  const missing = config.platforms.map(normalizePlatform).filter((p) => !built.has(p));
  return missing.length === 0
    ? []
    : [
        `configured platform${missing.length > 1 ? "s" : ""} ${missing.join(", ")} not built by any docker-build Image (image-factory:platforms = ${JSON.stringify(config.platforms)}; built: ${JSON.stringify([...built].sort())})`,
      ];
}

const SHA_TAG = /:sha-[0-9a-f]{7,40}(?:$|[-_.])/;

/** Rule: a pushed docker-build Image carries a `sha-<commit>` tag. Tags still unknown during a
 *  preview (computed) are not judged. */
export function checkShaTag(type: string, props: Props): string[] {
  if (type === TYPES.image) {
    if (props.push !== true) {
      return [];
    }
    if (props.tags === undefined) {
      return [];
    }
    const tags = asStrings(props.tags);
    return tags.some((t) => SHA_TAG.test(t))
      ? []
      : [`pushed image has no sha-<commit> tag (tags: ${JSON.stringify(tags)})`];
  }
  return [];
}

/** Stack rule: when the stack publishes docker-build Indexes, one of them is the `sha-` tag. */
export function checkIndexShaTag(resources: StackResource[]): string[] {
  const indexes = resources.filter((r) => r.type === TYPES.index);
  const tags = indexes.map((r) => r.props.tag).filter((t): t is string => typeof t === "string");
  if (indexes.length === 0 || tags.length < indexes.length) {
    return [];
  }
  return tags.some((t) => SHA_TAG.test(t))
    ? []
    : [`no published manifest list carries a sha-<commit> tag (tags: ${JSON.stringify(tags)})`];
}

const CACHE_BACKENDS = ["registry", "local", "s3", "gha", "azblob"] as const;

/** Rule: every cache export of a docker-build Image uses the configured mode (max unless the
 *  stack config says `cache.mode: min`), and an Image exports a cache at all. */
export function checkCacheMode(type: string, props: Props, wanted: "max" | "min"): string[] {
  // The coverage stage's image only reads its platform's cache: writing it would replace that
  // platform's cache manifest with one lacking the runtime stage.
  if (type !== TYPES.image || props.target === "coverage") {
    return [];
  }
  const entries = asArray(props.cacheTo) as Props[];
  const exporting = entries.filter(
    (e) => e && e.disabled !== true && CACHE_BACKENDS.some((b) => e[b] !== undefined),
  );
  if (exporting.length === 0) {
    return [`exports no build cache; configure image-factory:cache (mode ${wanted})`];
  }
  const out: string[] = [];
  for (const e of exporting) {
    for (const backend of CACHE_BACKENDS) {
      const b = e[backend] as Props | undefined;
      if (b === undefined) {
        continue;
      }
      // docker-build applies its own default (min) when mode is unset.
      const mode = b.mode ?? "min";
      if (mode !== wanted) {
        out.push(
          `cacheTo ${backend} mode is ${JSON.stringify(mode)}; image-factory:cache.mode wants "${wanted}"`,
        );
      }
    }
  }
  return out;
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
