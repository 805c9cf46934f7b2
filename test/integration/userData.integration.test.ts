// The build hosts' boot configuration against the real programs that consume it: `cloud-init
// schema` from Debian's cloud-init (scripts/apt-packages.txt), bash and shellcheck on the setup
// script, and buildkitd itself (scripts/install-go-tools.sh buildkit) loading the generated
// buildkitd.toml and serving mutual TLS with it. A missing tool fails the test, it never skips.
import * as assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderLocalBuildkitdToml } from "../../scripts/render-buildkitd-toml";
import {
  gcLimits,
  renderBuildkitdToml,
  renderCloudConfig,
  renderSetupScript,
} from "../../components/buildHosts/userData";
import { freePort } from "../e2e/lib/http";
import { cacheDir } from "../e2e/lib/registry";
import { cloudConfigOptions as options } from "../lib/buildHosts";

const IF_BIN = path.join(cacheDir(), "bin");

function tmpdir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function requireTool(bin: string, how: string): string {
  const found = path.isAbsolute(bin) ? (fs.existsSync(bin) ? bin : undefined) : which(bin);
  if (found === undefined) assert.fail(`${bin} is missing: ${how}`);
  return found;
}
function which(bin: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

describe("the setup script under bash and shellcheck", () => {
  it("passes bash -n and shellcheck", async () => {
    const shellcheck = requireTool(
      "shellcheck",
      "install it with scripts/install-apt.sh (shellcheck is pinned in scripts/apt-packages.txt)",
    );
    const dir = tmpdir("setup-script-");
    try {
      const file = path.join(dir, "setup.sh");
      fs.writeFileSync(file, renderSetupScript(options()));
      const syntax = spawnSync("bash", ["-n", file], { encoding: "utf8" });
      assert.equal(syntax.status, 0, syntax.stderr);
      const lint = spawnSync(shellcheck, ["--shell=bash", "--severity=style", file], {
        encoding: "utf8",
      });
      assert.equal(lint.status, 0, `shellcheck:\n${lint.stdout}${lint.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the user data under cloud-init", () => {
  it("passes the real `cloud-init schema` for both architectures, which rejects a broken config", async function () {
    this.timeout(60_000);
    const cloudInit = requireTool(
      "cloud-init",
      "install it with scripts/install-apt.sh (cloud-init is pinned in scripts/apt-packages.txt)",
    );
    const dir = tmpdir("cloud-init-");
    try {
      for (const arch of ["amd64", "arm64"] as const) {
        const file = path.join(dir, `${arch}.yaml`);
        fs.writeFileSync(
          file,
          renderCloudConfig(
            options({
              arch,
              serverKeyParameter: `/image-factory/dev/buildhosts/${arch}/server-key`,
            }),
          ),
        );
        const r = spawnSync(cloudInit, ["schema", "--config-file", file], { encoding: "utf8" });
        assert.equal(r.status, 0, `cloud-init schema (${arch}):\n${r.stdout}${r.stderr}`);
        assert.match(r.stdout, /Valid cloud-config/);
      }
      // The same validator must fail a config with wrong types, or the check above proves nothing.
      const broken = path.join(dir, "broken.yaml");
      fs.writeFileSync(
        broken,
        "#cloud-config\npackages: 5\nwrite_files:\n  - path: /x\n    permissions: 644\n",
      );
      const r = spawnSync(cloudInit, ["schema", "--config-file", broken], { encoding: "utf8" });
      assert.notEqual(r.status, 0);
      assert.match(`${r.stdout}${r.stderr}`, /packages: 5 is not of type 'array'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- buildkitd loads the generated configuration ------------------------------------------------

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** A throwaway CA, server and client certificate, like the ones BuildHosts makes with @pulumi/tls. */
function makeCerts(dir: string, serverName: string): void {
  const ext = (name: string, body: string): string => {
    fs.writeFileSync(path.join(dir, name), body);
    return name;
  };
  const key = (name: string): void =>
    openssl(
      ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name],
      dir,
    );
  key("ca-key.pem");
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca-key.pem",
      "-subj",
      "/CN=test BuildKit CA",
      "-days",
      "1",
      "-out",
      "ca.pem",
    ],
    dir,
  );
  const leaf = (base: string, cn: string, extensions: string): void => {
    key(`${base}-key.pem`);
    openssl(
      ["req", "-new", "-key", `${base}-key.pem`, "-subj", `/CN=${cn}`, "-out", `${base}.csr`],
      dir,
    );
    const extFile = ext(`${base}.ext`, extensions);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${base}.csr`,
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        extFile,
        "-out",
        `${base}.pem`,
      ],
      dir,
    );
  };
  leaf(
    "server",
    serverName,
    `subjectAltName=DNS:${serverName},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`,
  );
  leaf("client", "image-factory-test-ci", "extendedKeyUsage=clientAuth\n");
}

interface WorkerInfo {
  id: string;
  gcPolicy: Array<{
    all?: boolean;
    filter?: string[];
    keepDuration?: number;
    reservedSpace?: number;
    maxUsedSpace?: number;
    minFreeSpace?: number;
  }>;
}

describe("buildkitd with the generated buildkitd.toml", () => {
  it("is really parsed: the same buildkitd refuses a malformed GC value", async function () {
    this.timeout(60_000);
    const buildkitd = requireTool(
      path.join(IF_BIN, "buildkitd"),
      "build it with scripts/install-go-tools.sh buildkit",
    );
    const dir = tmpdir("buildkitd-bad-config-");
    try {
      const config = path.join(dir, "buildkitd.toml");
      fs.writeFileSync(
        config,
        renderBuildkitdToml({ port: 1234, volumeGb: 10 }).replace(
          /^ {2}maxUsedSpace = \d+$/m,
          '  maxUsedSpace = "lots"',
        ),
      );
      const r = spawnSync(
        buildkitd,
        [
          "--config",
          config,
          "--addr",
          `unix://${path.join(dir, "s.sock")}`,
          "--root",
          path.join(dir, "root"),
          "--oci-worker-net",
          "host",
        ],
        { encoding: "utf8", timeout: 30_000 },
      );
      assert.equal(
        r.status,
        1,
        `buildkitd should exit 1 on a bad config, got ${String(r.status)} (${String(r.signal)})`,
      );
      assert.match(r.stderr, /invalid disk space lots/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loads it, serves mutual TLS with its cert paths and applies its GC policy", async function () {
    this.timeout(120_000);
    const buildkitd = requireTool(
      path.join(IF_BIN, "buildkitd"),
      "build it with scripts/install-go-tools.sh buildkit",
    );
    const buildctl = requireTool(
      path.join(IF_BIN, "buildctl"),
      "build it with scripts/install-go-tools.sh buildkit",
    );
    const dir = tmpdir("buildkitd-config-");
    let daemon: ChildProcess | undefined;
    let log = "";
    try {
      const tlsDir = path.join(dir, "tls");
      fs.mkdirSync(tlsDir);
      const serverName = "image-factory-test-amd64";
      makeCerts(tlsDir, serverName);
      const root = path.join(dir, "root");
      const socket = path.join(dir, "buildkitd.sock");
      const volumeGb = 200;
      // The local rendering (scripts/render-buildkitd-toml.ts): a host's file with this machine's
      // network rule — loopback listener, no bridge — and its own paths; the unit tests pin those
      // as the only differences. Nothing is overridden on the command line: address, TLS, network
      // and GC all come from the file.
      const port = await freePort();
      const addr = `tcp://127.0.0.1:${port}`;
      const toml = renderLocalBuildkitdToml({
        dir,
        port,
        volumeGb,
        tlsDir,
        root,
        socket,
        registryCa: path.join(tlsDir, "ca.pem"),
      });
      assert.ok(toml.includes(`address = ["${addr}", "unix://${socket}"]`), toml);
      const config = path.join(dir, "buildkitd.toml");
      fs.writeFileSync(config, toml);
      daemon = spawn(buildkitd, ["--config", config], { stdio: ["ignore", "pipe", "pipe"] });
      const collect = (b: Buffer): void => {
        log = (log + b.toString()).slice(-8000);
      };
      daemon.stdout?.on("data", collect);
      daemon.stderr?.on("data", collect);
      let exited: number | null | undefined;
      daemon.on("exit", (code) => {
        exited = code;
      });

      const tlsArgs = [
        "--addr",
        addr,
        "--tlsservername",
        serverName,
        "--tlscacert",
        path.join(tlsDir, "ca.pem"),
      ];
      const clientArgs = [
        "--tlscert",
        path.join(tlsDir, "client.pem"),
        "--tlskey",
        path.join(tlsDir, "client-key.pem"),
      ];
      let workers: WorkerInfo[] | undefined;
      for (let i = 0; i < 100 && workers === undefined; i++) {
        if (exited !== undefined)
          assert.fail(`buildkitd exited with ${exited} loading the generated config:\n${log}`);
        const r = spawnSync(
          buildctl,
          [...tlsArgs, ...clientArgs, "debug", "workers", "--format", "{{json .}}"],
          { encoding: "utf8", timeout: 10_000 },
        );
        if (r.status === 0) workers = JSON.parse(r.stdout) as WorkerInfo[];
        else await new Promise((res) => setTimeout(res, 300));
      }
      assert.ok(workers !== undefined, `buildkitd did not answer over mTLS within 30 s:\n${log}`);
      assert.equal(workers.length, 1, "one OCI worker; containerd is disabled by the config");

      const gc = gcLimits(volumeGb);
      const limits = {
        reservedSpace: gc.reservedBytes,
        maxUsedSpace: gc.keepBytes,
        minFreeSpace: gc.minFreeBytes,
      };
      const policy = workers[0].gcPolicy.map((p) => ({
        all: p.all ?? false,
        filter: p.filter ?? [],
        keepDuration: p.keepDuration ?? 0,
        reservedSpace: p.reservedSpace ?? 0,
        maxUsedSpace: p.maxUsedSpace ?? 0,
        minFreeSpace: p.minFreeSpace ?? 0,
      }));
      const hours = (h: number): number => h * 3600 * 1e9;
      assert.deepEqual(policy, [
        {
          all: false,
          filter: ["type==source.local", "type==exec.cachemount", "type==source.git.checkout"],
          keepDuration: hours(48),
          reservedSpace: 0,
          maxUsedSpace: gc.transientBytes,
          minFreeSpace: 0,
        },
        { all: false, filter: [], keepDuration: hours(1440), ...limits },
        { all: false, filter: [], keepDuration: 0, ...limits },
        { all: true, filter: [], keepDuration: 0, ...limits },
      ]);

      // The `ca` path makes the TLS mutual: a client without a certificate is turned away.
      const anonymous = spawnSync(buildctl, [...tlsArgs, "debug", "workers"], {
        encoding: "utf8",
        timeout: 10_000,
      });
      assert.notEqual(anonymous.status, 0, "buildkitd accepted a client without a certificate");
    } finally {
      if (daemon?.pid !== undefined && daemon.exitCode === null) {
        daemon.kill("SIGTERM");
        await new Promise((res) => {
          const t = setTimeout(() => {
            daemon?.kill("SIGKILL");
            res(undefined);
          }, 10_000);
          daemon?.on("exit", () => {
            clearTimeout(t);
            res(undefined);
          });
        });
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
