// What every rule reads: the resource type tokens and a plan's loosely typed props (during a
// preview a value may be a string where the program passed a number, or missing where computed).
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

/** A resource of the plan as a stack rule sees it. */
export interface StackResource {
  type: string;
  name: string;
  props: Props;
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
export function asStrings(v: unknown): string[] {
  return asArray(v).filter((x): x is string => typeof x === "string");
}
export function asNumber(v: unknown): number | undefined {
  if (typeof v === "number") {
    return v;
  }
  if (typeof v === "string" && /^-?\d+$/.test(v)) {
    return Number(v);
  }
  return undefined;
}

/** Whether a boolean prop is true (the plan may carry it as the string "true"). */
export function isTrue(v: unknown): boolean {
  return v === true || v === "true";
}
