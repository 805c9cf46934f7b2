import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  contentHashOf,
  evidenceFingerprint,
  evidenceProvider,
  scansFingerprint,
  scansProvider,
} from "../../components/supplyChain";
import { engineEnv } from "../../components/engineProcess";
import { publishProvider } from "../../components/publication";
import { ENV_ALLOW_LIST, toolEnv } from "../../evidence/exec";
import { checkedRealm, isLoopbackRegistry, registryOf, repositoryOf } from "../../evidence/oci";
import { bindingProblem } from "../../evidence/publish";
import { type ScannedEvidence, judgeEvidence, scannedMismatch } from "../../evidence/run";
import { DEFAULT_GATES } from "../../evidence/gates";
import { parseCoverageSummary, readCoverageFile } from "../../evidence/scanners/coverage";
import { parseDiveCi } from "../../evidence/scanners/dive";
import { passedResults } from "../lib/gateResults";

describe("supplyChain: pure helpers", () => {
  const refs: Array<[string, string, string]> = [
    ["ghcr.io/acme/shop-api", "ghcr.io", "acme/shop-api"],
    ["ghcr.io/acme/shop-api:sha-1a2b3c4", "ghcr.io", "acme/shop-api"],
    [
      "127.0.0.1:5000/image-factory/app@sha256:" + "a".repeat(64),
      "127.0.0.1:5000",
      "image-factory/app",
    ],
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
    const coloured =
      "\x1b[1mAnalyzing image...\x1b[0m\n  efficiency: 100.0000 %\n  wastedBytes: 0 bytes (0 B)\n  userWastedPercent: 0.0000 %\n\x1b[32mResult:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]\x1b[0m";
    assert.deepEqual(parseDiveCi(coloured), {
      efficiency: 1,
      wastedBytes: 0,
      userWastedPercent: 0,
      pass: true,
    });
  });

  it("reads c8 json-summary coverage (lines, branches, functions), and reports a missing summary as not run", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-cov-"));
    const file = path.join(dir, "coverage-summary.json");
    assert.match(JSON.stringify(readCoverageFile(file)), /not found/);
    fs.writeFileSync(
      file,
      JSON.stringify({
        total: {
          lines: { total: 200, covered: 183, pct: 91.5 },
          branches: { pct: 84.21 },
          functions: { pct: 100 },
          statements: { pct: 91.5 },
        },
      }),
    );
    assert.deepEqual(readCoverageFile(file), {
      value: { lines: 91.5, branches: 84.21, functions: 100 },
    });
    fs.writeFileSync(file, JSON.stringify({ total: { lines: { pct: 90 } } }));
    assert.match(
      JSON.stringify(readCoverageFile(file)),
      /lacks total\.lines\/branches\/functions\.pct/,
    );
    assert.match(JSON.stringify(parseCoverageSummary("<html>", "x.json")), /x\.json is not JSON/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("hands tools only the allow-listed environment", async () => {
    const env = toolEnv(
      { TRIVY_USERNAME: "factory" },
      {
        PATH: "/bin",
        HOME: "/root",
        PULUMI_ACCESS_TOKEN: "pul-x",
        GITHUB_TOKEN: "ghs_x",
        AWS_SECRET_ACCESS_KEY: "a",
        AWS_SESSION_TOKEN: "b",
        SSL_CERT_FILE: "/ca.pem",
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: "c",
      },
    );
    assert.deepEqual(env, {
      PATH: "/bin",
      HOME: "/root",
      SSL_CERT_FILE: "/ca.pem",
      TRIVY_USERNAME: "factory",
    });
    assert.equal(
      ENV_ALLOW_LIST.some((k) => /TOKEN|SECRET|PASSWORD|PULUMI|GITHUB|AWS/.test(k)),
      false,
    );
  });

  it("hands the engine child no stack config and no CI token, only where things are and cloud identities", async () => {
    const whereThingsAre = { PATH: "/bin", HOME: "/root", NODE_EXTRA_CA_CERTS: "/ca.pem" };
    const cloudIdentities = {
      AWS_REGION: "eu-west-1",
      AWS_SESSION_TOKEN: "a",
      ACTIONS_ID_TOKEN_REQUEST_URL: "https://example.invalid/oidc",
    };
    const configAndTokens = {
      PULUMI_CONFIG: '{"image-factory:registryToken":"s3cret"}',
      PULUMI_ACCESS_TOKEN: "pul-x",
      GITHUB_TOKEN: "ghs_x",
      IMAGE_FACTORY_REGISTRY_TOKEN: "t",
      ACTIONS_RUNTIME_TOKEN: "r",
    };
    assert.deepEqual(engineEnv({ ...whereThingsAre, ...configAndTokens, ...cloudIdentities }), {
      ...whereThingsAre,
      ...cloudIdentities,
    });
  });

  it("sends Basic credentials to a bearer realm only over HTTPS on the registry's own host", async () => {
    assert.equal(
      checkedRealm("https://ghcr.io/token", { registry: "ghcr.io" }).href,
      "https://ghcr.io/token",
    );
    assert.equal(
      checkedRealm("https://auth.docker.io/token", {
        registry: "registry-1.docker.io",
        authHosts: ["auth.docker.io"],
      }).host,
      "auth.docker.io",
    );
    assert.equal(
      checkedRealm("http://127.0.0.1:5000/auth", { registry: "127.0.0.1:5000" }).port,
      "5000",
    );
    assert.throws(
      () => checkedRealm("https://203.0.113.9/token", { registry: "ghcr.io" }),
      /bearer realm https:\/\/203\.0\.113\.9 is not the registry's host .* no credentials sent/,
    );
    assert.throws(
      () => checkedRealm("http://ghcr.io/token", { registry: "ghcr.io" }),
      /bearer realm http:\/\/ghcr\.io is not HTTPS; no credentials sent/,
    );
    assert.throws(
      () => checkedRealm(undefined, { registry: "ghcr.io" }),
      /bearer realm undefined is not a URL/,
    );
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
  const requireFromString = require("require-from-string") as (code: string) => {
    handler: () => pulumi.dynamic.ResourceProvider;
  };

  // The judging (Evidence) and a Scans step: the gates they take differ (the scans only Dive's).
  const stepProviders: Array<
    [string, pulumi.dynamic.ResourceProvider, (i: never) => string, object, object]
  > = [
    [
      "Evidence",
      evidenceProvider,
      evidenceFingerprint,
      { maxImageSizeMb: 500 },
      { maxImageSizeMb: 400 },
    ],
    ["Scans", scansProvider, scansFingerprint, { minEfficiency: 0.9 }, { minEfficiency: 0.8 }],
  ];
  for (const [name, stepProvider, fingerprint, gates, otherGates] of stepProviders)
    it(`${name}: serializes without capturing a secret and reruns only on what matters`, async () => {
      const serialized = await pulumi.runtime.serializeFunction(() => stepProvider, {
        allowSecrets: false,
      });
      const provider = requireFromString(serialized.text).handler();
      assert.equal(typeof provider.create, "function");
      const base = {
        imageName: "127.0.0.1:5000/x/app",
        platformDigests: { "linux/amd64": "sha256:1" },
        gates,
        contentHash: "h",
        registryToken: "t1",
        engine: "evidence/cli.ts",
      };
      const olds = { fingerprint: fingerprint(base as never) };
      const diff = provider.diff!;
      const same: Array<[string, unknown]> = [
        ["registryToken", "t2"], // a rotated token alone does not rescan
        ["engine", "/elsewhere/cli.ts"],
      ];
      const changed: Array<[string, unknown]> = [
        ["platformDigests", { "linux/amd64": "sha256:2" }],
        ["contentHash", "h2"],
        ["gates", otherGates],
      ];
      assert.equal((await diff("id", olds, { ...base })).changes, false);
      for (const [key, value] of same)
        assert.equal((await diff("id", olds, { ...base, [key]: value })).changes, false, key);
      for (const [key, value] of changed)
        assert.equal((await diff("id", olds, { ...base, [key]: value })).changes, true, key);
      assert.doesNotMatch(serialized.text, /t1/);
    });

  it("publish provider serializes and reruns only for a new list or new tags", async () => {
    const serialized = await pulumi.runtime.serializeFunction(() => publishProvider, {
      allowSecrets: false,
    });
    const provider = requireFromString(serialized.text).handler();
    const olds = { indexRef: "r:sha-x@sha256:1", tags: ["main", "edge"] };
    assert.equal(
      (await provider.diff!("id", olds, { ...olds, registryToken: "new" })).changes,
      false,
    );
    assert.equal(
      (await provider.diff!("id", olds, { ...olds, indexRef: "r:sha-x@sha256:2" })).changes,
      true,
    );
    assert.equal((await provider.diff!("id", olds, { ...olds, tags: ["main"] })).changes, true);
  });
});

describe("evidence/run: the judging refuses scans of other bytes", () => {
  const digests = {
    "linux/amd64": "sha256:" + "a".repeat(64),
    "linux/arm64": "sha256:" + "b".repeat(64),
  };
  const scanned = (imageName: string, d: Record<string, string>): ScannedEvidence =>
    ({
      imageName,
      platforms: Object.entries(d).map(([platform, digest]) => ({
        platform,
        evidence: { digest },
      })),
      context: { lint: { notRun: "-" }, config: { notRun: "-" }, tools: {}, seconds: {} },
      notes: [],
      seconds: 1,
    }) as unknown as ScannedEvidence;
  const req = { imageName: "127.0.0.1:5000/x/app", platformDigests: digests };
  const cases: Array<[string, ScannedEvidence, RegExp]> = [
    [
      "another repository",
      scanned("127.0.0.1:5000/x/other", digests),
      /measured 127\.0\.0\.1:5000\/x\/other, not 127\.0\.0\.1:5000\/x\/app/,
    ],
    [
      "a swapped digest",
      scanned(req.imageName, { ...digests, "linux/arm64": digests["linux/amd64"] }),
      /platform linux\/arm64: the scans measured sha256:a{64}, the request names sha256:b{64}/,
    ],
    [
      "a platform missing",
      scanned(req.imageName, { "linux/amd64": digests["linux/amd64"] }),
      /platform linux\/arm64: the scans measured nothing/,
    ],
    [
      "a platform more",
      scanned(req.imageName, { ...digests, "linux/arm/v7": "sha256:" + "c".repeat(64) }),
      /platform linux\/arm\/v7: the scans measured sha256:c{64}, the request names nothing/,
    ],
  ];
  for (const [what, s, message] of cases)
    it(`refuses ${what}`, () => assert.match(scannedMismatch(req, [s]) ?? "accepted", message));

  const platformOnly = (d: Record<string, string>): ScannedEvidence => ({
    ...scanned(req.imageName, d),
    context: undefined,
  });
  const amd64 = { "linux/amd64": digests["linux/amd64"] };
  const arm64 = { "linux/arm64": digests["linux/arm64"] };
  const split: Array<[string, ScannedEvidence[], RegExp]> = [
    [
      "no build-context checks",
      [platformOnly(amd64), platformOnly(arm64)],
      /hold 0 build-context checks, not one/,
    ],
    [
      "two build-context checks",
      [scanned(req.imageName, amd64), scanned(req.imageName, arm64)],
      /hold 2 build-context checks, not one/,
    ],
    [
      "a platform scanned twice",
      [scanned(req.imageName, amd64), platformOnly(digests), platformOnly(arm64)],
      /platform linux\/amd64 was scanned twice/,
    ],
    [
      "one scan of another repository",
      [
        scanned(req.imageName, amd64),
        { ...platformOnly(arm64), imageName: "127.0.0.1:5000/x/other" },
      ],
      /measured 127\.0\.0\.1:5000\/x\/other/,
    ],
  ];
  for (const [what, s, message] of split)
    it(`refuses split scans with ${what}`, () =>
      assert.match(scannedMismatch(req, s) ?? "accepted", message));

  it("accepts scans of exactly these digests, whole or one per platform", () => {
    assert.equal(scannedMismatch(req, [scanned(req.imageName, digests)]), undefined);
    const context = scanned(req.imageName, {});
    assert.equal(
      scannedMismatch(req, [platformOnly(arm64), context, platformOnly(amd64)]),
      undefined,
    );
  });

  it("judgeEvidence throws before reading anything or writing gate-results.json", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-judge-"));
    try {
      await assert.rejects(
        judgeEvidence(
          {
            ...req,
            sourceRevision: "x",
            dockerfile: "Dockerfile",
            contextDir: ".",
            gates: { ...DEFAULT_GATES },
            outputDir: dir,
            sbomStore: "file",
            vulnDb: {},
          },
          [scanned(req.imageName, { "linux/amd64": digests["linux/amd64"] })],
        ),
        /refusing to judge, platform linux\/arm64/,
      );
      assert.equal(fs.existsSync(path.join(dir, "gate-results.json")), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("publish: the list must hold exactly what the gates judged", () => {
  const d = (c: string): string => `sha256:${c.repeat(64)}`;
  const judged = passedResults(DEFAULT_GATES, {
    imageName: "127.0.0.1:5443/x/app",
    platformDigests: { "linux/amd64": d("a"), "linux/arm64": d("b") },
    sourceRevision: "f".repeat(40),
  });
  const cases: Array<[string, Partial<typeof judged>, Record<string, string>, string | undefined]> =
    [
      ["the same digests", {}, { "linux/amd64": d("a"), "linux/arm64": d("b") }, undefined],
      [
        "a platform swapped for another image",
        {},
        { "linux/amd64": d("a"), "linux/arm64": d("c") },
        `platform linux/arm64: the list holds ${d("c")} but the gates judged ${d("b")}`,
      ],
      [
        "an extra platform nobody judged",
        {},
        { "linux/amd64": d("a"), "linux/arm64": d("b"), "linux/arm/v7": d("e") },
        `platform linux/arm/v7: the list holds ${d("e")} but the gates judged nothing`,
      ],
      [
        "a judged platform missing",
        {},
        { "linux/amd64": d("a") },
        `platform linux/arm64: the list holds nothing but the gates judged ${d("b")}`,
      ],
      [
        "results of another repository",
        { imageName: "ghcr.io/evil/app" },
        { "linux/amd64": d("a"), "linux/arm64": d("b") },
        "the gate results judged ghcr.io/evil/app, not 127.0.0.1:5443/x/app",
      ],
      [
        "results that did not pass",
        { passed: false, failed: ["coverage"] as never },
        { "linux/amd64": d("a"), "linux/arm64": d("b") },
        "the gates did not pass (failed: coverage; not run: -)",
      ],
    ];
  for (const [name, override, listed, expected] of cases) {
    it(name, async () => {
      assert.equal(
        bindingProblem({ ...judged, ...override } as never, "127.0.0.1:5443/x/app", listed),
        expected,
      );
    });
  }
});
