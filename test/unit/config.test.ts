import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  ConfigError,
  decodeRawConfig,
  validateConfig,
  type ConfigContext,
} from "../../components/config";

const ROOT = path.resolve(__dirname, "../..");
const SHA = "0123456789abcdef0123456789abcdef01234567";

function ctx(over: Partial<ConfigContext> = {}): ConfigContext {
  return {
    stack: "dev",
    env: {},
    localGit: () => ({ ref: "refs/heads/main", sha: SHA, created: "2026-11-23T10:00:00Z" }),
    secretKeys: new Set(["registryToken"]),
    cwd: ROOT,
    ...over,
  };
}

const GOOD: Record<string, unknown> = {
  imageName: "ghcr.io/acme/shop-api",
  registryUsername: "acme-ci",
  registryToken: "t0ken-value-never-shown",
};

function problemsOf(raw: Record<string, unknown>, c: ConfigContext = ctx()): string[] {
  try {
    validateConfig(raw, c);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e.problems;
  }
  return [];
}

// Each row: config overrides, the key the message must name, and the offending value it must show.
const bad: Array<{
  name: string;
  raw: Record<string, unknown>;
  key: string;
  value: string;
  c?: Partial<ConfigContext>;
}> = [
  {
    name: "missing imageName",
    raw: { imageName: undefined },
    key: "image-factory:imageName",
    value: "undefined",
  },
  {
    name: "uppercase imageName",
    raw: { imageName: "ghcr.io/Acme/Shop" },
    key: "image-factory:imageName",
    value: '"ghcr.io/Acme/Shop"',
  },
  {
    name: "imageName without host",
    raw: { imageName: "acme/shop-api" },
    key: "image-factory:imageName",
    value: '"acme/shop-api"',
  },
  {
    name: "imageName with tag",
    raw: { imageName: "ghcr.io/acme/shop:1.0" },
    key: "image-factory:imageName",
    value: '"ghcr.io/acme/shop:1.0"',
  },
  {
    name: "imageName with digest",
    raw: { imageName: `ghcr.io/acme/shop@sha256:${"a".repeat(64)}` },
    key: "image-factory:imageName",
    value: "sha256",
  },
  {
    name: "imageName bad component",
    raw: { imageName: "ghcr.io/acme/shop--_api" },
    key: "image-factory:imageName",
    value: "shop--_api",
  },
  {
    name: "ghcr without owner",
    raw: { imageName: "ghcr.io/shop" },
    key: "image-factory:imageName",
    value: '"ghcr.io/shop"',
  },
  { name: "empty platforms", raw: { platforms: [] }, key: "image-factory:platforms", value: "[]" },
  {
    name: "unknown platform",
    raw: { platforms: ["linux/amd64", "linux/s390x"] },
    key: "image-factory:platforms[1]",
    value: '"linux/s390x"',
  },
  {
    name: "arm without variant",
    raw: { platforms: ["linux/arm"] },
    key: "image-factory:platforms[0]",
    value: '"linux/arm"',
  },
  {
    name: "duplicate platform",
    raw: { platforms: ["linux/arm64", "linux/arm64"] },
    key: "image-factory:platforms[1]",
    value: '"linux/arm64"',
  },
  {
    name: "platforms not a list",
    raw: { platforms: "linux/amd64" },
    key: "image-factory:platforms",
    value: '"linux/amd64"',
  },
  {
    name: "unknown config key",
    raw: { imagename: "x" },
    key: "image-factory:imagename",
    value: '"x"',
  },
  {
    name: "unknown cache type",
    raw: { cache: { type: "redis" } },
    key: "image-factory:cache.type",
    value: '"redis"',
  },
  {
    name: "bad cache mode",
    raw: { cache: { mode: "all" } },
    key: "image-factory:cache.mode",
    value: '"all"',
  },
  {
    name: "unknown cache setting",
    raw: { cache: { tpye: "s3" } },
    key: "image-factory:cache.tpye",
    value: '"s3"',
  },
  {
    name: "cache expireDays zero",
    raw: { cache: { type: "s3", expireDays: 0 } },
    key: "image-factory:cache.expireDays",
    value: "0",
  },
  {
    name: "negative size gate",
    raw: { gates: { maxImageSizeMb: -5 } },
    key: "gates.maxImageSizeMb",
    value: "-5",
  },
  {
    name: "coverage over 100",
    raw: { gates: { minCoverage: 120 } },
    key: "gates.minCoverage",
    value: "120",
  },
  {
    name: "negative critical gate",
    raw: { gates: { maxCritical: -1 } },
    key: "gates.maxCritical",
    value: "-1",
  },
  { name: "unknown gate", raw: { gates: { maxHigh: 3 } }, key: "gates.maxHigh", value: "3" },
  {
    name: "ref neither branch tag nor pr",
    raw: { gitRef: "main", gitSha: SHA },
    key: "gitRef",
    value: '"main"',
  },
  {
    name: "malformed sha",
    raw: { gitRef: "refs/heads/main", gitSha: "abc123" },
    key: "gitSha",
    value: '"abc123"',
  },
  {
    name: "malformed GITHUB_SHA",
    raw: {},
    key: "gitSha",
    value: '"XYZ"',
    c: { env: { GITHUB_REF: "refs/heads/main", GITHUB_SHA: "XYZ" } },
  },
  {
    name: "no git context",
    raw: {},
    key: "gitRef",
    value: "undefined",
    c: { localGit: () => undefined },
  },
  {
    name: "missing registry token when pushing",
    raw: { registryToken: undefined },
    key: "image-factory:registryToken",
    value: "secret registryToken",
  },
  {
    name: "plaintext registry token",
    raw: {},
    key: "image-factory:registryToken",
    value: "plaintext",
    c: { secretKeys: new Set() },
  },
  {
    name: "missing registry username",
    raw: { registryUsername: undefined },
    key: "image-factory:registryUsername",
    value: "undefined",
  },
  {
    name: "appPath without Dockerfile",
    raw: { appPath: "./components" },
    key: "image-factory:appPath",
    value: "Dockerfile",
  },
  {
    name: "appPath missing",
    raw: { appPath: "./nope" },
    key: "image-factory:appPath",
    value: '"./nope"',
  },
  { name: "push not boolean", raw: { push: "yes" }, key: "image-factory:push", value: '"yes"' },
  {
    name: "promoteFrom itself",
    raw: { promoteFrom: "dev" },
    key: "image-factory:promoteFrom",
    value: '"dev"',
  },
  {
    name: "promoteFrom malformed",
    raw: { promoteFrom: "a b" },
    key: "image-factory:promoteFrom",
    value: '"a b"',
  },
  {
    name: "github owner mismatch",
    raw: { github: { owner: "other", repository: "shop-api" } },
    key: "image-factory:github.owner",
    value: '"other"',
  },
  {
    name: "github unknown setting",
    raw: { github: { owner: "acme", repository: "r", reviewers: [] } },
    key: "image-factory:github.reviewers",
    value: "[]",
  },
  {
    name: "buildHosts wrong type",
    raw: { buildHosts: { port: "1234" } },
    key: "image-factory:buildHosts.port",
    value: '"1234"',
  },
  {
    name: "npmCaFile missing",
    raw: { npmCaFile: "/nope/ca.crt" },
    key: "image-factory:npmCaFile",
    value: '"/nope/ca.crt"',
  },
  {
    name: "npmCaFile a directory",
    raw: { npmCaFile: os.tmpdir() },
    key: "image-factory:npmCaFile",
    value: `is not a readable file (EISDIR), got "${os.tmpdir()}"`,
  },
  {
    name: "npmCaFile without a certificate",
    raw: { npmCaFile: path.join(ROOT, "package.json") },
    key: "image-factory:npmCaFile",
    value: `-----BEGIN CERTIFICATE----- block, got "${path.join(ROOT, "package.json")}"`,
  },
  {
    name: "github without production reviewers",
    raw: { github: { owner: "acme", repository: "shop-api", productionReviewers: [] } },
    key: "image-factory:github.productionReviewers",
    value: "got []",
  },
  {
    name: "github reviewers unset",
    raw: { github: { owner: "acme", repository: "shop-api" } },
    key: "image-factory:github.productionReviewers",
    value: "got []",
  },
  {
    name: "github reviewer malformed",
    raw: {
      github: { owner: "acme", repository: "shop-api", productionReviewers: ["acme/platform/x"] },
    },
    key: "image-factory:github.productionReviewers[0]",
    value: '"acme/platform/x"',
  },
  {
    name: "appPath escaping with ..",
    raw: { appPath: "../" },
    key: "image-factory:appPath must stay inside the repository",
    value: '"../"',
  },
  {
    name: "appPath absolute elsewhere",
    raw: { appPath: "/etc" },
    key: "image-factory:appPath must stay inside the repository",
    value: '"/etc"',
  },
  {
    name: "cache bucket not an S3 name",
    raw: { cache: { type: "s3", bucket: "My_Bucket" } },
    key: "image-factory:cache.bucket",
    value: '"My_Bucket"',
  },
  {
    name: "cache bucket shaped like an IP",
    raw: { cache: { type: "s3", bucket: "192.168.5.4" } },
    key: "image-factory:cache.bucket",
    value: '"192.168.5.4"',
  },
  {
    name: "cache bucket injecting an option",
    raw: { cache: { type: "s3", bucket: "b,endpoint_url=http://evil" } },
    key: "image-factory:cache.bucket",
    value: '"b,endpoint_url=http://evil"',
  },
  {
    name: "cache region malformed",
    raw: { cache: { type: "s3", region: "eu-west" } },
    key: "image-factory:cache.region",
    value: '"eu-west"',
  },
  {
    name: "cache region injecting an option",
    raw: { cache: { type: "s3", region: "eu-west-1,access_key_id=x" } },
    key: "image-factory:cache.region",
    value: '"eu-west-1,access_key_id=x"',
  },
  {
    name: "cache dir injecting an option",
    raw: { cache: { type: "local", dir: ".local/cache,dest=/etc" } },
    key: "image-factory:cache.dir",
    value: '".local/cache,dest=/etc"',
  },
  {
    name: "cache dir with =",
    raw: { cache: { type: "local", dir: "a=b" } },
    key: "image-factory:cache.dir",
    value: '"a=b"',
  },
  {
    name: "cache ref with a tag",
    raw: { cache: { ref: "ghcr.io/acme/shop-api-cache:latest" } },
    key: "image-factory:cache.ref",
    value: '"ghcr.io/acme/shop-api-cache:latest"',
  },
  {
    name: "cache ref injecting an option",
    raw: { cache: { ref: "ghcr.io/acme/cache,mode=min" } },
    key: "image-factory:cache.ref",
    value: '"ghcr.io/acme/cache,mode=min"',
  },
  {
    name: "buildHosts CIDR wider than /16",
    raw: { buildHosts: { allowedCidrs: ["10.0.0.0/8"] } },
    key: "image-factory:buildHosts.allowedCidrs[0]",
    value: "'10.0.0.0/8' admits 16777216 addresses",
  },
  {
    name: "buildHosts empty wide-CIDR reason",
    raw: { buildHosts: { allowWideCidrs: "" } },
    key: "image-factory:buildHosts.allowWideCidrs",
    value: "''",
  },
  {
    name: "buildHosts unknown ssmAccess",
    raw: { buildHosts: { ssmAccess: "admin" } },
    key: "image-factory:buildHosts.ssmAccess",
    value: "'admin'",
  },
];

