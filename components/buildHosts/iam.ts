// Who may do what around a build host. Each host has its own role, its own server key in an SSM
// SecureString and its own customer-managed KMS key for that parameter, so a host can decrypt its
// own key and nothing else: the key policy admits decryption by that host's role through SSM for
// that one parameter (the KMS encryption context carries its ARN), plus the identity running
// `pulumi up`, which wrote the value and holds it in Pulumi state anyway. The account root keeps
// administration (no decrypt, no grants) so the key can never become unmanageable.
//
// Systems Manager access is a choice (buildHosts.ssmAccess): `scoped` (default) grants Session
// Manager's channels and agent registration only for requests from that instance; `managed-core`
// attaches AmazonSSMManagedInstanceCore, whose ssm:GetParameter* on every parameter would let a
// host read every SecureString encrypted under a key it may use; `none` grants no agent access.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { HostArch, SsmAccess } from "../types";

export function assumeRolePolicy(): aws.iam.PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" },
    ],
  };
}

/** The host's own permissions: read and decrypt its server key through SSM; use the S3 cache if
 *  any (BuildKit exports and imports it itself, with the instance role). */
export function hostPolicy(opts: {
  parameterArn: string;
  keyArn: string;
  region: string;
  cacheBucketArn?: string;
}): aws.iam.PolicyDocument {
  const statements: aws.iam.PolicyStatement[] = [
    {
      Sid: "ReadOwnServerKey",
      Effect: "Allow",
      Action: ["ssm:GetParameter"],
      Resource: opts.parameterArn,
    },
    {
      Sid: "DecryptOwnServerKey",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: opts.keyArn,
      Condition: { StringEquals: { "kms:ViaService": `ssm.${opts.region}.amazonaws.com` } },
    },
  ];
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

// The agent's control channel and the shell's data channel, each created then opened.
const SSM_CHANNELS = [
  "CreateControlChannel",
  "CreateDataChannel",
  "OpenControlChannel",
  "OpenDataChannel",
];

/** Session Manager for one instance: what the SSM agent needs to register and open shell
 *  channels (AWS's documented minimum), only for requests made with that instance's role
 *  credentials. The ssmmessages actions take no resource ARN, hence the condition. */
export function sessionManagerPolicy(opts: { instanceArn: string }): aws.iam.PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "SessionManager",
        Effect: "Allow",
        Action: ["ssm:UpdateInstanceInformation", ...SSM_CHANNELS.map((c) => `ssmmessages:${c}`)],
        Resource: "*",
        Condition: { StringEquals: { "ec2:SourceInstanceARN": opts.instanceArn } },
      },
    ],
  };
}

/** What the account root (and through it, IAM policies) may do with a server-key KMS key:
 *  administration only. No Decrypt, no ReEncrypt, no CreateGrant (a grant could hand out Decrypt),
 *  and no DisableKeyRotation (the program keeps rotation on). */
export const KEY_ADMIN_ACTIONS = [
  "kms:CancelKeyDeletion",
  "kms:DescribeKey",
  "kms:DisableKey",
  "kms:EnableKey",
  "kms:EnableKeyRotation",
  "kms:GetKeyPolicy",
  "kms:GetKeyRotationStatus",
  "kms:ListGrants",
  "kms:ListKeyPolicies",
  "kms:ListKeyRotations",
  "kms:ListResourceTags",
  "kms:PutKeyPolicy",
  "kms:RevokeGrant",
  "kms:RotateKeyOnDemand",
  "kms:ScheduleKeyDeletion",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:UpdateKeyDescription",
] as const;

export interface AccountContext {
  partition: string;
  region: string;
  accountId: string;
  /** The IAM role or user behind the credentials running `pulumi up`. */
  deployerArn: string;
}

/** `arn:<partition>:ssm:<region>:<account>:parameter/<path>`: known before the parameter exists,
 *  which the key policy (created first) needs. */
export function parameterArn(ctx: AccountContext, name: string): string {
  return `arn:${ctx.partition}:ssm:${ctx.region}:${ctx.accountId}:parameter${name}`;
}

