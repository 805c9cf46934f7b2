import * as assert from "node:assert/strict";
import {
  DEFAULT_GATES,
  GateError,
  type GatesConfig,
  Measurements,
  PlatformMeasurements,
  assertGates,
  evaluateGates,
  formatGateFailures,
  measured,
  notRun,
  validateGates,
} from "../../evidence/gates";

const MB = 1024 * 1024;

describe("validateGates", () => {
  it("returns the defaults for an unset gates object", async () => {
    assert.deepEqual(validateGates(undefined), DEFAULT_GATES);
    assert.deepEqual(validateGates(null), DEFAULT_GATES);
    assert.deepEqual(validateGates({}), DEFAULT_GATES);
  });

  const good: Array<[string, unknown, Partial<typeof DEFAULT_GATES>]> = [
    ["size only", { maxImageSizeMb: 300 }, { maxImageSizeMb: 300 }],
    ["coverage 0", { minCoverage: 0 }, { minCoverage: 0 }],
    ["coverage 100", { minCoverage: 100 }, { minCoverage: 100 }],
    ["criticals allowed", { maxCritical: 3 }, { maxCritical: 3 }],
    ["efficiency bounds", { minEfficiency: 1 }, { minEfficiency: 1 }],
    ["wasted 0", { maxWastedMb: 0 }, { maxWastedMb: 0 }],
    [
      "numeric strings from pulumi config",
      { maxImageSizeMb: "250", minEfficiency: "0.9" },
      { maxImageSizeMb: 250, minEfficiency: 0.9 },
    ],
  ];
  for (const [name, input, expected] of good) {
    it(`accepts ${name}`, async () => {
      assert.deepEqual(validateGates(input), { ...DEFAULT_GATES, ...expected });
    });
  }

  const bad: Array<[string, unknown, RegExp]> = [
    ["a negative size", { maxImageSizeMb: -1 }, /gates\.maxImageSizeMb .* got -1/],
    ["a zero size", { maxImageSizeMb: 0 }, /gates\.maxImageSizeMb .* got 0/],
    ["a non-numeric size", { maxImageSizeMb: "big" }, /gates\.maxImageSizeMb .* got "big"/],
    ["coverage over 100", { minCoverage: 101 }, /gates\.minCoverage .* got 101/],
    ["negative coverage", { minCoverage: -5 }, /gates\.minCoverage .* got -5/],
    ["fractional criticals", { maxCritical: 0.5 }, /gates\.maxCritical .* got 0\.5/],
    ["negative criticals", { maxCritical: -1 }, /gates\.maxCritical .* got -1/],
    ["efficiency as a percentage", { minEfficiency: 95 }, /gates\.minEfficiency .* got 95/],
    ["negative wasted", { maxWastedMb: -0.1 }, /gates\.maxWastedMb .* got -0\.1/],
    ["NaN", { maxWastedMb: Number.NaN }, /gates\.maxWastedMb .* got null/],
    ["a boolean", { minCoverage: true }, /gates\.minCoverage .* got true/],
    ["an empty string", { minCoverage: "" }, /gates\.minCoverage .* got ""/],
    ["an unknown key", { maxSize: 3 }, /gates\.maxSize is not a known gate .* got 3/],
    ["an array", [1, 2], /gates must be an object .* got \[1,2\]/],
    ["a number", 5, /gates must be an object .* got 5/],
  ];
  for (const [name, input, message] of bad) {
    it(`refuses ${name}`, async () => {
      assert.throws(() => validateGates(input), message);
    });
  }

  it("names a custom key prefix", async () => {
    assert.throws(
      () => validateGates({ minCoverage: 200 }, "image-factory:gates"),
      /image-factory:gates\.minCoverage/,
    );
  });
});

function cleanPlatform(overrides: Partial<PlatformMeasurements> = {}): PlatformMeasurements {
  return {
    sizeBytes: measured(150 * MB),
    efficiency: measured(0.99),
    wastedBytes: measured(2 * MB),
    criticalVulnerabilities: measured(0),
    imageSecrets: measured([]),
    ...overrides,
  };
}

function cleanMeasurements(
  overrides: Partial<Measurements> = {},
  platform: Partial<PlatformMeasurements> = {},
): Measurements {
  return {
    platforms: { "linux/amd64": cleanPlatform(platform), "linux/arm64": cleanPlatform() },
    coverage: measured({ lines: 91.5, branches: 88, functions: 95 }),
    lint: measured([]),
    misconfigurations: measured([]),
    secrets: measured([]),
    ...overrides,
  };
}

