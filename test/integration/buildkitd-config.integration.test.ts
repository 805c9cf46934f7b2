// The local daemon is a host: the buildkitd that every local build goes through (scripts/buildkit.sh,
// tcp://127.0.0.1:1234, buildx builder image-factory-local) runs exactly the buildkitd.toml that
// renderBuildkitdToml (components/buildHosts/userData.ts) gives for the local options
// (scripts/render-buildkitd-toml.ts: loopback listener, networkMode host, local paths, the local TLS
// registry's CA), so no test path builds through a daemon configured differently from the hosts.
// Then, through the real builder: a build asking for `--network host` is refused (the hosts'
// entitlements: none), `--network default` runs, in the host's loopback-only namespace. Last, a
// private daemon started by the same script (IF_BUILDKIT_*) renders the same file for its own
// directory and port, and restarts only when that file changes.
// Needs the local services (scripts/bootstrap.sh); a missing one FAILS the test.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gcLimits } from "../../components/buildHosts/userData";
import { LOCAL_BUILDKITD, renderLocalBuildkitdToml } from "../../scripts/render-buildkitd-toml";
import { buildxEnv } from "../e2e/lib/docker";
import { REPO_ROOT } from "../e2e/lib/exec";
import { freePort } from "../e2e/lib/http";
import { cacheDir } from "../e2e/lib/registry";

const IF_CACHE = cacheDir();
const IF_BIN = path.join(IF_CACHE, "bin");
const SHARED_DIR = path.join(IF_CACHE, "buildkit");
const REGISTRY_CA = path.join(IF_CACHE, "registry-tls", "ca.pem");
const BUILDKIT_SH = path.join(REPO_ROOT, "scripts", "buildkit.sh");
const BUILDER = "image-factory-local";
const BASE = "127.0.0.1:5443/image-factory/node-base:22";

interface Run {
  code: number | null;
  out: string;
}
function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 300_000): Run {
  const r = spawnSync(file, args, {
    encoding: "utf8",
    timeout,
    env: { ...process.env, PATH: `${IF_BIN}:${process.env.PATH ?? ""}`, ...env },
  });
  return {
    code: r.status,
    out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}`,
  };
}
const tail = (s: string, n = 15): string => s.trim().split("\n").slice(-n).join("\n");

/** The process a pid file names, with its argv and its start (ms since the epoch). */
function daemonOf(pidFile: string): { pid: number; argv: string[]; startedMs: number } {
  const pid = Number(fs.readFileSync(pidFile, "utf8").trim());
  assert.ok(Number.isInteger(pid) && pid > 0, `${pidFile} holds no pid`);
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const startTicks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync("/proc/stat", "utf8"))?.[1]);
  const hz = Number(run("getconf", ["CLK_TCK"]).out.trim());
  return { pid, argv, startedMs: (btime + startTicks / hz) * 1000 };
}

describe("the local buildkitd runs the hosts' buildkitd.toml (real daemon, real buildx)", function () {
  this.timeout(600_000);
  let dockerConfig: string;
  let env: ReturnType<typeof buildxEnv>;
  let context: string;

  before(() => {
    const status = run("bash", [BUILDKIT_SH, "status"]);
    assert.equal(
      status.code,
      0,
      `the local buildkitd does not answer (run scripts/bootstrap.sh or scripts/buildkit.sh): ${status.out}`,
    );
    // Registry credentials for the base image in a DOCKER_CONFIG of this test's own.
    dockerConfig = fs.mkdtempSync(path.join(os.tmpdir(), "buildkitd-config-docker-"));
    env = buildxEnv(dockerConfig);
    context = fs.mkdtempSync(path.join(os.tmpdir(), "buildkitd-config-ctx-"));
    // The RUN step reaches the registry on 127.0.0.1: it runs in the host's network namespace.
    fs.writeFileSync(
      path.join(context, "Dockerfile"),
      `FROM ${BASE}\nRUN node -e "const s = require('net').connect(5443, '127.0.0.1'); s.on('connect', () => { console.log('reached 127.0.0.1:5443'); process.exit(0); }); s.on('error', (e) => { console.error(e.message); process.exit(1); })"\n`,
    );
  });
  after(() => {
    for (const d of [dockerConfig, context]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  const buildx = (args: string[]): Run =>
    run(
      "docker",
      [
        "buildx",
        "build",
        "--builder",
        BUILDER,
        "--progress",
        "plain",
        "--platform",
        "linux/amd64",
        "--output",
        "type=cacheonly",
        ...args,
        context,
      ],
      env,
    );

  it("serves exactly renderBuildkitdToml's local rendering, loaded by the running daemon", async () => {
    const config = path.join(SHARED_DIR, "buildkitd.toml");
    const expected = renderLocalBuildkitdToml({ dir: SHARED_DIR, registryCa: REGISTRY_CA });
    assert.equal(fs.readFileSync(config, "utf8"), expected);
    assert.doesNotMatch(expected, /entitlements/);

    // The daemon behind 127.0.0.1:1234 is the one scripts/buildkit.sh started with that file, after
    // the file was last written.
    const daemon = daemonOf(path.join(SHARED_DIR, "buildkitd.pid"));
    assert.deepEqual(daemon.argv.slice(-2), ["--config", config], daemon.argv.join(" "));
    assert.match(daemon.argv[0], /buildkitd$/);
    assert.ok(
      daemon.startedMs + 1000 >= fs.statSync(config).mtimeMs,
      `buildkitd (pid ${daemon.pid}) started before ${config} was last written: it runs an older config`,
    );

    const env = Object.fromEntries(
      run("bash", [BUILDKIT_SH, "env"])
        .out.trim()
        .split("\n")
        .map((l) => l.split("=", 2) as [string, string]),
    );
    assert.equal(env.BUILDKIT_HOST, `tcp://127.0.0.1:${LOCAL_BUILDKITD.port}`);
    const workers = run(path.join(IF_BIN, "buildctl"), [
      "--addr",
      env.BUILDKIT_HOST,
      "--tlsservername",
      env.BUILDKIT_TLS_SERVER_NAME,
      "--tlscacert",
      env.BUILDKIT_TLS_CA,
      "--tlscert",
      env.BUILDKIT_TLS_CERT,
      "--tlskey",
      env.BUILDKIT_TLS_KEY,
      "debug",
      "workers",
      "--format",
      "{{json .}}",
    ]);
    assert.equal(workers.code, 0, workers.out);
    const [worker] = JSON.parse(workers.out) as Array<{
      labels: Record<string, string>;
      gcPolicy: Array<{ maxUsedSpace?: number }>;
    }>;
    assert.equal(worker.labels["org.mobyproject.buildkit.worker.network"], "host");
    assert.deepEqual(
      worker.gcPolicy.map((p) => p.maxUsedSpace ?? 0),
      [
        gcLimits(LOCAL_BUILDKITD.volumeGb).transientBytes,
        ...Array(3).fill(gcLimits(LOCAL_BUILDKITD.volumeGb).keepBytes),
      ],
    );
  });

  it("refuses a build asking for --network host (or security.insecure), as a host does", async () => {
    const host = buildx(["--network", "host"]);
    assert.notEqual(host.code, 0, `--network host was built:\n${tail(host.out)}`);
    assert.match(
      host.out,
      /granting entitlement network\.host is not allowed by build daemon configuration/,
    );
    const insecure = buildx(["--allow", "security.insecure"]);
    assert.notEqual(insecure.code, 0, `security.insecure was granted:\n${tail(insecure.out)}`);
    assert.match(
      insecure.out,
      /granting entitlement security\.insecure is not allowed by build daemon configuration/,
    );
  });

  it("builds with --network default, in the host's loopback-only namespace", async () => {
    const r = buildx(["--network", "default", "--no-cache"]);
    assert.equal(r.code, 0, `--network default failed:\n${tail(r.out, 25)}`);
    assert.match(r.out, /reached 127\.0\.0\.1:5443/);
  });
});

