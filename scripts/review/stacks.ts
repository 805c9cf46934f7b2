// How the review command reaches stacks: the target through scripts/local.sh (a file backend on
// this machine) or the pulumi CLI's current backend (CI), and its own review stack through
// scripts/local.sh or a file backend of its own. Every process is spawned without a shell; the
// registry token is never on a command line or in a child's environment.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type ExecResult, execTool, lastLines } from "../../evidence/exec";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

export type Ran = ExecResult;

/** execTool with this process's whole environment (plus `env`), run from the repository root. */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<Ran> {
  return execTool(cmd, args, {
    fullEnv: { ...process.env, ...(opts.env ?? {}) },
    input: opts.input ?? "",
    cwd: opts.cwd ?? REPO_ROOT,
  });
}

export function say(msg: string): void {
  process.stderr.write(`[review] ${msg}\n`);
}

/** One stack reached either through scripts/local.sh (a file backend on this machine) or through
 *  the pulumi CLI's current backend. */
export interface StackAccess {
  outputs(): Promise<Record<string, unknown> | undefined>;
  preview(): Promise<Ran>;
}

export function localAccess(
  env: NodeJS.ProcessEnv,
): StackAccess & { local(args: string[], input?: string): Promise<Ran> } {
  const local = (args: string[], input?: string): Promise<Ran> =>
    run("bash", [path.join(REPO_ROOT, "scripts", "local.sh"), ...args], {
      env: { ...env, IF_SKIP_BOOTSTRAP: "1" },
      input,
    });
  return {
    local,
    async outputs() {
      const r = await local(["outputs"]);
      if (r.code !== 0) {
        if (/no stack named|does not exist|not found/i.test(r.stderr)) return undefined;
        throw new Error(
          `scripts/local.sh outputs (stack ${env.IF_STACK}) failed: ${lastLines(r.stderr, 8)}`,
        );
      }
      return JSON.parse(r.stdout) as Record<string, unknown>;
    },
    preview: () => local(["preview", "--diff"]),
  };
}

export function serviceAccess(stack: string): StackAccess {
  return {
    async outputs() {
      const r = await run("pulumi", [
        "--cwd",
        REPO_ROOT,
        "stack",
        "output",
        "--stack",
        stack,
        "--json",
        "--non-interactive",
      ]);
      if (r.code !== 0) {
        if (/no stack named|does not exist|not found/i.test(r.stderr)) return undefined;
        throw new Error(`pulumi stack output --stack ${stack} failed: ${lastLines(r.stderr, 8)}`);
      }
      return JSON.parse(r.stdout) as Record<string, unknown>;
    },
    preview: () =>
      run("pulumi", [
        "--cwd",
        REPO_ROOT,
        "preview",
        "--stack",
        stack,
        "--diff",
        "--non-interactive",
        "--suppress-outputs",
      ]),
  };
}

/** The review build: `pulumi up --continue-on-error` of the review stack, and its state. */
export interface ReviewBuilder {
  up(): Promise<Ran>;
  exportState(): Promise<{
    deployment?: {
      resources?: Array<{ type: string; urn: string; outputs?: Record<string, unknown> }>;
    };
  }>;
}

export function localBuilder(reviewDir: string, stack: string, baseConfig: string): ReviewBuilder {
  const access = localAccess({
    IF_LOCAL_DIR: path.join(reviewDir, "local"),
    IF_STACK: stack,
    IF_STACK_CONFIG: baseConfig,
  });
  return {
    up: () => access.local(["up", "--continue-on-error"]),
    async exportState() {
      const r = await access.local(["pulumi", "stack", "export"]);
      if (r.code !== 0)
        throw new Error(
          `pulumi stack export of the review stack failed: ${lastLines(r.stderr, 8)}`,
        );
      return JSON.parse(r.stdout) as never;
    },
  };
}

/** CI: a file backend of the review's own, a random passphrase, the token from the environment.
 *  The stack and its generated config (salt, the base config, the token as a secret encrypted
 *  in-process) come from scripts/prepare-stack.ts, as for scripts/local.sh. */
export function serviceBuilder(
  reviewDir: string,
  stack: string,
  baseConfig: string,
  token: string,
): ReviewBuilder {
  const state = path.join(reviewDir, "state");
  const passphrase = path.join(reviewDir, "passphrase");
  const stacksDir = path.join(reviewDir, "stacks");
  const configFile = path.join(stacksDir, `Pulumi.${stack}.yaml`);
  const env: NodeJS.ProcessEnv = {
    PULUMI_BACKEND_URL: `file://${state}`,
    PULUMI_CONFIG_PASSPHRASE_FILE: passphrase,
    PULUMI_CONFIG_PASSPHRASE: undefined,
    PULUMI_ACCESS_TOKEN: undefined,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
  };
  const pulumi = (args: string[]): Promise<Ran> => run("pulumi", args, { env });
  const prepare = async (): Promise<void> => {
    fs.mkdirSync(state, { recursive: true });
    if (!fs.existsSync(passphrase))
      fs.writeFileSync(passphrase, crypto.randomBytes(32).toString("hex"), { mode: 0o600 });
    // prepare-stack.ts reads the token from a file (Node's stdin pipe is a socket, which
    // /dev/stdin cannot open): one of its own, mode 600, removed as soon as it is read.
    const tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), "if-review-token-"));
    const tokenFile = path.join(tokenDir, "token");
    fs.writeFileSync(tokenFile, token, { mode: 0o600 });
    const r = await run(
      process.execPath,
      [
        "-r",
        "ts-node/register/transpile-only",
        path.join(REPO_ROOT, "scripts", "prepare-stack.ts"),
        "--project-dir",
        REPO_ROOT,
        "--stack",
        stack,
        "--base-config",
        baseConfig,
        "--stacks-dir",
        stacksDir,
        "--password-file",
        tokenFile,
      ],
      { env },
    ).finally(() => fs.rmSync(tokenDir, { recursive: true, force: true }));
    if (r.code !== 0)
      throw new Error(
        `scripts/prepare-stack.ts could not prepare the review stack ${stack} (backend ${state}): ${lastLines(r.stderr, 8)}`,
      );
  };
  return {
    async up() {
      await prepare();
      return pulumi([
        "--cwd",
        REPO_ROOT,
        "up",
        "--stack",
        stack,
        "--config-file",
        configFile,
        "--yes",
        "--skip-preview",
        "--non-interactive",
        "--continue-on-error",
      ]);
    },
    async exportState() {
      const r = await pulumi(["--cwd", REPO_ROOT, "stack", "export", "--stack", stack]);
      if (r.code !== 0)
        throw new Error(
          `pulumi stack export of the review stack failed: ${lastLines(r.stderr, 8)}`,
        );
      return JSON.parse(r.stdout) as never;
    },
  };
}
