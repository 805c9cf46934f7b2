// BuildHosts under Pulumi mocks: AWS and the TLS provider answer like the real ones would (ids, IPs,
// PEM-shaped text); everything the component derives from them is the real code. Other test files
// call setMocks in the same mocha process, so this file installs its mocks in `before` and loads
// the component only afterwards.
import * as assert from "node:assert/strict";
import type * as pulumiType from "@pulumi/pulumi";
import { parse } from "yaml";
import type * as buildHostsModule from "../../components/buildHosts";
import type { BuildHostsConfig } from "../../components/types";

type Pulumi = typeof pulumiType;
type Module = typeof buildHostsModule;

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
interface Call {
  token: string;
  inputs: Record<string, unknown>;
}

const AMI = { amd64: "ami-0x86640000000001", arm64: "ami-0arm640000000001" };
const EIP: Record<string, string> = { amd64: "198.51.100.20", arm64: "198.51.100.21" };
const PRIVATE_IP: Record<string, string> = { amd64: "198.51.100.120", arm64: "198.51.100.121" };
const VOLUME: Record<string, string> = {
  amd64: "vol-0a1b2c3d4e5f60001",
  arm64: "vol-0a1b2c3d4e5f60002",
};

const pem = (kind: string, body: string): string =>
  `-----BEGIN ${kind}-----\n${Buffer.from(body).toString("base64")}\n-----END ${kind}-----\n`;
const archOf = (name: string): string => (name.includes("arm64") ? "arm64" : "amd64");

let pulumi: Pulumi;
let mod: Module;
let registered: Registered[] = [];
let calls: Call[] = [];

function config(overrides: Partial<BuildHostsConfig> = {}): BuildHostsConfig {
  return {
    enabled: true,
    amd64InstanceType: "c7i.xlarge",
    arm64InstanceType: "c7g.xlarge",
    allowedCidrs: [],
    port: 1234,
    cacheVolumeGb: 200,
    ...overrides,
  };
}

function resolve<T>(o: pulumiType.Output<T>): Promise<T> {
  return new Promise((res) => o.apply((v) => res(v)));
}

/** Waits until no resource has registered for a while: applies inside the component finish. */
async function settle(): Promise<void> {
  let last = -1;
  while (last !== registered.length) {
    last = registered.length;
    await new Promise((r) => setTimeout(r, 60));
  }
}

async function create(name: string, args: Partial<buildHostsModule.BuildHostsArgs> = {}) {
  const hosts = new mod.BuildHosts(name, { config: config(), stack: "dev", ...args });
  await resolve(hosts.builderCommands);
  await resolve(hosts.instanceIds);
  await settle();
  const mine = registered.filter((r) => r.name.startsWith(`${name}-`));
  const of = (type: string) => mine.filter((r) => r.type === type);
  return { hosts, mine, of };
}

