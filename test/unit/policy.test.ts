import * as assert from "node:assert/strict";
import {
  DEFAULT_PLATFORMS,
  PolicyStackConfig,
  StackResource,
  TYPES,
  checkBuildkitPortNotWorldOpen,
  checkCacheMode,
  checkImdsV2,
  checkIndexShaTag,
  checkPlatformsBuilt,
  checkShaTag,
  checkVolumesEncrypted,
  configValuesFromStackFile,
  coversPort,
  stackConfigFrom,
  stackConfigFromValues,
  describeWaivers,
  stackFromUrn,
} from "../../policy/rules";
import * as YAML from "yaml";

const PORT = 1234;
const cfg = (over: Partial<PolicyStackConfig> = {}): PolicyStackConfig => ({
  platforms: DEFAULT_PLATFORMS,
  buildkitPort: PORT,
  cacheMode: "max",
  waivers: {},
  ...over,
});

type Case = [string, string, Record<string, unknown>, RegExp | null];

/** One test per case: `check` reports a violation matching the case's pattern, or none at all. */
function itJudges(
  cases: Case[],
  check: (type: string, props: Record<string, unknown>) => string[],
) {
  for (const [name, type, props, violation] of cases) {
    it(`${violation ? "fails" : "passes"}: ${name}`, () => {
      const out = check(type, props);
      if (violation) assert.match(out.join("\n"), violation);
      else assert.deepEqual(out, []);
    });
  }
}