describe("a private daemon from scripts/buildkit.sh (IF_BUILDKIT_*) renders the same config", function () {
  this.timeout(300_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "buildkitd-private-"));
    env = {
      IF_BUILDKIT_DIR: dir,
      IF_BUILDKIT_PORT: String(await freePort()),
      IF_BUILDKIT_BUILDER: `image-factory-private-${process.pid}`,
    };
  });
  after(() => {
    run("bash", [BUILDKIT_SH, "stop"], env);
    run("docker", ["buildx", "rm", String(env.IF_BUILDKIT_BUILDER)]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("starts with its own directory and port, keeps running when nothing changed, restarts on a new config", async () => {
    const port = Number(env.IF_BUILDKIT_PORT);
    const config = path.join(dir, "buildkitd.toml");
    const pidFile = path.join(dir, "buildkitd.pid");
    const up = (extra: NodeJS.ProcessEnv = {}): void => {
      const r = run("bash", [BUILDKIT_SH], { ...env, ...extra });
      assert.equal(r.code, 0, `scripts/buildkit.sh (private):\n${tail(r.out)}`);
    };

    up();
    assert.equal(
      fs.readFileSync(config, "utf8"),
      renderLocalBuildkitdToml({ dir, port, registryCa: REGISTRY_CA }),
    );
    const first = daemonOf(pidFile).pid;
    assert.equal(run("bash", [BUILDKIT_SH, "status"], env).code, 0);

    up();
    assert.equal(daemonOf(pidFile).pid, first, "an unchanged config restarted buildkitd");

    up({ IF_BUILDKIT_VOLUME_GB: "30" });
    assert.equal(
      fs.readFileSync(config, "utf8"),
      renderLocalBuildkitdToml({ dir, port, volumeGb: 30, registryCa: REGISTRY_CA }),
    );
    assert.notEqual(daemonOf(pidFile).pid, first, "a changed config did not restart buildkitd");
  });
});
