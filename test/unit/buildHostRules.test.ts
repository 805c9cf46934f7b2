// The build-host rules (components/buildHosts/rules.ts) as pure functions, and the policy pack's use
// of the same CIDR rule (policy/rules.ts). The CIDR properties generate networks from integers and
// compute the expected verdict from address arithmetic, not from the code under test.
import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import * as fc from "fast-check";
import {
  allowedCidrsProblems,
  buildHostsConfig,
  buildHostsProblems,
  ec2ArchProblem,
  hostArchFromEc2,
  instanceArch,
  parseCidr,
  validateBuildHosts,
} from "../../components/buildHosts/rules";
import type { BuildHostsConfig } from "../../components/types";
import { buildHostsConfig as config } from "../lib/buildHosts";
import {
  DEFAULT_PLATFORMS,
  type PolicyStackConfig,
  type StackResource,
  TYPES,
  buildkitIngressCidrs,
  checkBuildkitIngressTotal,
  checkBuildkitIngressWidth,
  checkBuildkitPortNotWorldOpen,
  securityGroupCidrs,
  securityGroupRuleCidrs,
  stackConfigFromValues,
  vpcIngressRuleCidrs,
} from "../../policy/rules";

// ---- address arithmetic for the properties (independent of ip-address) ------------------------

const ipv4 = (n: number): string =>
  [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
const mask4 = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
const network4 = (address: number, prefix: number): number => (address & mask4(prefix)) >>> 0;
/** A random IPv4 network in canonical form with a prefix in [min, max]. */
const ipv4Network = (min: number, max: number): fc.Arbitrary<{ cidr: string; prefix: number }> =>
  fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min, max }))
    .map(([a, prefix]) => ({ cidr: `${ipv4(network4(a, prefix))}/${prefix}`, prefix }));