describe("policy: buildkit-port-not-world-open", () => {
  const cases: Case[] = [
    [
      "SG inline ingress from a CI CIDR",
      TYPES.securityGroup,
      {
        ingress: [
          { protocol: "tcp", fromPort: 1234, toPort: 1234, cidrBlocks: ["203.0.113.0/24"] },
        ],
      },
      null,
    ],
    ["SG without ingress", TYPES.securityGroup, { ingress: [] }, null],
    [
      "SG inline ingress open to 0.0.0.0/0",
      TYPES.securityGroup,
      { ingress: [{ protocol: "tcp", fromPort: 1234, toPort: 1234, cidrBlocks: ["0.0.0.0/0"] }] },
      /ingress\[0\] opens the BuildKit port 1234 to 0\.0\.0\.0\/0/,
    ],
    [
      "SG inline ingress open to ::/0",
      TYPES.securityGroup,
      { ingress: [{ protocol: "tcp", fromPort: 1234, toPort: 1234, ipv6CidrBlocks: ["::/0"] }] },
      /to ::\/0/,
    ],
    [
      "SG all-protocol rule open to the world",
      TYPES.securityGroup,
      { ingress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] }] },
      /opens the BuildKit port/,
    ],
    [
      "SG port range covering BuildKit",
      TYPES.securityGroup,
      { ingress: [{ protocol: "tcp", fromPort: 1000, toPort: 2000, cidrBlocks: ["0.0.0.0/0"] }] },
      /opens the BuildKit port/,
    ],
    [
      "SG world-open HTTPS only (other port)",
      TYPES.securityGroup,
      { ingress: [{ protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"] }] },
      null,
    ],
    [
      "SG world-open UDP on the port",
      TYPES.securityGroup,
      { ingress: [{ protocol: "udp", fromPort: 1234, toPort: 1234, cidrBlocks: ["0.0.0.0/0"] }] },
      null,
    ],
    [
      "SecurityGroupRule ingress open",
      TYPES.securityGroupRule,
      { type: "ingress", protocol: "tcp", fromPort: 1234, toPort: 1234, cidrBlocks: ["0.0.0.0/0"] },
      /ingress rule opens/,
    ],
    [
      "SecurityGroupRule egress open (not ingress)",
      TYPES.securityGroupRule,
      { type: "egress", protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"] },
      null,
    ],
    [
      "SecurityGroupRule ingress restricted",
      TYPES.securityGroupRule,
      {
        type: "ingress",
        protocol: "tcp",
        fromPort: 1234,
        toPort: 1234,
        cidrBlocks: ["198.51.100.7/32"],
      },
      null,
    ],
    [
      "vpc IngressRule open IPv4",
      TYPES.vpcIngressRule,
      { ipProtocol: "tcp", fromPort: 1234, toPort: 1234, cidrIpv4: "0.0.0.0/0" },
      /to 0\.0\.0\.0\/0/,
    ],
    [
      "vpc IngressRule open IPv6, all protocols",
      TYPES.vpcIngressRule,
      { ipProtocol: "-1", cidrIpv6: "::/0" },
      /to ::\/0/,
    ],
    [
      "vpc IngressRule restricted",
      TYPES.vpcIngressRule,
      { ipProtocol: "tcp", fromPort: 1234, toPort: 1234, cidrIpv4: "203.0.113.10/32" },
      null,
    ],
    [
      "vpc IngressRule with unknown ports open to the world",
      TYPES.vpcIngressRule,
      { ipProtocol: "tcp", cidrIpv4: "0.0.0.0/0" },
      /opens/,
    ],
    [
      "unrelated resource",
      TYPES.instance,
      { ingress: [{ protocol: "-1", cidrBlocks: ["0.0.0.0/0"] }] },
      null,
    ],
  ];
  for (const [name, type, props, violation] of cases) {
    it(`${violation ? "fails" : "passes"}: ${name}`, async () => {
      const out = checkBuildkitPortNotWorldOpen(type, props, PORT);
      if (violation) {
        assert.equal(out.length, 1, JSON.stringify(out));
        assert.match(out[0], violation);
      } else {
        assert.deepEqual(out, []);
      }
    });
  }

  it("uses the configured port", async () => {
    const props = {
      ingress: [{ protocol: "tcp", fromPort: 9000, toPort: 9000, cidrBlocks: ["0.0.0.0/0"] }],
    };
    assert.deepEqual(checkBuildkitPortNotWorldOpen(TYPES.securityGroup, props, 1234), []);
    assert.match(checkBuildkitPortNotWorldOpen(TYPES.securityGroup, props, 9000)[0], /port 9000/);
  });

  it("coversPort handles numeric protocol and string ports", async () => {
    assert.equal(coversPort("6", "1234", "1234", 1234), true);
    assert.equal(coversPort("17", 1234, 1234, 1234), false);
    assert.equal(coversPort("all", undefined, undefined, 1234), true);
  });
});

describe("policy: imdsv2-required", () => {
  const cases: Case[] = [
    [
      "instance with IMDSv2",
      TYPES.instance,
      { metadataOptions: { httpTokens: "required", httpEndpoint: "enabled" } },
      null,
    ],
    [
      "instance with optional tokens",
      TYPES.instance,
      { metadataOptions: { httpTokens: "optional" } },
      /httpTokens is "optional"/,
    ],
    ["instance without metadataOptions", TYPES.instance, {}, /httpTokens is null/],
    [
      "launch template with IMDSv2",
      TYPES.launchTemplate,
      { metadataOptions: { httpTokens: "required" } },
      null,
    ],
    [
      "launch template without",
      TYPES.launchTemplate,
      { metadataOptions: {} },
      /IMDSv2 requires "required"/,
    ],
    ["security group (not applicable)", TYPES.securityGroup, {}, null],
  ];
  itJudges(cases, checkImdsV2);
});

describe("policy: volumes-encrypted", () => {
  const cases: Case[] = [
    [
      "instance root and EBS encrypted",
      TYPES.instance,
      {
        rootBlockDevice: { encrypted: true, volumeType: "gp3" },
        ebsBlockDevices: [{ deviceName: "/dev/sdf", encrypted: true }],
      },
      null,
    ],
    ["instance without rootBlockDevice", TYPES.instance, {}, /rootBlockDevice\.encrypted is null/],
    [
      "instance with unencrypted root",
      TYPES.instance,
      { rootBlockDevice: { encrypted: false } },
      /rootBlockDevice\.encrypted is false/,
    ],
    [
      "instance with unencrypted extra EBS",
      TYPES.instance,
      {
        rootBlockDevice: { encrypted: true },
        ebsBlockDevices: [{ deviceName: "/dev/sdf", encrypted: false }],
      },
      /ebsBlockDevices\[0\] \(\/dev\/sdf\) is not encrypted/,
    ],
    [
      "launch template encrypted (string)",
      TYPES.launchTemplate,
      { blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { encrypted: "true" } }] },
      null,
    ],
    [
      "launch template unencrypted",
      TYPES.launchTemplate,
      { blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { encrypted: "false" } }] },
      /blockDeviceMappings\[0\]\.ebs\.encrypted is "false"/,
    ],
    ["EBS volume encrypted", TYPES.ebsVolume, { encrypted: true, type: "gp3", size: 200 }, null],
    [
      "EBS volume unencrypted",
      TYPES.ebsVolume,
      { type: "gp3", size: 200 },
      /EBS volumes must be encrypted/,
    ],
  ];
  itJudges(cases, checkVolumesEncrypted);
});

function image(
  name: string,
  platforms: string[],
  extra: Record<string, unknown> = {},
): StackResource {
  return { type: TYPES.image, name, props: { platforms, push: true, ...extra } };
}

