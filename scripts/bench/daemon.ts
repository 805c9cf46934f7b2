// The bench's own buildkitd, made by scripts/buildkit.sh beside the shared one on 1234, so that a
// cold scenario can start from an empty state without touching anybody else's cache.
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { REPO_ROOT, run, runOk, toolPath } from "../../test/e2e/lib";

/** A second buildkitd made by scripts/buildkit.sh itself (IF_BUILDKIT_PORT/DIR/BUILDER: the same
 *  rendered hosts' config and mutual TLS, certificates made by the script in this daemon's folder),
 *  restarted on an empty state directory for each cold scenario. */
export class BenchDaemon {
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

  /** scripts/buildkit.sh (`stop` or nothing) for this daemon's port, folder and builder. */
  private async buildkitSh(args: string[], timeoutMs: number): Promise<void> {
    await runOk("bash", [path.join(REPO_ROOT, "scripts", "buildkit.sh"), ...args], {
      what: `${["scripts/buildkit.sh", ...args].join(" ")} (bench daemon on ${this.addr})`,
      env: {
        IF_BUILDKIT_PORT: String(this.port),
        IF_BUILDKIT_DIR: this.dir,
        IF_BUILDKIT_BUILDER: this.builder,
      },
      timeoutMs,
    });
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
    await this.buildkitSh([], 300_000);
  }

  async stop(): Promise<void> {
    if (!fs.existsSync(path.join(this.dir, "buildkitd.pid"))) return;
    await this.buildkitSh(["stop"], 120_000);
  }

  /** The pid scripts/buildkit.sh recorded, while it still runs buildkitd. */
  pid(): number | undefined {
    try {
      const pid = Number(fs.readFileSync(path.join(this.dir, "buildkitd.pid"), "utf8").trim());
      return Number.isInteger(pid) &&
        pid > 1 &&
        fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("buildkitd")
        ? pid
        : undefined;
    } catch {
      return undefined; // not running
    }
  }

  /** On an abrupt exit: the daemon, if it still runs. */
  stopNow(): void {
    const pid = this.pid();
    try {
      if (pid !== undefined) process.kill(pid, "SIGTERM");
    } catch {
      // ended meanwhile
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
    await runOk(
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
      { what: `docker buildx create ${this.builder}`, env },
    );
  }

  async removeBuilder(dockerConfig?: string): Promise<void> {
    await run("docker", ["buildx", "rm", this.builder], {
      env: dockerConfig === undefined ? {} : { DOCKER_CONFIG: dockerConfig },
    });
  }

  /** Build records the daemon keeps (`buildctl debug histories`). */
  async records(): Promise<number> {
    const r = await runOk(
      toolPath("buildctl"),
      [...this.buildctlArgs(), "debug", "histories", "--format", "{{.Record.Ref}}"],
      { what: "buildctl debug histories" },
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