/** The key policy of one host's server-key KMS key. In a key policy `Resource: "*"` means this key. */
export function serverKeyPolicy(
  ctx: AccountContext,
  opts: { hostRoleArn: string; parameterArn: string },
): aws.iam.PolicyDocument {
  const viaSsm = {
    "kms:ViaService": `ssm.${ctx.region}.amazonaws.com`,
    "kms:EncryptionContext:PARAMETER_ARN": opts.parameterArn,
  };
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "AccountAdministersKey",
        Effect: "Allow",
        Principal: { AWS: `arn:${ctx.partition}:iam::${ctx.accountId}:root` },
        Action: [...KEY_ADMIN_ACTIONS],
        Resource: "*",
      },
      {
        Sid: "DeployerWritesServerKey",
        Effect: "Allow",
        Principal: { AWS: ctx.deployerArn },
        Action: ["kms:Encrypt", "kms:Decrypt"],
        Resource: "*",
        Condition: { StringEquals: viaSsm },
      },
      {
        Sid: "HostReadsOwnServerKey",
        Effect: "Allow",
        Principal: { AWS: opts.hostRoleArn },
        Action: ["kms:Decrypt"],
        Resource: "*",
        Condition: { StringEquals: viaSsm },
      },
    ],
  };
}

export interface HostIdentity {
  role: aws.iam.Role;
  profile: aws.iam.InstanceProfile;
  key: aws.kms.Key;
  parameter: aws.ssm.Parameter;
}

/** One host's role, instance profile, KMS key and server-key parameter, named `${name}-${arch}-…`. */
export function createHostIdentity(args: {
  name: string;
  stack: string;
  arch: HostArch;
  serverKeyPem: pulumi.Input<string>;
  account: pulumi.Output<AccountContext>;
  cacheBucketArn?: pulumi.Input<string>;
  tags: (role: string) => Record<string, string>;
  parent: pulumi.Resource;
}): HostIdentity {
  const { name, stack, arch, parent } = args;
  const opts = { parent };
  const parameterName = `/image-factory/${stack}/buildhosts/${arch}/server-key`;
  const role = new aws.iam.Role(
    `${name}-${arch}-role`,
    {
      assumeRolePolicy: JSON.stringify(assumeRolePolicy()),
      description: `image-factory ${stack} ${arch} BuildKit host`,
      tags: args.tags(`${arch}-role`),
    },
    opts,
  );
  const key = new aws.kms.Key(
    `${name}-${arch}-server-key-kms`,
    {
      description: `image-factory ${stack}: encrypts the ${arch} BuildKit host's server key (${parameterName})`,
      enableKeyRotation: true,
      deletionWindowInDays: 7,
      policy: pulumi.all([args.account, role.arn]).apply(([account, hostRoleArn]) =>
        JSON.stringify(
          serverKeyPolicy(account, {
            hostRoleArn,
            parameterArn: parameterArn(account, parameterName),
          }),
        ),
      ),
      tags: args.tags(`${arch}-server-key-kms`),
    },
    opts,
  );
  const parameter = new aws.ssm.Parameter(
    `${name}-${arch}-server-key`,
    {
      name: parameterName,
      type: "SecureString",
      // Standard parameters are encrypted with kms:Encrypt directly under the key (no data key).
      tier: "Standard",
      keyId: key.arn,
      value: pulumi.secret(args.serverKeyPem),
      description: `TLS key of the ${arch} BuildKit host; read once at boot by that host's role`,
      tags: args.tags(`${arch}-server-key`),
    },
    opts,
  );
  new aws.iam.RolePolicy(
    `${name}-${arch}-policy`,
    {
      role: role.id,
      policy: pulumi
        .all([parameter.arn, key.arn, args.account, pulumi.output(args.cacheBucketArn)])
        .apply(([parameterArn, keyArn, account, cacheBucketArn]) =>
          JSON.stringify(
            hostPolicy({ parameterArn, keyArn, region: account.region, cacheBucketArn }),
          ),
        ),
    },
    opts,
  );
  const profile = new aws.iam.InstanceProfile(
    `${name}-${arch}-profile`,
    { role: role.name, tags: args.tags(`${arch}-profile`) },
    opts,
  );
  return { role, profile, key, parameter };
}

/** Systems Manager access for one host, per buildHosts.ssmAccess. The scoped policy names the
 *  instance, so it is attached once the instance exists; the SSM agent retries its registration. */
export function grantSsmAccess(args: {
  name: string;
  arch: HostArch;
  ssmAccess: SsmAccess;
  role: aws.iam.Role;
  instanceArn: pulumi.Output<string>;
  parent: pulumi.Resource;
}): void {
  const { name, arch, parent } = args;
  if (args.ssmAccess === "managed-core") {
    new aws.iam.RolePolicyAttachment(
      `${name}-${arch}-ssm-core`,
      { role: args.role.name, policyArn: aws.iam.ManagedPolicy.AmazonSSMManagedInstanceCore },
      { parent },
    );
  } else if (args.ssmAccess === "scoped") {
    new aws.iam.RolePolicy(
      `${name}-${arch}-session-manager`,
      {
        role: args.role.id,
        policy: args.instanceArn.apply((instanceArn) =>
          JSON.stringify(sessionManagerPolicy({ instanceArn })),
        ),
      },
      { parent },
    );
  }
}