describe("policy: every-platform-built", () => {
  it("passes when one Image per platform covers the config (linux/arm counts as arm/v7)", async () => {
    const rs = [
      image("a", ["linux/amd64"]),
      image("b", ["linux/arm64"]),
      image("c", ["linux/arm"]),
    ];
    assert.deepEqual(checkPlatformsBuilt(rs, cfg()), []);
  });
  it("passes with a single multi-platform Image", async () => {
    assert.deepEqual(
      checkPlatformsBuilt([image("all", ["linux/amd64", "linux/arm64", "linux/arm/v7"])], cfg()),
      [],
    );
  });
  it("fails when a configured platform has no Image", async () => {
    const out = checkPlatformsBuilt(
      [image("a", ["linux/amd64"]), image("b", ["linux/arm64"])],
      cfg(),
    );
    assert.equal(out.length, 1);
    assert.match(out[0], /configured platform linux\/arm\/v7 not built by any docker-build Image/);
  });
  it("fails when nothing is built on a building stack", async () => {
    assert.match(
      checkPlatformsBuilt([], cfg({ platforms: ["linux/amd64", "linux/arm64"] }))[0],
      /platforms linux\/amd64, linux\/arm64 not built/,
    );
  });
  it("follows the stack's platform list", async () => {
    assert.deepEqual(
      checkPlatformsBuilt([image("a", ["linux/amd64"])], cfg({ platforms: ["linux/amd64"] })),
      [],
    );
  });
  it("does not apply to a promotion stack (it builds nothing)", async () => {
    assert.deepEqual(checkPlatformsBuilt([], cfg({ promoteFrom: "dev" })), []);
  });
});

describe("policy: pushed-images-carry-sha-tag", () => {
  const cases: Array<[string, Record<string, unknown>, RegExp | null]> = [
    [
      "short sha tag",
      { push: true, tags: ["ghcr.io/acme/shop-api:sha-1a2b3c4", "ghcr.io/acme/shop-api:main"] },
      null,
    ],
    [
      "long sha tag",
      { push: true, tags: ["127.0.0.1:5000/x/app:sha-1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"] },
      null,
    ],
    [
      "per-platform sha tag",
      { push: true, tags: ["ghcr.io/acme/shop-api:sha-1a2b3c4-linux-arm64"] },
      null,
    ],
    ["not pushed", { push: false, tags: ["app:dev"] }, null],
    ["tags unknown during preview", { push: true }, null],
    [
      "pushed with only branch tags",
      { push: true, tags: ["ghcr.io/acme/shop-api:main", "ghcr.io/acme/shop-api:latest"] },
      /pushed image has no sha-<commit> tag/,
    ],
    [
      "pushed with a malformed sha tag",
      { push: true, tags: ["ghcr.io/acme/shop-api:sha-XYZ"] },
      /no sha-<commit> tag/,
    ],
    ["pushed with no tags", { push: true, tags: [] }, /no sha-<commit> tag \(tags: \[\]\)/],
  ];
  itJudges(
    cases.map(([name, props, violation]) => [name, TYPES.image, props, violation]),
    checkShaTag,
  );
  it("stack: the published manifest lists include the sha tag", async () => {
    const idx = (tag: string): StackResource => ({
      type: TYPES.index,
      name: tag,
      props: { tag, sources: [] },
    });
    assert.deepEqual(checkIndexShaTag([idx("r/app:sha-1a2b3c4"), idx("r/app:main")]), []);
    assert.match(
      checkIndexShaTag([idx("r/app:main"), idx("r/app:latest")])[0],
      /no published manifest list carries a sha-<commit> tag/,
    );
    assert.deepEqual(checkIndexShaTag([]), []);
  });
});

