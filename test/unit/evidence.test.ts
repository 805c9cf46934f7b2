import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  contentHashOf,
  evidenceProvider,
  isLoopbackRegistry,
  parseDiveCi,
  readCoverage,
  registryOf,
  repositoryOf,
} from "../../components/supplyChain";

describe("supplyChain: pure helpers", () => {
  const refs: Array<[string, string, string]> = [
    ["ghcr.io/acme/shop-api", "ghcr.io", "acme/shop-api"],
    ["ghcr.io/acme/shop-api:sha-1a2b3c4", "ghcr.io", "acme/shop-api"],
    ["127.0.0.1:5000/image-factory/app@sha256:" + "a".repeat(64), "127.0.0.1:5000", "image-factory/app"],
    ["localhost:5000/x/y:tag", "localhost:5000", "x/y"],
    ["acme/app", "docker.io", "acme/app"],
  ];
  for (const [ref, registry, repo] of refs) {
    it(`splits ${ref}`, async () => {
      assert.equal(registryOf(ref), registry);
      assert.equal(repositoryOf(ref), repo);
    });
  }

  it("treats only loopback registries as plain HTTP", async () => {
    assert.equal(isLoopbackRegistry("127.0.0.1:5000"), true);
    assert.equal(isLoopbackRegistry("localhost:5000"), true);
    assert.equal(isLoopbackRegistry("[::1]:5000"), true);
    assert.equal(isLoopbackRegistry("ghcr.io"), false);
    assert.equal(isLoopbackRegistry("203.0.113.1:5000"), false);
  });

  it("parses dive --ci output", async () => {
    const out = [
      "  Using default CI config",
      "Image Source: docker-archive:///tmp/x.tar",
      "Analyzing image...",
      "  efficiency: 98.7654 %",
      "  wastedBytes: 1234567 bytes (1.2 MB)",
      "  userWastedPercent: 0.4321 %",
      "Inefficient Files:",
      "Results:",
      "  PASS: highestUserWastedPercent",
      "  PASS: highestWastedBytes",
      "  PASS: lowestEfficiency",
      "Result:PASS [Total:3] [Passed:3] [Failed:0] [Warn:0] [Skipped:0]",
    ].join("\n");
    const r = parseDiveCi(out);
    assert.equal(r.efficiency, 0.987654);
    assert.equal(r.wastedBytes, 1234567);
    assert.ok(Math.abs(r.userWastedPercent - 0.004321) < 1e-12);
    assert.equal(r.pass, true);
    assert.equal(parseDiveCi(out.replace("Result:PASS", "Result:FAIL")).pass, false);
    assert.throws(() => parseDiveCi("no analysis here"), /dive output has no efficiency/);
    // As Dive 0.13 prints it: coloured, even without a terminal.
    const coloured = "\x1b[1mAnalyzing image...\x1b[0m\n  efficiency: 100.0000 %\n  wastedBytes: 0 bytes (0 B)\n  userWastedPercent: 0.0000 %\n\x1b[32mResult:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]\x1b[0m";
    assert.deepEqual(parseDiveCi(coloured), { efficiency: 1, wastedBytes: 0, userWastedPercent: 0, pass: true });
  });

  it("reads c8 json-summary coverage, and reports a missing summary as not run", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-cov-"));
    const file = path.join(dir, "coverage-summary.json");
    assert.match(JSON.stringify(readCoverage(file)), /not found/);
    fs.writeFileSync(file, JSON.stringify({ total: { lines: { total: 200, covered: 183, pct: 91.5 } } }));
    assert.deepEqual(readCoverage(file), { value: 91.5 });
    fs.writeFileSync(file, JSON.stringify({ total: {} }));
    assert.match(JSON.stringify(readCoverage(file)), /no total\.lines\.pct/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("content hash changes with any scanned file", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-hash-"));
    const a = path.join(dir, "Dockerfile");
    fs.writeFileSync(a, "FROM scratch\n");
    const h1 = contentHashOf([a, path.join(dir, "missing.json")]);
    assert.equal(contentHashOf([a, path.join(dir, "missing.json")]), h1);
    fs.writeFileSync(a, "FROM scratch\nUSER 10001\n");
    assert.notEqual(contentHashOf([a, path.join(dir, "missing.json")]), h1);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("supplyChain: the dynamic provider as Pulumi stores it", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const requireFromString = require("require-from-string") as (code: string) => { handler: () => pulumi.dynamic.ResourceProvider };

  it("serializes without capturing a secret and diffs on what matters", async () => {
    const serialized = await pulumi.runtime.serializeFunction(() => evidenceProvider, { allowSecrets: false });
    const provider = requireFromString(serialized.text).handler();
    assert.equal(typeof provider.create, "function");
    const base = { imageName: "127.0.0.1:5000/x/app", platformDigests: { "linux/amd64": "sha256:1" }, gates: { maxImageSizeMb: 500 }, contentHash: "h", registryToken: "t1" };
    const diff = provider.diff;
    assert.ok(diff);
    assert.equal((await diff("id", base, { ...base })).changes, false);
    // A rotated token alone does not rescan.
    assert.equal((await diff("id", base, { ...base, registryToken: "t2" })).changes, false);
    assert.equal((await diff("id", base, { ...base, platformDigests: { "linux/amd64": "sha256:2" } })).changes, true);
    assert.equal((await diff("id", base, { ...base, gates: { maxImageSizeMb: 400 } })).changes, true);
    assert.equal((await diff("id", base, { ...base, contentHash: "h2" })).changes, true);
  });
});
