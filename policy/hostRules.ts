// Build-host instance rules: IMDSv2 and encrypted volumes, on instances and launch templates alike.
import { type Props, TYPES, asArray, isTrue } from "./resources";

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
