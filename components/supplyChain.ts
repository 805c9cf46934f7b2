// Supply-chain evidence for the pushed images: an SBOM per platform (Syft), Trivy misconfiguration
// and secret scans (offline, embedded checks) plus vulnerability scanning where its DB is reachable,
// Hadolint on the Dockerfile, Dive efficiency per image, and the quality gates over all of it.
//
// docker-build has no SBOM/attestation inputs (upstream #73), so the evidence is produced here by
// the real tools, in a Pulumi dynamic resource whose create/update runs after the images are pushed
// and before the stack's exports are written: a failing gate fails the resource, and so the
// `pulumi up`, with the GateError message. The tool runners are plain exported functions, testable
// on their own. Everything below the component class is also what the dynamic provider serializes,
// so it uses only Node built-ins and ./gates and ./naming (no Pulumi objects, no captured secrets).
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  type Finding,
  type GateResults,
  type Measured,
  type Measurements,
  type PlatformMeasurements,
  GateError,
  evaluateGates,
  measured,
  notRun,
} from "./gates";
import { platformSlug } from "./naming";
import type { GatesConfig } from "./types";

// ------------------------------------------------------------------------------------------------
// Tool runners
// ------------------------------------------------------------------------------------------------

export type ScannerTool = "syft" | "trivy" | "hadolint" | "dive" | "docker";

/** Where the project's install scripts put binaries (scripts/lib.sh: $IF_BIN). */
export function toolBinDir(): string {
  return path.join(process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory"), "bin");
}

/** Absolute path of a scanner: $IF_BIN first (pinned installs), then PATH. Docker is Debian's
 *  /usr/bin/docker (the 28.x client in /usr/local/bin refuses BuildKit without buildx). */
export function findTool(tool: ScannerTool): string | undefined {
  const candidates = tool === "docker" ? ["/usr/bin/docker"] : [path.join(toolBinDir(), tool)];
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir !== "") candidates.push(path.join(dir, tool));
  }
  return candidates.find((c) => {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export function requireTool(tool: ScannerTool): string {
  const found = findTool(tool);
  if (found === undefined) {
    const hint = tool === "docker" ? "run scripts/engine.sh" : "run scripts/install-scanners.sh";
    throw new Error(`${tool} not found in ${toolBinDir()} or on PATH; ${hint}`);
  }
  return found;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command without a shell. `redact` strings are replaced in anything returned, so a
 *  tool that echoes a credential cannot carry it into an error message or the state. */
export function execTool(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; redact?: string[] } = {},
): Promise<ExecResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = childProcess.spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            child.kill("SIGKILL");
          }, opts.timeoutMs)
        : undefined;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${path.basename(file)} could not start: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const scrub = (s: string): string => (opts.redact ?? []).filter((r) => r !== "").reduce((acc, r) => acc.split(r).join("***"), s);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: scrub(Buffer.concat(out).toString("utf8")),
        stderr: scrub(Buffer.concat(err).toString("utf8")) + (signal ? `\n(killed by ${signal}${opts.timeoutMs ? ` after ${opts.timeoutMs} ms` : ""})` : ""),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}

function lastLines(s: string, n = 8): string {
  return s.trim().split("\n").slice(-n).join("\n");
}

/** Registry access for the scanners. The password is handed to tools through their environment
 *  (or a private temp config file for Docker), never on a command line, in a log or an output. */
export interface RegistryAuth {
  /** Host[:port], e.g. `127.0.0.1:5000`, `ghcr.io`. */
  registry: string;
  username?: string;
  password?: string;
  /** Plain HTTP (the local registry). @default true for loopback hosts */
  insecure?: boolean;
}

export function registryOf(imageName: string): string {
  const first = imageName.split("/")[0];
  return first.includes(".") || first.includes(":") || first === "localhost" ? first : "docker.io";
}

export function isLoopbackRegistry(registry: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(registry);
}

function insecureOf(auth: RegistryAuth | undefined): boolean {
  return auth?.insecure ?? (auth ? isLoopbackRegistry(auth.registry) : false);
}

/** Whether a registry speaks plain HTTP. Asked, not guessed from the address: the local stack has
 *  a plain registry (127.0.0.1:5000) and a TLS one with a local CA (127.0.0.1:5443). Only loopback
 *  registries may be plain HTTP; a TLS certificate this process does not trust is an error that
 *  says how to trust it. */
export async function probeInsecure(registry: string): Promise<boolean> {
  try {
    await fetch(`https://${registry}/v2/`, { signal: AbortSignal.timeout(10_000) });
    return false;
  } catch (e) {
    const code = String((e as { cause?: { code?: unknown } }).cause?.code ?? "");
    if (/CERT|SELF_SIGNED|VERIFY|ALTNAME/.test(code)) {
      throw new Error(
        `registry ${registry} serves TLS with a certificate this process does not trust (${code}); trust its CA with NODE_EXTRA_CA_CERTS and SSL_CERT_FILE (the local stack: scripts/registry-tls.sh env)`,
      );
    }
    if (!isLoopbackRegistry(registry)) {
      throw new Error(`registry ${registry} is not reachable over HTTPS: ${code || (e instanceof Error ? e.message : String(e))}`);
    }
    return true;
  }
}

export interface SyftResult {
  spdxPath: string;
  cyclonedxPath: string;
  packageCount: number;
  packages: Array<{ name: string; version: string }>;
  seconds: number;
  syftVersion: string;
}

