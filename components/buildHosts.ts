// Native BuildKit hosts on AWS: one x86 instance for linux/amd64 and one Graviton instance for
// linux/arm64 and linux/arm/v7, each running buildkitd behind mutual TLS, reachable only from the
// configured CIDRs, administered through SSM (no SSH key, no port 22).
//
// TLS without a chicken-and-egg: every server certificate carries a fixed DNS name — the buildx
// builder name, passed by CI as `servername=` — plus the host's Elastic IP, which is allocated
// before the instance. The certificate (public) rides in the user data; the server's private key
// goes to an SSM SecureString that only that host's role may read, and the host fetches it at
// boot. User data is readable through the EC2 API, so no key material ever goes there.
import * as net from "node:net";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { builderName } from "./naming";
import type { BuildHostsConfig, HostArch } from "./types";
import { type BuildkitRelease, DEFAULT_BUILDKIT_RELEASE, renderCloudConfig } from "./userData";

export const HOST_ARCHS: readonly HostArch[] = ["amd64", "arm64"];

/** Public SSM parameters naming the latest Amazon Linux 2023 AMI per architecture. */
export const AMI_PARAMETERS: Record<HostArch, string> = {
  amd64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
  arm64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
};

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

/** The CPU architecture of an EC2 instance type, or why it cannot tell. Graviton families carry a
 *  `g` among the attribute letters after the generation (c7g, c7gd, c6gn, im4gn, is4gen, x2gd,
 *  g5g, t4g) plus the first-generation `a1`; every other family is x86. */
export function instanceArch(instanceType: string): HostArch | { problem: string } {
  const m = INSTANCE_TYPE.exec(instanceType);
  if (m === null) return { problem: "not an EC2 instance type like c7g.xlarge" };
  const [, prefix, , attributes] = m;
  if (prefix === "mac") return { problem: "mac instances run macOS, not the Linux BuildKit host" };
  if (!KNOWN_PREFIXES.has(prefix)) return { problem: `unknown instance family '${prefix}'` };
  if (prefix === "a") return "arm64";
  return attributes.includes("g") ? "arm64" : "amd64";
}

/** Parses an IPv4 or IPv6 CIDR (undefined when malformed) into its canonical network. `hostBits`
 *  marks an address with bits beyond the prefix: validation refuses it, since AWS would store the
 *  network address and the config would not say what the rule admits. */
export function parseCidr(
  cidr: string,
): { family: 4 | 6; prefix: number; network: string; hostBits: boolean } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
  if (m === null) return undefined;
  const [, address, prefixText] = m;
  const prefix = Number(prefixText);
  const family = net.isIPv4(address) ? 4 : net.isIPv6(address) ? 6 : undefined;
  if (family === undefined || prefix > (family === 4 ? 32 : 128)) return undefined;
  const bits = family === 4 ? ipv4Bits(address) : ipv6Bits(address);
  const masked = bits.slice(0, prefix).padEnd(bits.length, "0");
  const network = family === 4 ? bitsToIpv4(masked) : bitsToIpv6(masked);
  return { family, prefix, network: `${network}/${prefix}`, hostBits: masked !== bits };
}

