// The image factory's policy pack, run with previews: `pulumi preview --policy-pack policy`.
// Every rule lives in ./rules.ts as a pure function; this file only registers them. The stack
// config reaches the analyzer in PULUMI_CONFIG, which is how the stack rules know the platforms.
import { PolicyPack, ReportViolation, ResourceValidationArgs, StackValidationArgs } from "@pulumi/policy";
import {
  checkBuildkitPortNotWorldOpen,
  checkCacheMode,
  checkImdsV2,
  checkIndexShaTag,
  checkPlatformsBuilt,
  checkShaTag,
  checkVolumesEncrypted,
  stackConfigFrom,
} from "./rules";

const config = stackConfigFrom(process.env.PULUMI_CONFIG);

function report(messages: string[], reportViolation: ReportViolation): void {
  for (const m of messages) {
    reportViolation(m);
  }
}

function resourceRule(check: (args: ResourceValidationArgs) => string[]) {
  return (args: ResourceValidationArgs, reportViolation: ReportViolation): void => report(check(args), reportViolation);
}

new PolicyPack("image-factory-policy", {
  enforcementLevel: "mandatory",
  policies: [
    {
      name: "buildkit-port-not-world-open",
      description: "Build-host security groups never open the BuildKit port to 0.0.0.0/0 or ::/0.",
      validateResource: resourceRule((a) => checkBuildkitPortNotWorldOpen(a.type, a.props, config.buildkitPort)),
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
      validateResource: resourceRule((a) => checkCacheMode(a.type, a.props, config.cacheMode)),
    },
    {
      name: "every-platform-built",
      description: "docker-build Images cover every platform in image-factory:platforms.",
      validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) =>
        report(checkPlatformsBuilt(args.resources, config), reportViolation),
    },
    {
      name: "index-carries-sha-tag",
      description: "The published manifest lists include the sha-<commit> tag.",
      validateStack: (args: StackValidationArgs, reportViolation: ReportViolation) =>
        report(checkIndexShaTag(args.resources), reportViolation),
    },
  ],
});
