// How the program's dynamic providers call the evidence engine: its command-line entry as a child
// process (evidence/cli.ts), the request in a 0600 temp file, the registry token (and any other
// secret, such as the signing key) only in the child's environment, each scrubbed from anything
// that comes back. Only Node built-ins here:
// Pulumi serializes these functions into each provider.
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface EngineRun {
  code: number;
  stdout: string;
  /** Token already scrubbed. */
  stderr: string;
}

/** The engine's entry relative to the program directory (the cwd of program and providers). */
export const ENGINE_ENTRY = path.join("evidence", "cli.ts");

/** `secretEnv`: further secrets for the child's environment only (e.g. IMAGE_FACTORY_SIGNING_KEY);
 *  like the token, never in the request file or on the command line, and scrubbed from its output. */
export async function runEngineProcess(args: string[], request: unknown, token: string | undefined, secretEnv: Record<string, string | undefined> = {}): Promise<EngineRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-engine-"));
  const requestFile = path.join(dir, "request.json");
  fs.writeFileSync(requestFile, JSON.stringify(request), { mode: 0o600 });
  // Transpile only: the program and the tests type-check the engine; doing it again per run costs seconds.
  const extra = Object.fromEntries(Object.entries(secretEnv).map(([k, v]) => [k, v ?? ""]));
  const env = { ...process.env, ...extra, IMAGE_FACTORY_REGISTRY_TOKEN: token ?? "", TS_NODE_TRANSPILE_ONLY: "true" };
  const secrets = [token ?? "", ...Object.values(extra)].filter((s) => s !== "");
  try {
    return await new Promise<EngineRun>((resolve, reject) => {
      const p = childProcess.spawn(process.execPath, ["-r", "ts-node/register", ENGINE_ENTRY, ...args, "--request", requestFile], { env, stdio: ["ignore", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout.on("data", (d: Buffer) => out.push(d));
      p.stderr.on("data", (d: Buffer) => err.push(d));
      p.on("error", reject);
      p.on("close", (code) => {
        const scrub = (s: string): string => secrets.reduce((acc, x) => acc.split(x).join("***"), s);
        resolve({ code: code ?? 1, stdout: scrub(Buffer.concat(out).toString("utf8")), stderr: scrub(Buffer.concat(err).toString("utf8")) });
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Last lines of the engine's stderr, for an error message. */
export function engineTail(run: EngineRun, n = 6): string {
  return run.stderr.trim().split("\n").slice(-n).join("\n");
}
