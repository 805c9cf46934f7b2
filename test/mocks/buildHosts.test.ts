// BuildHosts under Pulumi mocks: AWS and the TLS provider answer like the real ones would (ids, ARNs,
// IPs, PEM-shaped text, EC2's instance-type facts); everything the component derives from them is
// the real code. Other test files call setMocks in the same mocha process, so this file installs its
// mocks in `before` and loads the component only afterwards. The pure rules are in
// test/unit/buildHostRules.test.ts.
import * as assert from "node:assert/strict";
import type * as pulumiType from "@pulumi/pulumi";
import { parse } from "yaml";
import type * as buildHostsModule from "../../components/buildHosts";
import { buildHostsConfig as config } from "../lib/buildHosts";
import { type Harness, type Registered, recordingMocks, resolve } from "./harness";

type Pulumi = typeof pulumiType;
type Module = typeof buildHostsModule;

type Call = Harness["calls"][number];
/** An IAM or key policy as it reaches the provider (JSON text, parsed). */
interface Statement {
  Sid?: string;
  Effect: string;
  Principal?: string | Record<string, string>;
  Action: string | string[];
  Resource?: string | string[];
  Condition?: Record<string, Record<string, string>>;
}
interface Doc {
  Version: string;
  Statement: Statement[];
}

const ACCOUNT = "123456789012";
const AMI = { amd64: "ami-0x86640000000001", arm64: "ami-0arm640000000001" };
const EIP: Record<string, string> = { amd64: "198.51.100.20", arm64: "198.51.100.21" };
const PRIVATE_IP: Record<string, string> = { amd64: "198.51.100.120", arm64: "198.51.100.121" };
const VOLUME: Record<string, string> = {
  amd64: "vol-0a1b2c3d4e5f60001",
  arm64: "vol-0a1b2c3d4e5f60002",
};
const KMS_KEY: Record<string, string> = {
  amd64: "0b9e4c1e-0000-4000-8000-00000000a864",
  arm64: "0b9e4c1e-0000-4000-8000-00000000a264",
};
const INSTANCE: Record<string, string> = {
  amd64: "i-0amd640123456789",
  arm64: "i-0arm640123456789",
};
/** `pulumi up` runs as an SSO-style assumed role; the key policy must name the role itself. */
const CALLER_ARN = `arn:aws:sts::${ACCOUNT}:assumed-role/image-factory-deployer/ci-1234`;
const DEPLOYER_ROLE = `arn:aws:iam::${ACCOUNT}:role/ci/image-factory-deployer`;
/** DescribeInstanceTypes facts for the types these tests use. */
const INSTANCE_TYPES: Record<string, { arch: string[]; vcpus: number; memoryMib: number }> = {
  "c7i.xlarge": { arch: ["x86_64"], vcpus: 4, memoryMib: 8192 },
  "c7g.xlarge": { arch: ["arm64"], vcpus: 4, memoryMib: 8192 },
  "m7a.2xlarge": { arch: ["x86_64"], vcpus: 8, memoryMib: 32768 },
  "t3.large": { arch: ["i386", "x86_64"], vcpus: 2, memoryMib: 8192 },
};
/** Lets a test make EC2 disagree with the offline table. */
let ec2Override: Record<string, string[]> = {};

const pem = (kind: string, body: string): string =>
  `-----BEGIN ${kind}-----\n${Buffer.from(body).toString("base64")}\n-----END ${kind}-----\n`;
const archOf = (name: string): string => (name.includes("arm64") ? "arm64" : "amd64");
const parameterArn = (arch: string): string =>
  `arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/image-factory/dev/buildhosts/${arch}/server-key`;
const keyArn = (arch: string): string => `arn:aws:kms:eu-west-1:${ACCOUNT}:key/${KMS_KEY[arch]}`;
const instanceArn = (arch: string): string =>
  `arn:aws:ec2:eu-west-1:${ACCOUNT}:instance/${INSTANCE[arch]}`;

let pulumi: Pulumi;
let mod: Module;
const registered: Registered[] = [];
const calls: Call[] = [];

/** Waits until no resource has registered for a while: applies inside the component finish. */
async function settle(): Promise<void> {
  let last = -1;
  while (last !== registered.length) {
    last = registered.length;
    await new Promise((r) => setTimeout(r, 60));
  }
}