describe("validateConfig refuses bad input, naming key and value", () => {
  it("accepts the minimal good config with documented defaults", () => {
    const cfg = validateConfig(GOOD, ctx());
    assert.deepEqual(cfg.platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    assert.equal(cfg.registry, "ghcr.io");
    assert.deepEqual(cfg.cache, {
      type: "registry",
      mode: "max",
      ref: "ghcr.io/acme/shop-api-buildcache",
      bucket: undefined,
      region: undefined,
      expireDays: 14,
      dir: ".local/cache",
      ociMediaTypes: false,
      ignoreError: true,
    });
    assert.equal(cfg.buildHosts.enabled, true, "dev enables build hosts by default");
    assert.equal(cfg.buildHosts.port, 1234);
    assert.deepEqual(cfg.gates, {
      maxImageSizeMb: 500,
      minCoverage: 80,
      minBranchCoverage: 80,
      minFunctionCoverage: 80,
      maxCritical: 0,
      minEfficiency: 0.95,
      maxWastedMb: 20,
      waive: {},
    });
    assert.equal(cfg.vulnerabilityDb, undefined);
    assert.equal(cfg.git.source, "git");
    assert.equal(cfg.appPath, path.join(ROOT, "app"));
    assert.equal(cfg.push, true);
  });

  for (const b of bad) {
    it(b.name, () => {
      const raw: Record<string, unknown> = { ...GOOD, ...b.raw };
      for (const [k, v] of Object.entries(raw)) if (v === undefined) delete raw[k];
      const problems = problemsOf(raw, ctx(b.c ?? {}));
      const hit = problems.find((p) => p.includes(b.key) && p.includes(b.value));
      assert.ok(hit, `no problem naming ${b.key} and ${b.value} in:\n${problems.join("\n")}`);
    });
  }

  it("covers at least 20 bad-input cases", () => assert.ok(bad.length >= 20));

  it("never echoes the registry token", () => {
    const problems = problemsOf({ ...GOOD, imageName: "BAD" }, ctx({ secretKeys: new Set() }));
    assert.ok(problems.length >= 2);
    assert.ok(!problems.join("\n").includes("t0ken-value-never-shown"));
  });

  it("reports every problem at once", () => {
    const problems = problemsOf({ imageName: "X", platforms: [], cache: { type: "nope" } }, ctx());
    assert.ok(problems.length >= 4, problems.join("\n"));
  });

  it("takes the git context from config, then GITHUB_*, then the local repository", () => {
    const env = { GITHUB_REF: "refs/pull/7/merge", GITHUB_SHA: "f".repeat(40) };
    assert.equal(validateConfig(GOOD, ctx({ env })).git.ref, "refs/pull/7/merge");
    assert.equal(validateConfig(GOOD, ctx({ env })).git.source, "env");
    const fromCfg = validateConfig(
      { ...GOOD, gitRef: "refs/tags/v1.0.0", gitSha: "e".repeat(40) },
      ctx({ env }),
    );
    assert.deepEqual(
      [fromCfg.git.ref, fromCfg.git.sha, fromCfg.git.source],
      ["refs/tags/v1.0.0", "e".repeat(40), "config"],
    );
  });

  it("keeps build hosts off for stacks other than dev/prod unless enabled", () => {
    assert.equal(validateConfig(GOOD, ctx({ stack: "local" })).buildHosts.enabled, false);
    assert.equal(
      validateConfig({ ...GOOD, buildHosts: { localBuilder: "b" } }, ctx()).buildHosts.enabled,
      false,
    );
  });

  it("accepts well-formed cache, GitHub, wide-CIDR and CA-bundle settings", () => {
    const cfg = validateConfig(
      {
        ...GOOD,
        cache: { type: "s3", bucket: "acme-image-factory-cache", region: "us-gov-west-1" },
        github: {
          owner: "acme",
          repository: "shop-api",
          productionReviewers: ["acme/platform-team", "alice"],
        },
        buildHosts: {
          allowedCidrs: ["10.0.0.0/8"],
          allowWideCidrs: "the runners' NAT pool (OPS-42)",
          ssmAccess: "none",
        },
        npmCaFile: "/etc/ssl/certs/ca-certificates.crt",
      },
      ctx(),
    );
    assert.deepEqual(
      [cfg.cache.bucket, cfg.cache.region],
      ["acme-image-factory-cache", "us-gov-west-1"],
    );
    assert.deepEqual(cfg.github?.productionReviewers, ["acme/platform-team", "alice"]);
    assert.deepEqual(
      [cfg.buildHosts.allowedCidrs, cfg.buildHosts.ssmAccess],
      [["10.0.0.0/8"], "none"],
    );
    assert.equal(validateConfig(GOOD, ctx()).buildHosts.ssmAccess, "scoped");
  });

  it("refuses an appPath that leaves the repository through a symlink, and follows one inside it", () => {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), "if-repo-"));
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "if-outside-"));
    for (const dir of [outside, path.join(repo, "services", "api")]) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
    }
    fs.symlinkSync(outside, path.join(repo, "app"));
    fs.symlinkSync(path.join(repo, "services", "api"), path.join(repo, "api"));
    const escaping = problemsOf({ ...GOOD, appPath: "./app" }, ctx({ cwd: repo }));
    assert.deepEqual(
      escaping.filter((p) => p.startsWith("image-factory:appPath")),
      [
        `image-factory:appPath leaves the repository through a symlink: "./app" resolves to "${fs.realpathSync(outside)}", outside "${fs.realpathSync(repo)}"`,
      ],
    );
    assert.deepEqual(problemsOf({ ...GOOD, appPath: "./api" }, ctx({ cwd: repo })), []);
  });

  it("finds a Dockerfile that does not start with FROM", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-df-"));
    fs.writeFileSync(path.join(dir, "Dockerfile"), "RUN echo hi\n");
    const problems = problemsOf({ ...GOOD, appPath: dir });
    assert.ok(
      problems.some(
        (p) => p.includes("image-factory:appPath") && p.includes("must start with FROM"),
      ),
      problems.join("\n"),
    );
  });
});

