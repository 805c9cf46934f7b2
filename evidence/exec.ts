// The one process runner of the evidence engine (and of the e2e helpers): no shell, output
// captured, a deadline, secrets scrubbed from anything returned, and an allow-listed environment.
// A scanner never inherits the job's environment: Pulumi, GitHub and AWS tokens that a CI job
// holds must not reach Syft, Trivy, Dive or Hadolint.
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type Tool = "syft" | "trivy" | "hadolint" | "dive" | "docker" | "crane" | "cosign";

/** Variables a tool may see from the caller's environment; everything else is dropped. */
export const ENV_ALLOW_LIST = [
  "PATH",
  "HOME",
  "TMPDIR",
  "LANG",
  "LC_ALL",
  "TZ",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "NODE_EXTRA_CA_CERTS",
  "DOCKER_HOST",
  "HTTPS_PROXY",
  "HTTP_PROXY",
  "NO_PROXY",
  "https_proxy",
  "http_proxy",
  "no_proxy",
  "IMAGE_FACTORY_CACHE",
] as const;

/** The environment a tool runs with: the allow-listed variables of `from`, then `extra`. */
export function toolEnv(
  extra: Record<string, string> = {},
  from: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ENV_ALLOW_LIST) {
    const v = from[k];
    if (v !== undefined) env[k] = v;
  }
  return { ...env, ...extra };
}

/** Where the project's install scripts put binaries (scripts/lib.sh: $IF_BIN). */
export function toolBinDir(): string {
  return path.join(
    process.env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory"),
    "bin",
  );
}

/** Absolute path of a tool: $IF_BIN first (pinned installs), then PATH. Docker is Debian's
 *  /usr/bin/docker (the 28.x client in /usr/local/bin refuses BuildKit without buildx). */
export function findTool(tool: Tool): string | undefined {
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

export function requireTool(tool: Tool): string {
  const found = findTool(tool);
  if (found === undefined) {
    const hint =
      tool === "docker"
        ? "run scripts/engine.sh"
        : tool === "crane" || tool === "cosign"
          ? "run scripts/install-go-tools.sh"
          : "run scripts/install-scanners.sh";
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

export interface ExecOptions {
  /** Added to the allow-listed environment (see toolEnv). */
  env?: Record<string, string>;
  /** Replaces the environment entirely (the e2e helpers, which run the project's own scripts). */
  fullEnv?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  /** Strings replaced by *** in anything returned, so a tool echoing a credential cannot carry
   *  it into an error message or the state. */
  redact?: string[];
  /** Written to stdin, then stdin is closed (keeps secrets off command lines). */
  input?: string;
}

/** Runs a command without a shell and resolves whatever its exit code. */
export function execTool(
  file: string,
  args: string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = childProcess.spawn(file, args, {
      cwd: opts.cwd,
      env: opts.fullEnv ?? toolEnv(opts.env),
      stdio: [opts.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    // A command may exit without reading its stdin; that EPIPE is not the command's failure.
    child.stdin?.on("error", () => undefined);
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs)
        : undefined;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${path.basename(file)} could not start: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const scrub = (s: string): string =>
        (opts.redact ?? []).filter((r) => r !== "").reduce((acc, r) => acc.split(r).join("***"), s);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: scrub(Buffer.concat(out).toString("utf8")),
        stderr:
          scrub(Buffer.concat(err).toString("utf8")) +
          (signal
            ? `\n(killed by ${signal}${opts.timeoutMs ? ` after ${opts.timeoutMs} ms` : ""})`
            : ""),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}

/** The last `n` non-empty lines, for error messages. */
export function lastLines(s: string, n = 8): string {
  return s
    .split("\n")
    .filter((l) => l.trim() !== "")
    .slice(-n)
    .join("\n");
}

/** `r` when the command succeeded; otherwise an error that starts with `failure` (what failed, on
 *  what) and adds the exit code and the output's last lines. */
export function mustSucceed(r: ExecResult, failure: string): ExecResult {
  if (r.code !== 0)
    throw new Error(`${failure}, exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  return r;
}

export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs `fn` over `items`, at most `limit` at a time, results in order. */
export async function mapLimit<T, R>(
  items: T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
