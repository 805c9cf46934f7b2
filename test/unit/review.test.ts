// review/: the pull-request review's pure core. SBOM and Trivy fixtures in test/fixtures/review are
// shaped like Syft 1.57 `spdx-json` and Trivy `--format json` output of the shop-api image on
// linux/amd64 (current = what ships, candidate = what the merge would ship).
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import fc from "fast-check";
import {
  compareVersions,
  diffPackages,
  gateChanges,
  parseGateResults,
  purlType,
  renderJson,
  renderMarkdown,
  reviewMarker,
  sbomDiff,
  sbomPackages,
  severityCounts,
  shortDigest,
  signedSize,
  sizeChange,
  trivyVulnerabilities,
  vulnDiff,
  type GateSummary,
  type PackageRef,
  type PlatformReview,
  type Review,
  type SbomDiff,
} from "../../review";

const FIXTURES = path.resolve(__dirname, "../fixtures/review");
function fixture(name: string): unknown {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8"));
}
const D = (byte: string): string => `sha256:${byte.repeat(32)}`;
const MiB = 1024 * 1024;

/** A minimal SPDX document in Syft's shape: the image root, then the given packages. */
function spdx(
  packages: Array<{ name: string; version?: string; purl?: string; id?: string }>,
): unknown {
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: "shop-api",
    packages: [
      {
        name: "shop-api",
        SPDXID: "SPDXRef-DocumentRoot-Image-shop-api",
        versionInfo: D("0d"),
        externalRefs: [
          {
            referenceCategory: "PACKAGE-MANAGER",
            referenceType: "purl",
            referenceLocator: `pkg:oci/shop-api@sha256%3A${"0d".repeat(32)}`,
          },
        ],
        primaryPackagePurpose: "CONTAINER",
      },
      ...packages.map((p, i) => ({
        name: p.name,
        SPDXID: p.id ?? `SPDXRef-Package-${i}`,
        ...(p.version === undefined ? {} : { versionInfo: p.version }),
        externalRefs:
          p.purl === undefined
            ? []
            : [
                {
                  referenceCategory: "PACKAGE-MANAGER",
                  referenceType: "purl",
                  referenceLocator: p.purl,
                },
              ],
      })),
    ],
    relationships: [
      {
        spdxElementId: "SPDXRef-DOCUMENT",
        relatedSpdxElement: "SPDXRef-DocumentRoot-Image-shop-api",
        relationshipType: "DESCRIBES",
      },
    ],
  };
}