/** A random IPv6 network written out in full (eight groups), prefix in [min, max]. */
const ipv6Network = (min: number, max: number): fc.Arbitrary<{ cidr: string; prefix: number }> =>
  fc
    .tuple(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min, max }))
    .map(([a, prefix]) => {
      const hostBits = BigInt(128 - prefix);
      const net = (a >> hostBits) << hostBits;
      const groups = Array.from({ length: 8 }, (_, i) =>
        ((net >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
      );
      return { cidr: `${groups.join(":")}/${prefix}`, prefix };
    });

const REASON = "the CI fleet's NAT pool is a /12 (ticket OPS-42)";

describe("buildHosts.allowedCidrs: properties", () => {
  it("accepts any single IPv4 network from /16 to /32", () => {
    fc.assert(
      fc.property(ipv4Network(16, 32), ({ cidr }) => {
        assert.deepEqual(allowedCidrsProblems([cidr]), []);
      }),
    );
  });

  it("refuses any IPv4 network wider than /16 without a reason, naming key, value and size", () => {
    fc.assert(
      fc.property(ipv4Network(1, 15), ({ cidr, prefix }) => {
        const problems = allowedCidrsProblems([cidr]);
        const size = 2 ** (32 - prefix);
        assert.ok(
          problems.includes(
            `buildHosts.allowedCidrs[0]: '${cidr}' admits ${size} addresses, wider than IPv4's /16 limit; ` +
              "list your CI's addresses, or set buildHosts.allowWideCidrs to the reason this range is needed",
          ),
          problems.join("\n"),
        );
      }),
    );
  });

  it("accepts a wide IPv4 network (but no /0) when allowWideCidrs gives a reason", () => {
    fc.assert(
      fc.property(ipv4Network(2, 15), ({ cidr }) => {
        assert.deepEqual(allowedCidrsProblems([cidr], REASON), []);
      }),
    );
  });

  it("refuses every /0, however the address is written, with or without a reason", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.option(fc.constant(REASON)),
        (a, reason) => {
          const cidr = `${ipv4(a)}/0`;
          assert.deepEqual(allowedCidrsProblems([cidr], reason ?? undefined), [
            `buildHosts.allowedCidrs[0]: '${cidr}' opens the BuildKit port to the whole internet; list your CI's addresses instead`,
          ]);
        },
      ),
    );
  });

  it("accepts IPv6 networks from /48 to /128 and refuses wider ones without a reason", () => {
    fc.assert(
      fc.property(ipv6Network(48, 128), ({ cidr }) => {
        assert.deepEqual(allowedCidrsProblems([cidr]), []);
      }),
    );
    fc.assert(
      fc.property(ipv6Network(1, 47), ({ cidr, prefix }) => {
        const problems = allowedCidrsProblems([cidr]);
        assert.ok(
          problems.some((p) =>
            p.startsWith(
              `buildHosts.allowedCidrs[0]: '${cidr}' admits ${2n ** BigInt(128 - prefix)} addresses, wider than IPv6's /48 limit`,
            ),
          ),
          problems.join("\n"),
        );
      }),
    );
  });

  it("refuses any address with bits beyond its prefix and names the network", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 16, max: 31 }),
        (a, prefix) => {
          fc.pre(network4(a, prefix) !== a >>> 0);
          const cidr = `${ipv4(a)}/${prefix}`;
          assert.deepEqual(allowedCidrsProblems([cidr]), [
            `buildHosts.allowedCidrs[0]: '${cidr}' has host bits set; the network is '${ipv4(network4(a, prefix))}/${prefix}'`,
          ]);
        },
      ),
    );
  });

  it("refuses disjoint /24s once together they cover more than a /16 (65536 addresses)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 300 }),
        (blocks) => {
          const cidrs = blocks.map((b) => `10.${b >> 8}.${b & 255}.0/24`);
          const problems = allowedCidrsProblems(cidrs);
          const covered = blocks.length * 256;
          if (covered > 65536) {
            assert.equal(problems.length, 1, problems.join("\n"));
            assert.ok(
              problems[0].startsWith(`buildHosts.allowedCidrs: ['${cidrs[0]}'`) &&
                problems[0].includes(
                  `together cover ${covered} IPv4 addresses, more than a /16 (65536)`,
                ),
              problems[0],
            );
            assert.deepEqual(allowedCidrsProblems(cidrs, REASON), []);
          } else {
            assert.deepEqual(problems, []);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("merges overlaps: a /16 plus any networks inside it covers exactly the /16", () => {
    const inside = fc
      .tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 17, max: 32 }))
      .map(([low, prefix]) => `${ipv4(network4((0xcb010000 | low) >>> 0, prefix))}/${prefix}`);
    fc.assert(
      fc.property(fc.uniqueArray(inside, { maxLength: 40 }), (subnets) => {
        assert.deepEqual(allowedCidrsProblems(["203.1.0.0/16", ...subnets]), []);
      }),
    );
  });

  it("never admits a whole address family, even split into halves and with a reason", () => {
    assert.deepEqual(allowedCidrsProblems(["0.0.0.0/1", "128.0.0.0/1"], REASON), [
      "buildHosts.allowedCidrs: ['0.0.0.0/1', '128.0.0.0/1'] together cover the whole IPv4 internet; list your CI's addresses instead",
    ]);
    assert.deepEqual(allowedCidrsProblems(["::/1", "8000::/1"], REASON), [
      "buildHosts.allowedCidrs: ['::/1', '8000::/1'] together cover the whole IPv6 internet; list your CI's addresses instead",
    ]);
  });
});

describe("parseCidr (ip-address)", () => {
  const cases: Array<[string, ReturnType<typeof parseCidr>]> = [
    [
      "198.51.100.0/24",
      {
        family: 4,
        prefix: 24,
        network: "198.51.100.0/24",
        start: 3325256704n,
        size: 256n,
        hostBits: false,
      },
    ],
    [
      "2001:DB8:0:1:0::/64",
      {
        family: 6,
        prefix: 64,
        network: "2001:db8:0:1::/64",
        start: 42540766411282592875350729025363378176n,
        size: 18446744073709551616n,
        hostBits: false,
      },
    ],
    ["203.0.113.7", undefined],
    ["203.0.113.300/32", undefined],
    ["01.2.3.4/8", undefined],
    ["1.2.3.4/08", undefined],
    ["1.2.3.4/33", undefined],
    ["2001:db8::/129", undefined],
    ["fe80::1%eth0/64", undefined],
    ["ci.example.com/32", undefined],
  ];
  for (const [text, expected] of cases) {
    it(`${text} → ${expected === undefined ? "not a CIDR" : expected.network}`, () => {
      assert.deepEqual(parseCidr(text), expected);
    });
  }
});

