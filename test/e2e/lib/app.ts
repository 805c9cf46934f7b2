// The app/ service as a build input: a private copy of its build context (so a test can change a
// source file without touching the repository), its build arguments and its platforms.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ContainerState, runContainer, waitHealthy } from "./docker";
import { REPO_ROOT, waitFor } from "./exec";
import { freePort, httpGet, HttpResult } from "./http";
import { CA_BUNDLE } from "./stack";

export const APP_DIR = path.join(REPO_ROOT, "app");
export const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"] as const;
export type AppPlatform = (typeof PLATFORMS)[number];

/** linux/arm/v7 → arm-v7: usable in tags and container names. */
export function platformSlug(platform: string): string {
  return platform.replace(/^linux\//, "").replace(/\//g, "-");
}

const NOT_CONTEXT = new Set(["node_modules", "dist", "coverage", ".nyc_output"]);

/** Copies app/ (without installed or generated folders) into a new temporary directory. */
export function copyAppContext(prefix = "if-app-ctx-"): string {
  if (!fs.existsSync(path.join(APP_DIR, "Dockerfile"))) {
    throw new Error(`${APP_DIR}/Dockerfile is missing: the app image cannot be built`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.cpSync(APP_DIR, dir, {
    recursive: true,
    filter: (src) => !NOT_CONTEXT.has(path.basename(src)) || path.dirname(src) !== APP_DIR,
  });
  return dir;
}

/** The source file a "source-only change" touches: the first non-test .ts file under src/. */
export function appSourceFile(context: string): string {
  const src = path.join(context, "src");
  const file = fs
    .readdirSync(src)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !f.endsWith(".test.ts"))
    .sort()[0];
  if (file === undefined) throw new Error(`no .ts source file in ${src}`);
  return path.join(src, file);
}

/** A real code change (not a comment, which tsc could drop): appends an exported constant. */
export function touchAppSource(context: string, marker: string = String(Date.now())): string {
  const file = appSourceFile(context);
  fs.appendFileSync(
    file,
    `\nexport const touchedByImageFactoryTests = ${JSON.stringify(marker)};\n`,
  );
  return file;
}

/** devDependencies of app/package.json: none of them may be in the runtime image. */
export function appDevDependencies(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(APP_DIR, "package.json"), "utf8")) as {
    devDependencies?: Record<string, string>;
  };
  return Object.keys(pkg.devDependencies ?? {});
}

/** The Node version the offline base pins for a platform (scripts/base/versions.env; arm/v7 stops at 20.x). */
export function baseNodeVersion(platform: string): string {
  const file = path.join(REPO_ROOT, "scripts", "base", "versions.env");
  const key = platform === "linux/arm/v7" ? "BASE_NODE_ARMV7_VERSION" : "BASE_NODE_VERSION";
  const m = new RegExp(`^${key}=([0-9][^\\s]*)$`, "m").exec(fs.readFileSync(file, "utf8"));
  if (m === null) throw new Error(`${file} has no ${key}=<version> line`);
  return m[1];
}

export function appBuildArgs(baseImage: string, version = "0.0.0-e2e"): Record<string, string> {
  return {
    BASE_IMAGE: baseImage,
    VERSION: version,
    REVISION: "0000000000000000000000000000000000000000",
    // Fixed, so that builds compare layer for layer; the label is metadata, not a layer.
    CREATED: "2026-01-01T00:00:00Z",
    SOURCE: "https://github.com/acme/image-factory",
  };
}

export const APP_SECRETS: Record<string, string> = { npm_ca: CA_BUNDLE };

export interface RunningApp {
  name: string;
  port: number;
  /** The first 200 answer of GET /health. */
  health: HttpResult;
  state: ContainerState;
}

/**
 * Runs the app image on the host network on a free loopback port (HOST=127.0.0.1), then waits for
 * GET /health to answer 200 and for Docker to report the HEALTHCHECK healthy. Emulated platforms
 * start slowly, hence the generous default timeout. The caller removes the container.
 */
export async function runAppContainer(opts: {
  image: string;
  platform: string;
  name: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}): Promise<RunningApp> {
  const port = await freePort();
  const timeoutMs = opts.timeoutMs ?? 180_000;
  await runContainer({
    image: opts.image,
    name: opts.name,
    platform: opts.platform,
    env: { ...(opts.env ?? {}), PORT: String(port), HOST: "127.0.0.1" },
  });
  const health = await waitFor(
    `GET /health on 127.0.0.1:${port} (${opts.name}, ${opts.platform})`,
    async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/health`);
      return r.status === 200 ? r : undefined;
    },
    timeoutMs,
  );
  const state = await waitHealthy(opts.name, timeoutMs);
  return { name: opts.name, port, health, state };
}