function ipv4Bits(a: string): string {
  return a
    .split(".")
    .map((o) => Number(o).toString(2).padStart(8, "0"))
    .join("");
}
function bitsToIpv4(b: string): string {
  return [0, 8, 16, 24].map((i) => parseInt(b.slice(i, i + 8), 2)).join(".");
}
function ipv6Bits(a: string): string {
  let text = a;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = ipv4Bits(v4[1]);
    text = `${text.slice(0, -v4[1].length)}${parseInt(b.slice(0, 16), 2).toString(16)}:${parseInt(b.slice(16), 2).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => parseInt(g, 16).toString(2).padStart(16, "0")).join("");
}
function bitsToIpv6(b: string): string {
  const groups: string[] = [];
  for (let i = 0; i < 128; i += 16) groups.push(parseInt(b.slice(i, i + 16), 2).toString(16));
  // The WHATWG URL parser prints IPv6 in its canonical compressed form (RFC 5952).
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

const MAX_GP3_GIB = 16384;

/** Checks a BuildHostsConfig; throws one Error listing every problem, each naming its key and
 *  value. A disabled config is accepted as is: nothing will be created from it. */
export function validateBuildHosts(cfg: BuildHostsConfig): void {
  const problems = buildHostsProblems(cfg);
  if (problems.length > 0) {
    throw new Error(`invalid buildHosts configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** The same checks as validateBuildHosts, as a list (for config validation that collects every
 *  problem of every key before failing). Empty for a disabled config. */
export function buildHostsProblems(cfg: BuildHostsConfig): string[] {
  const problems: string[] = [];
  if (!cfg.enabled) return problems;
  const seen = new Map<string, number>();
  cfg.allowedCidrs.forEach((cidr, i) => {
    const key = `buildHosts.allowedCidrs[${i}]`;
    const parsed = typeof cidr === "string" ? parseCidr(cidr) : undefined;
    if (parsed === undefined) {
      problems.push(
        `${key}: '${String(cidr)}' is not a CIDR (expected e.g. 203.0.113.7/32 or 2001:db8::/64)`,
      );
    } else if (parsed.prefix === 0) {
      problems.push(
        `${key}: '${cidr}' opens the BuildKit port to the whole internet; list your CI's addresses instead`,
      );
    } else if (parsed.hostBits) {
      problems.push(`${key}: '${cidr}' has host bits set; the network is '${parsed.network}'`);
    } else if (seen.has(parsed.network)) {
      problems.push(
        `${key}: '${cidr}' repeats buildHosts.allowedCidrs[${seen.get(parsed.network)}]`,
      );
    } else {
      seen.set(parsed.network, i);
    }
  });
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
  return problems;
}

/** Paths on the CI runner where it writes `caCertPem`, `clientCertPem` and `clientKeyPem` before
 *  running `builderCommands`; buildx reads them whenever it connects. */
export interface CertFiles {
  ca: string;
  cert: string;
  key: string;
}

export function certFiles(dir: string): CertFiles {
  return { ca: `${dir}/ca.pem`, cert: `${dir}/client.pem`, key: `${dir}/client-key.pem` };
}

/** The exact command CI runs to create the remote builder for one architecture. */
export function builderCommand(opts: {
  stack: string;
  arch: HostArch;
  endpoint: string;
  files: CertFiles;
}): string {
  const name = builderName(opts.stack, opts.arch);
  const platforms = opts.arch === "amd64" ? "linux/amd64" : "linux/arm64,linux/arm/v7";
  const driverOpts = `cacert=${opts.files.ca},cert=${opts.files.cert},key=${opts.files.key},servername=${name}`;
  return `docker buildx create --name ${name} --driver remote --driver-opt ${driverOpts} --platform ${platforms} ${opts.endpoint}`;
}

export interface BuildHostsArgs {
  /** Validated `buildHosts` config (enabled). */
  config: BuildHostsConfig;
  /** Names builders, SSM parameters and tags. @default pulumi.getStack() */
  stack?: string;
  /** Which hosts to create: only the architectures the configured platforms need (HOST_ARCH).
   *  @default both */
  architectures?: HostArch[];
  /** ARN of the S3 bucket holding the BuildKit cache (cache.type s3): the hosts export and import
   *  it themselves, so their role gets Get/Put on its objects and List on the bucket. */
  cacheBucketArn?: pulumi.Input<string>;
  /** Extra tags for every taggable resource. */
  tags?: Record<string, string>;
  /** @default DEFAULT_BUILDKIT_RELEASE */
  buildkit?: BuildkitRelease;
  /** Directory on the CI runner holding the client certificate files.
   *  @default `/tmp/image-factory/buildkit/<stack>` */
  certDir?: string;
  /** An Elastic IP per host, the endpoint CI dials. Off: the endpoint is the private IP (CI runs in
   *  the VPC; the subnet needs a NAT route for downloads and pushes). @default true */
  publicEndpoint?: boolean;
  /** How the hosts reach Systems Manager. `core` attaches AWS's AmazonSSMManagedInstanceCore,
   *  which also allows ssm:GetParameter(s) on every parameter of the account (so any SecureString
   *  under the default aws/ssm key). `session-manager` grants only what the SSM agent needs for
   *  Session Manager shells, leaving the host able to read its own server key and nothing else.
   *  @default "core" */
  ssmAccess?: "core" | "session-manager";
}

interface Host {
  instance: aws.ec2.Instance;
  endpoint: pulumi.Output<string>;
}

export class BuildHosts extends pulumi.ComponentResource {
  /** `{ amd64: "tcp://host:port", arm64: "tcp://host:port" }`: the `buildHosts` stack export. */
  public readonly endpoints: pulumi.Output<Record<string, string>>;
  /** `docker buildx create --driver remote …` per architecture; no secret material. */
  public readonly builderCommands: pulumi.Output<Record<string, string>>;
  /** Builder name per architecture, as MultiPlatformImage routes platforms. */
  public readonly builderNames: Partial<Record<HostArch, string>>;
  /** Where CI writes the three PEMs below before running builderCommands. */
  public readonly certFiles: CertFiles;
  public readonly caCertPem: pulumi.Output<string>;
  public readonly clientCertPem: pulumi.Output<string>;
  /** Secret. */
  public readonly clientKeyPem: pulumi.Output<string>;
  public readonly instanceIds: pulumi.Output<Record<string, string>>;
  public readonly securityGroupId: pulumi.Output<string>;

  constructor(name: string, args: BuildHostsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:buildhosts:BuildHosts", name, {}, opts);
    const cfg = args.config;
    if (!cfg.enabled) {
      throw new Error(
        "BuildHosts: buildHosts.enabled is false; do not create the component for a disabled config",
      );
    }
    validateBuildHosts(cfg);
    const stack = args.stack ?? pulumi.getStack();
    const archs = args.architectures ?? [...HOST_ARCHS];
    if (archs.length === 0)
      throw new Error("BuildHosts: architectures is empty; nothing would be built natively");
    const release = args.buildkit ?? DEFAULT_BUILDKIT_RELEASE;
    const publicEndpoint = args.publicEndpoint ?? true;
    const ssmAccess = args.ssmAccess ?? "core";
    const files = certFiles(args.certDir ?? `/tmp/image-factory/buildkit/${stack}`);
    const parent = { parent: this };
    const tagsFor = (role: string, extra: Record<string, string> = {}): Record<string, string> => ({
      ...(args.tags ?? {}),
      "image-factory:stack": stack,
      "image-factory:role": role,
      Name: `${name}-${role}`,
      ...extra,
    });

    // --- network placement -------------------------------------------------------------------
    const subnetId: pulumi.Output<string> =
      cfg.subnetId !== undefined
        ? pulumi.output(cfg.subnetId)
        : aws.ec2
            .getSubnetsOutput(
              {
                filters: [
                  { name: "vpc-id", values: [aws.ec2.getVpcOutput({ default: true }, parent).id] },
                  { name: "default-for-az", values: ["true"] },
                ],
              },
              parent,
            )
            .apply((s) => {
              // Sorted so the choice is stable across runs; set subnetId to pick another AZ.
              const sorted = [...s.ids].sort();
              if (sorted.length === 0)
                throw new Error(
                  "buildHosts.subnetId: unset and the default VPC has no default subnets",
                );
              return sorted[0];
            });
    const subnet = aws.ec2.getSubnetOutput({ id: subnetId }, parent);

    const sg = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      {
        vpcId: subnet.vpcId,
        description: `image-factory ${stack}: BuildKit mTLS port ${cfg.port} from allowed CIDRs only`,
        tags: tagsFor("sg"),
      },
      parent,
    );
    // One rule per CIDR, named after the CIDR so reordering the list changes nothing.
    for (const cidr of cfg.allowedCidrs) {
      const v6 = net.isIPv6(cidr.split("/")[0]);
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-ingress-${(parseCidr(cidr)?.network ?? cidr).replace(/[^0-9a-fA-F]+/g, "-")}`,
        {
          securityGroupId: sg.id,
          ipProtocol: "tcp",
          fromPort: cfg.port,
          toPort: cfg.port,
          ...(v6 ? { cidrIpv6: cidr } : { cidrIpv4: cidr }),
          description: "BuildKit mTLS from CI",
          tags: tagsFor("ingress"),
        },
        parent,
      );
    }
    // Egress for packages, the BuildKit download, registries, S3 and SSM — all HTTP(S). DNS, NTP
    // and instance metadata use link-local/VPC resolvers that security groups do not filter.
    for (const [port, proto] of [
      [443, "https"],
      [80, "http"],
    ] as const) {
      for (const v6 of [false, true]) {
        new aws.vpc.SecurityGroupEgressRule(
          `${name}-egress-${proto}-${v6 ? "v6" : "v4"}`,
          {
            securityGroupId: sg.id,
            ipProtocol: "tcp",
            fromPort: port,
            toPort: port,
            ...(v6 ? { cidrIpv6: "::/0" } : { cidrIpv4: "0.0.0.0/0" }),
            description: `${proto} to package mirrors, registries and AWS APIs`,
            tags: tagsFor("egress"),
          },
          parent,
        );
      }
    }

    // --- TLS: one CA, a server certificate per host, one client certificate for CI ------------
    const caKey = new tls.PrivateKey(
      `${name}-ca-key`,
      { algorithm: "ECDSA", ecdsaCurve: "P256" },
      parent,
    );
    const ca = new tls.SelfSignedCert(
      `${name}-ca`,
      {
        privateKeyPem: caKey.privateKeyPem,
        isCaCertificate: true,
        subject: {
          commonName: `image-factory ${stack} BuildKit CA`,
          organization: "image-factory",
        },
        validityPeriodHours: 10 * 8760,
        earlyRenewalHours: 90 * 24,
        allowedUses: ["cert_signing", "crl_signing", "digital_signature"],
      },
      parent,
    );
    const leaf = (
      role: string,
      cn: string,
      uses: string[],
      san: {
        dnsNames?: pulumi.Input<pulumi.Input<string>[]>;
        ipAddresses?: pulumi.Input<pulumi.Input<string>[]>;
      },
    ) => {
      const key = new tls.PrivateKey(
        `${name}-${role}-key`,
        { algorithm: "ECDSA", ecdsaCurve: "P256" },
        parent,
      );
      const csr = new tls.CertRequest(
        `${name}-${role}-csr`,
        {
          privateKeyPem: key.privateKeyPem,
          subject: { commonName: cn, organization: "image-factory" },
          ...san,
        },
        parent,
      );
      const cert = new tls.LocallySignedCert(
        `${name}-${role}-cert`,
        {
          certRequestPem: csr.certRequestPem,
          caPrivateKeyPem: caKey.privateKeyPem,
          caCertPem: ca.certPem,
          // A year, renewed by the first `pulumi up` in its last 30 days; a new server certificate
          // changes the user data, which replaces the host (the cache volume stays).
          validityPeriodHours: 8760,
          earlyRenewalHours: 30 * 24,
          allowedUses: ["digital_signature", "key_encipherment", ...uses],
        },
        parent,
      );
      return { key, cert };
    };
    const client = leaf("client", `image-factory-${stack}-ci`, ["client_auth"], {});

    // --- one host per architecture -----------------------------------------------------------
    const hosts: Partial<Record<HostArch, Host>> = {};
    for (const arch of archs) {
      const role = arch;
      const serverName = builderName(stack, arch);
      const eip = publicEndpoint
        ? new aws.ec2.Eip(
            `${name}-${arch}-eip`,
            { domain: "vpc", tags: tagsFor(`${arch}-eip`, { "image-factory:arch": arch }) },
            parent,
          )
        : undefined;
      const server = leaf(`${arch}-server`, serverName, ["server_auth"], {
        dnsNames: eip ? [serverName, eip.publicDns] : [serverName],
        ipAddresses: eip ? [eip.publicIp] : [],
      });

      const keyParameter = new aws.ssm.Parameter(
        `${name}-${arch}-server-key`,
        {
          name: `/image-factory/${stack}/buildhosts/${arch}/server-key`,
          type: "SecureString",
          value: server.key.privateKeyPem,
          description: `TLS key of the ${arch} BuildKit host; read once at boot by that host's role`,
          tags: tagsFor(`${arch}-server-key`, { "image-factory:arch": arch }),
        },
        parent,
      );

      const hostRole = new aws.iam.Role(
        `${name}-${arch}-role`,
        {
          assumeRolePolicy: JSON.stringify(assumeRolePolicy()),
          description: `image-factory ${stack} ${arch} BuildKit host`,
          tags: tagsFor(`${arch}-role`, { "image-factory:arch": arch }),
        },
        parent,
      );
      if (ssmAccess === "core") {
        new aws.iam.RolePolicyAttachment(
          `${name}-${arch}-ssm-core`,
          { role: hostRole.name, policyArn: aws.iam.ManagedPolicy.AmazonSSMManagedInstanceCore },
          parent,
        );
      }
      new aws.iam.RolePolicy(
        `${name}-${arch}-policy`,
        {
          role: hostRole.id,
          policy: pulumi
            .all([keyParameter.arn, pulumi.output(args.cacheBucketArn)])
            .apply(([parameterArn, bucketArn]) =>
              JSON.stringify(
                hostPolicy({
                  parameterArn,
                  cacheBucketArn: bucketArn,
                  sessionManager: ssmAccess === "session-manager",
                }),
              ),
            ),
        },
        parent,
      );
      const profile = new aws.iam.InstanceProfile(
        `${name}-${arch}-profile`,
        { role: hostRole.name, tags: tagsFor(`${arch}-profile`, { "image-factory:arch": arch }) },
        parent,
      );

      const volume = new aws.ebs.Volume(
        `${name}-${arch}-cache`,
        {
          availabilityZone: subnet.availabilityZone,
          size: cfg.cacheVolumeGb,
          type: "gp3",
          encrypted: true,
          tags: tagsFor(`${arch}-cache`, { "image-factory:arch": arch }),
        },
        parent,
      );

      const ami = aws.ssm.getParameterOutput({ name: AMI_PARAMETERS[arch] }, parent).value;
      const userData = pulumi
        .all([volume.id, keyParameter.name, ca.certPem, server.cert.certPem])
        .apply(([volumeId, parameterName, caCertPem, serverCertPem]) =>
          renderCloudConfig({
            arch,
            release,
            volumeId,
            serverKeyParameter: parameterName,
            port: cfg.port,
            volumeGb: cfg.cacheVolumeGb,
            caCertPem,
            serverCertPem,
          }),
        );
      const instance = new aws.ec2.Instance(
        `${name}-${arch}-instance`,
        {
          ami,
          instanceType: arch === "amd64" ? cfg.amd64InstanceType : cfg.arm64InstanceType,
          subnetId,
          vpcSecurityGroupIds: [sg.id],
          iamInstanceProfile: profile.name,
          associatePublicIpAddress: publicEndpoint,
          metadataOptions: {
            httpEndpoint: "enabled",
            httpTokens: "required",
            httpPutResponseHopLimit: 1,
            instanceMetadataTags: "disabled",
          },
          rootBlockDevice: {
            volumeType: "gp3",
            volumeSize: 30,
            encrypted: true,
            deleteOnTermination: true,
            tags: tagsFor(`${arch}-root`, { "image-factory:arch": arch }),
          },
          userData,
          // cloud-init only acts on first boot: new user data must mean a new instance.
          userDataReplaceOnChange: true,
          tags: tagsFor(role, { "image-factory:arch": arch }),
        },
        // The AMI parameter moves with every Amazon Linux release; following it would replace the
        // host on an unrelated `pulumi up`. Roll onto a new AMI with `pulumi up --replace`.
        { parent: this, ignoreChanges: ["ami"] },
      );
      new aws.ec2.VolumeAttachment(
        `${name}-${arch}-cache-attachment`,
        {
          instanceId: instance.id,
          volumeId: volume.id,
          deviceName: "/dev/sdf",
          stopInstanceBeforeDetaching: true,
        },
        // The volume attaches to one instance at a time: detach from the old host before the new.
        { parent: this, deleteBeforeReplace: true },
      );
      let endpoint: pulumi.Output<string>;
      if (eip !== undefined) {
        new aws.ec2.EipAssociation(
          `${name}-${arch}-eip-association`,
          { allocationId: eip.allocationId, instanceId: instance.id },
          { parent: this, deleteBeforeReplace: true },
        );
        endpoint = pulumi.interpolate`tcp://${eip.publicIp}:${cfg.port}`;
      } else {
        endpoint = pulumi.interpolate`tcp://${instance.privateIp}:${cfg.port}`;
      }
      hosts[arch] = { instance, endpoint };
    }

    const present = archs.map((a) => [a, hosts[a] as Host] as const);
    this.endpoints = pulumi
      .all(present.map(([, h]) => h.endpoint))
      .apply((eps) => Object.fromEntries(present.map(([a], i) => [a, eps[i]])));
    this.builderCommands = this.endpoints.apply((eps) =>
      Object.fromEntries(
        present.map(([arch]) => [
          arch,
          builderCommand({ stack, arch, endpoint: eps[arch], files }),
        ]),
      ),
    );
    this.builderNames = Object.fromEntries(archs.map((a) => [a, builderName(stack, a)]));
    this.certFiles = files;
    this.caCertPem = ca.certPem;
    this.clientCertPem = client.cert.certPem;
    this.clientKeyPem = pulumi.secret(client.key.privateKeyPem);
    this.instanceIds = pulumi
      .all(present.map(([, h]) => h.instance.id))
      .apply((ids) => Object.fromEntries(present.map(([a], i) => [a, ids[i]])));
    this.securityGroupId = sg.id;
    this.registerOutputs({
      endpoints: this.endpoints,
      builderCommands: this.builderCommands,
      builderNames: this.builderNames,
      certFiles: this.certFiles,
      caCertPem: this.caCertPem,
      clientCertPem: this.clientCertPem,
      clientKeyPem: this.clientKeyPem,
      instanceIds: this.instanceIds,
      securityGroupId: this.securityGroupId,
    });
  }
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: {
    Sid?: string;
    Effect: "Allow";
    Action: string | string[];
    Resource?: string | string[];
    Principal?: Record<string, string>;
  }[];
}

export function assumeRolePolicy(): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" },
    ],
  };
}

/** The host's own permissions: read its server key; use the S3 cache if any; with
 *  `sessionManager`, the SSM agent's Session Manager channel (instead of the managed policy). */
export function hostPolicy(opts: {
  parameterArn: string;
  cacheBucketArn?: string;
  sessionManager?: boolean;
}): PolicyDocument {
  const statements: PolicyDocument["Statement"] = [
    {
      Sid: "ReadOwnServerKey",
      Effect: "Allow",
      Action: ["ssm:GetParameter"],
      Resource: opts.parameterArn,
    },
  ];
  if (opts.sessionManager === true) {
    // AWS's documented minimum for the SSM agent's Session Manager channel; these actions take no
    // resource-level scoping, hence Resource "*".
    statements.push({
      Sid: "SessionManager",
      Effect: "Allow",
      Action: [
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ],
      Resource: "*",
    });
  }
  if (opts.cacheBucketArn !== undefined) {
    statements.push(
      {
        Sid: "CacheObjects",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject"],
        Resource: `${opts.cacheBucketArn}/*`,
      },
      {
        Sid: "CacheListing",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: opts.cacheBucketArn,
      },
    );
  }
  return { Version: "2012-10-17", Statement: statements };
}
