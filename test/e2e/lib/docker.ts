// The real Docker engine from end-to-end tests: BuildKit builds per platform, pushes with an
// explicit credential, containers on the host network, health and exit status, image contents.
// Always Debian's client /usr/bin/docker (20.10) with DOCKER_BUILDKIT=1: the preinstalled
// /usr/local/bin/docker (28.x) refuses BuildKit builds without a buildx plugin.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { CommandError, run, RunOptions, runOk, tail, waitFor } from "./exec";
import { STACK_REGISTRY } from "./pulumiStack";
import { RegistryAuth, localRegistryAuth } from "./registry";

export const DOCKER = "/usr/bin/docker";

/** Runs /usr/bin/docker with BuildKit on; rejects naming `what` and quoting the output on failure. */
export function docker(args: readonly string[], opts: RunOptions & { what?: string } = {}) {
  if (!fs.existsSync(DOCKER)) {
    throw new Error(`${DOCKER} is missing: run scripts/install-apt.sh (Debian docker.io)`);
  }
  return runOk(DOCKER, args, { ...opts, env: { DOCKER_BUILDKIT: "1", ...(opts.env ?? {}) } });
}

export interface TempDockerConfig {
  /** Pass as `env` to docker(): the client then uses only this credential. */
  env: NodeJS.ProcessEnv;
  dir: string;
  cleanup(): void;
}

/**
 * A throw-away DOCKER_CONFIG holding exactly one credential (or none) for `registry`, so a test can
 * push with a given (possibly wrong) password without touching the machine's login.
 */