describe("evaluateGates", () => {
  it("passes clean measurements with every check passed", async () => {
    const r = evaluateGates(cleanMeasurements(), DEFAULT_GATES);
    assert.equal(r.passed, true);
    assert.deepEqual(r.failed, []);
    assert.deepEqual(r.notRun, []);
    assert.deepEqual(
      r.checks.map((c) => c.gate),
      [
        "imageSize[linux/amd64]",
        "efficiency[linux/amd64]",
        "wasted[linux/amd64]",
        "criticalVulnerabilities[linux/amd64]",
        "imageSecrets[linux/amd64]",
        "imageSize[linux/arm64]",
        "efficiency[linux/arm64]",
        "wasted[linux/arm64]",
        "criticalVulnerabilities[linux/arm64]",
        "imageSecrets[linux/arm64]",
        "coverage",
        "branchCoverage",
        "functionCoverage",
        "dockerfileLint",
        "misconfigurations",
        "secrets",
      ],
    );
    assert.ok(r.checks.every((c) => c.passed && c.status === "passed"));
    const size = r.checks.find((c) => c.gate === "imageSize[linux/amd64]");
    assert.deepEqual([size?.measured, size?.limit, size?.unit], [150, 500, "MB"]);
  });

  const app = (m: Partial<Measurements>): Measurements => cleanMeasurements(m);
  const amd64 = (p: Partial<PlatformMeasurements>): Measurements => cleanMeasurements({}, p);
  const cov = (lines: number, branches: number, functions: number) =>
    measured({ lines, branches, functions });
  const AWS_KEY = { id: "aws-access-key-id", severity: "CRITICAL", message: "AWS Access Key ID" };
  const ROOT_USER = { id: "DL3002", severity: "warning", message: "Last USER should not be root" };
  const ROOT_MISCONFIG = {
    id: "DS-0002",
    severity: "HIGH",
    message: "Image user should not be 'root'",
  };

  // Each row: the case, the measurements (the clean ones but for what the row changes), the gates
  // changed from the defaults, the check, its status and what its detail says. One line a row.
  // prettier-ignore
  const cases: Array<[string, Measurements, Partial<GatesConfig>, string, "passed" | "failed", RegExp]> = [
    ["size over the limit", amd64({ sizeBytes: measured(612 * MB) }), {}, "imageSize[linux/amd64]", "failed", /measured 612 MB, limit at most 500 MB \(gates\.maxImageSizeMb\)/],
    ["size exactly at the limit", amd64({ sizeBytes: measured(500 * MB) }), {}, "imageSize[linux/amd64]", "passed", /measured 500 MB/],
    ["size limit lowered below the real size", app({}), { maxImageSizeMb: 100 }, "imageSize[linux/amd64]", "failed", /measured 150 MB, limit at most 100 MB/],
    ["coverage below the minimum", app({ coverage: cov(79.99, 90, 90) }), {}, "coverage", "failed", /measured 79\.99 %, limit at least 80 %/],
    ["coverage exactly at the minimum", app({ coverage: cov(80, 90, 90) }), {}, "coverage", "passed", /measured 80 %/],
    ["coverage summary missing", app({ coverage: notRun("coverage image holds no coverage-summary.json") }), {}, "coverage", "failed", /required but not run: coverage image holds no/],
    ["branch coverage below its own limit", app({ coverage: cov(95, 61.5, 95) }), {}, "branchCoverage", "failed", /measured 61\.5 %, limit at least 80 % \(gates\.minBranchCoverage\)/],
    ["function coverage below a raised limit", app({}), { minFunctionCoverage: 99 }, "functionCoverage", "failed", /measured 95 %, limit at least 99 % \(gates\.minFunctionCoverage\)/],
    ["one critical vulnerability", amd64({ criticalVulnerabilities: measured(1) }), {}, "criticalVulnerabilities[linux/amd64]", "failed", /measured 1, limit at most 0 \(gates\.maxCritical\)/],
    ["criticals within an allowance", amd64({ criticalVulnerabilities: measured(2) }), { maxCritical: 2 }, "criticalVulnerabilities[linux/amd64]", "passed", /measured 2/],
    ["no vulnerability DB offline", amd64({ criticalVulnerabilities: notRun("Trivy vulnerability DB unreachable") }), {}, "criticalVulnerabilities[linux/amd64]", "failed", /required but not run: Trivy vulnerability DB unreachable/],
    ["low efficiency", amd64({ efficiency: measured(0.8) }), {}, "efficiency[linux/amd64]", "failed", /measured 0\.8, limit at least 0\.95 \(gates\.minEfficiency\)/],
    ["too many wasted bytes", amd64({ wastedBytes: measured(25 * MB) }), {}, "wasted[linux/amd64]", "failed", /measured 25 MB, limit at most 20 MB \(gates\.maxWastedMb\)/],
    ["a Hadolint warning", app({ lint: measured([{ ...ROOT_USER, where: "Dockerfile:12" }]) }), {}, "dockerfileLint", "failed", /1 Hadolint findings, limit 0 .*DL3002 \(warning\) at Dockerfile:12: Last USER should not be root/],
    ["a root user misconfiguration", app({ misconfigurations: measured([ROOT_MISCONFIG]) }), {}, "misconfigurations", "failed", /DS-0002 \(HIGH\)/],
    ["a planted AWS key", app({ secrets: measured([{ ...AWS_KEY, where: "Dockerfile:5" }]) }), {}, "secrets", "failed", /aws-access-key-id \(CRITICAL\) at Dockerfile:5/],
    ["a secret baked into the image", amd64({ imageSecrets: measured([{ ...AWS_KEY, where: "config ENV" }]) }), {}, "imageSecrets[linux/amd64]", "failed", /1 secrets in the image/],
    ["Hadolint missing", app({ lint: notRun("hadolint not found on PATH") }), {}, "dockerfileLint", "failed", /required but not run: hadolint not found/],
    ["Dive not run", amd64({ efficiency: notRun("dive failed") }), {}, "efficiency[linux/amd64]", "failed", /required but not run: dive failed/],
  ];
  for (const [name, m, gates, gate, status, detail] of cases) {
    it(`${name} → ${gate} ${status}`, async () => {
      const r = evaluateGates(m, { ...DEFAULT_GATES, ...gates });
      const check = r.checks.find((x) => x.gate === gate);
      assert.ok(check, `no check named ${gate}`);
      assert.equal(check.status, status);
      assert.equal(check.passed, status === "passed");
      assert.match(check.detail, detail);
      assert.equal(r.passed, status !== "failed");
      assert.equal(r.failed.includes(gate), status === "failed");
      assert.deepEqual(r.notRun, []);
    });
  }

  it("never counts a check that did not run as passed, even when not required", async () => {
    const r = evaluateGates(
      cleanMeasurements({}, { criticalVulnerabilities: notRun("offline") }),
      DEFAULT_GATES,
      { required: [] },
    );
    assert.equal(r.passed, false);
    const check = r.checks.find((c) => c.gate === "criticalVulnerabilities[linux/amd64]");
    assert.equal(check?.passed, false);
    assert.equal(check?.measured, null);
    assert.deepEqual(r.notRun, ["criticalVulnerabilities[linux/amd64]"]);
  });

  it("requires every check by default: one that did not run fails", async () => {
    const r = evaluateGates(
      cleanMeasurements({}, { criticalVulnerabilities: notRun("DB download failed") }),
      DEFAULT_GATES,
    );
    assert.equal(r.passed, false);
    assert.deepEqual(r.failed, ["criticalVulnerabilities[linux/amd64]"]);
    assert.match(
      r.checks.find((c) => c.gate === "criticalVulnerabilities[linux/amd64]")?.detail ?? "",
      /required but not run: DB download failed/,
    );
  });
});

