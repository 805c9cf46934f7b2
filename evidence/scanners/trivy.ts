// Trivy: misconfiguration and secret scans of the build context and of each image (offline, with
// the checks embedded in the binary), and vulnerability scans against a DB named by repository
// (the project's offline DB on the local registry, or Trivy's public DB in CI).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Finding } from "../gates";
import { type ExecResult, execTool, mustSucceed, requireTool, toolBinDir } from "../exec";
import { type RegistryAuth, insecureOf, withDockerConfig } from "../oci";

interface TrivyMisconfig {
  ID?: string;
  AVDID?: string;
  Title?: string;
  Message?: string;
  Severity?: string;
  Status?: string;
  CauseMetadata?: { StartLine?: number };
}
interface TrivySecret {
  RuleID?: string;
  Title?: string;
  Severity?: string;
  StartLine?: number;
  Match?: string;
}
interface TrivyVuln {
  VulnerabilityID?: string;
  PkgName?: string;
  InstalledVersion?: string;
  FixedVersion?: string;
  Severity?: string;
}
interface TrivyResult {
  Target?: string;
  Class?: string;
  Misconfigurations?: TrivyMisconfig[];
  Secrets?: TrivySecret[];
  Vulnerabilities?: TrivyVuln[];
}
interface TrivyReport {
  Results?: TrivyResult[];
}

/** Trivy's cache (checks, DB) lives beside the other tools so CI reuses it. */
export function trivyCacheDir(): string {
  return path.join(path.dirname(toolBinDir()), "trivy-cache");
}

const TRIVY_OFFLINE_FLAGS = [
  "--skip-check-update",
  "--skip-version-check",
  "--disable-telemetry",
  "--quiet",
  "--format",
  "json",
];

function misconfigFindings(report: TrivyReport, severities: string[]): Finding[] {
  return (report.Results ?? []).flatMap((res) =>
    (res.Misconfigurations ?? [])
      .filter((m) => m.Status !== "PASS" && severities.includes(m.Severity ?? ""))
      .map((m) => ({
        id: m.ID ?? m.AVDID ?? "?",
        severity: m.Severity ?? "?",
        message: m.Title ?? m.Message ?? "",
        where: `${res.Target ?? "?"}${m.CauseMetadata?.StartLine ? `:${m.CauseMetadata.StartLine}` : ""}`,
      })),
  );
}

// A secret finding names the rule and the place, never the matched text (Trivy's Match field
// carries the secret itself).
function secretFindings(report: TrivyReport): Finding[] {
  return (report.Results ?? []).flatMap((res) =>
    (res.Secrets ?? []).map((s) => ({
      id: s.RuleID ?? "?",
      severity: s.Severity ?? "?",
      message: s.Title ?? "secret",
      where: `${res.Target ?? "?"}${s.StartLine ? `:${s.StartLine}` : ""}`,
    })),
  );
}

export interface TrivyConfigResult {
  misconfigurations: Finding[];
  secrets: Finding[];
  seconds: number;
  reportPath: string;
}

/** `trivy --version` of the pinned binary, for the evidence. */
export async function trivyVersion(): Promise<string> {
  const r = await execTool(requireTool("trivy"), ["--version"], { timeoutMs: 30_000 });
  return /Version:\s*(\S+)/.exec(r.stdout)?.[1] ?? "unknown";
}

function readReport(reportPath: string): TrivyReport {
  return JSON.parse(fs.readFileSync(reportPath, "utf8")) as TrivyReport;
}

const SEVERITIES = ["HIGH", "CRITICAL"];

/** Trivy misconfiguration + secret scan of the build context (Dockerfile, compose, sources),
 *  offline with the checks embedded in the binary. Findings at `severities` count. */