describe("review: SBOM diff (review/sbomDiff.ts)", () => {
  it("lists the packages of a Syft SPDX document without its root, sorted by type, name, version", async () => {
    assert.deepEqual(sbomPackages(fixture("current-amd64.spdx.json")), [
      { name: "libc6", type: "deb", version: "2.36-9+deb12u10" },
      { name: "libssl3", type: "deb", version: "3.0.15-1~deb12u1" },
      { name: "tzdata", type: "deb", version: "2025b-0+deb12u1" },
      { name: "zlib1g", type: "deb", version: "1:1.2.13.dfsg-1" },
      { name: "node", type: "generic", version: "22.23.3" },
      { name: "atomic-sleep", type: "npm", version: "1.0.0" },
      { name: "brace-expansion", type: "npm", version: "1.1.11" },
      { name: "brace-expansion", type: "npm", version: "2.0.1" },
      { name: "cross-spawn", type: "npm", version: "7.0.3" },
      { name: "fast-redact", type: "npm", version: "3.5.0" },
      { name: "npm", type: "npm", version: "10.9.2" },
      { name: "pino", type: "npm", version: "9.6.0" },
      { name: "pino-std-serializers", type: "npm", version: "7.0.0" },
      { name: "semver", type: "npm", version: "7.5.4" },
      { name: "semver", type: "npm", version: "7.6.3" },
      { name: "sonic-boom", type: "npm", version: "4.2.0" },
      { name: "thread-stream", type: "npm", version: "3.1.0" },
    ]);
  });

  it("diffs the current and candidate SBOMs of linux/amd64", async () => {
    assert.deepEqual(
      sbomDiff(fixture("current-amd64.spdx.json"), fixture("candidate-amd64.spdx.json")),
      {
        added: [
          { name: "ca-certificates", type: "deb", version: "20230311" },
          { name: "@pinojs/redact", type: "npm", version: "0.4.0" },
        ],
        removed: [{ name: "fast-redact", type: "npm", version: "3.5.0" }],
        changed: [
          { name: "libssl3", type: "deb", before: "3.0.15-1~deb12u1", after: "3.0.16-1~deb12u1" },
          { name: "cross-spawn", type: "npm", before: "7.0.3", after: "7.0.6" },
          { name: "pino", type: "npm", before: "9.6.0", after: "10.4.0" },
          // semver 7.6.3 (npm's own copy) stays; the nested 7.5.4 moves to 7.7.1, not 6.x.
          { name: "semver", type: "npm", before: "7.5.4", after: "7.7.1" },
          { name: "thread-stream", type: "npm", before: "3.1.0", after: "4.0.0" },
        ],
      },
    );
  });

  const cases: Array<{
    title: string;
    before: Parameters<typeof spdx>[0];
    after: Parameters<typeof spdx>[0];
    expected: SbomDiff;
  }> = [
    {
      title: "identical documents (root digest differs only) → nothing",
      before: [{ name: "pino", version: "10.4.0", purl: "pkg:npm/pino@10.4.0" }],
      after: [{ name: "pino", version: "10.4.0", purl: "pkg:npm/pino@10.4.0" }],
      expected: { added: [], removed: [], changed: [] },
    },
    {
      title: "a scoped npm package and an apk package, types from the purl",
      before: [],
      after: [
        { name: "@pinojs/redact", version: "0.4.0", purl: "pkg:npm/%40pinojs/redact@0.4.0" },
        {
          name: "musl",
          version: "1.2.5-r9",
          purl: "pkg:apk/alpine/musl@1.2.5-r9?arch=x86_64&distro=alpine-3.21.3",
        },
      ],
      expected: {
        added: [
          { name: "musl", type: "apk", version: "1.2.5-r9" },
          { name: "@pinojs/redact", type: "npm", version: "0.4.0" },
        ],
        removed: [],
        changed: [],
      },
    },
    {
      title: "the same name under two purl types is two packages",
      before: [{ name: "zlib", version: "1.3.1", purl: "pkg:generic/zlib@1.3.1" }],
      after: [{ name: "zlib", version: "1.3.1", purl: "pkg:deb/debian/zlib@1.3.1" }],
      expected: {
        added: [{ name: "zlib", type: "deb", version: "1.3.1" }],
        removed: [{ name: "zlib", type: "generic", version: "1.3.1" }],
        changed: [],
      },
    },
    {
      title: "two installed versions, one upgraded: the closest versions pair up",
      before: [
        { name: "semver", version: "6.3.1", purl: "pkg:npm/semver@6.3.1" },
        { name: "semver", version: "7.5.4", purl: "pkg:npm/semver@7.5.4" },
      ],
      after: [
        { name: "semver", version: "6.3.1", purl: "pkg:npm/semver@6.3.1" },
        { name: "semver", version: "7.7.1", purl: "pkg:npm/semver@7.7.1" },
      ],
      expected: {
        added: [],
        removed: [],
        changed: [{ name: "semver", type: "npm", before: "7.5.4", after: "7.7.1" }],
      },
    },
    {
      title: "two versions become one: the newer moves on, the older is removed",
      before: [
        { name: "semver", version: "6.3.1", purl: "pkg:npm/semver@6.3.1" },
        { name: "semver", version: "7.5.4", purl: "pkg:npm/semver@7.5.4" },
      ],
      after: [{ name: "semver", version: "7.7.1", purl: "pkg:npm/semver@7.7.1" }],
      expected: {
        added: [],
        removed: [{ name: "semver", type: "npm", version: "6.3.1" }],
        changed: [{ name: "semver", type: "npm", before: "7.5.4", after: "7.7.1" }],
      },
    },
    {
      title:
        "a second copy appears: the first one's upgrade is a change, the new major an addition",
      before: [
        { name: "brace-expansion", version: "1.1.11", purl: "pkg:npm/brace-expansion@1.1.11" },
      ],
      after: [
        { name: "brace-expansion", version: "1.1.12", purl: "pkg:npm/brace-expansion@1.1.12" },
        { name: "brace-expansion", version: "2.0.2", purl: "pkg:npm/brace-expansion@2.0.2" },
      ],
      expected: {
        added: [{ name: "brace-expansion", type: "npm", version: "2.0.2" }],
        removed: [],
        changed: [{ name: "brace-expansion", type: "npm", before: "1.1.11", after: "1.1.12" }],
      },
    },
    {
      title: "no purl → type unknown; NOASSERTION → no version; duplicates count once",
      before: [{ name: "custom-tool", version: "NOASSERTION" }],
      after: [
        { name: "custom-tool", version: "0.9.0" },
        { name: "custom-tool", version: "0.9.0", id: "SPDXRef-Package-copy" },
      ],
      expected: {
        added: [],
        removed: [],
        changed: [{ name: "custom-tool", type: "unknown", before: "", after: "0.9.0" }],
      },
    },
  ];
  for (const c of cases) {
    it(c.title, async () => {
      assert.deepEqual(sbomDiff(spdx(c.before), spdx(c.after)), c.expected);
    });
  }

  it("treats a missing current SBOM as an image without packages", async () => {
    assert.deepEqual(
      sbomDiff(undefined, spdx([{ name: "pino", version: "10.4.0", purl: "pkg:npm/pino@10.4.0" }])),
      {
        added: [{ name: "pino", type: "npm", version: "10.4.0" }],
        removed: [],
        changed: [],
      },
    );
  });

  it("leaves out what the document DESCRIBES even without Syft's DocumentRoot id", async () => {
    const doc = {
      spdxVersion: "SPDX-2.2",
      SPDXID: "SPDXRef-DOCUMENT",
      documentDescribes: ["SPDXRef-image"],
      packages: [
        { name: "shop-api", SPDXID: "SPDXRef-image", versionInfo: "1.0.0" },
        {
          name: "pino",
          SPDXID: "SPDXRef-pino",
          versionInfo: "10.4.0",
          externalRefs: [{ referenceType: "purl", referenceLocator: "pkg:npm/pino@10.4.0" }],
        },
      ],
    };
    assert.deepEqual(sbomPackages(doc), [{ name: "pino", type: "npm", version: "10.4.0" }]);
  });

  it("refuses what is not SPDX JSON, naming the document", async () => {
    assert.throws(
      () => sbomDiff(undefined, { bomFormat: "CycloneDX", components: [] }),
      /^Error: candidate SBOM is not SPDX JSON: spdxVersion is undefined$/,
    );
    assert.throws(
      () => sbomDiff({ spdxVersion: "SPDX-2.3", packages: {} }, spdx([])),
      /^Error: current SBOM\.packages must be an array, got \{\}$/,
    );
    assert.throws(
      () => sbomPackages({ spdxVersion: "SPDX-2.3", packages: [{ SPDXID: "SPDXRef-x" }] }),
      /packages\[0\] \(SPDXRef-x\) has no name/,
    );
  });

  it("reads purl types and orders versions piecewise", async () => {
    assert.equal(purlType("pkg:npm/%40pinojs/redact@0.4.0"), "npm");
    assert.equal(purlType("pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64"), "deb");
    assert.equal(purlType("pkg:golang/github.com/moby/buildkit@v0.34.2"), "golang");
    assert.equal(purlType("cpe:2.3:a:nodejs:node.js:22.23.3"), undefined);
    const sorted = [
      "10.4.0",
      "9.6.0",
      "1.10.0",
      "1.9.2",
      "1.9.2-rc.1",
      "",
      "2.36-9+deb12u10",
      "2.36-9+deb12u9",
    ].sort(compareVersions);
    assert.deepEqual(sorted, [
      "",
      "1.9.2",
      "1.9.2-rc.1",
      "1.10.0",
      "2.36-9+deb12u9",
      "2.36-9+deb12u10",
      "9.6.0",
      "10.4.0",
    ]);
  });

  describe("properties", () => {
    const pkg = fc.record({
      type: fc.constantFrom("npm", "deb", "apk"),
      name: fc.constantFrom("semver", "pino", "libc6", "@pinojs/redact"),
      version: fc.constantFrom(
        "",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "2.0.0",
        "2.0.0-rc.1",
        "7.5.4",
        "7.7.1",
        "1:1.2.13.dfsg-1",
      ),
    });
    const list = fc.array(pkg, { maxLength: 12 });
    const key = (p: PackageRef): string => `${p.type}/${p.name}@${p.version}`;

    it("diff(a, a) is empty", async () => {
      fc.assert(
        fc.property(list, (a) => {
          assert.deepEqual(diffPackages(a, a), { added: [], removed: [], changed: [] });
        }),
      );
    });

    it("swapping the arguments swaps added and removed, and before and after", async () => {
      fc.assert(
        fc.property(list, list, (a, b) => {
          const ab = diffPackages(a, b);
          const ba = diffPackages(b, a);
          assert.deepEqual(ba.added, ab.removed);
          assert.deepEqual(ba.removed, ab.added);
          const pairs = (d: SbomDiff, swap: boolean): string[] =>
            d.changed
              .map(
                (c) =>
                  `${c.type}/${c.name} ${swap ? c.after : c.before} -> ${swap ? c.before : c.after}`,
              )
              .sort();
          assert.deepEqual(pairs(ba, true), pairs(ab, false));
        }),
      );
    });

    it("applying the diff to the first package set gives the second", async () => {
      fc.assert(
        fc.property(list, list, (a, b) => {
          const d = diffPackages(a, b);
          const result = new Set(a.map(key));
          for (const p of d.removed)
            assert.ok(result.delete(key(p)), `removed ${key(p)} was not there`);
          for (const c of d.changed) {
            assert.ok(
              result.delete(key({ ...c, version: c.before })),
              `changed ${c.name}@${c.before} was not there`,
            );
            result.add(key({ ...c, version: c.after }));
          }
          for (const p of d.added) result.add(key(p));
          assert.deepEqual([...result].sort(), [...new Set(b.map(key))].sort());
        }),
      );
    });

    it("compareVersions is a total order consistent with equality", async () => {
      const v = fc.stringMatching(/^[0-9a-z.+~:-]{0,8}$/);
      fc.assert(
        fc.property(v, v, v, (x, y, z) => {
          assert.equal(Math.sign(compareVersions(x, y)) + Math.sign(compareVersions(y, x)), 0);
          assert.equal(compareVersions(x, y) === 0, x === y);
          if (compareVersions(x, y) <= 0 && compareVersions(y, z) <= 0)
            assert.ok(compareVersions(x, z) <= 0);
        }),
      );
    });
  });
});

