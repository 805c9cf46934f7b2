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

const PKG = path.join(ROOT, "package.json");
const TMP = os.tmpdir();
const DIGEST = `sha256:${"a".repeat(64)}`;
const cache = (type: string, o: object) => ({ cache: { type, ...o } });
const hosts = (o: object) => ({ buildHosts: o });
const gh = (o: object) => ({ github: { owner: "acme", repository: "shop-api", ...o } });
const REVIEWERS = "github.productionReviewers";
const CIDR0 = "buildHosts.allowedCidrs[0]";
const BAD_SHA_ENV = { GITHUB_REF: "refs/heads/main", GITHUB_SHA: "XYZ" };

/** The value at a key path such as "cache.bucket" or "platforms[1]" inside raw config. */
function at(raw: Record<string, unknown>, key: string): unknown {
  return key
    .split(/[.[\]]+/)
    .filter(Boolean)
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], raw);
}

// Each row: test name, config overrides, the key the message must name (after "image-factory:"),
// what it must show (by default the offending value at that key, as JSON) and context overrides.
type Bad = [
  name: string,
  raw: Record<string, unknown>,
  key: string,
  shows?: string,
  c?: Partial<ConfigContext>,
];
const bad: Bad[] = [
  ["missing imageName", { imageName: undefined }, "imageName"],
  ["uppercase imageName", { imageName: "ghcr.io/Acme/Shop" }, "imageName"],
  ["imageName without host", { imageName: "acme/shop-api" }, "imageName"],
  ["imageName with tag", { imageName: "ghcr.io/acme/shop:1.0" }, "imageName"],
  ["imageName with digest", { imageName: `ghcr.io/acme/shop@${DIGEST}` }, "imageName"],
  ["imageName bad component", { imageName: "ghcr.io/acme/shop--_api" }, "imageName"],
  ["ghcr without owner", { imageName: "ghcr.io/shop" }, "imageName"],
  ["empty platforms", { platforms: [] }, "platforms"],
  ["unknown platform", { platforms: ["linux/amd64", "linux/s390x"] }, "platforms[1]"],
  ["arm without variant", { platforms: ["linux/arm"] }, "platforms[0]"],
  ["duplicate platform", { platforms: ["linux/arm64", "linux/arm64"] }, "platforms[1]"],
  ["platforms not a list", { platforms: "linux/amd64" }, "platforms"],
  ["unknown config key", { imagename: "x" }, "imagename"],
  ["unknown cache type", { cache: { type: "redis" } }, "cache.type"],
  ["bad cache mode", { cache: { mode: "all" } }, "cache.mode"],
  ["unknown cache setting", { cache: { tpye: "s3" } }, "cache.tpye"],
  ["cache expireDays zero", cache("s3", { expireDays: 0 }), "cache.expireDays"],
  ["negative size gate", { gates: { maxImageSizeMb: -5 } }, "gates.maxImageSizeMb"],
  ["coverage over 100", { gates: { minCoverage: 120 } }, "gates.minCoverage"],
  ["negative critical gate", { gates: { maxCritical: -1 } }, "gates.maxCritical"],
  ["unknown gate", { gates: { maxHigh: 3 } }, "gates.maxHigh"],
  ["ref neither branch tag nor pr", { gitRef: "main", gitSha: SHA }, "gitRef"],
  ["malformed sha", { gitRef: "refs/heads/main", gitSha: "abc123" }, "gitSha"],
  ["malformed GITHUB_SHA", {}, "gitSha", '"XYZ"', { env: BAD_SHA_ENV }],
  ["no git context", {}, "gitRef", "gitRef undefined", { localGit: () => undefined }],
  ["missing registry token", { registryToken: undefined }, "registryToken", "required to push"],
  ["plaintext registry token", {}, "registryToken", "plaintext", { secretKeys: new Set() }],
  ["missing registry username", { registryUsername: undefined }, "registryUsername"],
  ["appPath without Dockerfile", { appPath: "./components" }, "appPath", "Dockerfile"],
  ["appPath missing", { appPath: "./nope" }, "appPath"],
  ["appPath escaping with ..", { appPath: "../" }, "appPath must stay inside", '"../"'],
  ["appPath absolute elsewhere", { appPath: "/etc" }, "appPath must stay inside", '"/etc"'],
  ["push not boolean", { push: "yes" }, "push"],
  ["promoteFrom itself", { promoteFrom: "dev" }, "promoteFrom"],
  ["promoteFrom malformed", { promoteFrom: "a b" }, "promoteFrom"],
  ["github owner mismatch", gh({ owner: "other" }), "github.owner"],
  ["github unknown setting", gh({ reviewers: [] }), "github.reviewers"],
  ["github without production reviewers", gh({ productionReviewers: [] }), REVIEWERS],
  ["github reviewers unset", gh({}), REVIEWERS, "got []"],
  ["reviewer malformed", gh({ productionReviewers: ["acme/platform/x"] }), `${REVIEWERS}[0]`],
  ["npmCaFile missing", { npmCaFile: "/nope/ca.crt" }, "npmCaFile"],
  ["npmCaFile a directory", { npmCaFile: TMP }, "npmCaFile", `(EISDIR), got "${TMP}"`],
  ["npmCaFile not PEM", { npmCaFile: PKG }, "npmCaFile", `CERTIFICATE----- block, got "${PKG}"`],
  ["cache bucket not an S3 name", cache("s3", { bucket: "My_Bucket" }), "cache.bucket"],
  ["cache bucket shaped like an IP", cache("s3", { bucket: "203.0.113.4" }), "cache.bucket"],
  ["bucket adds an option", cache("s3", { bucket: "b,endpoint_url=http://evil" }), "cache.bucket"],
  ["cache region malformed", cache("s3", { region: "eu-west" }), "cache.region"],
  ["region adds an option", cache("s3", { region: "eu-west-1,access_key_id=x" }), "cache.region"],
  ["dir injecting an option", cache("local", { dir: ".local/cache,dest=/etc" }), "cache.dir"],
  ["cache dir with =", cache("local", { dir: "a=b" }), "cache.dir"],
  ["cache ref with a tag", { cache: { ref: "ghcr.io/acme/shop-api-cache:latest" } }, "cache.ref"],
  ["cache ref injecting an option", { cache: { ref: "ghcr.io/acme/cache,mode=min" } }, "cache.ref"],
  ["buildHosts wrong type", hosts({ port: "1234" }), "buildHosts.port"],
  [
    "CIDR wider than /16",
    hosts({ allowedCidrs: ["203.0.0.0/8"] }),
    CIDR0,
    "'203.0.0.0/8' admits 16777216",
  ],
  ["empty wide-CIDR reason", hosts({ allowWideCidrs: "" }), "buildHosts.allowWideCidrs", "''"],
  ["unknown ssmAccess", hosts({ ssmAccess: "admin" }), "buildHosts.ssmAccess", "'admin'"],
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
      ociMediaTypes: true,
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

  for (const [name, over, key, shows, c] of bad) {
    it(name, () => {
      const raw: Record<string, unknown> = { ...GOOD, ...over };
      for (const [k, v] of Object.entries(raw)) if (v === undefined) delete raw[k];
      const named = `image-factory:${key}`;
      const value = at(over, key);
      const shown = shows ?? (value === undefined ? "undefined" : JSON.stringify(value));
      const problems = problemsOf(raw, ctx(c));
      const hit = problems.find((p) => p.includes(named) && p.includes(shown));
      assert.ok(hit, `no problem naming ${named} and ${shown} in:\n${problems.join("\n")}`);
    });
  }

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
          allowedCidrs: ["203.0.0.0/8"],
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
      [["203.0.0.0/8"], "none"],
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

  const PERCENT = "must be a percentage between 0 and 100";
  const WHY = "needs a reason of at least 10 characters saying why the check is waived";
  // Each row: a key under gates, its bad value, and what the message says between key and value.
  const badGates: Array<[key: string, value: unknown, says: string]> = [
    ["minBranchCoverage", 101, PERCENT],
    ["minFunctionCoverage", "eighty", PERCENT],
    ["waive.coverage", "", WHY],
    ["waive.efficiency[linux/arm64]", "   ", WHY],
    ["waive", "all", "must map a check name to the reason it is waived"],
  ];
  for (const [key, value, says] of badGates) {
    it(`refuses gates.${key} = ${JSON.stringify(value)}, naming the key and the value`, () => {
      const gates = key
        .split(".")
        .reduceRight<unknown>((inner, k) => ({ [k]: inner }), value) as Record<string, unknown>;
      assert.equal(
        onlyProblem({ gates }),
        `image-factory:gates.${key} ${says}; got ${JSON.stringify(value)}`,
      );
    });
  }

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