describe("validateBuildHosts", () => {
  it("accepts the defaults and narrow CIDRs of both families", () => {
    validateBuildHosts(config());
    validateBuildHosts(
      config({
        allowedCidrs: ["203.0.113.7/32", "198.51.100.0/24", "2001:db8::/64", "2001:db8:1::5/128"],
      }),
    );
    validateBuildHosts(
      config({
        amd64InstanceType: "m7a.2xlarge",
        arm64InstanceType: "c7gd.4xlarge",
        port: 8372,
        cacheVolumeGb: 1000,
        subnetId: "subnet-0abc12345def67890",
        ssmAccess: "none",
      }),
    );
    validateBuildHosts(config({ allowedCidrs: ["203.0.0.0/8"], allowWideCidrs: REASON }));
  });

  it("accepts a disabled config as it is: nothing is created from it", () => {
    validateBuildHosts(
      config({
        enabled: false,
        allowedCidrs: ["0.0.0.0/0"],
        port: 0,
        amd64InstanceType: "nonsense",
      }),
    );
  });

  // One line a row: what is refused, the settings, and every message the error must hold.
  // prettier-ignore
  const refused: Array<[string, Partial<BuildHostsConfig>, string[]]> = [
    ["0.0.0.0/0", { allowedCidrs: ["203.0.113.7/32", "0.0.0.0/0"] }, ["buildHosts.allowedCidrs[1]: '0.0.0.0/0' opens the BuildKit port to the whole internet"]],
    ["::/0 even with a reason", { allowedCidrs: ["::/0"], allowWideCidrs: REASON }, ["buildHosts.allowedCidrs[0]: '::/0' opens the BuildKit port to the whole internet"]],
    ["any other /0", { allowedCidrs: ["192.0.2.1/0"] }, ["buildHosts.allowedCidrs[0]: '192.0.2.1/0' opens"]],
    ["a /8", { allowedCidrs: ["203.0.0.0/8"] }, ["buildHosts.allowedCidrs[0]: '203.0.0.0/8' admits 16777216 addresses, wider than IPv4's /16 limit"]],
    ["an IPv6 /32", { allowedCidrs: ["2001:db8::/32"] }, ["buildHosts.allowedCidrs[0]: '2001:db8::/32' admits 79228162514264337593543950336 addresses, wider than IPv6's /48 limit"]],
    ["three /17s", { allowedCidrs: ["203.0.0.0/17", "203.1.0.0/17", "203.2.0.0/17"] }, ["buildHosts.allowedCidrs: ['203.0.0.0/17', '203.1.0.0/17', '203.2.0.0/17'] together cover 98304 IPv4 addresses, more than a /16 (65536)"]],
    ["an empty reason", { allowedCidrs: ["203.0.0.0/8"], allowWideCidrs: " " }, ["buildHosts.allowWideCidrs: ' ' must say why wide ranges are needed (a non-empty reason)", "buildHosts.allowedCidrs[0]: '203.0.0.0/8' admits 16777216 addresses"]],
    ["an address without a prefix", { allowedCidrs: ["203.0.113.7"] }, ["buildHosts.allowedCidrs[0]: '203.0.113.7' is not a CIDR"]],
    ["an octet over 255", { allowedCidrs: ["203.0.113.300/32"] }, ["'203.0.113.300/32' is not a CIDR"]],
    ["a hostname", { allowedCidrs: ["ci.example.com/32"] }, ["'ci.example.com/32' is not a CIDR"]],
    ["host bits", { allowedCidrs: ["198.51.100.7/24"] }, ["buildHosts.allowedCidrs[0]: '198.51.100.7/24' has host bits set; the network is '198.51.100.0/24'"]],
    ["IPv6 host bits", { allowedCidrs: ["2001:db8::1/64"] }, ["buildHosts.allowedCidrs[0]: '2001:db8::1/64' has host bits set; the network is '2001:db8::/64'"]],
    ["the same IPv6 network written twice", { allowedCidrs: ["2001:db8:0:1::/64", "2001:db8:0:1:0::/64"] }, ["buildHosts.allowedCidrs[1]: '2001:db8:0:1:0::/64' repeats buildHosts.allowedCidrs[0]"]],
    ["port 0", { port: 0 }, ["buildHosts.port: 0 is not a TCP port"]],
    ["a fractional port", { port: 1234.5 }, ["buildHosts.port: 1234.5 is not a TCP port"]],
    ["port 22", { port: 22 }, ["buildHosts.port: 22 is refused"]],
    ["a zero volume", { cacheVolumeGb: 0 }, ["buildHosts.cacheVolumeGb: 0 must be a whole number of GiB"]],
    ["a volume over gp3's limit", { cacheVolumeGb: 20000 }, ["buildHosts.cacheVolumeGb: 20000"]],
    ["an x86 type for arm64", { arm64InstanceType: "c7i.xlarge" }, ["buildHosts.arm64InstanceType: 'c7i.xlarge' is an amd64 instance type; the arm64 host needs a Graviton type"]],
    ["a Graviton type for amd64", { amd64InstanceType: "c7g.xlarge" }, ["buildHosts.amd64InstanceType: 'c7g.xlarge' is an arm64 instance type; the amd64 host needs an x86 type"]],
    ["an unknown family", { amd64InstanceType: "qq9.xlarge" }, ["buildHosts.amd64InstanceType: 'qq9.xlarge': unknown instance family 'qq'"]],
    ["a mac", { amd64InstanceType: "mac1.metal" }, ["buildHosts.amd64InstanceType: 'mac1.metal': mac instances run macOS"]],
    ["a bad subnet id", { subnetId: "default" }, ["buildHosts.subnetId: 'default' is not a subnet id"]],
    ["an unknown ssmAccess", { ssmAccess: "full" as BuildHostsConfig["ssmAccess"] }, ["buildHosts.ssmAccess: 'full' is not one of scoped, managed-core, none"]],
  ];
  for (const [what, overrides, messages] of refused) {
    it(`refuses ${what}, naming the key and the value`, () => {
      assert.throws(
        () => validateBuildHosts(config(overrides)),
        (err: Error) => {
          assert.ok(pulumi.InputPropertyError.isInstance(err));
          assert.equal(err.propertyPath, "config");
          for (const m of messages)
            assert.ok(err.message.includes(m), `expected '${m}' in:\n${err.message}`);
          return true;
        },
      );
    });
  }

  it("lists every problem at once", () => {
    assert.deepEqual(
      buildHostsProblems(config({ port: 22, allowedCidrs: ["::/0"], ssmAccess: "all" as "none" })),
      [
        "buildHosts.allowedCidrs[0]: '::/0' opens the BuildKit port to the whole internet; list your CI's addresses instead",
        "buildHosts.port: 22 is refused: the hosts have no SSH, and BuildKit on 22 would look like it",
        "buildHosts.ssmAccess: 'all' is not one of scoped, managed-core, none",
      ],
    );
  });

  it("applies the documented defaults to a raw block", () => {
    assert.deepEqual(buildHostsConfig({}, "dev"), {
      enabled: true,
      amd64InstanceType: "c7i.xlarge",
      arm64InstanceType: "c7g.xlarge",
      allowedCidrs: [],
      allowWideCidrs: undefined,
      port: 1234,
      cacheVolumeGb: 200,
      subnetId: undefined,
      localBuilder: undefined,
      ssmAccess: "scoped",
    });
    assert.equal(buildHostsConfig({}, "local").enabled, false);
    assert.equal(buildHostsConfig({ localBuilder: "b" }, "prod").enabled, false);
    assert.equal(buildHostsConfig({ ssmAccess: "managed-core" }, "dev").ssmAccess, "managed-core");
  });
});