describe("review: vulnerability diff (review/vulnDiff.ts)", () => {
  it("finds the new and the fixed vulnerabilities of linux/amd64", async () => {
    assert.deepEqual(
      vulnDiff(fixture("current-amd64.trivy.json"), fixture("candidate-amd64.trivy.json")),
      {
        new: [
          {
            id: "CVE-2025-4802",
            pkgName: "libc6",
            installedVersion: "2.36-9+deb12u10",
            fixedVersion: "2.36-9+deb12u11",
            severity: "HIGH",
          },
          // Two copies of brace-expansion (npm's own and minimatch's): one finding.
          {
            id: "CVE-2025-5889",
            pkgName: "brace-expansion",
            installedVersion: "1.1.11, 2.0.1",
            fixedVersion: "2.0.2, 1.1.12, 3.0.1, 4.0.1",
            severity: "LOW",
          },
        ],
        fixed: [
          {
            id: "CVE-2024-21538",
            pkgName: "cross-spawn",
            installedVersion: "7.0.3",
            fixedVersion: "7.0.5, 6.0.6",
            severity: "HIGH",
          },
          {
            id: "CVE-2024-13176",
            pkgName: "libssl3",
            installedVersion: "3.0.15-1~deb12u1",
            fixedVersion: "3.0.16-1~deb12u1",
            severity: "MEDIUM",
          },
        ],
      },
    );
  });

  const report = (vulns: Array<Record<string, unknown>> | null): unknown => ({
    SchemaVersion: 2,
    ArtifactName: "shop-api",
    ArtifactType: "container_image",
    Results: [
      {
        Target: "shop-api (debian 12.11)",
        Class: "os-pkgs",
        Type: "debian",
        Vulnerabilities: vulns,
      },
    ],
  });
  const zlib = {
    VulnerabilityID: "CVE-2023-45853",
    PkgName: "zlib1g",
    InstalledVersion: "1:1.2.13.dfsg-1",
    Status: "will_not_fix",
    Severity: "CRITICAL",
  };
  const cases: Array<{
    title: string;
    current: unknown;
    candidate: unknown;
    expected: ReturnType<typeof vulnDiff>;
  }> = [
    {
      title: "same report → nothing new, nothing fixed",
      current: report([zlib]),
      candidate: report([zlib]),
      expected: { new: [], fixed: [] },
    },
    {
      title: "a package moving to another affected version keeps its vulnerability",
      current: report([
        {
          VulnerabilityID: "CVE-2025-4802",
          PkgName: "libc6",
          InstalledVersion: "2.36-9+deb12u9",
          FixedVersion: "2.36-9+deb12u11",
          Severity: "HIGH",
        },
      ]),
      candidate: report([
        {
          VulnerabilityID: "CVE-2025-4802",
          PkgName: "libc6",
          InstalledVersion: "2.36-9+deb12u10",
          FixedVersion: "2.36-9+deb12u11",
          Severity: "HIGH",
        },
      ]),
      expected: { new: [], fixed: [] },
    },
    {
      title: "no current report: everything is new, a clean target (null) has none",
      current: undefined,
      candidate: {
        SchemaVersion: 2,
        Results: [
          { Target: "Node.js", Class: "lang-pkgs", Vulnerabilities: null },
          { Target: "x (debian 12.11)", Vulnerabilities: [zlib] },
        ],
      },
      expected: {
        new: [
          {
            id: "CVE-2023-45853",
            pkgName: "zlib1g",
            installedVersion: "1:1.2.13.dfsg-1",
            fixedVersion: "",
            severity: "CRITICAL",
          },
        ],
        fixed: [],
      },
    },
    {
      title:
        "an image without findings (no Results at all) fixes everything; odd severities are UNKNOWN",
      current: report([
        zlib,
        {
          VulnerabilityID: "GHSA-xxxx-yyyy-zzzz",
          PkgName: "pino",
          InstalledVersion: "9.6.0",
          Severity: "negligible",
        },
      ]),
      candidate: { SchemaVersion: 2, ArtifactName: "shop-api" },
      expected: {
        new: [],
        fixed: [
          {
            id: "CVE-2023-45853",
            pkgName: "zlib1g",
            installedVersion: "1:1.2.13.dfsg-1",
            fixedVersion: "",
            severity: "CRITICAL",
          },
          {
            id: "GHSA-xxxx-yyyy-zzzz",
            pkgName: "pino",
            installedVersion: "9.6.0",
            fixedVersion: "",
            severity: "UNKNOWN",
          },
        ],
      },
    },
  ];
  for (const c of cases) {
    it(c.title, async () => {
      assert.deepEqual(vulnDiff(c.current, c.candidate), c.expected);
    });
  }

  it("counts by severity and refuses a report without ids", async () => {
    assert.equal(
      severityCounts(trivyVulnerabilities(fixture("current-amd64.trivy.json"))),
      "1 critical, 1 high, 1 medium",
    );
    assert.equal(severityCounts([]), "");
    assert.throws(
      () => vulnDiff(undefined, report([{ PkgName: "libc6" }])),
      /^Error: candidate Trivy report\.Results\[0\]\.Vulnerabilities\[0\] has no VulnerabilityID/,
    );
    assert.throws(
      () => trivyVulnerabilities([]),
      /Trivy report must be a Trivy JSON object, got \[\]/,
    );
  });

  it("diff(a, a) is empty and swapping the reports swaps new and fixed", async () => {
    const vuln = fc.record({
      VulnerabilityID: fc.constantFrom("CVE-2023-45853", "CVE-2025-4802", "CVE-2024-21538"),
      PkgName: fc.constantFrom("zlib1g", "libc6", "cross-spawn"),
      InstalledVersion: fc.constantFrom("1.0.0", "2.0.0"),
      Severity: fc.constantFrom("CRITICAL", "HIGH", "LOW"),
    });
    const rep = fc.array(vuln, { maxLength: 6 }).map((v) => report(v));
    fc.assert(
      fc.property(rep, rep, (a, b) => {
        assert.deepEqual(vulnDiff(a, a), { new: [], fixed: [] });
        const ab = vulnDiff(a, b);
        const ba = vulnDiff(b, a);
        assert.deepEqual(ba.new, ab.fixed);
        assert.deepEqual(ba.fixed, ab.new);
      }),
    );
  });
});