describe("validateBuildHosts", () => {
  before(async () => {
    mod = await import("../../components/buildHosts");
  });

  it("accepts the defaults and narrow CIDRs of both families", async () => {
    mod.validateBuildHosts(config());
    mod.validateBuildHosts(
      config({
        allowedCidrs: ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/64", "2001:db8:1::5/128"],
      }),
    );
    mod.validateBuildHosts(
      config({
        amd64InstanceType: "m7a.2xlarge",
        arm64InstanceType: "c7gd.4xlarge",
        port: 8372,
        cacheVolumeGb: 1000,
        subnetId: "subnet-0abc12345def67890",
      }),
    );
  });

  it("accepts a disabled config as it is: nothing is created from it", async () => {
    mod.validateBuildHosts(
      config({
        enabled: false,
        allowedCidrs: ["0.0.0.0/0"],
        port: 0,
        amd64InstanceType: "nonsense",
      }),
    );
  });

  const refused: Array<[string, Partial<BuildHostsConfig>, string[]]> = [
    [
      "0.0.0.0/0",
      { allowedCidrs: ["203.0.113.7/32", "0.0.0.0/0"] },
      ["buildHosts.allowedCidrs[1]: '0.0.0.0/0' opens the BuildKit port to the whole internet"],
    ],
    [
      "::/0",
      { allowedCidrs: ["::/0"] },
      ["buildHosts.allowedCidrs[0]: '::/0' opens the BuildKit port to the whole internet"],
    ],
    [
      "any other /0",
      { allowedCidrs: ["10.1.2.3/0"] },
      ["buildHosts.allowedCidrs[0]: '10.1.2.3/0' opens"],
    ],
    [
      "an address without a prefix",
      { allowedCidrs: ["203.0.113.7"] },
      ["buildHosts.allowedCidrs[0]: '203.0.113.7' is not a CIDR"],
    ],
    [
      "an octet over 255",
      { allowedCidrs: ["203.0.113.300/32"] },
      ["buildHosts.allowedCidrs[0]: '203.0.113.300/32' is not a CIDR"],
    ],
    [
      "an IPv4 prefix over 32",
      { allowedCidrs: ["203.0.113.7/33"] },
      ["'203.0.113.7/33' is not a CIDR"],
    ],
    [
      "an IPv6 prefix over 128",
      { allowedCidrs: ["2001:db8::/129"] },
      ["'2001:db8::/129' is not a CIDR"],
    ],
    ["a hostname", { allowedCidrs: ["ci.example.com/32"] }, ["'ci.example.com/32' is not a CIDR"]],
    [
      "host bits",
      { allowedCidrs: ["198.51.100.7/24"] },
      [
        "buildHosts.allowedCidrs[0]: '198.51.100.7/24' has host bits set; the network is '198.51.100.0/24'",
      ],
    ],
    [
      "IPv6 host bits",
      { allowedCidrs: ["2001:db8::1/64"] },
      [
        "buildHosts.allowedCidrs[0]: '2001:db8::1/64' has host bits set; the network is '2001:db8::/64'",
      ],
    ],
    [
      "a repeated CIDR",
      { allowedCidrs: ["203.0.113.7/32", "203.0.113.7/32"] },
      ["buildHosts.allowedCidrs[1]: '203.0.113.7/32' repeats buildHosts.allowedCidrs[0]"],
    ],
    [
      "the same IPv6 network written twice",
      { allowedCidrs: ["2001:db8:0:1::/64", "2001:db8:0:1:0::/64"] },
      ["buildHosts.allowedCidrs[1]: '2001:db8:0:1:0::/64' repeats buildHosts.allowedCidrs[0]"],
    ],
    ["port 0", { port: 0 }, ["buildHosts.port: 0 is not a TCP port"]],
    ["port 65536", { port: 65536 }, ["buildHosts.port: 65536 is not a TCP port"]],
    ["a fractional port", { port: 1234.5 }, ["buildHosts.port: 1234.5 is not a TCP port"]],
    ["port 22", { port: 22 }, ["buildHosts.port: 22 is refused"]],
    [
      "a zero volume",
      { cacheVolumeGb: 0 },
      ["buildHosts.cacheVolumeGb: 0 must be a whole number of GiB"],
    ],
    ["a negative volume", { cacheVolumeGb: -10 }, ["buildHosts.cacheVolumeGb: -10"]],
    ["a volume over gp3's limit", { cacheVolumeGb: 20000 }, ["buildHosts.cacheVolumeGb: 20000"]],
    [
      "an x86 type for arm64",
      { arm64InstanceType: "c7i.xlarge" },
      [
        "buildHosts.arm64InstanceType: 'c7i.xlarge' is an amd64 instance type; the arm64 host needs a Graviton type",
      ],
    ],
    [
      "a Graviton type for amd64",
      { amd64InstanceType: "c7g.xlarge" },
      [
        "buildHosts.amd64InstanceType: 'c7g.xlarge' is an arm64 instance type; the amd64 host needs an x86 type",
      ],
    ],
    [
      "an unknown family",
      { amd64InstanceType: "qq9.xlarge" },
      ["buildHosts.amd64InstanceType: 'qq9.xlarge': unknown instance family 'qq'"],
    ],
    [
      "a malformed type",
      { arm64InstanceType: "graviton" },
      ["buildHosts.arm64InstanceType: 'graviton': not an EC2 instance type"],
    ],
    [
      "a mac",
      { amd64InstanceType: "mac1.metal" },
      ["buildHosts.amd64InstanceType: 'mac1.metal': mac instances run macOS"],
    ],
    [
      "a bad subnet id",
      { subnetId: "default" },
      ["buildHosts.subnetId: 'default' is not a subnet id"],
    ],
  ];
  for (const [what, overrides, messages] of refused) {
    it(`refuses ${what}, naming the key and the value`, async () => {
      assert.throws(
        () => mod.validateBuildHosts(config(overrides)),
        (err: Error) => {
          for (const m of messages)
            assert.ok(err.message.includes(m), `expected '${m}' in:\n${err.message}`);
          return true;
        },
      );
    });
  }

  it("lists the problems for config validation that collects them", async () => {
    assert.deepEqual(mod.buildHostsProblems(config()), []);
    assert.deepEqual(mod.buildHostsProblems(config({ enabled: false, port: -1 })), []);
    assert.deepEqual(mod.buildHostsProblems(config({ port: 22, allowedCidrs: ["::/0"] })), [
      "buildHosts.allowedCidrs[0]: '::/0' opens the BuildKit port to the whole internet; list your CI's addresses instead",
      "buildHosts.port: 22 is refused: the hosts have no SSH, and BuildKit on 22 would look like it",
    ]);
  });

  it("reports every problem at once", async () => {
    assert.throws(
      () =>
        mod.validateBuildHosts(
          config({
            allowedCidrs: ["0.0.0.0/0"],
            port: 0,
            cacheVolumeGb: 0,
            arm64InstanceType: "c7i.large",
          }),
        ),
      (err: Error) => err.message.split("\n").length === 5,
    );
  });
});