describe("instance architecture", () => {
  const names: Array<[string, string]> = [
    ["c7g.xlarge", "arm64"],
    ["c7gd.2xlarge", "arm64"],
    ["c6gn.large", "arm64"],
    ["t4g.small", "arm64"],
    ["a1.large", "arm64"],
    ["im4gn.large", "arm64"],
    ["is4gen.xlarge", "arm64"],
    ["x2gd.metal", "arm64"],
    ["g5g.xlarge", "arm64"],
    ["c8g.metal-24xl", "arm64"],
    ["c7i.xlarge", "amd64"],
    ["c7a.2xlarge", "amd64"],
    ["m5zn.large", "amd64"],
    ["g4dn.xlarge", "amd64"],
    ["c7i-flex.large", "amd64"],
    ["u7i-12tb.224xlarge", "amd64"],
    ["hpc7a.96xlarge", "amd64"],
  ];
  for (const [type, arch] of names) {
    it(`the offline table reads ${type} as ${arch}`, () => assert.equal(instanceArch(type), arch));
  }

  it("reads EC2's supportedArchitectures", () => {
    assert.equal(hostArchFromEc2(["arm64"]), "arm64");
    assert.equal(hostArchFromEc2(["i386", "x86_64"]), "amd64");
    assert.equal(hostArchFromEc2(["x86_64_mac"]), undefined);
  });

  it("refuses a host whose type EC2 reports for the other architecture, naming key and value", () => {
    assert.equal(ec2ArchProblem("arm64", "c7g.xlarge", ["arm64"]), undefined);
    assert.equal(ec2ArchProblem("amd64", "c7i.xlarge", ["x86_64"]), undefined);
    assert.equal(
      ec2ArchProblem("arm64", "c7g.xlarge", ["x86_64"]),
      "buildHosts.arm64InstanceType: 'c7g.xlarge' supports x86_64 according to EC2; the arm64 host needs an arm64 (Graviton) type",
    );
    assert.equal(
      ec2ArchProblem("amd64", "mac2.metal", ["arm64_mac"]),
      "buildHosts.amd64InstanceType: 'mac2.metal' supports arm64_mac according to EC2; the amd64 host needs an x86_64 type",
    );
    assert.equal(ec2ArchProblem("amd64", "c7i.xlarge", []), undefined);
  });
});

