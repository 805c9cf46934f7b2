// The offline Trivy vulnerability DB (scripts/trivy-db.sh, tools/trivy-db) used by the real Trivy
// v0.74.0: published to the local TLS registry, downloaded by Trivy through --db-repository into a
// cache folder of this test's own, and matched against npm packages installed in a folder the way
// they sit in an image (node_modules/<name>/package.json, read by `trivy rootfs`). Every proxy
// variable points at a closed loopback port, so any request Trivy made off loopback would fail.
// A missing tool or registry fails these tests; nothing is skipped.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT, run, tail, versionsEnv } from "../e2e/lib/exec";
import { cacheDir } from "../e2e/lib/registry";

const IF_CACHE = cacheDir();
const TRIVY = path.join(IF_CACHE, "bin", "trivy");
const CA_BUNDLE = path.join(IF_CACHE, "registry-tls", "ca-bundle.pem");
const PASSWORD_FILE = path.join(IF_CACHE, "registry", "password");
const TRIVY_VERSION = "0.74.0";

/** A folder laid out like an image's app: node_modules/<name>/package.json for each package. */
function installedPackages(packages: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trivy-db-test-root-"));
  for (const [name, version] of Object.entries(packages)) {
    const dir = path.join(root, "app", "node_modules", name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, "package.json"),
      JSON.stringify({ name, version, license: "MIT" }, null, 2),
    );
  }
  return root;
}

interface TrivyVulnerability {
  VulnerabilityID: string;
  VendorIDs?: string[];
  PkgName: string;
  InstalledVersion: string;
  FixedVersion?: string;
  Severity: string;
  DataSource?: { ID: string; Name: string };
}

interface TrivyReport {
  Results?: Array<{
    Target: string;
    Type: string;
    Packages?: Array<{ Name: string; Version: string }>;
    Vulnerabilities?: TrivyVulnerability[];
  }>;
}

