// Registry credentials as the evidence engine holds them, and the one way they reach a tool: a
// private Docker config (never a command line, a log or an output).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isLoopbackRegistry } from "../reference";

/** Registry access for the scanners. The password is handed to tools through their environment
 *  (or a private temp config file for Docker), never on a command line, in a log or an output. */
export interface RegistryAuth {
  /** Host[:port], e.g. `127.0.0.1:5000`, `ghcr.io`. */
  registry: string;
  username?: string;
  password?: string;
  /** Plain HTTP (the local registry). @default true for loopback hosts */
  insecure?: boolean;
  /** Hosts besides the registry itself allowed to issue bearer tokens (e.g. `auth.docker.io`). */
  authHosts?: string[];
}

export function insecureOf(auth: RegistryAuth | undefined): boolean {
  return auth?.insecure ?? (auth ? isLoopbackRegistry(auth.registry) : false);
}

/** A throwaway Docker client config holding only this registry's credentials (mode 600, deleted
 *  after use), so the password is never on a command line and the user's config is untouched. */
export function withDockerConfig<T>(
  auth: RegistryAuth | undefined,
  fn: (env: Record<string, string>) => Promise<T>,
): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-docker-"));
  fs.chmodSync(dir, 0o700);
  const auths: Record<string, { auth: string }> = {};
  if (auth?.username !== undefined && auth.password !== undefined) {
    auths[auth.registry] = {
      auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64"),
    };
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ auths }), { mode: 0o600 });
  return fn({ DOCKER_CONFIG: dir }).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
}