/** One check as evidence/gates.ts exports it: `passed` follows from the status. */
function exported(
  gate: string,
  configKey: string,
  c: { measured: number | null; limit: number; unit: string; status: string; detail: string },
): Record<string, unknown> {
  return { gate, configKey, ...c, passed: c.status === "passed" };
}

describe("review: gate results (review/gates.ts)", () => {
  const cases: Array<{ title: string; raw: unknown; expected: GateSummary }> = [
    {
      title: "the evaluator's shape (gate, detail, failed) as the stacks export it today",
      raw: {
        passed: false,
        checks: [
          exported("imageSize[linux/amd64]", "gates.maxImageSizeMb", {
            measured: 612.4,
            limit: 500,
            unit: "MB",
            status: "failed",
            detail: "measured 612.4 MB, limit at most 500 MB (gates.maxImageSizeMb)",
          }),
          exported("criticalVulnerabilities[linux/amd64]", "gates.maxCritical", {
            measured: null,
            limit: 0,
            unit: "",
            status: "not-run",
            detail: "not run: Trivy DB not reachable",
          }),
          exported("coverage", "gates.minCoverage", {
            measured: 91.2,
            limit: 80,
            unit: "%",
            status: "passed",
            detail: "measured 91.2 %, limit at least 80 % (gates.minCoverage)",
          }),
        ],
        failed: ["imageSize[linux/amd64]"],
        notRun: ["criticalVulnerabilities[linux/amd64]"],
      },
      expected: {
        passed: false,
        checks: [
          {
            name: "imageSize[linux/amd64]",
            status: "failed",
            measured: 612.4,
            limit: 500,
            unit: "MB",
          },
          {
            name: "criticalVulnerabilities[linux/amd64]",
            status: "not-run",
            limit: 0,
            reason: "Trivy DB not reachable",
          },
          { name: "coverage", status: "passed", measured: 91.2, limit: 80, unit: "%" },
        ],
        notRun: ["criticalVulnerabilities[linux/amd64]"],
      },
    },
    {
      title: "the review's shape with waivers: a waived name without a check is added",
      raw: {
        passed: true,
        checks: [
          {
            name: "criticalVulnerabilities[linux/arm/v7]",
            status: "failed",
            measured: 1,
            limit: 0,
          },
          { name: "coverage", status: "passed", measured: 84, limit: 80 },
        ],
        notRun: [],
        waived: {
          "criticalVulnerabilities[linux/arm/v7]": "CVE-2023-45853: minizip is not used",
          secrets: "test key in app/test/fixtures",
        },
      },
      expected: {
        passed: true,
        checks: [
          {
            name: "criticalVulnerabilities[linux/arm/v7]",
            status: "waived",
            measured: 1,
            limit: 0,
            reason: "CVE-2023-45853: minizip is not used",
          },
          { name: "coverage", status: "passed", measured: 84, limit: 80 },
          { name: "secrets", status: "waived", reason: "test key in app/test/fixtures" },
        ],
        notRun: [],
        waived: {
          "criticalVulnerabilities[linux/arm/v7]": "CVE-2023-45853: minizip is not used",
          secrets: "test key in app/test/fixtures",
        },
      },
    },
  ];
  for (const c of cases) {
    it(c.title, async () => {
      assert.deepEqual(parseGateResults(c.raw), c.expected);
    });
  }

  it("refuses malformed results, naming the field", async () => {
    assert.throws(
      () => parseGateResults("passed"),
      /^Error: gateResults must be an object \{ passed, checks \}, got "passed"$/,
    );
    assert.throws(
      () => parseGateResults({ passed: "yes", checks: [] }),
      /^Error: gateResults\.passed must be true or false, got "yes"$/,
    );
    assert.throws(
      () =>
        parseGateResults(
          { passed: true, checks: [{ name: "coverage", status: "green" }] },
          "NOTIFY_GATES",
        ),
      /^Error: NOTIFY_GATES\.checks\[0\]\.status must be one of passed, failed, not-run, waived, got "green"$/,
    );
    assert.throws(
      () => parseGateResults({ passed: true, checks: [], waived: { coverage: 1 } }),
      /gateResults\.waived\.coverage must be a reason/,
    );
  });

  it("lists status changes between the current and the candidate results", async () => {
    // Gate results by check name and status, as a stack exports them.
    const results = (passed: boolean, statuses: Record<string, string>): GateSummary =>
      parseGateResults({
        passed,
        checks: Object.entries(statuses).map(([name, status]) => ({ name, status })),
        notRun: [],
      });
    const current = results(true, {
      coverage: "passed",
      dockerfileLint: "passed",
      wasted: "passed",
    });
    const candidate = results(false, {
      coverage: "failed",
      dockerfileLint: "passed",
      secrets: "passed",
    });
    assert.deepEqual(gateChanges(current, candidate), [
      { name: "coverage", before: "passed", after: "failed" },
      { name: "secrets", after: "passed" },
      { name: "wasted", before: "passed" },
    ]);
    assert.deepEqual(gateChanges(undefined, candidate), [{ name: "coverage", after: "failed" }]);
  });
});