describe("waivers (gates.waive)", () => {
  const reason = "base image CVE, no fix upstream yet (ACME-123)";
  it("turns a failed check into waived, keeps passing, and lists the reason", async () => {
    const r = evaluateGates(cleanMeasurements({}, { criticalVulnerabilities: measured(2) }), {
      ...DEFAULT_GATES,
      waive: { criticalVulnerabilities: reason },
    });
    assert.equal(r.passed, true);
    assert.deepEqual(r.waived, { "criticalVulnerabilities[linux/amd64]": reason });
    const c = r.checks.find((x) => x.gate === "criticalVulnerabilities[linux/amd64]");
    assert.equal(c?.status, "waived");
    assert.equal(c?.waiver, reason);
    assert.equal(c?.passed, false);
  });
  it("waives one platform only when the waiver names it", async () => {
    const r = evaluateGates(cleanMeasurements({}, { sizeBytes: measured(600 * MB) }), {
      ...DEFAULT_GATES,
      waive: { "imageSize[linux/arm64]": reason },
    });
    assert.equal(r.passed, false);
    assert.deepEqual(r.failed, ["imageSize[linux/amd64]"]);
    assert.deepEqual(r.waived, {});
  });
  it("waives a check that could not run, which then is neither failed nor notRun", async () => {
    const r = evaluateGates(cleanMeasurements({ coverage: notRun("no coverage image") }), {
      ...DEFAULT_GATES,
      waive: { coverage: reason },
    });
    assert.deepEqual(r.failed, ["branchCoverage", "functionCoverage"]);
    assert.deepEqual(r.notRun, []);
    assert.deepEqual(Object.keys(r.waived), ["coverage"]);
  });
  const bad: Array<[unknown, RegExp]> = [
    [{ coverag: "typo in the check name here" }, /gates\.waive\.coverag is not a known check/],
    [{ coverage: "" }, /gates\.waive\.coverage needs a reason of at least 10 characters .* got ""/],
    [{ coverage: "because" }, /got "because"/],
    [
      { "imageSize[linux/amd64]": 5 },
      /gates\.waive\.imageSize\[linux\/amd64\] needs a reason .* got 5/,
    ],
    [["coverage"], /gates\.waive must map a check name to the reason/],
  ];
  for (const [waive, message] of bad) {
    it(`refuses waive ${JSON.stringify(waive)}`, async () => {
      assert.throws(() => validateGates({ waive }), message);
    });
  }
  it("accepts a waiver with its reason", async () => {
    assert.deepEqual(
      validateGates({ waive: { "criticalVulnerabilities[linux/arm/v7]": `  ${reason} ` } }).waive,
      { "criticalVulnerabilities[linux/arm/v7]": reason },
    );
  });
});

