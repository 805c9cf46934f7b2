import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, decodeRawConfig, validateConfig, type ConfigContext } from "../../components/config";

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
const bad: Array<{ name: string; raw: Record<string, unknown>; key: string; value: string; c?: Partial<ConfigContext> }> = [
  { name: "missing imageName", raw: { imageName: undefined }, key: "image-factory:imageName", value: "undefined" },
  { name: "uppercase imageName", raw: { imageName: "ghcr.io/Acme/Shop" }, key: "image-factory:imageName", value: '"ghcr.io/Acme/Shop"' },
  { name: "imageName without host", raw: { imageName: "acme/shop-api" }, key: "image-factory:imageName", value: '"acme/shop-api"' },
  { name: "imageName with tag", raw: { imageName: "ghcr.io/acme/shop:1.0" }, key: "image-factory:imageName", value: '"ghcr.io/acme/shop:1.0"' },
  { name: "imageName with digest", raw: { imageName: `ghcr.io/acme/shop@sha256:${"a".repeat(64)}` }, key: "image-factory:imageName", value: "sha256" },
  { name: "imageName bad component", raw: { imageName: "ghcr.io/acme/shop--_api" }, key: "image-factory:imageName", value: "shop--_api" },
  { name: "ghcr without owner", raw: { imageName: "ghcr.io/shop" }, key: "image-factory:imageName", value: '"ghcr.io/shop"' },
  { name: "empty platforms", raw: { platforms: [] }, key: "image-factory:platforms", value: "[]" },
  { name: "unknown platform", raw: { platforms: ["linux/amd64", "linux/s390x"] }, key: "image-factory:platforms[1]", value: '"linux/s390x"' },
  { name: "arm without variant", raw: { platforms: ["linux/arm"] }, key: "image-factory:platforms[0]", value: '"linux/arm"' },
  { name: "duplicate platform", raw: { platforms: ["linux/arm64", "linux/arm64"] }, key: "image-factory:platforms[1]", value: '"linux/arm64"' },
  { name: "platforms not a list", raw: { platforms: "linux/amd64" }, key: "image-factory:platforms", value: '"linux/amd64"' },
  { name: "unknown config key", raw: { imagename: "x" }, key: "image-factory:imagename", value: '"x"' },
  { name: "unknown cache type", raw: { cache: { type: "redis" } }, key: "image-factory:cache.type", value: '"redis"' },
  { name: "bad cache mode", raw: { cache: { mode: "all" } }, key: "image-factory:cache.mode", value: '"all"' },
  { name: "unknown cache setting", raw: { cache: { tpye: "s3" } }, key: "image-factory:cache.tpye", value: '"s3"' },
  { name: "cache expireDays zero", raw: { cache: { type: "s3", expireDays: 0 } }, key: "image-factory:cache.expireDays", value: "0" },
  { name: "negative size gate", raw: { gates: { maxImageSizeMb: -5 } }, key: "gates.maxImageSizeMb", value: "-5" },
  { name: "coverage over 100", raw: { gates: { minCoverage: 120 } }, key: "gates.minCoverage", value: "120" },
  { name: "negative critical gate", raw: { gates: { maxCritical: -1 } }, key: "gates.maxCritical", value: "-1" },
  { name: "unknown gate", raw: { gates: { maxHigh: 3 } }, key: "gates.maxHigh", value: "3" },
  { name: "ref neither branch tag nor pr", raw: { gitRef: "main", gitSha: SHA }, key: "gitRef", value: '"main"' },
  { name: "malformed sha", raw: { gitRef: "refs/heads/main", gitSha: "abc123" }, key: "gitSha", value: '"abc123"' },
  { name: "malformed GITHUB_SHA", raw: {}, key: "gitSha", value: '"XYZ"', c: { env: { GITHUB_REF: "refs/heads/main", GITHUB_SHA: "XYZ" } } },
  { name: "no git context", raw: {}, key: "gitRef", value: "undefined", c: { localGit: () => undefined } },
  { name: "missing registry token when pushing", raw: { registryToken: undefined }, key: "image-factory:registryToken", value: "secret registryToken" },
  { name: "plaintext registry token", raw: {}, key: "image-factory:registryToken", value: "plaintext", c: { secretKeys: new Set() } },
  { name: "missing registry username", raw: { registryUsername: undefined }, key: "image-factory:registryUsername", value: "undefined" },
  { name: "appPath without Dockerfile", raw: { appPath: "./components" }, key: "image-factory:appPath", value: "Dockerfile" },
  { name: "appPath missing", raw: { appPath: "./nope" }, key: "image-factory:appPath", value: '"./nope"' },
  { name: "push not boolean", raw: { push: "yes" }, key: "image-factory:push", value: '"yes"' },
  { name: "promoteFrom itself", raw: { promoteFrom: "dev" }, key: "image-factory:promoteFrom", value: '"dev"' },
  { name: "promoteFrom malformed", raw: { promoteFrom: "a b" }, key: "image-factory:promoteFrom", value: '"a b"' },
  { name: "github owner mismatch", raw: { github: { owner: "other", repository: "shop-api" } }, key: "image-factory:github.owner", value: '"other"' },
  { name: "github unknown setting", raw: { github: { owner: "acme", repository: "r", reviewers: [] } }, key: "image-factory:github.reviewers", value: "[]" },
  { name: "buildHosts wrong type", raw: { buildHosts: { port: "1234" } }, key: "image-factory:buildHosts.port", value: '"1234"' },
  { name: "npmCaFile missing", raw: { npmCaFile: "/nope/ca.crt" }, key: "image-factory:npmCaFile", value: '"/nope/ca.crt"' },
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
    assert.deepEqual(cfg.gates, { maxImageSizeMb: 500, minCoverage: 80, maxCritical: 0, minEfficiency: 0.95, maxWastedMb: 20 });
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
    const fromCfg = validateConfig({ ...GOOD, gitRef: "refs/tags/v1.0.0", gitSha: "e".repeat(40) }, ctx({ env }));
    assert.deepEqual([fromCfg.git.ref, fromCfg.git.sha, fromCfg.git.source], ["refs/tags/v1.0.0", "e".repeat(40), "config"]);
  });

  it("keeps build hosts off for stacks other than dev/prod unless enabled", () => {
    assert.equal(validateConfig(GOOD, ctx({ stack: "local" })).buildHosts.enabled, false);
    assert.equal(validateConfig({ ...GOOD, buildHosts: { localBuilder: "b" } }, ctx()).buildHosts.enabled, false);
  });

  it("finds a Dockerfile that does not start with FROM", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-df-"));
    fs.writeFileSync(path.join(dir, "Dockerfile"), "RUN echo hi\n");
    const problems = problemsOf({ ...GOOD, appPath: dir });
    assert.ok(problems.some((p) => p.includes("image-factory:appPath") && p.includes("must start with FROM")), problems.join("\n"));
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
    assert.throws(() => decodeRawConfig({ "image-factory:cache": "{type: registry" }), /image-factory:cache.*\{type: registry/);
  });
});