export async function runTrivyConfig(opts: {
  dir: string;
  reportPath: string;
  severities?: string[];
  timeoutMs?: number;
}): Promise<TrivyConfigResult> {
  const trivy = requireTool("trivy");
  const severities = opts.severities ?? SEVERITIES;
  fs.mkdirSync(path.dirname(opts.reportPath), { recursive: true });
  const r = await execTool(
    trivy,
    [
      "fs",
      "--scanners",
      "misconfig,secret",
      ...TRIVY_OFFLINE_FLAGS,
      "--cache-dir",
      trivyCacheDir(),
      "--skip-dirs",
      "**/node_modules",
      "--skip-dirs",
      "**/coverage",
      "--skip-dirs",
      "**/dist",
      "--output",
      opts.reportPath,
      opts.dir,
    ],
    { timeoutMs: opts.timeoutMs ?? 300_000 },
  );
  mustSucceed(r, `trivy fs (misconfig,secret) failed on ${opts.dir}`);
  const report = readReport(opts.reportPath);
  return {
    misconfigurations: misconfigFindings(report, severities),
    secrets: secretFindings(report),
    seconds: r.seconds,
    reportPath: opts.reportPath,
  };
}

/** Trivy with this registry's credentials in a private 0600 Docker config (its default keychain,
 *  for images and the DB artifact alike), never in its environment. */
function runTrivy(
  trivy: string,
  args: string[],
  auth: RegistryAuth | undefined,
  timeoutMs: number,
): Promise<ExecResult> {
  return withDockerConfig(auth, (env) =>
    execTool(trivy, args, { env, timeoutMs, redact: [auth?.password ?? ""] }),
  );
}

/** Which image is scanned, where the report goes; shared by every `trivy image` call. */
export interface TrivyImageOptions {
  imageRef: string;
  platform: string;
  reportPath: string;
  auth?: RegistryAuth;
  /** Misconfigurations at these severities count. @default HIGH, CRITICAL */
  severities?: string[];
  timeoutMs?: number;
}

/** Where the vulnerability DB comes from. `repository` unset = Trivy's public DB (CI on GitHub);
 *  set = that OCI artifact only (the local stack's offline DB), with every other download off. */
export interface VulnDbSource {
  repository?: string;
}

/** One cache per DB source: the offline DB and the public one never mix. */
function vulnCacheDir(db: VulnDbSource): string {
  const key =
    db.repository === undefined
      ? "public"
      : crypto.createHash("sha256").update(db.repository).digest("hex").slice(0, 12);
  return path.join(trivyCacheDir(), `vulndb-${key}`);
}

/** One `trivy image` of the image from the registry by digest, and its report. `scanners` for the
 *  layers, `configScanners` for the image config; a `db` source makes it a vulnerability scan
 *  (that DB, in its own cache); without one the scan needs no DB and stays offline. */
async function scanImage(
  opts: TrivyImageOptions,
  scan: { scanners: string; configScanners?: string; db?: VulnDbSource; what: string },
): Promise<{ report: TrivyReport; seconds: number; cacheDir: string }> {
  const trivy = requireTool("trivy");
  fs.mkdirSync(path.dirname(opts.reportPath), { recursive: true });
  const { db } = scan;
  const cacheDir = db === undefined ? trivyCacheDir() : vulnCacheDir(db);
  const args = ["image", "--image-src", "remote", "--platform", opts.platform];
  args.push("--scanners", scan.scanners);
  if (scan.configScanners !== undefined) args.push("--image-config-scanners", scan.configScanners);
  if (db !== undefined) args.push("--skip-java-db-update");
  args.push(...TRIVY_OFFLINE_FLAGS, "--cache-dir", cacheDir, "--output", opts.reportPath);
  if (db?.repository !== undefined) args.push("--db-repository", db.repository);
  if (insecureOf(opts.auth)) args.push("--insecure");
  args.push(opts.imageRef);
  const r = await runTrivy(trivy, args, opts.auth, opts.timeoutMs ?? 600_000);
  const dbName = db === undefined ? "" : `; DB ${db.repository ?? "Trivy's public DB"}`;
  mustSucceed(
    r,
    `trivy image (${scan.what}${dbName}) failed on ${opts.imageRef} (${opts.platform})`,
  );
  return { report: readReport(opts.reportPath), seconds: r.seconds, cacheDir };
}