/** SBOM of one pushed image, read from the registry by digest (no Docker daemon involved). */
export async function runSyft(opts: {
  imageRef: string;
  platform: string;
  outDir: string;
  auth?: RegistryAuth;
  timeoutMs?: number;
}): Promise<SyftResult> {
  const syft = requireTool("syft");
  fs.mkdirSync(opts.outDir, { recursive: true });
  const slug = platformSlug(opts.platform);
  const spdxPath = path.join(opts.outDir, `${slug}.spdx.json`);
  const cyclonedxPath = path.join(opts.outDir, `${slug}.cdx.json`);
  const env: Record<string, string> = {
    SYFT_CHECK_FOR_APP_UPDATE: "false",
    SYFT_REGISTRY_INSECURE_USE_HTTP: String(insecureOf(opts.auth)),
  };
  if (opts.auth?.username !== undefined && opts.auth.password !== undefined) {
    env.SYFT_REGISTRY_AUTH_AUTHORITY = opts.auth.registry;
    env.SYFT_REGISTRY_AUTH_USERNAME = opts.auth.username;
    env.SYFT_REGISTRY_AUTH_PASSWORD = opts.auth.password;
  }
  const r = await execTool(
    syft,
    ["scan", `registry:${opts.imageRef}`, "--platform", opts.platform, "-q", "-o", `spdx-json=${spdxPath}`, "-o", `cyclonedx-json=${cyclonedxPath}`],
    { env, timeoutMs: opts.timeoutMs ?? 600_000, redact: [opts.auth?.password ?? ""] },
  );
  if (r.code !== 0) {
    throw new Error(`syft failed on ${opts.imageRef} (${opts.platform}), exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  }
  const spdx = JSON.parse(fs.readFileSync(spdxPath, "utf8")) as { packages?: Array<{ name?: string; versionInfo?: string }>; creationInfo?: { creators?: string[] } };
  const packages = (spdx.packages ?? []).map((p) => ({ name: p.name ?? "", version: p.versionInfo ?? "" }));
  const creator = (spdx.creationInfo?.creators ?? []).find((c) => c.startsWith("Tool: syft-")) ?? "";
  return { spdxPath, cyclonedxPath, packageCount: packages.length, packages, seconds: r.seconds, syftVersion: creator.replace("Tool: syft-", "") };
}

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

const TRIVY_OFFLINE_FLAGS = ["--skip-check-update", "--skip-version-check", "--disable-telemetry", "--quiet", "--format", "json"];

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

/** Trivy misconfiguration + secret scan of the build context (Dockerfile, compose, sources),
 *  offline with the checks embedded in the binary. Findings at `severities` count. */
export async function runTrivyConfig(opts: { dir: string; reportPath: string; severities?: string[]; timeoutMs?: number }): Promise<TrivyConfigResult> {
  const trivy = requireTool("trivy");
  const severities = opts.severities ?? ["HIGH", "CRITICAL"];
  fs.mkdirSync(path.dirname(opts.reportPath), { recursive: true });
  const r = await execTool(
    trivy,
    ["fs", "--scanners", "misconfig,secret", ...TRIVY_OFFLINE_FLAGS, "--cache-dir", trivyCacheDir(), "--skip-dirs", "**/node_modules", "--skip-dirs", "**/coverage", "--skip-dirs", "**/dist", "--output", opts.reportPath, opts.dir],
    { timeoutMs: opts.timeoutMs ?? 300_000 },
  );
  if (r.code !== 0) {
    throw new Error(`trivy fs (misconfig,secret) failed on ${opts.dir}, exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  }
  const report = JSON.parse(fs.readFileSync(opts.reportPath, "utf8")) as TrivyReport;
  return { misconfigurations: misconfigFindings(report, severities), secrets: secretFindings(report), seconds: r.seconds, reportPath: opts.reportPath };
}

function trivyRegistryEnv(auth: RegistryAuth | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  if (auth?.username !== undefined && auth.password !== undefined) {
    env.TRIVY_USERNAME = auth.username;
    env.TRIVY_PASSWORD = auth.password;
  }
  return env;
}

export interface TrivyImageResult {
  secrets: Finding[];
  misconfigurations: Finding[];
  seconds: number;
  reportPath: string;
}

/** Trivy secret scan of the image's layers and its config (ENV, history), plus misconfiguration
 *  checks of the config, from the registry by digest; offline. */
export async function runTrivyImage(opts: {
  imageRef: string;
  platform: string;
  reportPath: string;
  auth?: RegistryAuth;
  severities?: string[];
  timeoutMs?: number;
}): Promise<TrivyImageResult> {
  const trivy = requireTool("trivy");
  fs.mkdirSync(path.dirname(opts.reportPath), { recursive: true });
  const args = ["image", "--image-src", "remote", "--platform", opts.platform, "--scanners", "secret", "--image-config-scanners", "misconfig,secret", ...TRIVY_OFFLINE_FLAGS, "--cache-dir", trivyCacheDir(), "--output", opts.reportPath];
  if (insecureOf(opts.auth)) args.push("--insecure");
  args.push(opts.imageRef);
  const r = await execTool(trivy, args, { env: trivyRegistryEnv(opts.auth), timeoutMs: opts.timeoutMs ?? 600_000, redact: [opts.auth?.password ?? ""] });
  if (r.code !== 0) {
    throw new Error(`trivy image (secret, config) failed on ${opts.imageRef} (${opts.platform}), exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  }
  const report = JSON.parse(fs.readFileSync(opts.reportPath, "utf8")) as TrivyReport;
  return { secrets: secretFindings(report), misconfigurations: misconfigFindings(report, opts.severities ?? ["HIGH", "CRITICAL"]), seconds: r.seconds, reportPath: opts.reportPath };
}

/** Whether Trivy's vulnerability DB is usable: present in the cache, or downloaded now when
 *  `download` allows it (CI; offline machines must not even try to reach the DB's registry).
 *  Returns the reason when it is not, so the check is reported as not run (never as passed). */
export async function ensureTrivyDb(opts: { download: boolean; timeoutMs?: number }): Promise<{ ok: true } | { ok: false; reason: string }> {
  const dbFile = path.join(trivyCacheDir(), "db", "trivy.db");
  if (fs.existsSync(dbFile)) return { ok: true };
  if (!opts.download) {
    return { ok: false, reason: `Trivy vulnerability DB not in ${path.dirname(dbFile)} and downloading it is off here (it is downloaded in CI: GITHUB_ACTIONS=true or TRIVY_DB_DOWNLOAD=true)` };
  }
  const trivy = findTool("trivy");
  if (trivy === undefined) return { ok: false, reason: "trivy not installed" };
  const r = await execTool(trivy, ["image", "--download-db-only", "--cache-dir", trivyCacheDir(), "--quiet"], { timeoutMs: opts.timeoutMs ?? 120_000 });
  if (r.code === 0 && fs.existsSync(dbFile)) return { ok: true };
  const firstError = (r.stderr || r.stdout).split("\n").find((l) => /error|fatal|fail/i.test(l)) ?? lastLines(r.stderr, 2);
  return { ok: false, reason: `Trivy vulnerability DB unavailable (no ${dbFile}; download failed: ${firstError.trim().slice(0, 300)})` };
}

export interface TrivyVulnResult {
  critical: number;
  high: number;
  seconds: number;
  reportPath: string;
}

/** Trivy vulnerability scan (CRITICAL,HIGH) of an image; call only after ensureTrivyDb() said ok. */
export async function runTrivyVulnerabilities(opts: { imageRef: string; platform: string; reportPath: string; auth?: RegistryAuth; timeoutMs?: number }): Promise<TrivyVulnResult> {
  const trivy = requireTool("trivy");
  fs.mkdirSync(path.dirname(opts.reportPath), { recursive: true });
  const args = ["image", "--image-src", "remote", "--platform", opts.platform, "--scanners", "vuln", "--severity", "CRITICAL,HIGH", "--skip-db-update", "--skip-java-db-update", ...TRIVY_OFFLINE_FLAGS, "--cache-dir", trivyCacheDir(), "--output", opts.reportPath];
  if (insecureOf(opts.auth)) args.push("--insecure");
  args.push(opts.imageRef);
  const r = await execTool(trivy, args, { env: trivyRegistryEnv(opts.auth), timeoutMs: opts.timeoutMs ?? 600_000, redact: [opts.auth?.password ?? ""] });
  if (r.code !== 0) {
    throw new Error(`trivy image (vuln) failed on ${opts.imageRef}, exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  }
  const report = JSON.parse(fs.readFileSync(opts.reportPath, "utf8")) as TrivyReport;
  const vulns = (report.Results ?? []).flatMap((x) => x.Vulnerabilities ?? []);
  return { critical: vulns.filter((v) => v.Severity === "CRITICAL").length, high: vulns.filter((v) => v.Severity === "HIGH").length, seconds: r.seconds, reportPath: opts.reportPath };
}

export interface HadolintResult {
  /** Findings at error or warning level: these fail the lint gate. */
  findings: Finding[];
  /** info/style findings, reported but not gating. */
  notes: Finding[];
  seconds: number;
}

/** Hadolint on a Dockerfile. Inline `# hadolint ignore=DLxxxx` comments (each with its
 *  justification) are honoured by Hadolint itself. */
export async function runHadolint(opts: { dockerfile: string; timeoutMs?: number }): Promise<HadolintResult> {
  const hadolint = requireTool("hadolint");
  if (!fs.existsSync(opts.dockerfile)) throw new Error(`hadolint: Dockerfile ${opts.dockerfile} does not exist`);
  const r = await execTool(hadolint, ["--no-fail", "--no-color", "--format", "json", opts.dockerfile], { timeoutMs: opts.timeoutMs ?? 60_000 });
  if (r.code !== 0) {
    throw new Error(`hadolint failed on ${opts.dockerfile}, exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  }
  const items = JSON.parse(r.stdout || "[]") as Array<{ code: string; level: string; line: number; message: string; file: string }>;
  const toFinding = (i: (typeof items)[number]): Finding => ({ id: i.code, severity: i.level, message: i.message, where: `${path.basename(i.file)}:${i.line}` });
  return {
    findings: items.filter((i) => i.level === "error" || i.level === "warning").map(toFinding),
    notes: items.filter((i) => i.level !== "error" && i.level !== "warning").map(toFinding),
    seconds: r.seconds,
  };
}

/** A throwaway Docker client config holding only this registry's credentials (mode 600, deleted
 *  after use), so the password is never on a command line and the user's config is untouched. */
function withDockerConfig<T>(auth: RegistryAuth | undefined, fn: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-docker-"));
  fs.chmodSync(dir, 0o700);
  const auths: Record<string, { auth: string }> = {};
  if (auth?.username !== undefined && auth.password !== undefined) {
    auths[auth.registry] = { auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64") };
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ auths }), { mode: 0o600 });
  return fn({ DOCKER_CONFIG: dir }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}

export interface PulledImage {
  archivePath: string;
  sizeBytes: number;
  seconds: number;
  /** The engine's image ID. */
  imageId: string;
  /** Whether this pull put the reference into the engine (it was not there before): only then
   *  is it this run's to remove. */
  added: boolean;
}

/** Pulls one platform image by digest into the local engine and saves it as a docker-archive for
 *  Dive. Returns the engine's (uncompressed) image size. An image this call added is removed again
 *  when a later step fails; on success the caller removes it (removePulledImage) once done. */
export async function pullAndSave(opts: { imageRef: string; archivePath: string; auth?: RegistryAuth; timeoutMs?: number }): Promise<PulledImage> {
  const docker = requireTool("docker");
  const started = Date.now();
  return withDockerConfig(opts.auth, async (env) => {
    const redact = [opts.auth?.password ?? ""];
    const present = (await execTool(docker, ["image", "inspect", "--format", "{{.Id}}", opts.imageRef], { env })).code === 0;
    const pull = await execTool(docker, ["pull", "-q", opts.imageRef], { env, timeoutMs: opts.timeoutMs ?? 600_000, redact });
    if (pull.code !== 0) throw new Error(`docker pull ${opts.imageRef} failed, exit ${pull.code}: ${lastLines(pull.stderr || pull.stdout)}`);
    try {
      const inspect = await execTool(docker, ["image", "inspect", "--format", "{{.Id}} {{.Size}}", opts.imageRef], { env });
      if (inspect.code !== 0) throw new Error(`docker image inspect ${opts.imageRef} failed: ${lastLines(inspect.stderr)}`);
      const [imageId, size] = inspect.stdout.trim().split(" ");
      fs.mkdirSync(path.dirname(opts.archivePath), { recursive: true });
      const save = await execTool(docker, ["save", "-o", opts.archivePath, opts.imageRef], { env, timeoutMs: opts.timeoutMs ?? 600_000 });
      if (save.code !== 0) throw new Error(`docker save ${opts.imageRef} failed: ${lastLines(save.stderr)}`);
      return { archivePath: opts.archivePath, sizeBytes: Number(size), seconds: (Date.now() - started) / 1000, imageId, added: !present };
    } catch (e) {
      if (!present) await removePulledImage({ imageRef: opts.imageRef, added: true }).catch(() => undefined);
      throw e;
    }
  });
}

/** Removes what pullAndSave added to the engine: the pulled reference only, never by ID and never
 *  forced, so an image another reference or a container still uses stays (the engine then just
 *  drops this reference). A reference that was already there before the pull is left alone.
 *  Without this every evidence run leaves each platform image behind (hundreds of MB a run). */
export async function removePulledImage(pulled: { imageRef: string; added: boolean }): Promise<{ removed: boolean; error?: string }> {
  if (!pulled.added) return { removed: false };
  const r = await execTool(requireTool("docker"), ["image", "rm", pulled.imageRef], { timeoutMs: 120_000 });
  if (r.code === 0 || /No such image/i.test(r.stderr)) return { removed: r.code === 0 };
  return { removed: false, error: `docker image rm ${pulled.imageRef} failed, exit ${r.code}: ${lastLines(r.stderr || r.stdout, 3)}` };
}

export interface DiveResult {
  efficiency: number;
  wastedBytes: number;
  userWastedPercent: number;
  /** Dive's own CI verdict with the thresholds passed to it. */
  pass: boolean;
  output: string;
  seconds: number;
}

/** Parses `dive --ci` output (efficiency, wastedBytes, userWastedPercent, Result). */
export function parseDiveCi(rawOutput: string): Omit<DiveResult, "seconds" | "output"> {
  // Dive colours its CI report even without a terminal.
  const output = rawOutput.replace(/\x1b\[[0-9;]*m/g, "");
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(output);
    if (!m) throw new Error(`dive output has no ${what}: ${lastLines(output, 12)}`);
    return Number(m[1]);
  };
  return {
    efficiency: num(/efficiency:\s*([0-9.]+)\s*%/, "efficiency") / 100,
    wastedBytes: num(/wastedBytes:\s*([0-9]+)\s*bytes/, "wastedBytes"),
    userWastedPercent: num(/userWastedPercent:\s*([0-9.]+)\s*%/, "userWastedPercent") / 100,
    pass: /Result:\s*PASS/.test(output),
  };
}

/** Dive in CI mode on a saved image with the gates' thresholds. */
export async function runDive(opts: { archivePath: string; minEfficiency: number; maxWastedMb: number; timeoutMs?: number }): Promise<DiveResult> {
  const dive = requireTool("dive");
  const r = await execTool(
    dive,
    [
      "--ci",
      "--source",
      "docker-archive",
      `--lowestEfficiency=${opts.minEfficiency}`,
      `--highestWastedBytes=${Math.floor(opts.maxWastedMb * 1024 * 1024)}`,
      // The factory has no gate on the user-wasted share; Dive's default (10 %) would add one.
      "--highestUserWastedPercent=disabled",
      opts.archivePath,
    ],
    { env: { CI: "true" }, timeoutMs: opts.timeoutMs ?? 600_000 },
  );
  const output = r.stdout + r.stderr;
  if (!/Result:\s*(PASS|FAIL)/.test(output)) {
    throw new Error(`dive failed on ${opts.archivePath}, exit ${r.code}: ${lastLines(output)}`);
  }
  return { ...parseDiveCi(output), output, seconds: r.seconds };
}

/** Line coverage from an istanbul/c8 `json-summary` report. */
export function readCoverage(summaryPath: string): Measured<number> {
  if (!fs.existsSync(summaryPath)) {
    return notRun(`coverage summary ${summaryPath} not found (the app tests write it: c8 --reporter=json-summary)`);
  }
  const summary = JSON.parse(fs.readFileSync(summaryPath, "utf8")) as { total?: { lines?: { pct?: number } } };
  const pct = summary.total?.lines?.pct;
  return typeof pct === "number" ? measured(pct) : notRun(`coverage summary ${summaryPath} has no total.lines.pct`);
}

// ------------------------------------------------------------------------------------------------
// SBOM as an OCI artifact (a referrer of the platform image) — minimal distribution API client
// ------------------------------------------------------------------------------------------------

function sha256(data: Buffer | string): string {
  return `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
}

function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const [scheme, ...rest] = header.split(" ");
  const params: Record<string, string> = {};
  for (const m of rest.join(" ").matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
  return { scheme: scheme.toLowerCase(), params };
}

/** Fetch against a registry, answering Basic and Bearer (token service) challenges. */
async function registryFetch(auth: RegistryAuth, repo: string, pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
  const base = `${insecureOf(auth) ? "http" : "https"}://${auth.registry}`;
  const url = pathAndQuery.startsWith("http") ? pathAndQuery : `${base}${pathAndQuery}`;
  let res = await fetch(url, { ...init, redirect: "follow" });
  if (res.status !== 401) return res;
  const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
  const basic = auth.username !== undefined && auth.password !== undefined ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}` : undefined;
  let authorization: string | undefined = basic;
  if (challenge.scheme === "bearer") {
    const tokenUrl = new URL(challenge.params.realm);
    if (challenge.params.service) tokenUrl.searchParams.set("service", challenge.params.service);
    tokenUrl.searchParams.set("scope", `repository:${repo}:pull,push`);
    const t = await fetch(tokenUrl, { headers: basic ? { authorization: basic } : {} });
    if (!t.ok) throw new Error(`registry token request to ${tokenUrl.origin}${tokenUrl.pathname} failed: HTTP ${t.status}`);
    const body = (await t.json()) as { token?: string; access_token?: string };
    authorization = `Bearer ${body.token ?? body.access_token ?? ""}`;
  }
  if (authorization === undefined) return res;
  const headers = new Headers(init.headers);
  headers.set("authorization", authorization);
  res = await fetch(url, { ...init, headers, redirect: "follow" });
  return res;
}

async function pushBlob(auth: RegistryAuth, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const head = await registryFetch(auth, repo, `/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  if (head.ok) return digest;
  const start = await registryFetch(auth, repo, `/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`blob upload to ${auth.registry}/${repo} refused: HTTP ${start.status} ${await start.text()}`);
  const location = start.headers.get("location") ?? "";
  const url = new URL(location, `${insecureOf(auth) ? "http" : "https"}://${auth.registry}`);
  url.searchParams.set("digest", digest);
  const put = await registryFetch(auth, repo, url.toString(), { method: "PUT", body: new Uint8Array(data), headers: { "content-type": "application/octet-stream" } });
  if (put.status !== 201) throw new Error(`blob upload to ${auth.registry}/${repo} failed: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

export const SPDX_ARTIFACT_TYPE = "application/spdx+json";

/** `<registry>/<repo>:<tag>` or `@digest` → repository path within the registry. */
export function repositoryOf(imageName: string): string {
  const reg = registryOf(imageName);
  const rest = imageName.startsWith(`${reg}/`) ? imageName.slice(reg.length + 1) : imageName;
  return rest.replace(/@.*$/, "").replace(/:[^/]*$/, "");
}

/** Pushes an SBOM next to the image as an OCI 1.1 artifact whose `subject` is the platform image,
 *  so registries with the referrers API (GHCR) list it under the image; it is also tagged
 *  `sha256-<hex>.sbom` (the cosign convention) so registries without that API (distribution 2.8)
 *  find it by tag. Returns `oci://<repo>@<artifact digest>`. */
export async function pushSbomArtifact(opts: { imageName: string; subjectDigest: string; subjectSize: number; subjectMediaType: string; sbomPath: string; platform: string; auth: RegistryAuth }): Promise<string> {
  const repo = repositoryOf(opts.imageName);
  const sbom = fs.readFileSync(opts.sbomPath);
  const emptyConfig = Buffer.from("{}");
  const configDigest = await pushBlob(opts.auth, repo, emptyConfig);
  const layerDigest = await pushBlob(opts.auth, repo, sbom);
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    artifactType: SPDX_ARTIFACT_TYPE,
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: configDigest, size: emptyConfig.length },
    layers: [{ mediaType: SPDX_ARTIFACT_TYPE, digest: layerDigest, size: sbom.length, annotations: { "org.opencontainers.image.title": path.basename(opts.sbomPath) } }],
    subject: { mediaType: opts.subjectMediaType, digest: opts.subjectDigest, size: opts.subjectSize },
    annotations: { "org.opencontainers.image.created": new Date().toISOString(), "dev.image-factory.platform": opts.platform },
  };
  const body = Buffer.from(JSON.stringify(manifest));
  const digest = sha256(body);
  const tag = `${opts.subjectDigest.replace(":", "-")}.sbom`;
  for (const ref of [tag, digest]) {
    const put = await registryFetch(opts.auth, repo, `/v2/${repo}/manifests/${ref}`, { method: "PUT", body: new Uint8Array(body), headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } });
    if (put.status !== 201) throw new Error(`pushing the SBOM artifact to ${opts.auth.registry}/${repo}:${ref} failed: HTTP ${put.status} ${await put.text()}`);
  }
  return `oci://${registryOf(opts.imageName)}/${repo}@${digest}`;
}

/** Reads a manifest's media type and size (needed for an artifact's `subject`). */
export async function headManifest(auth: RegistryAuth, imageName: string, digest: string): Promise<{ mediaType: string; size: number }> {
  const repo = repositoryOf(imageName);
  const accept = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"].join(", ");
  const res = await registryFetch(auth, repo, `/v2/${repo}/manifests/${digest}`, { method: "GET", headers: { accept } });
  if (!res.ok) throw new Error(`manifest ${auth.registry}/${repo}@${digest} not found: HTTP ${res.status}`);
  const buf = Buffer.from(await res.arrayBuffer());
  return { mediaType: (res.headers.get("content-type") ?? "application/vnd.oci.image.manifest.v1+json").split(";")[0], size: buf.length };
}

/** Fetches an SBOM artifact back (`oci://registry/repo@digest`): what a user or a test does. */
export async function fetchSbomArtifact(uri: string, auth: RegistryAuth): Promise<unknown> {
  const m = /^oci:\/\/([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(uri);
  if (!m) throw new Error(`not an oci:// SBOM location: ${uri}`);
  const [, , repo, digest] = m;
  const res = await registryFetch(auth, repo, `/v2/${repo}/manifests/${digest}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
  if (!res.ok) throw new Error(`SBOM artifact ${uri}: HTTP ${res.status}`);
  const manifest = (await res.json()) as { layers?: Array<{ digest: string }> };
  const layer = manifest.layers?.[0]?.digest;
  if (!layer) throw new Error(`SBOM artifact ${uri} has no layer`);
  const blob = await registryFetch(auth, repo, `/v2/${repo}/blobs/${layer}`);
  if (!blob.ok) throw new Error(`SBOM blob ${layer}: HTTP ${blob.status}`);
  return JSON.parse(Buffer.from(await blob.arrayBuffer()).toString("utf8"));
}

// ------------------------------------------------------------------------------------------------
// The whole evidence run (what the dynamic provider's create/update does)
// ------------------------------------------------------------------------------------------------

/** `file`: the SBOM files under `<outputDir>/sbom/` (the local stack's default). `oci`: also pushed
 *  next to the image as an OCI artifact referring to it (dev/prod on GHCR), and that is the
 *  exported location. The files are written in both cases. */
export type SbomStore = "file" | "oci";

export interface EvidenceRunInputs {
  imageName: string;
  platformDigests: Record<string, string>;
  registryUsername?: string;
  /** Plaintext only inside the provider process; a secret everywhere else. */
  registryToken?: string;
  dockerfile: string;
  contextDir: string;
  coverageSummaryPath?: string;
  gates: GatesConfig;
  outputDir: string;
  sbomStore: SbomStore;
  /** Gate names that must run (not-run → failed). */
  requiredChecks: string[];
  /** Scan for vulnerabilities when Trivy's DB is cached, or downloadable (see `dbDownload`). */
  vulnerabilityScan: boolean;
  /** May download Trivy's DB (CI only). */
  dbDownload?: boolean;
}

export interface PlatformEvidence {
  digest: string;
  sbomPath: string;
  cyclonedxPath: string;
  sbomLocation: string;
  packageCount: number;
  sizeBytes?: number;
  efficiency?: number;
  wastedBytes?: number;
  seconds: Record<string, number>;
}

export interface EvidenceRunOutputs {
  sbomLocations: Record<string, string>;
  gateResults: GateResults;
  platforms: Record<string, PlatformEvidence>;
  evidenceDir: string;
  notes: string[];
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs every tool and evaluates the gates; writes `<outputDir>/gate-results.json` and the
 *  reports; throws GateError when a gate fails. Runs platforms one after the other (2-core
 *  builders; the tools are CPU-bound). */
export async function runEvidence(inp: EvidenceRunInputs): Promise<EvidenceRunOutputs> {
  const outDir = path.resolve(inp.outputDir);
  const dockerfile = path.resolve(inp.dockerfile);
  const contextDir = path.resolve(inp.contextDir);
  const sbomDir = path.join(outDir, "sbom");
  const reportDir = path.join(outDir, "reports");
  fs.mkdirSync(sbomDir, { recursive: true });
  fs.mkdirSync(reportDir, { recursive: true });
  const registry = registryOf(inp.imageName);
  const auth: RegistryAuth = { registry, username: inp.registryUsername, password: inp.registryToken, insecure: await probeInsecure(registry) };
  const notes: string[] = [];

  // Build-context checks (once).
  let lint: Measured<Finding[]>;
  try {
    const h = await runHadolint({ dockerfile });
    lint = measured(h.findings);
    if (h.notes.length > 0) notes.push(`hadolint notes: ${h.notes.map((n) => `${n.id} ${n.where}`).join(", ")}`);
  } catch (e) {
    lint = notRun(errMessage(e));
  }
  let misconfigurations: Measured<Finding[]>;
  let secrets: Measured<Finding[]>;
  try {
    const t = await runTrivyConfig({ dir: contextDir, reportPath: path.join(reportDir, "trivy-context.json") });
    misconfigurations = measured(t.misconfigurations);
    secrets = measured(t.secrets);
  } catch (e) {
    misconfigurations = notRun(errMessage(e));
    secrets = notRun(errMessage(e));
  }
  const coverage = inp.coverageSummaryPath !== undefined ? readCoverage(path.resolve(inp.coverageSummaryPath)) : notRun<number>("no coverage summary path given");
  const db = inp.vulnerabilityScan ? await ensureTrivyDb({ download: inp.dbDownload ?? false }) : ({ ok: false, reason: "vulnerability scanning disabled for this stack" } as const);

  const platforms: Record<string, PlatformEvidence> = {};
  const perPlatform: Record<string, PlatformMeasurements> = {};
  const sbomLocations: Record<string, string> = {};
  for (const platform of Object.keys(inp.platformDigests).sort()) {
    const digest = inp.platformDigests[platform];
    const ref = `${inp.imageName}@${digest}`;
    const slug = platformSlug(platform);
    const seconds: Record<string, number> = {};

    // The SBOM is the evidence itself: no SBOM, no release.
    const s = await runSyft({ imageRef: ref, platform, outDir: sbomDir, auth });
    seconds.syft = s.seconds;
    let location = `file://${s.spdxPath}`;
    if (inp.sbomStore === "oci") {
      const subject = await headManifest(auth, inp.imageName, digest);
      location = await pushSbomArtifact({ imageName: inp.imageName, subjectDigest: digest, subjectSize: subject.size, subjectMediaType: subject.mediaType, sbomPath: s.spdxPath, platform, auth });
    }
    sbomLocations[platform] = location;

    let imageSecrets: Measured<Finding[]>;
    try {
      const t = await runTrivyImage({ imageRef: ref, platform, reportPath: path.join(reportDir, `trivy-image-${slug}.json`), auth });
      seconds.trivyImage = t.seconds;
      // Misconfigurations found in the image config join the Dockerfile's (same gate).
      imageSecrets = measured(t.secrets);
      if ("value" in misconfigurations && t.misconfigurations.length > 0) {
        misconfigurations = measured([...misconfigurations.value, ...t.misconfigurations.map((f) => ({ ...f, where: `${platform} image config` }))]);
      }
    } catch (e) {
      imageSecrets = notRun(errMessage(e));
    }

    let criticalVulnerabilities: Measured<number>;
    if (db.ok) {
      try {
        const v = await runTrivyVulnerabilities({ imageRef: ref, platform, reportPath: path.join(reportDir, `trivy-vuln-${slug}.json`), auth });
        seconds.trivyVuln = v.seconds;
        criticalVulnerabilities = measured(v.critical);
      } catch (e) {
        criticalVulnerabilities = notRun(errMessage(e));
      }
    } else {
      criticalVulnerabilities = notRun(db.reason);
    }

    let sizeBytes: Measured<number>;
    let efficiency: Measured<number>;
    let wastedBytes: Measured<number>;
    const archive = path.join(os.tmpdir(), `if-evidence-${process.pid}-${slug}.tar`);
    try {
      const pulled = await pullAndSave({ imageRef: ref, archivePath: archive, auth });
      seconds.pull = pulled.seconds;
      sizeBytes = measured(pulled.sizeBytes);
      try {
        const d = await runDive({ archivePath: archive, minEfficiency: inp.gates.minEfficiency, maxWastedMb: inp.gates.maxWastedMb });
        seconds.dive = d.seconds;
        efficiency = measured(d.efficiency);
        wastedBytes = measured(d.wastedBytes);
        fs.writeFileSync(path.join(reportDir, `dive-${slug}.txt`), d.output);
      } catch (e) {
        efficiency = notRun(errMessage(e));
        wastedBytes = notRun(errMessage(e));
      } finally {
        // Dive read the archive; the engine's copy was only for `docker save`.
        const removed = await removePulledImage({ imageRef: ref, added: pulled.added });
        if (removed.error !== undefined) notes.push(removed.error);
      }
    } catch (e) {
      sizeBytes = notRun(errMessage(e));
      efficiency = notRun(errMessage(e));
      wastedBytes = notRun(errMessage(e));
    } finally {
      fs.rmSync(archive, { force: true });
    }

    perPlatform[platform] = { sizeBytes, efficiency, wastedBytes, criticalVulnerabilities, imageSecrets };
    platforms[platform] = {
      digest,
      sbomPath: s.spdxPath,
      cyclonedxPath: s.cyclonedxPath,
      sbomLocation: location,
      packageCount: s.packageCount,
      sizeBytes: "value" in sizeBytes ? sizeBytes.value : undefined,
      efficiency: "value" in efficiency ? efficiency.value : undefined,
      wastedBytes: "value" in wastedBytes ? wastedBytes.value : undefined,
      seconds,
    };
  }

  const measurements: Measurements = { platforms: perPlatform, coverage, lint, misconfigurations, secrets };
  const gateResults = evaluateGates(measurements, inp.gates, { required: inp.requiredChecks });
  const outputs: EvidenceRunOutputs = { sbomLocations, gateResults, platforms, evidenceDir: outDir, notes };
  fs.writeFileSync(path.join(outDir, "gate-results.json"), JSON.stringify({ imageName: inp.imageName, ...outputs }, null, 2) + "\n");
  if (!gateResults.passed) {
    throw new GateError(gateResults.checks.filter((c) => c.status === "failed"));
  }
  return outputs;
}

// ------------------------------------------------------------------------------------------------
// Dynamic provider + component
// ------------------------------------------------------------------------------------------------

/** Inputs as the provider receives them (plain values; `registryToken` arrives decrypted only in
 *  the provider process and is never returned). */
interface ProviderInputs extends EvidenceRunInputs {
  /** Changes when the Dockerfile, the context's scanned files or the coverage summary change. */
  contentHash: string;
}

const DIFF_KEYS: Array<keyof ProviderInputs> = ["imageName", "platformDigests", "gates", "sbomStore", "requiredChecks", "vulnerabilityScan", "dbDownload", "contentHash", "outputDir", "dockerfile", "registryUsername"];

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

async function createOrUpdate(inputs: ProviderInputs): Promise<pulumi.dynamic.CreateResult> {
  let result: EvidenceRunOutputs;
  try {
    result = await runEvidence(inputs);
  } catch (e) {
    // Serialized into `__provider`, GateError loses its Error prototype; the host reports
    // `e.message`, so rethrow a plain Error that keeps the message and the name.
    const source = e as { message?: unknown; name?: unknown };
    const err = new Error(typeof source?.message === "string" ? source.message : String(e));
    err.name = typeof source?.name === "string" ? source.name : "Error";
    throw err;
  }
  const id = sha256(stableJson(inputs.platformDigests)).slice(7, 23);
  // The dynamic-provider host hands diff() the old *outputs*, so the inputs that decide a rescan
  // are repeated here — every one except the token, which no output ever carries.
  const compared: Record<string, unknown> = {};
  for (const k of DIFF_KEYS) compared[k] = inputs[k];
  return { id, outs: { ...compared, sbomLocations: result.sbomLocations, gateResults: result.gateResults, platforms: result.platforms, evidenceDir: result.evidenceDir, notes: result.notes } };
}

/** Module-level and capture-free: Pulumi serializes this object into the state (`__provider`), so
 *  it must hold no secret and no Pulumi object. */
export const evidenceProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: ProviderInputs) {
    return createOrUpdate(inputs);
  },
  async diff(_id: string, olds: ProviderInputs, news: ProviderInputs) {
    const changed = DIFF_KEYS.filter((k) => stableJson(olds[k]) !== stableJson(news[k]));
    return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
  },
  async update(_id: string, _olds: ProviderInputs, news: ProviderInputs) {
    const r = await createOrUpdate(news);
    return { outs: r.outs };
  },
  async delete() {
    // The evidence stays where it was published: deleting a stack does not delete audit records.
  },
};

/** Hash of what the build-context scans look at, so editing the Dockerfile or the app re-runs
 *  the evidence even when the image digests happen not to change. */
export function contentHashOf(files: string[]): string {
  const h = crypto.createHash("sha256");
  for (const f of files) {
    h.update(f);
    h.update(fs.existsSync(f) ? fs.readFileSync(f) : Buffer.from("<missing>"));
  }
  return h.digest("hex");
}

function listFiles(dir: string, skip = new Set(["node_modules", "dist", "coverage", ".git"])): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (skip.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p, skip));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** The dynamic resource (`pulumi-nodejs:dynamic/supplychain:Evidence`) that runs the tools. */
export class EvidenceResource extends pulumi.dynamic.Resource {
  declare public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  declare public readonly gateResults: pulumi.Output<GateResults>;
  declare public readonly platforms: pulumi.Output<Record<string, PlatformEvidence>>;
  constructor(name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(evidenceProvider, name, { ...props, sbomLocations: undefined, gateResults: undefined, platforms: undefined }, opts, "supplychain", "Evidence");
  }
}

export interface SupplyChainEvidenceArgs {
  /** Image repository without tag, e.g. `ghcr.io/acme/shop-api`, `127.0.0.1:5000/image-factory/app`. */
  imageName: pulumi.Input<string>;
  /** Platform → pushed manifest digest (MultiPlatformImage.platformDigests). */
  platformDigests: pulumi.Input<Record<string, string>>;
  /** Registry user; with `registryToken` handed to Syft/Trivy/Docker through env or a temp file. */
  registryUsername?: pulumi.Input<string>;
  /** Registry token; always treated as a secret. */
  registryToken?: pulumi.Input<string>;
  /** Path of the Dockerfile (Hadolint, hashing). @default `${contextDir}/Dockerfile` */
  dockerfile?: string;
  /** Build context scanned by Trivy (misconfig, secret). @default dirname(dockerfile) */
  contextDir?: string;
  /** c8/istanbul json-summary of the app's tests. @default `${contextDir}/coverage/coverage-summary.json` */
  coverageSummaryPath?: string;
  gates: GatesConfig;
  /** Folder for the SBOMs, reports and gate results, e.g. `.local/evidence/<stack>`. */
  outputDir: string;
  /** @default "oci" when the registry is not loopback, else "file" */
  sbomStore?: SbomStore;
  /** Run Trivy vulnerability scanning (needs its DB: reachable in GitHub Actions, not offline).
   *  When true and the DB is unreachable, the gate is reported not-run, never passed.
   *  @default true */
  vulnerabilityScan?: boolean;
  /** Also fail when the vulnerability scan could not run. @default GITHUB_ACTIONS === "true" */
  requireVulnerabilityScan?: boolean;
  /** Download Trivy's DB when it is not cached. @default GITHUB_ACTIONS === "true" || TRIVY_DB_DOWNLOAD === "true" */
  vulnerabilityDbDownload?: boolean;
}

/** Gates that must run unless told otherwise: everything measured offline. */
export const OFFLINE_REQUIRED_CHECKS = ["imageSize", "efficiency", "wasted", "imageSecrets", "dockerfileLint", "misconfigurations", "secrets"];

export class SupplyChainEvidence extends pulumi.ComponentResource {
  /** Platform → URI of its SPDX SBOM (`file://…` or `oci://registry/repo@sha256:…`). */
  public readonly sbomLocations: pulumi.Output<Record<string, string>>;
  public readonly gateResults: pulumi.Output<GateResults>;
  /** Per platform: package count, size, Dive efficiency, tool timings. */
  public readonly platforms: pulumi.Output<Record<string, PlatformEvidence>>;

  constructor(name: string, args: SupplyChainEvidenceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-factory:supplychain:SupplyChainEvidence", name, {}, opts);
    const contextDir = path.resolve(args.contextDir ?? (args.dockerfile !== undefined ? path.dirname(args.dockerfile) : "app"));
    const dockerfile = path.resolve(args.dockerfile ?? path.join(contextDir, "Dockerfile"));
    if (!fs.existsSync(dockerfile)) {
      throw new Error(`SupplyChainEvidence ${name}: dockerfile ${dockerfile} does not exist`);
    }
    if (args.outputDir.trim() === "") {
      throw new Error(`SupplyChainEvidence ${name}: outputDir must not be empty`);
    }
    const coverageSummaryPath = path.resolve(args.coverageSummaryPath ?? path.join(contextDir, "coverage", "coverage-summary.json"));
    const requireVuln = args.requireVulnerabilityScan ?? process.env.GITHUB_ACTIONS === "true";
    const required = [...OFFLINE_REQUIRED_CHECKS, ...(requireVuln ? ["criticalVulnerabilities"] : [])];
    const contentHash = contentHashOf([dockerfile, ...listFiles(contextDir), coverageSummaryPath]);

    const inputs = {
      imageName: args.imageName,
      platformDigests: args.platformDigests,
      registryUsername: args.registryUsername,
      // Secret in the state (the engine encrypts secret inputs); the provider never returns it.
      registryToken: args.registryToken !== undefined ? pulumi.secret(args.registryToken) : undefined,
      // Relative to the program directory (the cwd of both the program and the provider), so a
      // fresh clone elsewhere does not look like a change and rescan everything.
      dockerfile: path.relative(process.cwd(), dockerfile),
      contextDir: path.relative(process.cwd(), contextDir) || ".",
      coverageSummaryPath: path.relative(process.cwd(), coverageSummaryPath),
      gates: args.gates,
      outputDir: path.relative(process.cwd(), path.resolve(args.outputDir)),
      sbomStore: pulumi.output(args.imageName).apply((n) => args.sbomStore ?? (isLoopbackRegistry(registryOf(n)) ? "file" : "oci")),
      requiredChecks: required,
      vulnerabilityScan: args.vulnerabilityScan ?? true,
      dbDownload: args.vulnerabilityDbDownload ?? (process.env.GITHUB_ACTIONS === "true" || process.env.TRIVY_DB_DOWNLOAD === "true"),
      contentHash,
    };
    const res = new EvidenceResource(`${name}-evidence`, inputs, { parent: this, additionalSecretOutputs: ["registryToken"] });
    this.sbomLocations = res.sbomLocations;
    this.gateResults = res.gateResults;
    this.platforms = res.platforms;
    this.registerOutputs({ sbomLocations: this.sbomLocations, gateResults: this.gateResults });
  }
}
