// Native BuildKit hosts on AWS: one x86 instance for linux/amd64 and one Graviton instance for
// linux/arm64 and linux/arm/v7, each running buildkitd behind mutual TLS, reachable only from the
// configured CIDRs, administered through Session Manager (no SSH key, no port 22).
//
// TLS without a chicken-and-egg: every server certificate carries a fixed DNS name — the buildx
// builder name, passed by CI as `servername=` — plus the host's Elastic IP, which is allocated
// before the instance. The certificate (public) rides in the user data; the server's private key
// goes to an SSM SecureString under a KMS key only that host's role may decrypt with, and the host
// fetches it at boot. User data is readable through the EC2 API, so no key material goes there.
//
// Pieces: rules.ts (what the config may say), pki.ts (CA and certificates), iam.ts (roles, KMS,
// SSM access), userData.ts (what the host boots with).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { builderName } from "../naming";
import type { BuildHostsConfig, HostArch } from "../types";
import { type AccountContext, createHostIdentity, grantSsmAccess } from "./iam";
import { builderCommand, type CertFiles, certFiles, createPki } from "./pki";
import { HOST_ARCHS, ec2ArchProblem, parseCidr, validateBuildHosts } from "./rules";
import { type BuildkitRelease, DEFAULT_BUILDKIT_RELEASE, renderCloudConfig } from "./userData";

export * from "./iam";
export * from "./pki";
export * from "./rules";

/** Public SSM parameters naming the latest Amazon Linux 2023 AMI per architecture. */
export const AMI_PARAMETERS: Record<HostArch, string> = {
  amd64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
  arm64: "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
};

/** Where the hosts may connect: HTTPS only. The AL2023 package repositories, the BuildKit
 *  download, registries, S3 and the AWS APIs all speak it; DNS, NTP and instance metadata use
 *  link-local addresses that security groups do not filter. */