describe("instanceArch", () => {
  before(async () => {
    mod = await import("../../components/buildHosts");
  });
  const cases: Array<[string, string]> = [
    ["c7g.xlarge", "arm64"],
    ["c7gd.2xlarge", "arm64"],
    ["c6gn.large", "arm64"],
    ["m7g.medium", "arm64"],
    ["t4g.small", "arm64"],
    ["a1.large", "arm64"],
    ["im4gn.large", "arm64"],
    ["is4gen.xlarge", "arm64"],
    ["x2gd.metal", "arm64"],
    ["g5g.xlarge", "arm64"],
    ["r8g.48xlarge", "arm64"],
    ["c8g.metal-24xl", "arm64"],
    ["c7i.xlarge", "amd64"],
    ["c7a.2xlarge", "amd64"],
    ["m5zn.large", "amd64"],
    ["g4dn.xlarge", "amd64"],
    ["c7i-flex.large", "amd64"],
    ["t3.micro", "amd64"],
    ["u7i-12tb.224xlarge", "amd64"],
    ["hpc7a.96xlarge", "amd64"],
  ];
  for (const [type, arch] of cases) {
    it(`${type} is ${arch}`, async () => {
      assert.equal(mod.instanceArch(type), arch);
    });
  }
});

describe("BuildHosts (mocks)", () => {
  before(async () => {
    pulumi = await import("@pulumi/pulumi");
    await pulumi.runtime.setMocks(
      {
        newResource(a: pulumiType.runtime.MockResourceArgs): {
          id: string;
          state: Record<string, unknown>;
        } {
          const inputs = a.inputs as Record<string, unknown>;
          registered.push({ type: a.type, name: a.name, inputs });
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
                  arn: `arn:aws:ec2:eu-west-1:123456789012:volume/${VOLUME[arch]}`,
                },
              };
            case "aws:ssm/parameter:Parameter":
              return {
                id: String(inputs.name),
                state: {
                  ...inputs,
                  arn: `arn:aws:ssm:eu-west-1:123456789012:parameter${String(inputs.name)}`,
                },
              };
            case "aws:ec2/instance:Instance":
              return {
                id: `i-${arch}0123456789`,
                state: { ...inputs, privateIp: PRIVATE_IP[arch], publicIp: "" },
              };
            case "aws:iam/role:Role":
              return {
                id: a.name,
                state: { ...inputs, name: a.name, arn: `arn:aws:iam::123456789012:role/${a.name}` },
              };
            case "aws:iam/instanceProfile:InstanceProfile":
              return {
                id: a.name,
                state: {
                  ...inputs,
                  name: a.name,
                  arn: `arn:aws:iam::123456789012:instance-profile/${a.name}`,
                },
              };
            default:
              return { id: `${a.name}-id`, state: inputs };
          }
        },
        call(c: pulumiType.runtime.MockCallArgs): Record<string, unknown> {
          const inputs = c.inputs as Record<string, unknown>;
          calls.push({ token: c.token, inputs });
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
            case "aws:ec2/getVpc:getVpc":
              return { id: "vpc-0default", cidrBlock: "172.31.0.0/16", default: true };
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
      },
      "image-factory",
      "dev",
      false,
    );
    mod = await import("../../components/buildHosts");
  });

  beforeEach(() => {
    registered = [];
    calls = [];
  });

  it("creates one instance per architecture from the architecture's AMI parameter and type", async () => {
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
    assert.equal(mine.filter((r) => /keyPair/i.test(r.type)).length, 0);
  });

  it("gives each host an encrypted gp3 cache volume of the configured size, attached to it", async () => {
    const { of } = await create("hosts-c", { config: config({ cacheVolumeGb: 350 }) });
    const volumes = of("aws:ebs/volume:Volume");
    assert.equal(volumes.length, 2);
    for (const v of volumes) {
      assert.equal(v.inputs.type, "gp3");
      assert.equal(v.inputs.encrypted, true);
      assert.equal(v.inputs.size, 350);
      assert.equal(v.inputs.availabilityZone, "eu-west-1a");
    }
    const attachments = of("aws:ec2/volumeAttachment:VolumeAttachment");
    assert.deepEqual(attachments.map((a) => [a.inputs.volumeId, a.inputs.instanceId]).sort(), [
      [VOLUME.amd64, "i-amd640123456789"],
      [VOLUME.arm64, "i-arm640123456789"],
    ]);
  });

  it("has no ingress rule at all for an empty CIDR list, and only HTTP(S) egress", async () => {
    const { of, mine } = await create("hosts-d");
    assert.equal(of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").length, 0);
    assert.equal(
      mine.filter((r) => r.type === "aws:ec2/securityGroupRule:SecurityGroupRule").length,
      0,
    );
    const sg = of("aws:ec2/securityGroup:SecurityGroup");
    assert.equal(sg.length, 1);
    assert.equal(sg[0].inputs.ingress, undefined, "no inline rules");
    const egress = of("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule").map((r) => [
      r.inputs.fromPort,
      r.inputs.toPort,
      r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6,
    ]);
    assert.deepEqual(
      egress.sort(),
      [
        [443, 443, "0.0.0.0/0"],
        [443, 443, "::/0"],
        [80, 80, "0.0.0.0/0"],
        [80, 80, "::/0"],
      ].sort(),
    );
  });

  it("admits the BuildKit port from exactly the configured CIDRs", async () => {
    const cidrs = ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/64"];
    const { of } = await create("hosts-e", { config: config({ allowedCidrs: cidrs, port: 8372 }) });
    const rules = of("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule");
    assert.deepEqual(
      rules.map((r) => ({
        cidr: r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6,
        v6: r.inputs.cidrIpv6 !== undefined,
        from: r.inputs.fromPort,
        to: r.inputs.toPort,
        proto: r.inputs.ipProtocol,
      })),
      [
        { cidr: "203.0.113.7/32", v6: false, from: 8372, to: 8372, proto: "tcp" },
        { cidr: "198.51.100.0/24", v6: false, from: 8372, to: 8372, proto: "tcp" },
        { cidr: "2001:db8::/64", v6: true, from: 8372, to: 8372, proto: "tcp" },
      ],
    );
  });

  it("refuses an open-world CIDR before creating anything", async () => {
    assert.throws(
      () =>
        new mod.BuildHosts("hosts-f", {
          config: config({ allowedCidrs: ["0.0.0.0/0"] }),
          stack: "dev",
        }),
      /buildHosts\.allowedCidrs\[0\]: '0\.0\.0\.0\/0'/,
    );
    assert.throws(
      () =>
        new mod.BuildHosts("hosts-f2", {
          config: config({ allowedCidrs: ["::/0"] }),
          stack: "dev",
        }),
      /'::\/0' opens/,
    );
    await settle();
    assert.equal(
      registered.filter(
        (r) => r.name.startsWith("hosts-f") && r.type !== "image-factory:buildhosts:BuildHosts",
      ).length,
      0,
    );
  });

  it("refuses a disabled config: program.ts does not create the component then", async () => {
    assert.throws(
      () => new mod.BuildHosts("hosts-g", { config: config({ enabled: false }), stack: "dev" }),
      /enabled is false/,
    );
  });

  it("grants SSM core plus reading only its own server key, with no wildcard actions", async () => {
    const { of } = await create("hosts-h");
    const attachments = of("aws:iam/rolePolicyAttachment:RolePolicyAttachment");
    assert.deepEqual(
      attachments.map((a) => a.inputs.policyArn),
      [
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
      ],
    );
    for (const role of of("aws:iam/role:Role")) {
      const doc = JSON.parse(
        String(role.inputs.assumeRolePolicy),
      ) as buildHostsModule.PolicyDocument;
      assert.deepEqual(doc.Statement, [
        { Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" },
      ]);
    }
    const policies = of("aws:iam/rolePolicy:RolePolicy");
    assert.equal(policies.length, 2);
    for (const p of policies) {
      const arch = archOf(p.name);
      const doc = JSON.parse(String(p.inputs.policy)) as buildHostsModule.PolicyDocument;
      assertNoWildcards(doc);
      assert.deepEqual(doc.Statement, [
        {
          Sid: "ReadOwnServerKey",
          Effect: "Allow",
          Action: ["ssm:GetParameter"],
          Resource: `arn:aws:ssm:eu-west-1:123456789012:parameter/image-factory/dev/buildhosts/${arch}/server-key`,
        },
      ]);
    }
  });

  it("swaps the managed SSM policy for the Session Manager minimum with ssmAccess session-manager", async () => {
    const { of } = await create("hosts-p", { ssmAccess: "session-manager" });
    assert.equal(of("aws:iam/rolePolicyAttachment:RolePolicyAttachment").length, 0);
    for (const p of of("aws:iam/rolePolicy:RolePolicy")) {
      const doc = JSON.parse(String(p.inputs.policy)) as buildHostsModule.PolicyDocument;
      assertNoWildcards(doc);
      const actions = doc.Statement.flatMap((st) => [st.Action].flat()).sort();
      assert.deepEqual(actions, [
        "ssm:GetParameter",
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ]);
      const read = doc.Statement.find((st) => st.Sid === "ReadOwnServerKey");
      assert.equal(
        read?.Resource,
        `arn:aws:ssm:eu-west-1:123456789012:parameter/image-factory/dev/buildhosts/${archOf(p.name)}/server-key`,
      );
    }
  });

  it("adds S3 access scoped to the cache bucket when one is given", async () => {
    const bucket = "arn:aws:s3:::acme-image-factory-cache";
    const { of } = await create("hosts-i", { cacheBucketArn: bucket });
    for (const p of of("aws:iam/rolePolicy:RolePolicy")) {
      const doc = JSON.parse(String(p.inputs.policy)) as buildHostsModule.PolicyDocument;
      assertNoWildcards(doc);
      const s3 = doc.Statement.filter((s) => [s.Action].flat().some((a) => a.startsWith("s3:")));
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
    assert.deepEqual(params.map((p) => [p.inputs.name, p.inputs.type]).sort(), [
      ["/image-factory/dev/buildhosts/amd64/server-key", "SecureString"],
      ["/image-factory/dev/buildhosts/arm64/server-key", "SecureString"],
    ]);
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
      const doc = parse(userData) as { write_files: Array<{ path: string; content: string }> };
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

  it("names each server by its builder name and Elastic IP in the certificate", async () => {
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
    const uses = Object.fromEntries(certs.map((c) => [c.name, c.inputs.allowedUses]));
    assert.deepEqual(uses["hosts-k-client-cert"], [
      "digital_signature",
      "key_encipherment",
      "client_auth",
    ]);
    assert.deepEqual(uses["hosts-k-amd64-server-cert"], [
      "digital_signature",
      "key_encipherment",
      "server_auth",
    ]);
    const ca = of("tls:index/selfSignedCert:SelfSignedCert");
    assert.equal(ca.length, 1);
    assert.equal(ca[0].inputs.isCaCertificate, true);
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
    assert.equal(of("aws:ec2/eip:Eip").length, 0);
    assert.equal(of("aws:ec2/eipAssociation:EipAssociation").length, 0);
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
      config: config({ subnetId: "subnet-0123456789abcdef0" }),
    });
    assert.deepEqual(
      of("aws:ec2/instance:Instance").map((i) => i.name),
      ["hosts-n-amd64-instance"],
    );
    assert.equal(of("aws:ec2/instance:Instance")[0].inputs.subnetId, "subnet-0123456789abcdef0");
    assert.deepEqual(Object.keys(await resolve(hosts.endpoints)), ["amd64"]);
    assert.equal(
      calls.filter((c) => c.token === "aws:ec2/getSubnets:getSubnets").length,
      0,
      "an explicit subnet needs no lookup",
    );
  });

  it("tags every taggable resource with the stack and its role", async () => {
    const { mine } = await create("hosts-o", { tags: { team: "platform" } });
    const tagged = mine.filter((r) => r.inputs.tags !== undefined);
    assert.ok(tagged.length >= 14, `only ${tagged.length} tagged resources`);
    for (const r of tagged) {
      const tags = r.inputs.tags as Record<string, string>;
      assert.equal(tags["image-factory:stack"], "dev", r.name);
      assert.ok(tags["image-factory:role"], r.name);
      assert.equal(tags.team, "platform", r.name);
    }
    for (const type of [
      "aws:ec2/instance:Instance",
      "aws:ebs/volume:Volume",
      "aws:ec2/securityGroup:SecurityGroup",
      "aws:iam/role:Role",
      "aws:ssm/parameter:Parameter",
      "aws:ec2/eip:Eip",
    ]) {
      const all = mine.filter((r) => r.type === type);
      assert.ok(
        all.length > 0 && all.every((r) => r.inputs.tags !== undefined),
        `${type} untagged`,
      );
    }
  });
});

/** No `*` in any action; a `*` resource only where the actions cannot be scoped (Session Manager). */
function assertNoWildcards(doc: buildHostsModule.PolicyDocument): void {
  for (const s of doc.Statement) {
    for (const action of [s.Action].flat())
      assert.ok(!action.includes("*"), `wildcard action ${action}`);
    if (s.Sid !== "SessionManager") {
      for (const resource of [s.Resource ?? []].flat())
        assert.notEqual(resource, "*", `wildcard resource in ${s.Sid}`);
    }
  }
}