export function tempDockerConfig(registry: string, auth?: RegistryAuth): TempDockerConfig {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-docker-config-"));
  const auths: Record<string, { auth: string }> = {};
  if (auth !== undefined) {
    auths[registry] = { auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64") };
  }
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ auths }), { mode: 0o600 });
  return {
    dir,
    env: { DOCKER_CONFIG: dir },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The environment for `docker buildx` through the user's builders (image-factory-local, ...) with
 *  a DOCKER_CONFIG of a test's own in `dir`: the factory user's login for the local TLS registry,
 *  and the user's buildx plugin (cli-plugins); the builders come from BUILDX_CONFIG. */
export function buildxEnv(dir: string): { DOCKER_CONFIG: string; BUILDX_CONFIG: string } {
  const { username, password } = localRegistryAuth();
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(
    path.join(dir, "config.json"),
    JSON.stringify({
      auths: {
        [STACK_REGISTRY]: { auth: Buffer.from(`${username}:${password}`).toString("base64") },
      },
    }),
    { mode: 0o600 },
  );
  const plugins = path.join(dir, "cli-plugins");
  if (!fs.existsSync(plugins))
    fs.symlinkSync(path.join(os.homedir(), ".docker", "cli-plugins"), plugins);
  return { DOCKER_CONFIG: dir, BUILDX_CONFIG: path.join(os.homedir(), ".docker", "buildx") };
}

export interface BuildOptions {
  context: string;
  tag: string;
  /** e.g. linux/arm/v7 */
  platform: string;
  /** Path of the Dockerfile (default: <context>/Dockerfile). */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
  /** BuildKit secrets: id → file path. */
  secrets?: Record<string, string>;
  noCache?: boolean;
  /**
   * Resolve FROM images from the registry (default true). Docker 20.10's builder otherwise
   * prefers a local image of that name even when it is another platform.
   */
  pull?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface BuildStep {
  id: string;
  name: string;
  cached: boolean;
  seconds?: number;
}

export interface BuildResult {
  tag: string;
  platform: string;
  imageId: string;
  durationMs: number;
  /** BuildKit's plain progress output. */
  log: string;
  steps: BuildStep[];
}

/** Parses BuildKit's `--progress=plain` output into steps: `#7 [deps 2/4] WORKDIR /app` … `#7 CACHED`. */
export function parseBuildSteps(log: string): BuildStep[] {
  const steps = new Map<string, BuildStep>();
  for (const line of log.split("\n")) {
    const named = /^#(\d+) (\[.+)$/.exec(line);
    if (named) {
      if (!steps.has(named[1]))
        steps.set(named[1], { id: named[1], name: named[2], cached: false });
      continue;
    }
    const status = /^#(\d+) (CACHED|DONE ([\d.]+)s)\s*$/.exec(line);
    const step = status ? steps.get(status[1]) : undefined;
    if (status && step) {
      if (status[2] === "CACHED") step.cached = true;
      else step.seconds = Number(status[3]);
    }
  }
  return [...steps.values()];
}

/** The meaningful lines of a failed build: BuildKit's `ERROR`/`error:` lines, else the tail. */
function buildErrorLines(output: string): string {
  const lines = output
    .split("\n")
    .filter((l) => /error|ERROR|failed to|not found|did not complete/.test(l));
  return (lines.length > 0 ? lines.slice(-8).join("\n") : tail(output, 12)).trim();
}

/**
 * `docker build` of one platform. Not the factory's build path (that is docker-build on buildkitd,
 * see factoryStack.ts, which the image e2e tests check): the benchmark uses it to time cold and
 * warm builds with a cache it can empty, without Pulumi's own time in the figures.
 */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const args = [
    "build",
    "--progress=plain",
    "--network",
    "host",
    "--platform",
    opts.platform,
    "-t",
    opts.tag,
  ];
  if (opts.pull ?? true) args.push("--pull");
  if (opts.noCache) args.push("--no-cache");
  if (opts.dockerfile !== undefined) args.push("-f", opts.dockerfile);
  for (const [k, v] of Object.entries(opts.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
  for (const [id, src] of Object.entries(opts.secrets ?? {}))
    args.push("--secret", `id=${id},src=${src}`);
  args.push(opts.context);
  const result = await run(DOCKER, args, { env: { DOCKER_BUILDKIT: "1", ...(opts.env ?? {}) } });
  const log = `${result.stdout}\n${result.stderr}`;
  if (result.code !== 0) {
    throw new CommandError(
      `docker build of ${opts.tag} for ${opts.platform} failed:\n${buildErrorLines(log)}`,
      result,
    );
  }
  const inspected = await inspectImage(opts.tag);
  return {
    tag: opts.tag,
    platform: opts.platform,
    imageId: inspected.Id,
    durationMs: result.durationMs,
    log,
    steps: parseBuildSteps(log),
  };
}

/** Pushes `ref`; resolves with the manifest digest the registry reported. */
export async function pushImage(ref: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await run(DOCKER, ["push", ref], {
    env: { DOCKER_BUILDKIT: "1", ...(env ?? {}) },
  });
  if (result.code !== 0) {
    throw new CommandError(
      `docker push ${ref} failed:\n${tail(`${result.stdout}\n${result.stderr}`, 4)}`,
      result,
    );
  }
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(result.stdout);
  if (!digest)
    throw new Error(`docker push ${ref}: no digest in its output:\n${tail(result.stdout)}`);
  return digest[1];
}

export interface ImageInspect {
  Id: string;
  RepoTags: string[] | null;
  Architecture: string;
  Os: string;
  Variant?: string;
  Size: number;
  Config: {
    User?: string;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    Healthcheck?: { Test?: string[] } | null;
  };
  RootFS: { Type: string; Layers: string[] };
}

export async function inspectImage(ref: string): Promise<ImageInspect> {
  const r = await docker(["image", "inspect", ref], { what: `docker image inspect ${ref}` });
  return (JSON.parse(r.stdout) as ImageInspect[])[0];
}

/** Pulls `ref` for one platform into the local store (e.g. to measure a base image's size). */
export async function pullImage(ref: string, platform: string): Promise<void> {
  await docker(["pull", "--quiet", "--platform", platform, ref], {
    what: `docker pull ${ref} (${platform})`,
  });
}

export async function removeImage(ref: string): Promise<void> {
  await run(DOCKER, ["image", "rm", "--force", ref]);
}

export interface RunContainerOptions {
  image: string;
  name: string;
  platform: string;
  env?: Record<string, string>;
  /** Replaces the image's entrypoint (e.g. to inspect its filesystem with a shell). */
  entrypoint?: string;
  args?: string[];
}

/** Starts a detached container on the host network (the network rule: no bridge, loopback only). */
export async function runContainer(opts: RunContainerOptions): Promise<string> {
  const args = ["run", "-d", "--network", "host", "--platform", opts.platform, "--name", opts.name];
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push("-e", `${k}=${v}`);
  if (opts.entrypoint !== undefined) args.push("--entrypoint", opts.entrypoint);
  args.push(opts.image, ...(opts.args ?? []));
  const r = await docker(args, { what: `docker run ${opts.image} (${opts.platform})` });
  return r.stdout.trim();
}

export interface ContainerState {
  Status: string;
  Running: boolean;
  ExitCode: number;
  Pid: number;
  StartedAt: string;
  FinishedAt: string;
  Health?: { Status: string; Log?: { ExitCode: number; Output: string }[] };
}

export async function containerState(name: string): Promise<ContainerState> {
  const r = await docker(["inspect", "--format", "{{json .State}}", name], {
    what: `docker inspect ${name}`,
  });
  return JSON.parse(r.stdout) as ContainerState;
}

export async function containerLogs(name: string): Promise<string> {
  const r = await run(DOCKER, ["logs", name]);
  return `${r.stdout}${r.stderr}`;
}

/** Waits until Docker reports the container's HEALTHCHECK `healthy`; fails early if it exits. */
export async function waitHealthy(name: string, timeoutMs: number): Promise<ContainerState> {
  return waitFor(
    `container ${name} to become healthy`,
    async () => {
      const s = await containerState(name);
      if (!s.Running) {
        throw new Error(
          `container ${name} is ${s.Status} (exit ${s.ExitCode}):\n${tail(await containerLogs(name), 10)}`,
        );
      }
      if (s.Health === undefined) throw new Error(`container ${name} has no HEALTHCHECK`);
      return s.Health.Status === "healthy" ? s : undefined;
    },
    timeoutMs,
    1000,
  ).catch(async (e: unknown) => {
    const s = await containerState(name).catch(() => undefined);
    const probes = (s?.Health?.Log ?? [])
      .map((l) => `exit ${l.ExitCode}: ${l.Output.trim()}`)
      .join("\n");
    throw new Error(`${e instanceof Error ? e.message : String(e)}\nhealth probes:\n${probes}`);
  });
}

/** The uid/gid the kernel reports for the container's main process (read on the host). */
export async function containerProcessIds(name: string): Promise<{ uid: number; gid: number }> {
  const { Pid } = await containerState(name);
  if (!Pid) throw new Error(`container ${name} has no running process`);
  const status = fs.readFileSync(`/proc/${Pid}/status`, "utf8");
  const uid = /^Uid:\s+(\d+)/m.exec(status);
  const gid = /^Gid:\s+(\d+)/m.exec(status);
  if (!uid || !gid) throw new Error(`cannot read Uid/Gid of pid ${Pid}`);
  return { uid: Number(uid[1]), gid: Number(gid[1]) };
}

/** `docker stop -t <grace>` (SIGTERM, SIGKILL after grace): how long it took and the exit code. */
export async function stopContainer(
  name: string,
  graceSeconds: number,
): Promise<{ durationMs: number; exitCode: number; oomKilled: boolean }> {
  const r = await docker(["stop", "--time", String(graceSeconds), name], {
    what: `docker stop ${name}`,
  });
  const s = await docker(
    ["inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name],
    { what: `docker inspect ${name}` },
  );
  const [code, oom] = s.stdout.trim().split(" ");
  return { durationMs: r.durationMs, exitCode: Number(code), oomKilled: oom === "true" };
}

export async function removeContainer(name: string): Promise<void> {
  await run(DOCKER, ["rm", "--force", "--volumes", name]);
}

/** Every path in an image's filesystem (`docker create` + `docker export`), without a leading "./". */
export async function imageFileList(image: string, platform: string): Promise<string[]> {
  const name = `if-export-${process.pid}-${Date.now()}`;
  await docker(["create", "--platform", platform, "--name", name, image], {
    what: `docker create ${image}`,
  });
  try {
    const r = await runOk(
      "bash",
      ["-o", "pipefail", "-c", `${DOCKER} export "$1" | tar -t`, "bash", name],
      {
        what: `docker export ${image}`,
      },
    );
    return r.stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.replace(/^\.?\//, "").replace(/\/$/, ""));
  } finally {
    await removeContainer(name);
  }
}