const PASSED: GateSummary = {
  passed: true,
  checks: [
    { name: "imageSize[linux/amd64]", status: "passed", measured: 148.1, limit: 500 },
    { name: "coverage", status: "passed", measured: 91.2, limit: 80 },
  ],
  notRun: [],
};

/** The full example: amd64 with package and vulnerability changes, arm/v7 failing to build. */
function fullReview(): Review {
  return {
    stack: "dev",
    imageName: "ghcr.io/acme/shop-api",
    platforms: [
      {
        platform: "linux/amd64",
        current: { digest: D("1f"), sizeBytes: 153_927_168, layers: 9 },
        candidate: { digest: D("a7"), sizeBytes: 155_293_286, layers: 10 },
        packages: sbomDiff(
          fixture("current-amd64.spdx.json"),
          fixture("candidate-amd64.spdx.json"),
        ),
        vulnerabilities: vulnDiff(
          fixture("current-amd64.trivy.json"),
          fixture("candidate-amd64.trivy.json"),
        ),
      },
      {
        platform: "linux/arm/v7",
        current: { digest: D("2e"), sizeBytes: 108_527_616, layers: 9 },
        candidate: {
          buildError: {
            stage: "deps",
            step: "RUN npm ci --omit=dev",
            tail: [
              "#12 41.37 npm error code EAI_AGAIN",
              "#12 41.37 npm error syscall getaddrinfo",
              "#12 41.38 npm error errno EAI_AGAIN",
              '#12 ERROR: process "/bin/sh -c npm ci --omit=dev" did not complete successfully: exit code: 1',
              "",
            ].join("\n"),
          },
        },
        packages: { unavailable: "the candidate did not build" },
      },
    ],
    gates: {
      current: parseGateResults({
        passed: true,
        checks: [
          {
            gate: "imageSize[linux/amd64]",
            status: "passed",
            measured: 146.8,
            limit: 500,
            unit: "MB",
          },
          { gate: "criticalVulnerabilities[linux/amd64]", status: "passed", measured: 0, limit: 0 },
          { gate: "coverage", status: "passed", measured: 91.2, limit: 80, unit: "%" },
        ],
        notRun: [],
      }),
      candidate: parseGateResults({
        passed: false,
        checks: [
          { name: "imageSize[linux/amd64]", status: "passed", measured: 148.1, limit: 500 },
          { name: "criticalVulnerabilities[linux/amd64]", status: "waived", measured: 1, limit: 0 },
          { name: "coverage", status: "failed", measured: 78.4, limit: 80 },
        ],
        notRun: [],
        waived: {
          "criticalVulnerabilities[linux/amd64]":
            "CVE-2023-45853: will not be fixed in bookworm, minizip unused",
        },
      }),
    },
    tagsToMove: [
      { tag: "main", currentDigest: D("0c") },
      { tag: "edge", currentDigest: D("0c") },
      { tag: "sha-5d41402" },
    ],
    preview: [
      "Previewing update (dev):",
      "     Type                              Name                  Plan",
      "     pulumi:pulumi:Stack               image-factory-dev",
      " ~   ├─ docker-build:index:Image       shop-api-linux-amd64  update",
      " +-  └─ docker-build:index:Index       shop-api-main         replace",
      "Resources:",
      "    ~ 1 to update",
      "    +-1 to replace",
      "    12 unchanged",
      "",
    ].join("\n"),
  };
}

