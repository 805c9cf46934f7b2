// Running real commands for end-to-end tests and benchmarks: output captured, time measured, and
// failures turned into errors that name the command and quote the end of its output.
import { execTool, lastLines } from "../../../evidence/exec";
import * as dotenv from "dotenv";
import * as fs from "fs";
import * as path from "path";

export interface RunOptions {
  cwd?: string;
  /** Added to (not replacing) the current environment. */
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin, then stdin is closed (keeps secrets off the command line). */
  input?: string;
  /** Kill the command after this many milliseconds (default: 30 minutes). */
  timeoutMs?: number;
}

export interface RunResult {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export class CommandError extends Error {
  constructor(
    message: string,
    public readonly result: RunResult,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

/** The repository root (test/e2e/lib is three levels below it). */
export const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");

/** scripts/versions.env, the one place every tool version is pinned, as dotenv reads it (the
 *  components read it the same way). */
export function pinnedVersions(): Record<string, string> {
  return dotenv.parse(fs.readFileSync(path.join(REPO_ROOT, "scripts", "versions.env")));
}

/** One pin of scripts/versions.env; a missing one is an error naming it. */
export function versionsEnv(key: string): string {
  const v = pinnedVersions()[key];
  if (v === undefined) throw new Error(`${key} is not set in scripts/versions.env`);
  return v;
}

/** A name part unique to this test run (time and process), so that runs never share a repository
 *  or a stack. */
export function newRunId(): string {
  return `${Date.now().toString(36)}${process.pid.toString(36)}`;
}

/** The last `lines` non-empty lines of a command's output, for error messages. */
export function tail(text: string, lines = 15): string {
  return lastLines(text, lines);
}

/** Runs a command and resolves with its result whatever its exit code: the evidence engine's one
 *  process runner (evidence/exec.ts), with the caller's whole environment plus `env` (tests run the
 *  project's own scripts, which need it) and a 30-minute default deadline. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const command = [cmd, ...args].join(" ");
  const r = await execTool(cmd, [...args], {
    cwd: opts.cwd,
    fullEnv: { ...process.env, ...(opts.env ?? {}) },
    input: opts.input ?? "",
    timeoutMs: opts.timeoutMs ?? 30 * 60_000,
  }).catch((e: unknown) => {
    throw new Error(`cannot start '${cmd}': ${e instanceof Error ? e.message : String(e)}`);
  });
  return {
    command,
    code: r.code,
    stdout: r.stdout,
    stderr: r.stderr,
    durationMs: r.seconds * 1000,
  };
}

/** Runs a command and rejects with a CommandError (naming `what`) when it exits non-zero. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  opts: RunOptions & { what?: string } = {},
): Promise<RunResult> {
  const result = await run(cmd, args, opts);
  if (result.code !== 0) {
    const what = opts.what ?? `'${result.command}'`;
    const output = tail(`${result.stdout}\n${result.stderr}`);
    throw new CommandError(`${what} failed (exit ${result.code}):\n${output}`, result);
  }
  return result;
}

/** Runs one of the repository's bash scripts (scripts/<name>), failing with its output. */
export function runScript(
  name: string,
  args: readonly string[] = [],
  opts: RunOptions = {},
): Promise<RunResult> {
  return runOk("bash", [path.join(REPO_ROOT, "scripts", name), ...args], {
    ...opts,
    env: { CI: "true", ...(opts.env ?? {}) },
    what: `scripts/${name}`,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
      );
    }
    await sleep(intervalMs);
  }
}