describe("policy: cache-mode", () => {
  const reg = (mode?: string): Record<string, unknown> => ({
    registry: { ref: "127.0.0.1:5000/x/app-cache:linux-amd64", ...(mode ? { mode } : {}) },
  });
  const cases: Array<[string, Record<string, unknown>, "max" | "min", RegExp | null]> = [
    ["registry mode max", { cacheTo: [reg("max")] }, "max", null],
    ["registry mode min when config says min", { cacheTo: [reg("min")] }, "min", null],
    [
      "registry mode min by default config",
      { cacheTo: [reg("min")] },
      "max",
      /cacheTo registry mode is "min"; image-factory:cache\.mode wants "max"/,
    ],
    ["mode unset (docker-build default min)", { cacheTo: [reg()] }, "max", /mode is "min"/],
    [
      "s3 max",
      { cacheTo: [{ s3: { bucket: "b", region: "eu-west-1", mode: "max" } }] },
      "max",
      null,
    ],
    ["gha min", { cacheTo: [{ gha: { mode: "min" } }] }, "max", /cacheTo gha mode is "min"/],
    ["local max", { cacheTo: [{ local: { dest: ".local/cache", mode: "max" } }] }, "max", null],
    ["no cache export", {}, "max", /exports no build cache/],
    [
      "the coverage stage's image, which only reads a platform's cache",
      { target: "coverage", cacheFrom: [{ registry: { ref: "r:linux-amd64" } }] },
      "max",
      null,
    ],
    [
      "a runtime image built from another target still must export",
      { target: "runtime" },
      "max",
      /exports no build cache/,
    ],
    [
      "only a disabled cache export",
      { cacheTo: [{ disabled: true, registry: { ref: "r", mode: "max" } }] },
      "max",
      /exports no build cache/,
    ],
  ];
  for (const [name, props, wanted, violation] of cases) {
    it(`${violation ? "fails" : "passes"}: ${name}`, async () => {
      const out = checkCacheMode(TYPES.image, props, wanted);
      if (violation) {
        assert.match(out.join("\n"), violation);
      } else {
        assert.deepEqual(out, []);
      }
    });
  }
  it("ignores other resource types", async () => {
    assert.deepEqual(checkCacheMode(TYPES.index, {}, "max"), []);
  });
});

describe("policy: stack config from PULUMI_CONFIG", () => {
  it("reads platforms, port, cache mode and promoteFrom", async () => {
    const env = JSON.stringify({
      "image-factory:platforms": JSON.stringify(["linux/amd64", "linux/arm64"]),
      "image-factory:buildHosts": JSON.stringify({ enabled: true, port: 8372 }),
      "image-factory:cache": JSON.stringify({ type: "registry", mode: "min" }),
      "image-factory:promoteFrom": "dev",
    });
    assert.deepEqual(stackConfigFrom(env), {
      platforms: ["linux/amd64", "linux/arm64"],
      buildkitPort: 8372,
      cacheMode: "min",
      promoteFrom: "dev",
      waivers: {},
    });
  });
  it("falls back to the documented defaults", async () => {
    assert.deepEqual(stackConfigFrom(undefined), {
      platforms: DEFAULT_PLATFORMS,
      buildkitPort: 1234,
      cacheMode: "max",
      promoteFrom: undefined,
      waivers: {},
    });
    assert.deepEqual(stackConfigFrom("not json").platforms, DEFAULT_PLATFORMS);
  });
  it("reads Pulumi.<stack>.yaml (structured and string values; secure values left out)", async () => {
    const file = YAML.parse(
      [
        "config:",
        "  image-factory:imageName: 127.0.0.1:5000/image-factory/app",
        "  image-factory:platforms:",
        "    - linux/amd64",
        "    - linux/arm/v7",
        '  image-factory:cache: \'{"type":"local","mode":"min"}\'',
        "  image-factory:registryToken:",
        "    secure: v1:abc",
      ].join("\n"),
    ) as unknown;
    const values = configValuesFromStackFile(file);
    assert.equal(values["image-factory:registryToken"], undefined);
    assert.deepEqual(stackConfigFromValues(values), {
      platforms: ["linux/amd64", "linux/arm/v7"],
      buildkitPort: 1234,
      cacheMode: "min",
      promoteFrom: undefined,
      waivers: {},
    });
    assert.deepEqual(configValuesFromStackFile(null), {});
  });
  it("reports every waived gate with its reason (gate-waivers, advisory)", async () => {
    const values = {
      "image-factory:gates": JSON.stringify({
        maxImageSizeMb: 400,
        waive: {
          "criticalVulnerabilities[linux/arm/v7]": "base image CVE, no fix upstream (ACME-123)",
          coverage: "legacy module, tests in ACME-9",
        },
      }),
    };
    assert.deepEqual(describeWaivers(stackConfigFromValues(values)), [
      "gate coverage is waived on this stack (image-factory:gates.waive): legacy module, tests in ACME-9",
      "gate criticalVulnerabilities[linux/arm/v7] is waived on this stack (image-factory:gates.waive): base image CVE, no fix upstream (ACME-123)",
    ]);
    assert.deepEqual(describeWaivers(stackConfigFromValues({})), []);
  });
  it("finds the stack name in a URN", async () => {
    assert.equal(
      stackFromUrn("urn:pulumi:local::image-factory::pulumi:pulumi:Stack::image-factory-local"),
      "local",
    );
    assert.equal(stackFromUrn("not-a-urn"), undefined);
  });
});