export const EGRESS_PORTS = [443] as const;

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
      throw new pulumi.InputPropertyError({
        propertyPath: "config.enabled",
        reason:
          "BuildHosts: buildHosts.enabled is false; do not create the component for a disabled config",
      });
    }
    validateBuildHosts(cfg);
    const stack = args.stack ?? pulumi.getStack();
    const archs = args.architectures ?? [...HOST_ARCHS];
    if (archs.length === 0) {
      throw new pulumi.InputPropertyError({
        propertyPath: "architectures",
        reason: "BuildHosts: architectures is empty; nothing would be built natively",
      });
    }
    const release = args.buildkit ?? DEFAULT_BUILDKIT_RELEASE;
    const publicEndpoint = args.publicEndpoint ?? true;
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
              if (sorted.length === 0) {
                throw new pulumi.ResourceError(
                  "buildHosts.subnetId: unset and the default VPC has no default subnets",
                  this,
                );
              }
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
    // One rule per CIDR, named after the network so reordering the list changes nothing.
    for (const cidr of cfg.allowedCidrs) {
      const parsed = parseCidr(cidr);
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-ingress-${(parsed?.network ?? cidr).replace(/[^0-9a-fA-F]+/g, "-")}`,
        {
          securityGroupId: sg.id,
          ipProtocol: "tcp",
          fromPort: cfg.port,
          toPort: cfg.port,
          ...(parsed?.family === 6 ? { cidrIpv6: cidr } : { cidrIpv4: cidr }),
          description: "BuildKit mTLS from CI",
          tags: tagsFor("ingress"),
        },
        parent,
      );
    }
    for (const port of EGRESS_PORTS) {
      for (const v6 of [false, true]) {
        new aws.vpc.SecurityGroupEgressRule(
          `${name}-egress-https-${v6 ? "v6" : "v4"}`,
          {
            securityGroupId: sg.id,
            ipProtocol: "tcp",
            fromPort: port,
            toPort: port,
            ...(v6 ? { cidrIpv6: "::/0" } : { cidrIpv4: "0.0.0.0/0" }),
            description: "https to package repositories, registries and AWS APIs",
            tags: tagsFor("egress"),
          },
          parent,
        );
      }
    }

    // --- TLS and the account the keys live in ------------------------------------------------
    const pki = createPki(name, stack, this);
    const client = pki.leaf("client", `image-factory-${stack}-ci`, ["client_auth"]);
    const caller = aws.getCallerIdentityOutput({}, parent);
    const account: pulumi.Output<AccountContext> = pulumi
      .all([
        aws.getPartitionOutput({}, parent).partition,
        aws.getRegionOutput({}, parent).region,
        caller.accountId,
        // An assumed-role session is not a principal a key policy can name; its role is.
        aws.iam.getSessionContextOutput({ arn: caller.arn }, parent).issuerArn,
        caller.arn,
      ])
      .apply(([partition, region, accountId, issuerArn, callerArn]) => ({
        partition,
        region,
        accountId,
        deployerArn: issuerArn || callerArn,
      }));

    // --- one host per architecture -----------------------------------------------------------
    const hosts: Partial<Record<HostArch, Host>> = {};
    for (const arch of archs) {
      const archTags = (role: string): Record<string, string> =>
        tagsFor(role, { "image-factory:arch": arch });
      const serverName = builderName(stack, arch);
      const instanceType = arch === "amd64" ? cfg.amd64InstanceType : cfg.arm64InstanceType;
      const eip = publicEndpoint
        ? new aws.ec2.Eip(
            `${name}-${arch}-eip`,
            { domain: "vpc", tags: archTags(`${arch}-eip`) },
            parent,
          )
        : undefined;
      const server = pki.leaf(`${arch}-server`, serverName, ["server_auth"], {
        dnsNames: eip ? [serverName, eip.publicDns] : [serverName],
        ipAddresses: eip ? [eip.publicIp] : [],
      });
      const identity = createHostIdentity({
        name,
        stack,
        arch,
        serverKeyPem: server.key.privateKeyPem,
        account,
        cacheBucketArn: args.cacheBucketArn,
        tags: archTags,
        parent: this,
      });

      const volume = new aws.ebs.Volume(
        `${name}-${arch}-cache`,
        {
          availabilityZone: subnet.availabilityZone,
          size: cfg.cacheVolumeGb,
          type: "gp3",
          encrypted: true,
          tags: archTags(`${arch}-cache`),
        },
        parent,
      );

      // The name-based check in rules.ts ran already; EC2 has the last word on the architecture,
      // and the AMI is only looked up once its answer fits this host.
      const amiParameter = aws.ec2
        .getInstanceTypeOutput({ instanceType }, parent)
        .supportedArchitectures.apply((supported) => {
          const problem = ec2ArchProblem(arch, instanceType, supported);
          if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
          return AMI_PARAMETERS[arch];
        });
      const ami = aws.ssm.getParameterOutput({ name: amiParameter }, parent).value;
      const userData = pulumi
        .all([volume.id, identity.parameter.name, pki.ca.certPem, server.cert.certPem])
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
          instanceType,
          subnetId,
          vpcSecurityGroupIds: [sg.id],
          iamInstanceProfile: identity.profile.name,
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
            tags: archTags(`${arch}-root`),
          },
          userData,
          // cloud-init only acts on first boot: new user data must mean a new instance.
          userDataReplaceOnChange: true,
          tags: archTags(arch),
        },
        // The AMI parameter moves with every Amazon Linux release; following it would replace the
        // host on an unrelated `pulumi up`. Roll onto a new AMI with `pulumi up --replace`.
        { parent: this, ignoreChanges: ["ami"] },
      );
      grantSsmAccess({
        name,
        arch,
        ssmAccess: cfg.ssmAccess,
        role: identity.role,
        instanceArn: instance.arn,
        parent: this,
      });
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
    this.caCertPem = pki.ca.certPem;
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