describe("formatGateFailures", () => {
  it("names every failing gate, the digests judged and that nothing moved", async () => {
    const r = evaluateGates(
      cleanMeasurements({}, { criticalVulnerabilities: measured(1) }),
      DEFAULT_GATES,
    );
    const text = formatGateFailures({
      ...r,
      imageName: "127.0.0.1:5443/x/app",
      platformDigests: { "linux/amd64": `sha256:${"a".repeat(64)}` },
      sourceRevision: "f".repeat(40),
    });
    assert.equal(
      text,
      "1 quality gate failed on linux/amd64=sha256:aaaaaaaaaaaa:\n" +
        "  gate criticalVulnerabilities[linux/amd64] failed: measured 1, limit 0 — measured 1, limit at most 0 (gates.maxCritical)\n" +
        "No tag was moved: the images stay pushed by digest only. Fix the cause and run `pulumi up` again.",
    );
  });
});

describe("GateError / assertGates", () => {
  it("returns passing results unchanged", async () => {
    const r = evaluateGates(cleanMeasurements(), DEFAULT_GATES);
    assert.equal(assertGates(r), r);
  });

  it("names the gate, the measured value and the limit", async () => {
    const r = evaluateGates(
      cleanMeasurements({}, { sizeBytes: measured(612 * MB) }),
      DEFAULT_GATES,
    );
    assert.throws(
      () => assertGates(r),
      (e: unknown) =>
        e instanceof GateError &&
        /1 quality gate failed/.test(e.message) &&
        /gate imageSize\[linux\/amd64\] failed: measured 612 MB, limit 500 MB/.test(e.message) &&
        e.failures.length === 1,
    );
  });

  it("lists every failing gate", async () => {
    const r = evaluateGates(
      cleanMeasurements(
        { coverage: measured({ lines: 50, branches: 90, functions: 90 }) },
        { sizeBytes: measured(600 * MB), criticalVulnerabilities: measured(3) },
      ),
      DEFAULT_GATES,
    );
    assert.throws(
      () => assertGates(r),
      (e: unknown) => {
        assert.ok(e instanceof GateError);
        assert.match(e.message, /3 quality gates failed/);
        assert.match(e.message, /gate coverage failed: measured 50 %, limit 80 %/);
        assert.match(
          e.message,
          /gate criticalVulnerabilities\[linux\/amd64\] failed: measured 3, limit 0/,
        );
        return true;
      },
    );
  });
});