describe("review: Markdown and JSON (review/markdown.ts)", () => {
  it("renders the full review as test/fixtures/review/dev-review.md", async () => {
    assert.equal(
      renderMarkdown(fullReview()),
      fs.readFileSync(path.join(FIXTURES, "dev-review.md"), "utf8"),
    );
  });

  it("renders a passing review with nothing changed in a few lines, without empty sections", async () => {
    const same = { digest: D("1f"), sizeBytes: 153_927_168, layers: 9 };
    const review: Review = {
      gates: { candidate: PASSED, current: PASSED },
      tagsToMove: [],
      stack: "prod",
      imageName: "ghcr.io/acme/shop-api",
      platforms: [
        {
          platform: "linux/amd64",
          current: same,
          candidate: same,
          packages: { added: [], removed: [], changed: [] },
        },
      ],
    };
    const expected = [
      "<!-- image-factory-review:prod -->",
      "### Image review: `prod` · `ghcr.io/acme/shop-api`",
      "",
      "✅ **The merge's deploy would pass the gates.**",
      "",
      "| linux/amd64 | now → after merge |",
      "|---|---|",
      "| digest | `sha256:1f1f1f1f1f1f` (unchanged) |",
      "| size | 146.8 MB (unchanged) |",
      "| layers | 9 (unchanged) |",
      "| packages | unchanged |",
      "| gates | unchanged |",
    ];
    assert.equal(renderMarkdown(review), `${expected.join("\n")}\n`);
  });

  it("shows a new platform, a fork, waived and not-run checks, and new tags with their digests", async () => {
    const added = [
      "atomic-sleep",
      "pino",
      "pino-std-serializers",
      "sonic-boom",
      "thread-stream",
      "@pinojs/redact",
    ];
    const platform: PlatformReview = {
      platform: "linux/arm64",
      candidate: { digest: D("b4"), sizeBytes: 150_047_416, layers: 10 },
      packages: {
        added: added.map((name) => ({ name, type: "npm", version: "1.0.0" })),
        removed: [],
        changed: [],
      },
      vulnerabilities: { unavailable: "Trivy DB not reachable" },
    };
    const review: Review = {
      stack: "dev",
      imageName: "ghcr.io/acme/shop-api",
      platforms: [platform],
      gates: {
        candidate: parseGateResults({
          passed: true,
          checks: [
            { name: "imageSize[linux/arm64]", status: "passed", measured: 143.1, limit: 500 },
            {
              name: "criticalVulnerabilities[linux/arm64]",
              status: "not-run",
              reason: "Trivy DB not reachable",
            },
            { name: "secrets", status: "waived" },
          ],
          notRun: ["criticalVulnerabilities[linux/arm64]"],
          waived: { secrets: "fixture key <test only>" },
        }),
      },
      tagsToMove: [
        { tag: "pr-12", newDigest: D("c3") },
        { tag: "edge", currentDigest: D("0c"), newDigest: D("c3") },
      ],
      forks: true,
    };
    assert.equal(
      renderMarkdown(review),
      [
        "<!-- image-factory-review:dev -->",
        "### Image review: `dev` · `ghcr.io/acme/shop-api`",
        "",
        "✅ **The merge's deploy would pass the gates.** Waived: `secrets` (fixture key &lt;test only&gt;). Not run: `criticalVulnerabilities[linux/arm64]`.",
        "ℹ️ Pull request from a fork: the evidence was built without secrets and nothing was pushed. The Pulumi preview needs secrets and is not shown.",
        "",
        "| linux/arm64 | now → after merge |",
        "|---|---|",
        "| digest | `sha256:b4b4b4b4b4b4` (new platform) |",
        "| size | 143.1 MB |",
        "| layers | 10 |",
        "| packages | +6 −0 ~0 |",
        "| vulnerabilities | unavailable: Trivy DB not reachable |",
        "| gates | `criticalVulnerabilities` **not-run** |",
        "",
        "<details><summary>Packages on linux/arm64: +6 −0 ~0</summary>",
        "",
        "| package | type | now | after merge |",
        "|---|---|---|---|",
        "| `@pinojs/redact` | npm | — | `1.0.0` |",
        "| `atomic-sleep` | npm | — | `1.0.0` |",
        "| `pino` | npm | — | `1.0.0` |",
        "| `pino-std-serializers` | npm | — | `1.0.0` |",
        "| `sonic-boom` | npm | — | `1.0.0` |",
        "| `thread-stream` | npm | — | `1.0.0` |",
        "",
        "</details>",
        "",
        "**Tags a merge would move**",
        "",
        "| tag | points at now | after merge |",
        "|---|---|---|",
        "| `pr-12` | (new tag) | `sha256:c3c3c3c3c3c3` |",
        "| `edge` | `sha256:0c0c0c0c0c0c` | `sha256:c3c3c3c3c3c3` |",
        "",
      ].join("\n"),
    );
  });

  it("fences a build tail that holds backticks and keeps only its last 40 lines", async () => {
    const tail = [
      ...Array.from({ length: 44 }, (_, i) => `#9 ${i + 1}.0 line ${i + 1}`),
      "```",
      "#9 ERROR: exit code: 2",
    ].join("\n");
    const review: Review = {
      stack: "dev",
      imageName: "ghcr.io/acme/shop-api",
      platforms: [
        {
          platform: "linux/amd64",
          candidate: { buildError: { stage: "build", step: "RUN npm run build", tail } },
          packages: { unavailable: "no SBOM" },
        },
      ],
      gates: { candidate: { passed: true, checks: [], notRun: [] } },
      tagsToMove: [],
    };
    const md = renderMarkdown(review);
    assert.ok(
      md.startsWith(
        "<!-- image-factory-review:dev -->\n### Image review: `dev` · `ghcr.io/acme/shop-api`\n\n❌ **The merge's deploy would fail:** the build fails on `linux/amd64`.\n",
      ),
      md,
    );
    const section = md.slice(md.indexOf("**Build failed"));
    assert.equal(
      section,
      [
        "**Build failed on `linux/amd64`** at stage `build`, step `RUN npm run build` (last 40 of 46 lines):",
        "",
        "````text",
        ...Array.from({ length: 38 }, (_, i) => `#9 ${i + 7}.0 line ${i + 7}`),
        "```",
        "#9 ERROR: exit code: 2",
        "````",
        "",
      ].join("\n"),
    );
  });

  it("formats digests, sizes and markers", async () => {
    const sizes: Array<[number | undefined, number | undefined, string | undefined]> = [
      [153_927_168, 155_293_286, "146.8 MB → 148.1 MB (+1.30 MB, +0.9 %)"],
      [155_293_286, 153_927_168, "148.1 MB → 146.8 MB (−1.30 MB, −0.9 %)"],
      // A one-line change: bytes, signed, not a rounded ±0.00 MB.
      [52_744_806, 52_746_035, "50.3 MB → 50.3 MB (+1.2 KB, +<0.1 %)"],
      [52_746_035, 52_744_806, "50.3 MB → 50.3 MB (−1.2 KB, −<0.1 %)"],
      [100 * MiB, 100 * MiB + 312, "100.0 MB → 100.0 MB (+312 B, +<0.1 %)"],
      [undefined, 150_047_416, "143.1 MB"],
      [153_927_168, undefined, undefined],
    ];
    for (const [before, after, expected] of sizes)
      assert.equal(sizeChange(before, after), expected, `${before} → ${after}`);
    const deltas: Array<[number, string]> = [
      [1, "+1 B"],
      [-1023, "−1023 B"],
      [1024, "+1.0 KB"],
      [-1229, "−1.2 KB"],
      [MiB - 52, "+1023.9 KB"],
      [MiB - 51, "+1.00 MB"],
      [MiB, "+1.00 MB"],
      [-1_363_149, "−1.30 MB"],
      [0, "±0 B"],
    ];
    for (const [delta, expected] of deltas) assert.equal(signedSize(delta), expected, `${delta}`);
    assert.equal(shortDigest(D("a7")), "sha256:a7a7a7a7a7a7");
    assert.equal(shortDigest("not-a-digest"), "not-a-digest");
    assert.equal(
      reviewMarker("acme/image-factory/dev"),
      "<!-- image-factory-review:acme/image-factory/dev -->",
    );
    assert.equal(reviewMarker("dev --><script>"), "<!-- image-factory-review:dev_--__script_ -->");
  });

  it("renders the review as JSON that reads back the same", async () => {
    const review = fullReview();
    const json = renderJson(review);
    assert.ok(
      json.startsWith(
        '{\n  "stack": "dev",\n  "imageName": "ghcr.io/acme/shop-api",\n  "platforms": [\n',
      ),
      json.slice(0, 120),
    );
    assert.ok(json.endsWith("}\n"));
    assert.deepEqual(JSON.parse(json), review);
  });
});