describe("offline Trivy vulnerability DB (scripts/trivy-db.sh) with the real Trivy", function () {
  this.timeout(10 * 60_000);
  const dbRepository = versionsEnv("TRIVY_DB_REPOSITORY");
  let dbCache = "";
  const roots: string[] = [];
  let firstScan = true;

  /** `trivy rootfs` on a folder: the offline flags, this test's own cache and credentials from env. */
  async function scan(root: string): Promise<{ report: TrivyReport; stderr: string }> {
    const args = [
      "rootfs",
      "--db-repository",
      dbRepository,
      "--skip-java-db-update",
      "--skip-version-check",
      "--disable-telemetry",
      "--scanners",
      "vuln",
      "--cache-dir",
      dbCache,
      "--list-all-pkgs",
      "--format",
      "json",
      "--debug",
      root,
    ];
    const deadProxy = "http://127.0.0.1:9";
    const password = fs.readFileSync(PASSWORD_FILE, "utf8").trim();
    const r = await run(TRIVY, args, {
      env: {
        SSL_CERT_FILE: CA_BUNDLE,
        TRIVY_USERNAME: "factory",
        TRIVY_PASSWORD: password,
        HTTP_PROXY: deadProxy,
        HTTPS_PROXY: deadProxy,
        http_proxy: deadProxy,
        https_proxy: deadProxy,
        NO_PROXY: "",
        no_proxy: "",
      },
      timeoutMs: 10 * 60_000,
    });
    assert.equal(r.code, 0, `trivy ${args.join(" ")} failed (exit ${r.code}):\n${tail(r.stderr)}`);
    assert.ok(!r.stderr.includes(password), "trivy printed the registry password");
    // Both flags together skip the update-check/telemetry request altogether (pkg/notification).
    assert.ok(
      r.stderr.includes("Version check and telemetry are disabled, skipping request"),
      tail(r.stderr),
    );
    for (const host of ["mirror.gcr.io", "ghcr.io", "proxyconnect", "127.0.0.1:9"]) {
      assert.ok(
        !r.stderr.includes(host),
        `trivy mentions ${host}: an attempt off loopback?\n${tail(r.stderr)}`,
      );
    }
    if (firstScan) {
      // The first scan of an empty cache downloads the DB from the local registry, nothing else.
      firstScan = false;
      assert.ok(
        r.stderr.includes(dbRepository),
        `the DB was not downloaded from ${dbRepository}:\n${tail(r.stderr)}`,
      );
      const meta = JSON.parse(
        fs.readFileSync(path.join(dbCache, "db", "metadata.json"), "utf8"),
      ) as {
        Version: number;
        NextUpdate: string;
      };
      assert.equal(meta.Version, 2);
      assert.ok(
        Date.parse(meta.NextUpdate) > Date.now() + 365 * 86_400_000,
        `NextUpdate ${meta.NextUpdate} is not far ahead`,
      );
      assert.ok(fs.statSync(path.join(dbCache, "db", "trivy.db")).size > 0);
    }
    return { report: JSON.parse(r.stdout) as TrivyReport, stderr: r.stderr };
  }

  function vulnerabilities(report: TrivyReport): TrivyVulnerability[] {
    return (report.Results ?? []).flatMap((res) => res.Vulnerabilities ?? []);
  }

  /** Scans a folder holding `packages`, after checking that Trivy found every one of them (a
   *  package it does not see would pass any "no vulnerability" check). */
  async function scanFound(packages: Record<string, string>): Promise<TrivyReport> {
    const root = installedPackages(packages);
    roots.push(root);
    const { report } = await scan(root);
    const found = (report.Results ?? []).flatMap((res) =>
      (res.Packages ?? []).map((p) => `${p.Name}@${p.Version}`),
    );
    for (const [name, version] of Object.entries(packages))
      assert.ok(
        found.includes(`${name}@${version}`),
        `${name}@${version} not found: ${found.join(", ")}`,
      );
    return report;
  }

  before(async function () {
    assert.ok(
      fs.existsSync(TRIVY),
      `${TRIVY} is missing: run scripts/install-scanners.sh (or scripts/bootstrap.sh)`,
    );
    const v = await run(TRIVY, ["--version"]);
    assert.equal(v.code, 0, `trivy --version failed: ${tail(v.stderr)}`);
    assert.ok(
      v.stdout.includes(`Version: ${TRIVY_VERSION}`),
      `expected Trivy ${TRIVY_VERSION}, got: ${v.stdout.trim()}`,
    );
    assert.ok(fs.existsSync(PASSWORD_FILE), `${PASSWORD_FILE} is missing: run scripts/registry.sh`);
    assert.ok(fs.existsSync(CA_BUNDLE), `${CA_BUNDLE} is missing: run scripts/registry-tls.sh`);
    // Publishes the DB unless the registry already holds it for the current advisories (a no-op then).
    const pub = await run("bash", [path.join(REPO_ROOT, "scripts", "trivy-db.sh")]);
    assert.equal(
      pub.code,
      0,
      `scripts/trivy-db.sh failed (exit ${pub.code}):\n${tail(pub.stderr)}`,
    );
    assert.equal(pub.stdout, "", "scripts/trivy-db.sh must print nothing on stdout");
    dbCache = fs.mkdtempSync(path.join(os.tmpdir(), "trivy-db-test-cache-"));
  });

  after(async () => {
    for (const dir of [dbCache, ...roots])
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("reports CVE-2021-44906 (GHSA-xvch-5gv4-984h) CRITICAL for minimist 1.2.5", async () => {
    const report = await scanFound({ minimist: "1.2.5" });
    const found = vulnerabilities(report);
    assert.deepEqual(
      found.map((v) => [v.VulnerabilityID, v.PkgName, v.InstalledVersion, v.Severity]),
      [["CVE-2021-44906", "minimist", "1.2.5", "CRITICAL"]],
    );
    const [v] = found;
    assert.ok(v.FixedVersion?.split(/,\s*/).includes("1.2.6"), `FixedVersion ${v.FixedVersion}`);
    assert.ok(
      v.VendorIDs?.includes("GHSA-xvch-5gv4-984h"),
      `VendorIDs ${JSON.stringify(v.VendorIDs)}`,
    );
    assert.equal(v.DataSource?.ID, "ghsa");
    assert.equal(v.DataSource?.Name, "GitHub Security Advisory npm");
  });

  it("reports nothing for minimist 1.2.6, which it does find", async () => {
    const report = await scanFound({ minimist: "1.2.6" });
    assert.deepEqual(vulnerabilities(report), []);
  });

  it("applies each advisory's own range: lodash 4.17.20 has the two < 4.17.21 advisories, not the < 4.17.20 one", async () => {
    const report = await scanFound({ lodash: "4.17.20", semver: "7.5.2" });
    const found = vulnerabilities(report)
      .map((v) => `${v.PkgName}@${v.InstalledVersion} ${v.VulnerabilityID} ${v.Severity}`)
      .sort();
    assert.deepEqual(found, [
      "lodash@4.17.20 CVE-2020-28500 MEDIUM",
      "lodash@4.17.20 CVE-2021-23337 HIGH",
    ]);
  });
});
