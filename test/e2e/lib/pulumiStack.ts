// Real Pulumi stacks for end-to-end tests: each test gets its own file backend, passphrase and
// stack config in a temp directory and drives the stack through scripts/local.sh — the same path
// `npm run local` takes — so the tests prove the command users run, not a copy of it.
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parse, stringify } from "yaml";
import { REPO_ROOT, run, RunResult, tail } from "./exec";
import { cacheDir } from "./registry";

/** The local stack's registry: the TLS twin (scripts/registry-tls.sh) of 127.0.0.1:5000, which the
 *  tests read back through (same storage, plain HTTP). */
export const STACK_REGISTRY = "127.0.0.1:5443";

/** Pinned tools the local stack needs, by the name scripts/install-go-tools.sh links into $IF_BIN. */
export const LOCAL_STACK_TOOLS = [
  "pulumi",
  "pulumi-language-nodejs",
  "pulumi-language-nodejs-upstream",
  "buildkitd",
  "buildctl",
  "docker-buildx",
];

export function toolPath(name: string): string {
  return path.join(cacheDir(), "bin", name);
}

/** Fails (never skips) with the missing tools and the command that installs them. */
export function requireLocalStackTools(): void {
  const missing = LOCAL_STACK_TOOLS.filter((t) => !fs.existsSync(toolPath(t)));
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(", ")} in ${path.join(cacheDir(), "bin")}: run scripts/install-go-tools.sh (see its log in ${path.join(cacheDir(), "logs")})`,
    );
  }
  const plugin = path.join(
    process.env.PULUMI_HOME ?? path.join(os.homedir(), ".pulumi"),
    "plugins",
    "resource-docker-build-v0.0.22",
    "pulumi-resource-docker-build",
  );
  if (!fs.existsSync(plugin))
    throw new Error(
      `docker-build provider plugin ${plugin} is not installed: run scripts/install-go-tools.sh docker-build`,
    );
}

/** A scratch Pulumi TypeScript project of a test's own, with a file backend and a passphrase in
 *  `env` (to run the CLI with, on top of or instead of process.env). It lives inside the repository
 *  (.local/) so that its program resolves @pulumi/pulumi, ts-node and the components from the
 *  repository's node_modules. Fails (never skips) when the Pulumi CLI or its Node.js hosts are
 *  missing; `index.ts` is the caller's to write. */
export function scratchPulumiProject(name: string): { dir: string; env: NodeJS.ProcessEnv } {
  const tools = ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"];
  const missing = tools.filter((t) => !fs.existsSync(toolPath(t)));
  if (missing.length > 0)
    throw new Error(
      `missing ${missing.join(", ")} in ${path.join(cacheDir(), "bin")}: run scripts/install-go-tools.sh pulumi language-nodejs`,
    );
  fs.mkdirSync(path.join(REPO_ROOT, ".local"), { recursive: true });
  const dir = fs.mkdtempSync(path.join(REPO_ROOT, ".local", `${name}-`));
  fs.mkdirSync(path.join(dir, "state"));
  fs.writeFileSync(
    path.join(dir, "Pulumi.yaml"),
    `name: ${name}\nruntime:\n  name: nodejs\n  options:\n    typescript: true\n`,
  );
  fs.writeFileSync(
    path.join(dir, "package.json"),
    JSON.stringify({ name, private: true, main: "index.ts" }),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: `${path.join(cacheDir(), "bin")}${path.delimiter}${process.env.PATH ?? ""}`,
    HOME: os.homedir(),
    PULUMI_HOME: path.join(dir, ".pulumi-home"),
    PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: crypto.randomBytes(16).toString("hex"),
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_SKIP_UPDATE_CHECK: "true",
  };
  return { dir, env };
}

let bootstrapped: Promise<void> | undefined;
/** scripts/bootstrap.sh once per test process: every install and local service, idempotently. */
export function bootstrapOnce(): Promise<void> {
  bootstrapped ??= run("bash", [path.join(REPO_ROOT, "scripts", "bootstrap.sh")], {
    env: { CI: "true" },
  }).then((r) => {
    if (r.code !== 0)
      throw new Error(
        `scripts/bootstrap.sh failed (exit ${r.code}):\n${tail(`${r.stdout}\n${r.stderr}`, 30)}`,
      );
  });
  return bootstrapped;
}

/** The committed local stack settings (Pulumi.local.yaml), for a test stack to start from. */
export function localStackConfig(): Record<string, unknown> {
  const doc = parse(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.local.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  return { ...doc.config };
}

/** The commit the tests pin their stacks to: a commit landing mid-run must not change the tags. */
export async function headSha(): Promise<string> {
  const r = await run("git", ["-C", REPO_ROOT, "rev-parse", "HEAD"]);
  const sha = r.stdout.trim();
  if (r.code !== 0 || !/^[0-9a-f]{40}$/.test(sha))
    throw new Error(`git rev-parse HEAD in ${REPO_ROOT} failed: ${tail(r.stderr)}`);
  return sha;
}

/** Copies app/ (sources, manifests, Dockerfile; no node_modules or build output) to `dest`. */
export function copyApp(dest: string): string {
  const src = path.join(REPO_ROOT, "app");
  const skip = new Set(["node_modules", "dist", "coverage", ".nyc_output"]);
  fs.cpSync(src, dest, {
    recursive: true,
    filter: (p) => !skip.has(path.basename(p)) || path.dirname(p) !== src,
  });
  return dest;
}

export interface PreviewStep {
  op: string;
  urn: string;
  newState?: { type?: string };
  oldState?: { type?: string };
}

export interface PreviewResult {
  steps?: PreviewStep[];
  changeSummary?: Record<string, number>;
  diagnostics?: { message?: string; severity?: string }[];
}

/** Resource type from a URN: `urn:pulumi:stack::project::parent$type::name` → `type`. */
export function urnType(urn: string): string {
  const typePart = urn.split("::")[2] ?? "";
  return typePart.split("$").pop() ?? typePart;
}

/** One stack in its own temp directory (backend, passphrase, config), run through scripts/local.sh. */
/** Where test stacks and their app copies live: inside the repository (.local/, ignored by git),
 *  because the program refuses an appPath outside the repository. */
export function e2eRoot(): string {
  const dir = path.join(REPO_ROOT, ".local", "e2e");
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export class TestStack {
  /** Everything each command printed, to check what reached the logs. */
  public readonly logs: string[] = [];
  public readonly dir: string;
  public readonly configFile: string;

  constructor(
    public readonly stack: string,
    config: Record<string, unknown>,
    dir?: string,
  ) {
    this.dir = dir ?? fs.mkdtempSync(path.join(e2eRoot(), `if-${stack}-`));
    fs.mkdirSync(this.dir, { recursive: true });
    this.configFile = path.join(this.dir, `Pulumi.${stack}.base.yaml`);
    this.setConfig(config);
  }

  setConfig(config: Record<string, unknown>): void {
    fs.writeFileSync(this.configFile, stringify({ config }));
  }

  get localDir(): string {
    return path.join(this.dir, "local");
  }

  env(): NodeJS.ProcessEnv {
    return {
      CI: "true",
      IF_LOCAL_DIR: this.localDir,
      IF_STACK: this.stack,
      IF_STACK_CONFIG: this.configFile,
      IF_SKIP_BOOTSTRAP: "1",
    };
  }

  /** scripts/local.sh with this stack's environment; output kept in `logs`. */
  async local(args: readonly string[], input?: string): Promise<RunResult> {
    const r = await run("bash", [path.join(REPO_ROOT, "scripts", "local.sh"), ...args], {
      env: this.env(),
      timeoutMs: 60 * 60_000,
      input,
    });
    this.logs.push(r.stdout, r.stderr);
    return r;
  }

  async localOk(args: readonly string[]): Promise<RunResult> {
    const r = await this.local(args);
    if (r.code !== 0) {
      throw new Error(
        `scripts/local.sh ${args.join(" ")} on stack ${this.stack} failed (exit ${r.code}):\n${tail(`${r.stdout}\n${r.stderr}`, 40)}`,
      );
    }
    return r;
  }

  async up(): Promise<RunResult> {
    return this.localOk(["up"]);
  }

  /** The config file scripts/local.sh generates for this stack before every command (salt +
   *  settings + token secret), through scripts/prepare-stack.ts and the Automation API: the stack
   *  is created or selected there, so TestStack has no stack or salt handling of its own. */
  get generatedConfigFile(): string {
    return path.join(this.localDir, "stacks", `Pulumi.${this.stack}.yaml`);
  }

  /**
   * `pulumi up` through scripts/local.sh with one config key replaced by a secret, e.g. a wrong
   * registry token; resolves with the result whatever the exit code. local.sh regenerates its config file
   * with the real token before every command, so the override goes into a copy of that file,
   * passed as a second --config-file: the pulumi CLI keeps the last value of a repeated flag.
   * The value travels on stdin, never on a command line.
   */
  async upWithSecret(key: string, value: string): Promise<RunResult> {
    await this.localOk(["pulumi", "stack", "ls"]);
    const override = path.join(this.dir, `Pulumi.${this.stack}.override.yaml`);
    fs.copyFileSync(this.generatedConfigFile, override);
    fs.chmodSync(override, 0o600);
    const secure = (): unknown =>
      (parse(fs.readFileSync(override, "utf8")) as { config?: Record<string, { secure?: string }> })
        .config?.[key]?.secure;
    const copied = secure();
    const set = await this.local(
      ["pulumi", "config", "set", "--secret", key, "--config-file", override],
      value,
    );
    if (set.code !== 0)
      throw new Error(
        `pulumi config set --secret ${key} on stack ${this.stack} failed (exit ${set.code}): ${tail(set.stderr)}`,
      );
    // Had the first --config-file won, the copy would still hold the ciphertext it was copied with.
    if (secure() === undefined || secure() === copied) {
      throw new Error(
        `the ${key} override did not reach ${override}: pulumi no longer lets a later --config-file win`,
      );
    }
    return this.local([
      "pulumi",
      "up",
      "--yes",
      "--skip-preview",
      "--non-interactive",
      "--config-file",
      override,
    ]);
  }

  async outputs<T = Record<string, unknown>>(): Promise<T> {
    const r = await this.localOk(["outputs"]);
    return JSON.parse(r.stdout) as T;
  }

  async preview(): Promise<PreviewResult> {
    const r = await this.local(["preview", "--json"]);
    let parsed: PreviewResult;
    try {
      parsed = JSON.parse(r.stdout) as PreviewResult;
    } catch {
      throw new Error(
        `pulumi preview --json on stack ${this.stack} printed no JSON (exit ${r.code}):\n${tail(`${r.stdout}\n${r.stderr}`, 40)}`,
      );
    }
    if (r.code !== 0) {
      const errors = (parsed.diagnostics ?? [])
        .filter((d) => d.severity === "error")
        .map((d) => d.message ?? "");
      throw new Error(
        `pulumi preview on stack ${this.stack} failed (exit ${r.code}): ${errors.join("\n") || tail(r.stderr)}`,
      );
    }
    return parsed;
  }

  /** The stack's checkpoint as `pulumi stack export` prints it (secrets stay encrypted). */
  async exportState(): Promise<{ deployment: { resources?: { urn: string; type: string }[] } }> {
    const r = await this.localOk(["pulumi", "stack", "export"]);
    return JSON.parse(r.stdout) as { deployment: { resources?: { urn: string; type: string }[] } };
  }

  /** Every file under the stack's backend directory, as text (to search for leaked secrets). */
  stateFiles(): { file: string; text: string }[] {
    const out: { file: string; text: string }[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) out.push({ file: p, text: fs.readFileSync(p).toString("utf8") });
      }
    };
    walk(path.join(this.localDir, "state"));
    return out;
  }

  /** Removes the stack's folder and the evidence (SBOMs, reports) its program wrote. */
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
    // SupplyChainEvidence writes to `.local/evidence/<stack>` under the project directory.
    fs.rmSync(path.join(REPO_ROOT, ".local", "evidence", this.stack), {
      recursive: true,
      force: true,
    });
  }
}

/** Build records BuildKit keeps (`buildctl debug histories`), to show a command built nothing. */
export async function buildkitHistory(): Promise<string[]> {
  const env = await run("bash", [path.join(REPO_ROOT, "scripts", "buildkit.sh"), "env"]);
  if (env.code !== 0) throw new Error(`scripts/buildkit.sh env failed: ${tail(env.stderr)}`);
  const vars = Object.fromEntries(
    env.stdout
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  ) as Record<string, string>;
  const r = await run(toolPath("buildctl"), [
    "--addr",
    vars.BUILDKIT_HOST,
    "--tlsservername",
    vars.BUILDKIT_TLS_SERVER_NAME,
    "--tlscacert",
    vars.BUILDKIT_TLS_CA,
    "--tlscert",
    vars.BUILDKIT_TLS_CERT,
    "--tlskey",
    vars.BUILDKIT_TLS_KEY,
    "debug",
    "histories",
    "--format",
    "{{.Record.Ref}}",
  ]);
  if (r.code !== 0)
    throw new Error(`buildctl debug histories failed (exit ${r.code}): ${tail(r.stderr)}`);
  return r.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && l !== "<no value>");
}

/** Where a secret shows up in `texts` (as itself, base64, or in a basic-auth pair); [] when nowhere. */
export function findSecret(
  secret: string,
  username: string,
  texts: { name: string; text: string }[],
): string[] {
  const needles = [
    secret,
    Buffer.from(secret).toString("base64"),
    Buffer.from(`${username}:${secret}`).toString("base64"),
  ];
  return texts.filter((t) => needles.some((n) => t.text.includes(n))).map((t) => t.name);
}

/** Stacks of one file backend, as dev and prod share one in real use (a promoting stack reads its
 *  source through a StackReference): each stack has its own folder and config under `root`, its
 *  `IF_LOCAL_DIR` a link to the one backend. */
export class SharedBackend {
  readonly root: string;

  constructor(prefix: string) {
    this.root = fs.mkdtempSync(path.join(e2eRoot(), `if-${prefix}-`));
    fs.mkdirSync(path.join(this.root, "backend"));
  }

  stack(name: string, config: Record<string, unknown>): TestStack {
    const s = new TestStack(name, config, path.join(this.root, name));
    fs.rmSync(s.localDir, { recursive: true, force: true });
    fs.symlinkSync(path.join(this.root, "backend"), s.localDir);
    return s;
  }

  /** Removes the backend and every stack folder, unless IF_E2E_KEEP=1. */
  remove(): void {
    if (process.env.IF_E2E_KEEP !== "1") fs.rmSync(this.root, { recursive: true, force: true });
  }
}
