// What an image says about where it came from: OCI labels, reproducible timestamps and the
// provenance's build identifiers, derived from the validated config alone (nothing is created).
import * as fs from "node:fs";
import * as path from "node:path";
import type { ValidatedConfig } from "./config";
import type { TagPlan } from "./tags";

/** The Dockerfile's `ARG BASE_IMAGE=` default: what the build resolves when `baseImage` is unset. */
export function dockerfileBaseImage(appPath: string): string {
  const text = fs.readFileSync(path.join(appPath, "Dockerfile"), "utf8");
  const m = /^\s*ARG\s+BASE_IMAGE=(\S+)/m.exec(text);
  if (m === null)
    throw new Error(
      `${path.join(appPath, "Dockerfile")} has no ARG BASE_IMAGE=<default>; set image-factory:baseImage so provenance can name the base image`,
    );
  return m[1];
}

/** A CI run's URL, else `<stack>/<program start>`: the provenance's invocationId. */
export function invocationId(
  stack: string,
  startedOn: string,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const {
    GITHUB_SERVER_URL: server,
    GITHUB_REPOSITORY: repo,
    GITHUB_RUN_ID: run,
    GITHUB_RUN_ATTEMPT: attempt,
  } = env;
  return server && repo && run
    ? `${server}/${repo}/actions/runs/${run}/attempts/${attempt ?? "1"}`
    : `${stack}/${startedOn}`;
}

/** SOURCE_DATE_EPOCH from the commit time: BuildKit stamps the image config and history with it. */
export function sourceDateEpoch(created: string): string {
  const t = Date.parse(created);
  return Number.isNaN(t) ? "0" : String(Math.floor(t / 1000));
}

/** OCI labels from the git context: the image says where it came from without the registry. */
export function ociLabels(
  cfg: Pick<ValidatedConfig, "github" | "imageName" | "git">,
  plan: TagPlan,
): Record<string, string> {
  const source = cfg.github
    ? `https://github.com/${cfg.github.owner}/${cfg.github.repository}`
    : cfg.imageName;
  return {
    "org.opencontainers.image.title": cfg.imageName.split("/").pop() ?? cfg.imageName,
    "org.opencontainers.image.source": source,
    "org.opencontainers.image.revision": cfg.git.sha,
    "org.opencontainers.image.version": plan.version,
    "org.opencontainers.image.created": cfg.git.created,
    "org.opencontainers.image.ref.name": cfg.git.ref,
  };
}