describe("decodeRawConfig", () => {
  it("decodes structured keys, drops empty text and ignores other namespaces", () => {
    const raw = decodeRawConfig({
      "image-factory:platforms": '["linux/amd64"]',
      "image-factory:push": "false",
      "image-factory:gitRef": "",
      "image-factory:imageName": "ghcr.io/a/b",
      "aws:region": "eu-west-1",
    });
    assert.deepEqual(raw, { platforms: ["linux/amd64"], push: false, imageName: "ghcr.io/a/b" });
  });
  it("names a key holding malformed structured text", () => {
    assert.throws(
      () => decodeRawConfig({ "image-factory:cache": "{type: registry" }),
      /image-factory:cache.*\{type: registry/,
    );
  });
});

describe("validateConfig: gates and vulnerabilityDb", () => {
  /** The one problem validateConfig reports for `raw` on top of the good config. */
  function onlyProblem(raw: Record<string, unknown>): string {
    const problems = problemsOf({ ...GOOD, ...raw });
    assert.equal(problems.length, 1, problems.join("\n"));
    return problems[0];
  }

  it("refuses gates.minBranchCoverage over 100, naming the key and the value", () => {
    assert.equal(
      onlyProblem({ gates: { minBranchCoverage: 101 } }),
      "image-factory:gates.minBranchCoverage must be a percentage between 0 and 100; got 101",
    );
  });

  it("refuses gates.minFunctionCoverage that is not a number, naming the key and the value", () => {
    assert.equal(
      onlyProblem({ gates: { minFunctionCoverage: "eighty" } }),
      'image-factory:gates.minFunctionCoverage must be a percentage between 0 and 100; got "eighty"',
    );
  });

  it("takes branch and function coverage limits, also as numeric text", () => {
    const cfg = validateConfig(
      { ...GOOD, gates: { minBranchCoverage: 70, minFunctionCoverage: "75" } },
      ctx(),
    );
    assert.equal(cfg.gates.minBranchCoverage, 70);
    assert.equal(cfg.gates.minFunctionCoverage, 75);
    assert.equal(cfg.gates.minCoverage, 80);
  });

  it("refuses a waiver of a check that does not exist, naming the key and the check", () => {
    const problem = onlyProblem({ gates: { waive: { coverge: "typo in the check name" } } });
    assert.ok(
      problem.startsWith(
        "image-factory:gates.waive.coverge is not a known check (known: imageSize, efficiency,",
      ),
      problem,
    );
    assert.ok(problem.endsWith('; got "typo in the check name"'), problem);
  });

  it("refuses a waiver without a reason, naming the key and the empty value", () => {
    assert.equal(
      onlyProblem({ gates: { waive: { coverage: "" } } }),
      'image-factory:gates.waive.coverage needs a reason of at least 10 characters saying why the check is waived; got ""',
    );
    assert.equal(
      onlyProblem({ gates: { waive: { "efficiency[linux/arm64]": "   " } } }),
      'image-factory:gates.waive.efficiency[linux/arm64] needs a reason of at least 10 characters saying why the check is waived; got "   "',
    );
  });

  it("refuses waive that is not a map of check to reason", () => {
    assert.equal(
      onlyProblem({ gates: { waive: "all" } }),
      'image-factory:gates.waive must map a check name to the reason it is waived; got "all"',
    );
  });

  it("keeps a waiver of a check, or of one platform's check, with its reason trimmed", () => {
    const cfg = validateConfig(
      {
        ...GOOD,
        gates: {
          waive: {
            "efficiency[linux/arm/v7]": "  QEMU-built arm/v7 layers are larger  ",
            dockerfileLint: "DL3008 pinned by digest instead",
          },
        },
      },
      ctx(),
    );
    assert.deepEqual(cfg.gates.waive, {
      "efficiency[linux/arm/v7]": "QEMU-built arm/v7 layers are larger",
      dockerfileLint: "DL3008 pinned by digest instead",
    });
  });

  const dbProblem = (v: string): string =>
    `image-factory:vulnerabilityDb must be an OCI reference with a registry host, a repository and a tag or digest (e.g. 127.0.0.1:5443/image-factory/trivy-db:2), got "${v}"`;
  for (const bad of [
    "127.0.0.1:5443/image-factory/trivy-db",
    "ghcr.io/aquasecurity/trivy-db",
    "127.0.0.1:5443",
    "trivy-db:2",
    "ghcr.io/Aqua/trivy-db:2",
  ]) {
    it(`refuses vulnerabilityDb ${bad}, naming the key and the value`, () => {
      assert.equal(onlyProblem({ vulnerabilityDb: bad }), dbProblem(bad));
    });
  }
  it("accepts a vulnerabilityDb pinned by digest", () => {
    const ref = `ghcr.io/aquasecurity/trivy-db@sha256:${"a".repeat(64)}`;
    assert.equal(validateConfig({ ...GOOD, vulnerabilityDb: ref }, ctx()).vulnerabilityDb, ref);
  });

  it("accepts the local stack's offline vulnerabilityDb and leaves it unset when empty", () => {
    assert.equal(
      validateConfig({ ...GOOD, vulnerabilityDb: "127.0.0.1:5443/image-factory/trivy-db:2" }, ctx())
        .vulnerabilityDb,
      "127.0.0.1:5443/image-factory/trivy-db:2",
    );
    // Pulumi.yaml's default "" means Trivy's public DB.
    const raw = decodeRawConfig({
      "image-factory:imageName": "ghcr.io/acme/shop-api",
      "image-factory:vulnerabilityDb": "",
    });
    assert.equal(raw.vulnerabilityDb, undefined);
    assert.equal(validateConfig({ ...GOOD, ...raw }, ctx()).vulnerabilityDb, undefined);
  });
});
