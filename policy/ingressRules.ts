// BuildKit-port ingress rules: no world-open port, each admitted CIDR narrow, all of them together
// narrow. The pack imports nothing from the program but its pure CIDR rule
// (components/buildHosts/rules.ts): a plan is held to exactly what the config validation allows.
import { cidrProblem, coverageProblems, parseCidr } from "../components/buildHosts/rules";
import { type Props, type StackResource, TYPES, asArray, asNumber, asStrings } from "./resources";
import type { PolicyStackConfig } from "./stackConfig";

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
