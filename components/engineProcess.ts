// How the program's dynamic providers call the evidence engine: its command-line entry as a child
// process (evidence/cli.ts), the request in a 0600 temp file, the registry token (and any other
// secret, such as the signing key) written to the child's stdin — never its environment, a file or
// a command line — and scrubbed from anything that comes back. The child gets an allow-listed
// environment: the provider's own carries PULUMI_CONFIG (the stack's decrypted config) and CI
// tokens, none of which the engine needs. Only Node built-ins here: Pulumi serializes these
// functions into each provider.
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

export interface EngineRun {
  code: number;
  stdout: string;
  /** Token already scrubbed. */
  stderr: string;
}

/** The engine's entry, resolved from this file when the program loads (and serialized into each
 *  provider by value), so a program in another folder (a test's own project) finds it too. */
export const ENGINE_ENTRY = path.join(__dirname, "..", "evidence", "cli.ts");

/** The TypeScript loader every engine process starts with: Sucrase's transform, which only strips
 *  types and rewrites imports (the engine's types are checked by `npm test`, never at run time),
 *  its output cached on disk by source hash (evidence/register.js). ts-node, even transpile-only,
 *  took 0.75 s to load the engine, Sucrase's own hook 0.4 s; every `pulumi up` that builds starts
 *  six engine processes, four of them at once on its critical path. */
export const ENGINE_LOADER = path.join(__dirname, "..", "evidence", "register.js");

/** What the engine may see of the provider's environment: where things are, how to reach them,
 *  and the cloud identities only cosign's kms and keyless modes use (cosign narrows them again). */
export function engineEnv(from: NodeJS.ProcessEnv): Record<string, string> {
  const keep =
    /^(PATH|HOME|TMPDIR|LANG|LC_ALL|TZ|SSL_CERT_FILE|SSL_CERT_DIR|NODE_EXTRA_CA_CERTS|DOCKER_HOST|DOCKER_CONFIG|BUILDX_CONFIG|HTTPS?_PROXY|NO_PROXY|https?_proxy|no_proxy|IMAGE_FACTORY_CACHE|AWS_[A-Z_]+|ACTIONS_ID_TOKEN_REQUEST_(URL|TOKEN))$/;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) if (v !== undefined && keep.test(k)) env[k] = v;
  return env;
}

/** `secretEnv`: further secrets (e.g. IMAGE_FACTORY_SIGNING_KEY); like the token, handed over on
 *  stdin only, and scrubbed from the output. */
export async function runEngineProcess(
  args: string[],
  request: unknown,
  token: string | undefined,
  secretEnv: Record<string, string | undefined> = {},
): Promise<EngineRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-engine-"));
  const requestFile = path.join(dir, "request.json");
  fs.writeFileSync(requestFile, JSON.stringify(request), { mode: 0o600 });
  const extra = Object.fromEntries(Object.entries(secretEnv).map(([k, v]) => [k, v ?? ""]));
  const env = engineEnv(process.env);
  const stdin = JSON.stringify({ ...extra, IMAGE_FACTORY_REGISTRY_TOKEN: token ?? "" });
  const secrets = [token ?? "", ...Object.values(extra)].filter((s) => s !== "");
  try {
    return await new Promise<EngineRun>((resolve, reject) => {
      const p = childProcess.spawn(
        process.execPath,
        ["-r", ENGINE_LOADER, ENGINE_ENTRY, ...args, "--request", requestFile, "--secrets-stdin"],
        { env, stdio: ["pipe", "pipe", "pipe"] },
      );
      p.stdin.on("error", () => undefined);
      p.stdin.end(stdin);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout.on("data", (d: Buffer) => out.push(d));
      p.stderr.on("data", (d: Buffer) => err.push(d));
      p.on("error", reject);
      p.on("close", (code) => {
        const scrub = (s: string): string =>
          secrets.reduce((acc, x) => acc.split(x).join("***"), s);
        resolve({
          code: code ?? 1,
          stdout: scrub(Buffer.concat(out).toString("utf8")),
          stderr: scrub(Buffer.concat(err).toString("utf8")),
        });
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

/** sha256 of `inputs` without the `omit` keys (the token, and what only says where the engine
 *  is), object keys sorted at every depth: what decides whether an engine step runs again. */
export function inputsFingerprint(inputs: object, omit: readonly string[]): string {
  const rest: Record<string, unknown> = { ...inputs };
  for (const k of omit) delete rest[k];
  const stable = (v: unknown): string =>
    Array.isArray(v)
      ? `[${v.map(stable).join(",")}]`
      : v !== null && typeof v === "object"
        ? `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
            .join(",")}}`
        : (JSON.stringify(v) ?? "null");
  return crypto.createHash("sha256").update(stable(rest)).digest("hex");
}

/** The dynamic provider every engine step uses: create and update run the step; it reruns only
 *  when `fingerprint` of the new inputs differs from the one stored in the outputs; delete keeps
 *  what was published (evidence, tags and signatures are audit records, not a deploy's to remove). */
export function engineStepProvider<I>(
  run: (inputs: I) => Promise<pulumi.dynamic.CreateResult>,
  fingerprint: (inputs: I) => string,
): pulumi.dynamic.ResourceProvider {
  return {
    create: (inputs: I) => run(inputs),
    diff: async (_id: string, olds: { fingerprint?: string }, news: I) => ({
      changes: olds.fingerprint !== fingerprint(news),
      replaces: [],
      deleteBeforeReplace: false,
    }),
    update: async (_id: string, _olds: unknown, news: I) => ({ outs: (await run(news)).outs }),
    delete: async () => undefined,
  };
}
