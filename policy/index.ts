// The image factory's policy pack, run with previews: `pulumi preview --policy-pack policy`.
// Every rule is a pure function (./rules.ts gathers them); this file only registers them.
//
// Stack config: engines that pass it in PULUMI_CONFIG are used as is. Current engines send it only
// through the analyzer's ConfigureStack call, which @pulumi/policy 1.21 does not expose (it keeps
// the tags), so the pack reads `Pulumi.<stack>.yaml` of the project (this folder's parent, or
// IMAGE_FACTORY_PROJECT_DIR), the stack name coming from the resources' URNs; or the file named by
// IMAGE_FACTORY_STACK_CONFIG when the stack runs with `--config-file`.
import * as fs from "fs";
import * as path from "path";
import * as aws from "@pulumi/aws";
import {
  PolicyPack,
  ReportViolation,
  ResourceValidationArgs,
  StackValidationArgs,
  validateResourceOfType,
} from "@pulumi/policy";
import * as YAML from "yaml";
import { checkImdsV2, checkVolumesEncrypted } from "./hostRules";
import { checkCacheMode, checkIndexShaTag, checkPlatformsBuilt, checkShaTag } from "./imageRules";
import * as ingress from "./ingressRules";
import * as stackConfig from "./stackConfig";

const projectDir = process.env.IMAGE_FACTORY_PROJECT_DIR ?? path.resolve(__dirname, "..");
const cache = new Map<string, stackConfig.PolicyStackConfig>();

function configFor(urn: string): stackConfig.PolicyStackConfig {
  if (process.env.PULUMI_CONFIG) {
    return stackConfig.stackConfigFrom(process.env.PULUMI_CONFIG);
  }
  const stack = stackConfig.stackFromUrn(urn) ?? "";
  let cfg = cache.get(stack);
  if (cfg === undefined) {
    // A stack run with `--config-file` (scripts/local.sh) names that file in IMAGE_FACTORY_STACK_CONFIG.
    const file =
      process.env.IMAGE_FACTORY_STACK_CONFIG ?? path.join(projectDir, `Pulumi.${stack}.yaml`);
    const values = fs.existsSync(file)
      ? stackConfig.configValuesFromStackFile(YAML.parse(fs.readFileSync(file, "utf8")))
      : {};
    cfg = stackConfig.stackConfigFromValues(values);
    cache.set(stack, cfg);
  }
  return cfg;
}

function report(messages: string[], reportViolation: ReportViolation): void {
  for (const m of messages) {
    reportViolation(m);
  }
}

function resourceRule(
  check: (args: ResourceValidationArgs, cfg: stackConfig.PolicyStackConfig) => string[],
) {
  return (args: ResourceValidationArgs, reportViolation: ReportViolation): void =>
    report(check(args, configFor(args.urn)), reportViolation);
}

function stackRule(
  check: (args: StackValidationArgs, cfg: stackConfig.PolicyStackConfig) => string[],
) {
  return (args: StackValidationArgs, reportViolation: ReportViolation): void =>
    report(check(args, configFor(args.resources[0]?.urn ?? "")), reportViolation);
}

/** The ingress-width rule for one way of writing ingress; `cidrs` reads what it admits to the port. */
function ingressWidth<T>(cidrs: (props: T, port: number) => ingress.IngressCidr[]) {
  return (props: T, a: ResourceValidationArgs, reportViolation: ReportViolation): void => {
    const cfg = configFor(a.urn);
    report(ingress.checkBuildkitIngressWidth(cidrs(props, cfg.buildkitPort), cfg), reportViolation);
  };
}

new PolicyPack("image-factory-policy", {
  enforcementLevel: "mandatory",
  policies: [
    {
      name: "buildkit-port-not-world-open",
      description: "Build-host security groups never open the BuildKit port to 0.0.0.0/0 or ::/0.",
      validateResource: resourceRule((a, cfg) =>
        ingress.checkBuildkitPortNotWorldOpen(a.type, a.props, cfg.buildkitPort),
      ),
    },
    {
      name: "buildkit-ingress-narrow",
      description:
        "Each CIDR admitted to the BuildKit port passes buildHosts.allowedCidrs' rule: no host bits, IPv4 /16 and IPv6 /48 at the widest unless buildHosts.allowWideCidrs gives a reason.",
      validateResource: [
        validateResourceOfType(
          aws.vpc.SecurityGroupIngressRule,
          ingressWidth(ingress.vpcIngressRuleCidrs),
        ),
        validateResourceOfType(
          aws.ec2.SecurityGroupRule,
          ingressWidth(ingress.securityGroupRuleCidrs),
        ),
        validateResourceOfType(aws.ec2.SecurityGroup, ingressWidth(ingress.securityGroupCidrs)),
      ],
    },
    {
      name: "buildkit-ingress-total",
      description:
        "All CIDRs admitted to the BuildKit port together cover at most a /16 (IPv4) or /48 (IPv6), and never a whole address family.",
      validateStack: stackRule((a, cfg) => ingress.checkBuildkitIngressTotal(a.resources, cfg)),
    },
    {
      name: "imdsv2-required",
      description: "EC2 instances and launch templates require IMDSv2 (httpTokens = required).",
      validateResource: resourceRule((a) => checkImdsV2(a.type, a.props)),
    },
    {
      name: "volumes-encrypted",
      description: "Root and EBS volumes are encrypted.",
      validateResource: resourceRule((a) => checkVolumesEncrypted(a.type, a.props)),
    },
    {
      name: "pushed-images-carry-sha-tag",
      description: "Every pushed image carries a sha-<commit> tag.",
      validateResource: resourceRule((a) => checkShaTag(a.type, a.props)),
    },
    {
      name: "cache-mode",
      description: "Build cache exports use mode=max unless image-factory:cache.mode says min.",
      validateResource: resourceRule((a, cfg) => checkCacheMode(a.type, a.props, cfg.cacheMode)),
    },
    {
      name: "every-platform-built",
      description: "docker-build Images cover every platform in image-factory:platforms.",
      validateStack: stackRule((a, cfg) => checkPlatformsBuilt(a.resources, cfg)),
    },
    {
      name: "gate-waivers",
      description:
        "Lists every quality gate this stack waives, with its reason (image-factory:gates.waive).",
      enforcementLevel: "advisory",
      validateStack: stackRule((_a, cfg) => stackConfig.describeWaivers(cfg)),
    },
    {
      name: "index-carries-sha-tag",
      description: "The published manifest lists include the sha-<commit> tag.",
      validateStack: stackRule((a) => checkIndexShaTag(a.resources)),
    },
  ],
});