export interface TrivyImageResult {
  secrets: Finding[];
  misconfigurations: Finding[];
  seconds: number;
  reportPath: string;
}

/** The image's secrets and its config's misconfigurations, from a report that scanned for them. */
function imageFindings(
  report: TrivyReport,
  opts: TrivyImageOptions,
): Pick<TrivyImageResult, "secrets" | "misconfigurations"> {
  return {
    secrets: secretFindings(report),
    misconfigurations: misconfigFindings(report, opts.severities ?? SEVERITIES),
  };
}

/** Trivy secret scan of the image's layers and its config (ENV, history), plus misconfiguration
 *  checks of the config, from the registry by digest; offline. */
export async function runTrivyImage(opts: TrivyImageOptions): Promise<TrivyImageResult> {
  const { report, seconds } = await scanImage(opts, {
    scanners: "secret",
    configScanners: "misconfig,secret",
    what: "secret, config",
  });
  return { ...imageFindings(report, opts), seconds, reportPath: opts.reportPath };
}

export interface TrivyVulnerability {
  id: string;
  pkg: string;
  installed: string;
  fixed?: string;
  severity: string;
}

export interface TrivyVulnResult {
  critical: number;
  high: number;
  vulnerabilities: TrivyVulnerability[];
  /** The DB that judged: repository and its UpdatedAt, for the evidence. */
  db: string;
  seconds: number;
  reportPath: string;
}

/** Trivy vulnerability scan of an image from the registry by digest. */
export async function runTrivyVulnerabilities(
  opts: TrivyImageOptions & { db: VulnDbSource },
): Promise<TrivyVulnResult> {
  const scanned = await scanImage(opts, { scanners: "vuln", db: opts.db, what: "vuln" });
  return vulnSummary(scanned, opts);
}

function vulnSummary(
  scanned: { report: TrivyReport; seconds: number; cacheDir: string },
  opts: { reportPath: string; db: VulnDbSource },
): TrivyVulnResult {
  const vulnerabilities = (scanned.report.Results ?? [])
    .flatMap((x) => x.Vulnerabilities ?? [])
    .map((v) => ({
      id: v.VulnerabilityID ?? "?",
      pkg: v.PkgName ?? "?",
      installed: v.InstalledVersion ?? "?",
      fixed: v.FixedVersion,
      severity: v.Severity ?? "UNKNOWN",
    }));
  let db = opts.db.repository ?? "trivy public DB";
  try {
    const meta = JSON.parse(
      fs.readFileSync(path.join(scanned.cacheDir, "db", "metadata.json"), "utf8"),
    ) as { UpdatedAt?: string };
    if (meta.UpdatedAt) db += ` (updated ${meta.UpdatedAt})`;
  } catch {
    // metadata is informative only
  }
  return {
    critical: vulnerabilities.filter((v) => v.severity === "CRITICAL").length,
    high: vulnerabilities.filter((v) => v.severity === "HIGH").length,
    vulnerabilities,
    db,
    seconds: scanned.seconds,
    reportPath: opts.reportPath,
  };
}

export interface TrivyImageAllResult extends TrivyVulnResult {
  secrets: Finding[];
  misconfigurations: Finding[];
}

/** Vulnerabilities, secrets and the image config's misconfigurations in one `trivy image` call:
 *  one start-up, one analysis of the image (cached per layer in the DB source's cache) instead of
 *  two. The same report then serves as both runTrivyImage's and runTrivyVulnerabilities'. */
export async function runTrivyImageAll(
  opts: TrivyImageOptions & { db: VulnDbSource },
): Promise<TrivyImageAllResult> {
  const scanned = await scanImage(opts, {
    scanners: "vuln,secret",
    configScanners: "misconfig,secret",
    db: opts.db,
    what: "vuln, secret, config",
  });
  return { ...vulnSummary(scanned, opts), ...imageFindings(scanned.report, opts) };
}