describe("policy: the same CIDR rule on a plan's ingress", () => {
  const cfg = (over: Partial<PolicyStackConfig> = {}): PolicyStackConfig => ({
    platforms: DEFAULT_PLATFORMS,
    buildkitPort: 1234,
    cacheMode: "max",
    waivers: {},
    ...over,
  });

  it("refuses a wide vpc ingress rule on the BuildKit port, naming where and the value", () => {
    const rule = { ipProtocol: "tcp", fromPort: 1234, toPort: 1234, cidrIpv4: "203.0.0.0/8" };
    assert.deepEqual(checkBuildkitIngressWidth(vpcIngressRuleCidrs(rule, 1234), cfg()), [
      "ingress rule on the BuildKit port 1234: '203.0.0.0/8' admits 16777216 addresses, wider than IPv4's /16 limit; " +
        "list your CI's addresses, or set buildHosts.allowWideCidrs to the reason this range is needed (image-factory:buildHosts.allowedCidrs)",
    ]);
    assert.deepEqual(
      checkBuildkitIngressWidth(vpcIngressRuleCidrs(rule, 1234), cfg({ allowWideCidrs: REASON })),
      [],
    );
    assert.deepEqual(
      checkBuildkitIngressWidth(
        vpcIngressRuleCidrs({ ...rule, fromPort: 443, toPort: 443 }, 1234),
        cfg(),
      ),
      [],
    );
  });

  it("reads inline ingress and SecurityGroupRules, and leaves a /0 to the world rule", () => {
    const sg = {
      ingress: [
        {
          protocol: "tcp",
          fromPort: 1234,
          toPort: 1234,
          cidrBlocks: ["203.0.113.0/24", "198.51.100.7/24"],
        },
        { protocol: "tcp", fromPort: 1234, toPort: 1234, ipv6CidrBlocks: ["2001:db8::/32"] },
        { protocol: "tcp", fromPort: 1234, toPort: 1234, cidrBlocks: ["0.0.0.0/0"] },
      ],
    };
    assert.deepEqual(
      checkBuildkitIngressWidth(securityGroupCidrs(sg, 1234), cfg()).map((m) => m.split(";")[0]),
      [
        "ingress[0] on the BuildKit port 1234: '198.51.100.7/24' has host bits set",
        "ingress[1] on the BuildKit port 1234: '2001:db8::/32' admits 79228162514264337593543950336 addresses, wider than IPv6's /48 limit",
      ],
    );
    assert.deepEqual(checkBuildkitPortNotWorldOpen(TYPES.securityGroup, sg, 1234), [
      "ingress[2] opens the BuildKit port 1234 to 0.0.0.0/0; admit only the factory's CI CIDRs (image-factory:buildHosts.allowedCidrs)",
    ]);
    const rule = {
      type: "ingress",
      protocol: "-1",
      fromPort: 0,
      toPort: 0,
      cidrBlocks: ["203.0.0.0/12"],
    };
    assert.equal(checkBuildkitIngressWidth(securityGroupRuleCidrs(rule, 1234), cfg()).length, 1);
    assert.deepEqual(securityGroupRuleCidrs({ ...rule, type: "egress" }, 1234), []);
  });

  it("the world rule now catches any /0, not only the two usual spellings", () => {
    assert.deepEqual(
      checkBuildkitPortNotWorldOpen(
        TYPES.vpcIngressRule,
        { ipProtocol: "tcp", fromPort: 1234, toPort: 1234, cidrIpv4: "192.0.2.1/0" },
        1234,
      ),
      [
        "ingress rule opens the BuildKit port 1234 to 192.0.2.1/0; admit only the factory's CI CIDRs (image-factory:buildHosts.allowedCidrs)",
      ],
    );
  });

  it("refuses a plan whose ingress rules together cover more than a /16", () => {
    const rule = (cidr: string): StackResource => ({
      type: TYPES.vpcIngressRule,
      name: cidr,
      props: { ipProtocol: "tcp", fromPort: 1234, toPort: 1234, cidrIpv4: cidr },
    });
    const resources = [rule("203.0.0.0/17"), rule("203.1.0.0/17"), rule("203.2.0.0/17")];
    assert.deepEqual(checkBuildkitIngressTotal(resources, cfg()), [
      "ingress to the BuildKit port 1234: ['203.0.0.0/17', '203.1.0.0/17', '203.2.0.0/17'] together cover 98304 IPv4 addresses, " +
        "more than a /16 (65536); narrow them, or set buildHosts.allowWideCidrs to the reason (image-factory:buildHosts.allowedCidrs)",
    ]);
    assert.deepEqual(checkBuildkitIngressTotal(resources.slice(0, 2), cfg()), []);
    assert.deepEqual(checkBuildkitIngressTotal(resources, cfg({ allowWideCidrs: REASON })), []);
    assert.deepEqual(buildkitIngressCidrs(TYPES.instance, {}, 1234), []);
  });

  it("reads allowWideCidrs from the stack config", () => {
    const values = {
      "image-factory:buildHosts": JSON.stringify({ port: 8372, allowWideCidrs: REASON }),
    };
    assert.deepEqual(stackConfigFromValues(values), {
      platforms: DEFAULT_PLATFORMS,
      buildkitPort: 8372,
      cacheMode: "max",
      promoteFrom: undefined,
      allowWideCidrs: REASON,
      waivers: {},
    });
  });
});