/** Each resource's name, then the inputs named by `fields`, in order: one row a resource. */
function inputsOf(resources: Registered[], ...fields: string[]): unknown[][] {
  return resources.map((r) => [r.name, ...fields.map((f) => r.inputs[f])]);
}

async function create(name: string, args: Partial<buildHostsModule.BuildHostsArgs> = {}) {
  const hosts = new mod.BuildHosts(name, { config: config(), stack: "dev", ...args });
  await resolve(hosts.builderCommands);
  await resolve(hosts.instanceIds);
  await settle();
  const mine = registered.filter((r) => r.name.startsWith(`${name}-`));
  const of = (type: string) => mine.filter((r) => r.type === type);
  const policy = (resource: Registered, field = "policy"): Doc =>
    JSON.parse(String(resource.inputs[field])) as Doc;
  return { hosts, mine, of, policy };
}

describe("BuildHosts (mocks)", () => {
  before(async () => {
    pulumi = await import("@pulumi/pulumi");
    await recordingMocks(
      { resources: registered, calls },
      (a, inputs) => {
        const arch = archOf(a.name);
        switch (a.type) {
          case "tls:index/privateKey:PrivateKey":
            return {
              id: a.name,
              state: {
                ...inputs,
                privateKeyPem: pem("PRIVATE KEY", `key ${a.name}`),
                publicKeyPem: pem("PUBLIC KEY", `pub ${a.name}`),
              },
            };
          case "tls:index/certRequest:CertRequest":
            return {
              id: a.name,
              state: { ...inputs, certRequestPem: pem("CERTIFICATE REQUEST", `csr ${a.name}`) },
            };
          case "tls:index/selfSignedCert:SelfSignedCert":
          case "tls:index/locallySignedCert:LocallySignedCert":
            return {
              id: a.name,
              state: { ...inputs, certPem: pem("CERTIFICATE", `cert ${a.name}`) },
            };
          case "aws:ec2/eip:Eip":
            return {
              id: `eipalloc-${arch}`,
              state: {
                ...inputs,
                allocationId: `eipalloc-${arch}`,
                publicIp: EIP[arch],
                publicDns: `ec2-${EIP[arch].replace(/\./g, "-")}.eu-west-1.compute.amazonaws.com`,
              },
            };
          case "aws:ebs/volume:Volume":
            return {
              id: VOLUME[arch],
              state: {
                ...inputs,
                arn: `arn:aws:ec2:eu-west-1:${ACCOUNT}:volume/${VOLUME[arch]}`,
              },
            };
          case "aws:kms/key:Key":
            return {
              id: KMS_KEY[arch],
              state: { ...inputs, keyId: KMS_KEY[arch], arn: keyArn(arch) },
            };
          case "aws:ssm/parameter:Parameter":
            return {
              id: String(inputs.name),
              state: {
                ...inputs,
                arn: `arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter${String(inputs.name)}`,
              },
            };
          case "aws:ec2/instance:Instance":
            return {
              id: INSTANCE[arch],
              state: {
                ...inputs,
                arn: instanceArn(arch),
                privateIp: PRIVATE_IP[arch],
                publicIp: "",
              },
            };
          case "aws:iam/role:Role":
            return {
              id: a.name,
              state: { ...inputs, name: a.name, arn: `arn:aws:iam::${ACCOUNT}:role/${a.name}` },
            };
          case "aws:iam/instanceProfile:InstanceProfile":
            return {
              id: a.name,
              state: {
                ...inputs,
                name: a.name,
                arn: `arn:aws:iam::${ACCOUNT}:instance-profile/${a.name}`,
              },
            };
          default:
            return { id: `${a.name}-id`, state: inputs };
        }
      },
      (c, inputs) => {
        switch (c.token) {
          case "aws:ssm/getParameter:getParameter": {
            const name = String(inputs.name);
            return {
              id: name,
              name,
              type: "String",
              value: name.endsWith("arm64") ? AMI.arm64 : AMI.amd64,
            };
          }
          case "aws:ec2/getInstanceType:getInstanceType": {
            const type = String(inputs.instanceType);
            const facts = INSTANCE_TYPES[type];
            return {
              id: type,
              instanceType: type,
              supportedArchitectures: ec2Override[type] ?? facts.arch,
              defaultVcpus: facts.vcpus,
              memorySize: facts.memoryMib,
              currentGeneration: true,
              supportedVirtualizationTypes: ["hvm"],
              hypervisor: "nitro",
            };
          }
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { id: ACCOUNT, accountId: ACCOUNT, arn: CALLER_ARN, userId: "AROA:ci-1234" };
          case "aws:iam/getSessionContext:getSessionContext":
            return {
              id: String(inputs.arn),
              arn: inputs.arn,
              issuerArn: DEPLOYER_ROLE,
              issuerId: "AROAEXAMPLE",
              issuerName: "image-factory-deployer",
              sessionName: "ci-1234",
            };
          case "aws:index/getRegion:getRegion":
            return { id: "eu-west-1", name: "eu-west-1", region: "eu-west-1" };
          case "aws:index/getPartition:getPartition":
            return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com" };
          case "aws:ec2/getVpc:getVpc":
            return { id: "vpc-0default", cidrBlock: "198.51.100.0/24", default: true };
          case "aws:ec2/getSubnets:getSubnets":
            return {
              id: "eu-west-1",
              ids: ["subnet-0bbbbbbbbbbbbbbbb", "subnet-0aaaaaaaaaaaaaaaa"],
            };
          case "aws:ec2/getSubnet:getSubnet":
            return { id: inputs.id, vpcId: "vpc-0default", availabilityZone: "eu-west-1a" };
          default:
            return inputs;
        }
      },
    );
    mod = await import("../../components/buildHosts");
  });

  beforeEach(() => {
    registered.length = 0;
    calls.length = 0;
    ec2Override = {};
  });

  it("asks EC2 for each type's architecture and boots each host from its architecture's AMI", async () => {
    const { of } = await create("hosts-a");
    const instances = of("aws:ec2/instance:Instance");
    assert.deepEqual(instances.map((i) => i.name).sort(), [
      "hosts-a-amd64-instance",
      "hosts-a-arm64-instance",
    ]);
    const byArch = Object.fromEntries(instances.map((i) => [archOf(i.name), i.inputs]));
    assert.equal(byArch.amd64.instanceType, "c7i.xlarge");
    assert.equal(byArch.arm64.instanceType, "c7g.xlarge");
    assert.equal(byArch.amd64.ami, AMI.amd64);
    assert.equal(byArch.arm64.ami, AMI.arm64);
    const asked = calls
      .filter((c) => c.token === "aws:ec2/getInstanceType:getInstanceType")
      .map((c) => c.inputs.instanceType);
    assert.deepEqual([...asked].sort(), ["c7g.xlarge", "c7i.xlarge"]);
    const amiCalls = calls
      .filter((c) => c.token === "aws:ssm/getParameter:getParameter")
      .map((c) => c.inputs.name);
    assert.deepEqual([...amiCalls].sort(), [
      "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
      "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    ]);
    // The default VPC's default subnets, lowest id first.
    for (const i of instances) assert.equal(i.inputs.subnetId, "subnet-0aaaaaaaaaaaaaaaa");
  });

  it("creates no instance for a host whose type EC2 reports for the other architecture", async () => {
    ec2Override = { "c7g.xlarge": ["x86_64"] };
    // Without an engine the SDK reports the failed registration through console.error.
    const logged: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]): void => {
      logged.push(args.map(String).join(" "));
    };
    try {
      new mod.BuildHosts("hosts-q", { config: config(), stack: "dev" });
      await new Promise((r) => setTimeout(r, 500));
      await settle();
    } finally {
      console.error = consoleError;
    }
    assert.ok(
      logged.some((l) =>
        l.includes(
          "buildHosts.arm64InstanceType: 'c7g.xlarge' supports x86_64 according to EC2; the arm64 host needs an arm64 (Graviton) type",
        ),
      ),
      logged.join("\n"),
    );
    const instances = registered.filter((r) => r.type === "aws:ec2/instance:Instance");
    assert.deepEqual(
      instances.map((i) => i.name),
      ["hosts-q-amd64-instance"],
    );
    const amiCalls = calls.filter((c) => c.token === "aws:ssm/getParameter:getParameter");
    assert.deepEqual(
      amiCalls.map((c) => c.inputs.name),
      ["/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"],
    );
  });

  it("requires IMDSv2 with hop limit 1, encrypts the root volume and has no key pair", async () => {
    const { of, mine } = await create("hosts-b");
    for (const i of of("aws:ec2/instance:Instance")) {
      const md = i.inputs.metadataOptions as Record<string, unknown>;
      assert.equal(md.httpTokens, "required");
      assert.equal(md.httpPutResponseHopLimit, 1);
      const root = i.inputs.rootBlockDevice as Record<string, unknown>;
      assert.equal(root.encrypted, true);
      assert.equal(root.volumeType, "gp3");
      assert.equal(i.inputs.keyName, undefined);
      assert.equal(i.inputs.userDataReplaceOnChange, true);
      assert.equal(i.inputs.associatePublicIpAddress, true);
    }
    assert.deepEqual(
      mine.filter((r) => /keyPair/i.test(r.type)),
      [],
    );
  });

  it("gives each host an encrypted gp3 cache volume of the configured size, attached to it", async () => {
    const { of } = await create("hosts-c", { config: config({ cacheVolumeGb: 350 }) });
    const volumes = of("aws:ebs/volume:Volume");
    assert.deepEqual(inputsOf(volumes, "type", "encrypted", "size", "availabilityZone"), [
      ["hosts-c-amd64-cache", "gp3", true, 350, "eu-west-1a"],
      ["hosts-c-arm64-cache", "gp3", true, 350, "eu-west-1a"],
    ]);
    const attachments = of("aws:ec2/volumeAttachment:VolumeAttachment");
    assert.deepEqual(attachments.map((a) => [a.inputs.volumeId, a.inputs.instanceId]).sort(), [
      [VOLUME.amd64, INSTANCE.amd64],
      [VOLUME.arm64, INSTANCE.arm64],
    ]);
  });

  it("has no ingress rule for an empty CIDR list, and egress on 443 only (no port 80)", async () => {
    const { of, mine } = await create("hosts-d");
    assert.deepEqual(of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"), []);
    assert.deepEqual(
      mine.filter((r) => r.type === "aws:ec2/securityGroupRule:SecurityGroupRule"),
      [],
    );
    const sg = of("aws:ec2/securityGroup:SecurityGroup");
    assert.deepEqual(
      sg.map((s) => [s.name, s.inputs.ingress, s.inputs.egress]),
      [["hosts-d-sg", undefined, undefined]],
    );
    const egress = of("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").map((r) => [
      r.name,
      r.inputs.ipProtocol,
      r.inputs.fromPort,
      r.inputs.toPort,
      r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6,
    ]);
    assert.deepEqual(egress, [
      ["hosts-d-egress-https-v4", "tcp", 443, 443, "0.0.0.0/0"],
      ["hosts-d-egress-https-v6", "tcp", 443, 443, "::/0"],
    ]);
  });

  it("admits the BuildKit port from exactly the configured CIDRs", async () => {
    const cidrs = ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/64"];
    const { of } = await create("hosts-e", { config: config({ allowedCidrs: cidrs, port: 8372 }) });
    const rules = of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
    assert.deepEqual(
      rules.map((r) => ({
        name: r.name,
        cidr: r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6,
        v6: r.inputs.cidrIpv6 !== undefined,
        from: r.inputs.fromPort,
        to: r.inputs.toPort,
        proto: r.inputs.ipProtocol,
      })),
      [
        {
          name: "hosts-e-ingress-203-0-113-7-32",
          cidr: "203.0.113.7/32",
          v6: false,
          from: 8372,
          to: 8372,
          proto: "tcp",
        },
        {
          name: "hosts-e-ingress-198-51-100-0-24",
          cidr: "198.51.100.0/24",
          v6: false,
          from: 8372,
          to: 8372,
          proto: "tcp",
        },
        {
          name: "hosts-e-ingress-2001-db8-64",
          cidr: "2001:db8::/64",
          v6: true,
          from: 8372,
          to: 8372,
          proto: "tcp",
        },
      ],
    );
  });

  it("refuses an open-world or too-wide CIDR before creating anything", async () => {
    for (const [name, allowedCidrs, message] of [
      ["hosts-f", ["0.0.0.0/0"], /buildHosts\.allowedCidrs\[0\]: '0\.0\.0\.0\/0' opens/],
      ["hosts-f2", ["::/0"], /'::\/0' opens/],
      ["hosts-f3", ["203.0.0.0/8"], /'203\.0\.0\.0\/8' admits 16777216 addresses/],
    ] as const) {
      assert.throws(
        () =>
          new mod.BuildHosts(name, {
            config: config({ allowedCidrs: [...allowedCidrs] }),
            stack: "dev",
          }),
        (e: Error) => pulumi.InputPropertyError.isInstance(e) && message.test(e.message),
      );
    }
    await settle();
    assert.deepEqual(
      registered.filter(
        (r) => r.name.startsWith("hosts-f") && r.type !== "image-factory:buildhosts:BuildHosts",
      ),
      [],
    );
  });

  it("refuses a disabled config: program.ts does not create the component then", async () => {
    assert.throws(
      () => new mod.BuildHosts("hosts-g", { config: config({ enabled: false }), stack: "dev" }),
      /enabled is false/,
    );
  });

  it("gives each host a role that reads and decrypts its own server key only, and no managed SSM policy", async () => {
    const { of, policy } = await create("hosts-h");
    assert.deepEqual(of("aws:iam/rolePolicyAttachment:RolePolicyAttachment"), []);
    for (const role of of("aws:iam/role:Role")) {
      assert.deepEqual(policy(role, "assumeRolePolicy").Statement, [
        { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" },
      ]);
    }
    const hostPolicies = of("aws:iam/rolePolicy:RolePolicy").filter((p) =>
      p.name.endsWith("-policy"),
    );
    assert.deepEqual(
      hostPolicies.map((p) => p.name),
      ["hosts-h-amd64-policy", "hosts-h-arm64-policy"],
    );
    for (const p of hostPolicies) {
      const arch = archOf(p.name);
      assert.equal(p.inputs.role, `hosts-h-${arch}-role`);
      assert.deepEqual(policy(p), {
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "ReadOwnServerKey",
            Effect: "Allow",
            Action: ["ssm:GetParameter"],
            Resource: parameterArn(arch),
          },
          {
            Sid: "DecryptOwnServerKey",
            Effect: "Allow",
            Action: ["kms:Decrypt"],
            Resource: keyArn(arch),
            Condition: { StringEquals: { "kms:ViaService": "ssm.eu-west-1.amazonaws.com" } },
          },
        ],
      });
    }
  });

  it("scopes Session Manager to each instance by default (ssmAccess scoped)", async () => {
    const { of, policy } = await create("hosts-p");
    const session = of("aws:iam/rolePolicy:RolePolicy").filter((p) =>
      p.name.endsWith("-session-manager"),
    );
    assert.deepEqual(
      session.map((p) => [p.name, p.inputs.role]),
      [
        ["hosts-p-amd64-session-manager", "hosts-p-amd64-role"],
        ["hosts-p-arm64-session-manager", "hosts-p-arm64-role"],
      ],
    );
    for (const p of session) {
      assert.deepEqual(policy(p), {
        Version: "2012-10-17",
        Statement: [
          {
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
            Condition: { StringEquals: { "ec2:SourceInstanceARN": instanceArn(archOf(p.name)) } },
          },
        ],
      });
    }
  });

  it("attaches AmazonSSMManagedInstanceCore only with ssmAccess managed-core, and nothing with none", async () => {
    const core = await create("hosts-r", { config: config({ ssmAccess: "managed-core" }) });
    assert.deepEqual(
      core
        .of("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        .map((a) => [a.name, a.inputs.policyArn]),
      [
        ["hosts-r-amd64-ssm-core", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
        ["hosts-r-arm64-ssm-core", "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"],
      ],
    );
    assert.deepEqual(
      core.of("aws:iam/rolePolicy:RolePolicy").map((p) => p.name),
      ["hosts-r-amd64-policy", "hosts-r-arm64-policy"],
    );
    const none = await create("hosts-s", { config: config({ ssmAccess: "none" }) });
    assert.deepEqual(none.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment"), []);
    assert.deepEqual(
      none.of("aws:iam/rolePolicy:RolePolicy").map((p) => p.name),
      ["hosts-s-amd64-policy", "hosts-s-arm64-policy"],
    );
  });

  it("encrypts each server key with its own rotating KMS key that only that host's role may decrypt", async () => {
    const { of, policy } = await create("hosts-k2");
    // The account administers the key (it can always recover it) but can never use it.
    for (const must of ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"])
      assert.ok(mod.KEY_ADMIN_ACTIONS.includes(must as never), must);
    assert.deepEqual(
      mod.KEY_ADMIN_ACTIONS.filter((a) =>
        /^kms:(Decrypt|Encrypt|ReEncrypt|GenerateDataKey|CreateGrant|DisableKeyRotation)|\*/.test(
          a,
        ),
      ),
      [],
    );
    const keys = of("aws:kms/key:Key");
    assert.deepEqual(
      keys.map((k) => [k.name, k.inputs.enableKeyRotation, k.inputs.deletionWindowInDays]),
      [
        ["hosts-k2-amd64-server-key-kms", true, 7],
        ["hosts-k2-arm64-server-key-kms", true, 7],
      ],
    );
    for (const k of keys) {
      const arch = archOf(k.name);
      const viaSsm = {
        "kms:ViaService": "ssm.eu-west-1.amazonaws.com",
        "kms:EncryptionContext:PARAMETER_ARN": parameterArn(arch),
      };
      assert.deepEqual(policy(k), {
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "AccountAdministersKey",
            Effect: "Allow",
            Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
            Action: [...mod.KEY_ADMIN_ACTIONS],
            Resource: "*",
          },
          {
            Sid: "DeployerWritesServerKey",
            Effect: "Allow",
            Principal: { AWS: DEPLOYER_ROLE },
            Action: ["kms:Encrypt", "kms:Decrypt"],
            Resource: "*",
            Condition: { StringEquals: viaSsm },
          },
          {
            Sid: "HostReadsOwnServerKey",
            Effect: "Allow",
            Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/hosts-k2-${arch}-role` },
            Action: ["kms:Decrypt"],
            Resource: "*",
            Condition: { StringEquals: viaSsm },
          },
        ],
      });
    }
    const params = of("aws:ssm/parameter:Parameter");
    assert.deepEqual(
      params.map((p) => [p.inputs.name, p.inputs.type, p.inputs.tier, p.inputs.keyId]),
      [
        [
          "/image-factory/dev/buildhosts/amd64/server-key",
          "SecureString",
          "Standard",
          keyArn("amd64"),
        ],
        [
          "/image-factory/dev/buildhosts/arm64/server-key",
          "SecureString",
          "Standard",
          keyArn("arm64"),
        ],
      ],
    );
  });

  it("grants no wildcard action, no Principal '*', and no kms:* or decryption to the account at large", async () => {
    const { of, policy } = await create("hosts-w", {
      cacheBucketArn: "arn:aws:s3:::acme-image-factory-cache",
    });
    const docs = [
      ...of("aws:iam/rolePolicy:RolePolicy").map((p) => [p.name, policy(p)] as const),
      ...of("aws:kms/key:Key").map((k) => [k.name, policy(k)] as const),
    ];
    assert.equal(docs.length, 6);
    for (const [name, doc] of docs) {
      for (const s of doc.Statement) {
        for (const action of [s.Action].flat()) {
          assert.ok(!action.includes("*"), `${name}: wildcard action ${action}`);
        }
        assert.notEqual(s.Principal, "*", `${name}: Principal "*"`);
        if (typeof s.Principal === "object") assert.notEqual(s.Principal.AWS, "*", name);
        if (typeof s.Principal === "object" && s.Principal.AWS?.endsWith(":root")) {
          assert.ok(
            ![s.Action].flat().some((a) => /Decrypt|Encrypt|CreateGrant|GenerateDataKey/.test(a)),
            name,
          );
        }
        // Resource "*" only where the actions take no ARN (ssmmessages) or in a key policy (this key).
        if (!name.endsWith("-session-manager") && !name.endsWith("-kms")) {
          for (const r of [s.Resource ?? []].flat()) assert.notEqual(r, "*", `${name}: ${s.Sid}`);
        }
      }
    }
  });

  it("adds S3 access scoped to the cache bucket when one is given", async () => {
    const bucket = "arn:aws:s3:::acme-image-factory-cache";
    const { of, policy } = await create("hosts-i", { cacheBucketArn: bucket });
    for (const p of of("aws:iam/rolePolicy:RolePolicy").filter((r) => r.name.endsWith("-policy"))) {
      const s3 = policy(p).Statement.filter((s) =>
        [s.Action].flat().some((a) => a.startsWith("s3:")),
      );
      assert.deepEqual(s3, [
        {
          Sid: "CacheObjects",
          Effect: "Allow",
          Action: ["s3:GetObject", "s3:PutObject"],
          Resource: `${bucket}/*`,
        },
        { Sid: "CacheListing", Effect: "Allow", Action: ["s3:ListBucket"], Resource: bucket },
      ]);
    }
  });

  it("keeps server keys out of user data: SecureString parameters, fetched at boot", async () => {
    const { of } = await create("hosts-j");
    const params = of("aws:ssm/parameter:Parameter");
    // The key reaches the provider as a secret (the engine encrypts it in state), never in clear.
    const SECRET_SIG = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270" };
    for (const p of params) {
      assert.deepEqual(p.inputs.value, {
        ...SECRET_SIG,
        value: pem("PRIVATE KEY", `key hosts-j-${archOf(p.name)}-server-key`),
      });
    }
    for (const i of of("aws:ec2/instance:Instance")) {
      const arch = archOf(i.name);
      const userData = String(i.inputs.userData);
      assert.ok(userData.startsWith("#cloud-config\n"));
      assert.doesNotMatch(userData, /PRIVATE KEY/);
      const doc = parse(userData, { version: "1.1" }) as {
        write_files: Array<{ path: string; content: string }>;
      };
      const files = Object.fromEntries(doc.write_files.map((f) => [f.path, f.content]));
      assert.equal(files["/etc/buildkit/tls/ca.pem"], pem("CERTIFICATE", "cert hosts-j-ca"));
      assert.equal(
        files["/etc/buildkit/tls/server.pem"],
        pem("CERTIFICATE", `cert hosts-j-${arch}-server-cert`),
      );
      const setup = files["/usr/local/sbin/image-factory-buildhost-setup"];
      assert.ok(setup.includes(`VOLUME_ID='${VOLUME[arch]}'`));
      assert.ok(setup.includes(`KEY_PARAMETER='/image-factory/dev/buildhosts/${arch}/server-key'`));
      assert.ok(setup.includes(`linux-${arch}.tar.gz`));
      assert.match(files["/etc/buildkit/buildkitd.toml"], /address = \["tcp:\/\/0\.0\.0\.0:1234"/);
    }
  });

  it("names each server by its builder name and Elastic IP; the CA signs leaves only, for two years", async () => {
    const { of } = await create("hosts-k");
    const csrs = of("tls:index/certRequest:CertRequest");
    const server = Object.fromEntries(
      csrs.filter((c) => c.name.includes("server")).map((c) => [archOf(c.name), c.inputs]),
    );
    for (const arch of ["amd64", "arm64"]) {
      assert.deepEqual(server[arch].dnsNames, [
        `image-factory-dev-${arch}`,
        `ec2-${EIP[arch].replace(/\./g, "-")}.eu-west-1.compute.amazonaws.com`,
      ]);
      assert.deepEqual(server[arch].ipAddresses, [EIP[arch]]);
    }
    const certs = of("tls:index/locallySignedCert:LocallySignedCert");
    assert.deepEqual(inputsOf(certs, "isCaCertificate", "validityPeriodHours", "allowedUses"), [
      [
        "hosts-k-client-cert",
        false,
        8760,
        ["digital_signature", "key_encipherment", "client_auth"],
      ],
      [
        "hosts-k-amd64-server-cert",
        false,
        8760,
        ["digital_signature", "key_encipherment", "server_auth"],
      ],
      [
        "hosts-k-arm64-server-cert",
        false,
        8760,
        ["digital_signature", "key_encipherment", "server_auth"],
      ],
    ]);
    const ca = of("tls:index/selfSignedCert:SelfSignedCert");
    assert.deepEqual(
      inputsOf(
        ca,
        "isCaCertificate",
        "maxPathLength",
        "validityPeriodHours",
        "earlyRenewalHours",
        "allowedUses",
      ),
      [["hosts-k-ca", true, 0, 17520, 2160, ["cert_signing", "crl_signing", "digital_signature"]]],
    );
  });

  it("outputs endpoints, builder commands without secrets, and a secret client key", async () => {
    const { hosts } = await create("hosts-l");
    const endpoints = await resolve(hosts.endpoints);
    assert.deepEqual(endpoints, {
      amd64: "tcp://198.51.100.20:1234",
      arm64: "tcp://198.51.100.21:1234",
    });
    const commands = await resolve(hosts.builderCommands);
    const dir = "/tmp/image-factory/buildkit/dev";
    assert.deepEqual(commands, {
      amd64: `docker buildx create --name image-factory-dev-amd64 --driver remote --driver-opt cacert=${dir}/ca.pem,cert=${dir}/client.pem,key=${dir}/client-key.pem,servername=image-factory-dev-amd64 --platform linux/amd64 tcp://198.51.100.20:1234`,
      arm64: `docker buildx create --name image-factory-dev-arm64 --driver remote --driver-opt cacert=${dir}/ca.pem,cert=${dir}/client.pem,key=${dir}/client-key.pem,servername=image-factory-dev-arm64 --platform linux/arm64,linux/arm/v7 tcp://198.51.100.21:1234`,
    });
    assert.equal(await pulumi.isSecret(hosts.builderCommands), false);
    for (const c of Object.values(commands)) assert.doesNotMatch(c, /BEGIN/);
    assert.deepEqual(hosts.builderNames, {
      amd64: "image-factory-dev-amd64",
      arm64: "image-factory-dev-arm64",
    });
    assert.deepEqual(hosts.certFiles, {
      ca: `${dir}/ca.pem`,
      cert: `${dir}/client.pem`,
      key: `${dir}/client-key.pem`,
    });
    assert.equal(await pulumi.isSecret(hosts.clientKeyPem), true);
    assert.equal(await resolve(hosts.clientKeyPem), pem("PRIVATE KEY", "key hosts-l-client-key"));
    assert.equal(await resolve(hosts.caCertPem), pem("CERTIFICATE", "cert hosts-l-ca"));
    assert.equal(
      await resolve(hosts.clientCertPem),
      pem("CERTIFICATE", "cert hosts-l-client-cert"),
    );
  });

  it("uses private addresses without Elastic IPs when publicEndpoint is off", async () => {
    const { hosts, of } = await create("hosts-m", {
      publicEndpoint: false,
      certDir: "/run/ci/certs",
    });
    assert.deepEqual(of("aws:ec2/eip:Eip"), []);
    assert.deepEqual(of("aws:ec2/eipAssociation:EipAssociation"), []);
    for (const i of of("aws:ec2/instance:Instance"))
      assert.equal(i.inputs.associatePublicIpAddress, false);
    assert.deepEqual(await resolve(hosts.endpoints), {
      amd64: "tcp://198.51.100.120:1234",
      arm64: "tcp://198.51.100.121:1234",
    });
    assert.match((await resolve(hosts.builderCommands)).amd64, /cacert=\/run\/ci\/certs\/ca\.pem,/);
  });

  it("creates only the architectures asked for", async () => {
    const { hosts, of } = await create("hosts-n", {
      architectures: ["amd64"],
      config: config({ subnetId: "subnet-0123456789abcdef0", amd64InstanceType: "m7a.2xlarge" }),
    });
    assert.deepEqual(inputsOf(of("aws:ec2/instance:Instance"), "instanceType", "subnetId"), [
      ["hosts-n-amd64-instance", "m7a.2xlarge", "subnet-0123456789abcdef0"],
    ]);
    assert.deepEqual(Object.keys(await resolve(hosts.endpoints)), ["amd64"]);
    assert.deepEqual(
      calls.filter((c) => c.token === "aws:ec2/getSubnets:getSubnets"),
      [],
      "an explicit subnet needs no lookup",
    );
  });

  it("tags every taggable resource with the stack and its role", async () => {
    const { mine } = await create("hosts-o", { tags: { team: "platform" } });
    for (const type of [
      "aws:ec2/instance:Instance",
      "aws:ebs/volume:Volume",
      "aws:ec2/securityGroup:SecurityGroup",
      "aws:iam/role:Role",
      "aws:iam/instanceProfile:InstanceProfile",
      "aws:kms/key:Key",
      "aws:ssm/parameter:Parameter",
      "aws:ec2/eip:Eip",
      "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    ]) {
      const all = mine.filter((r) => r.type === type);
      assert.ok(all.length > 0, `${type} missing`);
      for (const r of all) {
        const tags = r.inputs.tags as Record<string, string> | undefined;
        assert.equal(tags?.["image-factory:stack"], "dev", r.name);
        assert.equal(tags?.team, "platform", r.name);
        assert.ok(tags?.["image-factory:role"], r.name);
      }
    }
  });
});
