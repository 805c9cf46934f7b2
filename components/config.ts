// Reads, decodes and collects: the whole `image-factory` namespace is read here and every problem
// gathered at once, each validator living beside what it validates (the image, the cache, the
// build hosts, GitHub, signing, gates). index.ts calls `validateConfig` before it registers a single
// resource, so bad input never half-creates a stack.
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  type BuildHostsConfig,
  type CacheConfig,
  type GatesConfig,
  type GitContext,
  type GithubConfig,
  type Platform,
} from "./types";
import { validateCache } from "./buildCache";
import { BUILD_HOSTS_SHAPE, buildHostsConfig, buildHostsProblems } from "./buildHosts/rules";
import { validateGithub } from "./ghcrPackage";
import { DEFAULT_GATES, validateGates } from "../evidence/gates";
import { STACK_NAME } from "./reference";
import { validateImageName, validatePlatforms } from "./multiPlatformImage";
import { appPathProblems, npmCaFileProblems, readDockerfileProblems } from "./buildContext";
import { resolveGit } from "./gitContext";
import { type SigningConfig, validateSigningConfig } from "./signingConfig";

export { appPathProblems, npmCaFileProblems, readDockerfileProblems } from "./buildContext";
export { localGitContext, resolveGit } from "./gitContext";
export { type SigningConfig, validateSigningConfig } from "./signingConfig";
export { validateImageName, validatePlatforms } from "./multiPlatformImage";

export const NAMESPACE = "image-factory";

/** Every key the factory reads. Anything else in the namespace is a typo and is refused. */
export const CONFIG_KEYS = [
  "imageName",
  "platforms",
  "appPath",
  "defaultBranch",
  "gitRef",
  "gitSha",
  "cache",
  "buildHosts",
  "registryUsername",
  "registryToken",
  "github",
  "promoteFrom",
  "gates",
  "push",
  "publish",
  "baseImage",
  "npmCaFile",
  "vulnerabilityDb",
  "signing",
] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

/** Keys whose values must be Pulumi secrets (`pulumi config set --secret`). */
export const SECRET_KEYS: readonly ConfigKey[] = ["registryToken"];

/** A RunError: the engine prints the message without a stack trace under it. */
export class ConfigError extends pulumi.RunError {
  constructor(public readonly problems: string[]) {
    super(
      `invalid ${NAMESPACE} configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}); ` +
        `nothing was created:\n  - ${problems.join("\n  - ")}`,
    );
    this.name = "ConfigError";
  }
}

/** What validation returns: plain values; the token stays a plain string only until index.ts wraps it. */
export interface ValidatedConfig {
  imageName: string;
  registry: string;
  platforms: Platform[];
  appPath: string;
  defaultBranch: string;
  git: GitContext & { created: string };
  cache: CacheConfig;
  buildHosts: BuildHostsConfig;
  registryUsername?: string;
  hasRegistryToken: boolean;
  github?: GithubConfig;
  promoteFrom?: string;
  gates: GatesConfig;
  push: boolean;
  /** false: a build-only review run (scripts/review.ts) — per-platform images into quarantine, no
   *  evidence resource, no manifest list, no tag, no GitHub settings, cache writes scoped away from
   *  the default branch's. */
  publish: boolean;
  baseImage?: string;
  npmCaFile?: string;
  /** Trivy vulnerability DB artifact (`registry/repo:tag`); unset = Trivy's public DB. */
  vulnerabilityDb?: string;
  /** Who signs (building stacks) or whom promotion trusts (promoting stacks): docs/signing.md. */
  signing: SigningConfig;
}

export interface ConfigContext {
  stack: string;
  /** Environment for GITHUB_REF / GITHUB_SHA. */
  env: Record<string, string | undefined>;
  /** Reads the local repository; undefined when there is none. */
  localGit: () => Partial<GitContext & { created: string }> | undefined;
  /** Keys the engine holds as secrets (without namespace). */
  secretKeys: ReadonlySet<string>;
  /** Resolve relative paths (appPath) against this directory. @default process.cwd() */
  cwd?: string;
}

export const show = (v: unknown): string => (typeof v === "string" ? `"${v}"` : JSON.stringify(v));

export type Shape = Readonly<Record<string, "string" | "number" | "boolean" | "string[]">>;

/** Checks an object-valued key against its shape: unknown sub-keys and wrong types are named. */
export function checkObject(
  key: string,
  value: unknown,
  shape: Shape,
  problems: string[],
): Record<string, unknown> {
  const full = `${NAMESPACE}:${key}`;
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    problems.push(`${full} must be an object, got ${show(value)}`);
    return {};
  }
  const obj = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) {
    const want = shape[k];
    if (want === undefined) {
      problems.push(
        `${full}.${k} is not a known setting (known: ${Object.keys(shape).join(", ")}), got ${show(v)}`,
      );
      continue;
    }
    const ok =
      want === "string[]"
        ? Array.isArray(v) && v.every((x) => typeof x === "string")
        : typeof v === want && !(want === "number" && !Number.isFinite(v));
    if (!ok) problems.push(`${full}.${k} must be a ${want}, got ${show(v)}`);
  }
  return obj;
}

// validateCache lives in buildCache.ts, validateGithub in ghcrPackage.ts and the buildHosts rules in
// buildHosts/rules.ts, beside what they validate; validateConfig only calls them.

/**
 * Validates the raw namespace (values already JSON-decoded where the key is structured). Collects
 * every problem, then throws one ConfigError naming each key and value. Secret values are never
 * echoed: only whether they are present.
 */
export function validateConfig(raw: Record<string, unknown>, ctx: ConfigContext): ValidatedConfig {
  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      const shown = ctx.secretKeys.has(key) ? "[secret]" : show(raw[key]);
      problems.push(
        `${NAMESPACE}:${key} is not a known config key (known: ${CONFIG_KEYS.join(", ")}), got ${shown}`,
      );
    }
  }
  const str = (key: ConfigKey): string | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== "string") {
      problems.push(
        `${NAMESPACE}:${key} must be a string, got ${ctx.secretKeys.has(key) ? "[secret]" : show(v)}`,
      );
      return undefined;
    }
    return v;
  };

  const imageName = str("imageName") ?? "";
  const image = validateImageName(raw.imageName === undefined ? undefined : imageName);
  problems.push(...image.problems);
  const platforms = validatePlatforms(raw.platforms);
  problems.push(...platforms.problems);

  const cwd = ctx.cwd ?? process.cwd();
  const appPathRaw = str("appPath") ?? "./app";
  const appPath = path.resolve(cwd, appPathRaw);
  problems.push(...appPathProblems(appPathRaw, cwd));
  problems.push(...readDockerfileProblems(appPath).map((p) => p.replace(appPath, appPathRaw)));

  const defaultBranch = str("defaultBranch") ?? "main";
  if (!/^[A-Za-z0-9._/-]+$/.test(defaultBranch))
    problems.push(`${NAMESPACE}:defaultBranch is not a branch name, got ${show(defaultBranch)}`);

  const git = resolveGit(raw, ctx, problems);
  const cache = validateCache(raw.cache, imageName, problems);
  const buildHosts = buildHostsConfig(
    checkObject("buildHosts", raw.buildHosts, BUILD_HOSTS_SHAPE, problems),
    ctx.stack,
  );
  problems.push(...buildHostsProblems(buildHosts).map((p) => `${NAMESPACE}:${p}`));
  let gates: GatesConfig = { ...DEFAULT_GATES };
  try {
    gates = validateGates(raw.gates, `${NAMESPACE}:gates`);
  } catch (e) {
    problems.push((e as Error).message);
  }
  const github = validateGithub(raw.github, imageName, problems);

  const push = raw.push === undefined ? true : raw.push;
  if (typeof push !== "boolean")
    problems.push(`${NAMESPACE}:push must be true or false, got ${show(raw.push)}`);
  const publish = raw.publish === undefined ? true : raw.publish;
  if (typeof publish !== "boolean")
    problems.push(`${NAMESPACE}:publish must be true or false, got ${show(raw.publish)}`);

  const registryUsername = str("registryUsername");
  const hasRegistryToken = raw.registryToken !== undefined && raw.registryToken !== "";
  for (const key of SECRET_KEYS) {
    if (raw[key] !== undefined && !ctx.secretKeys.has(key)) {
      problems.push(
        `${NAMESPACE}:${key} is stored in plaintext: set it with \`pulumi config set --secret ${key}\` (value not shown)`,
      );
    }
  }
  const promoteFrom = str("promoteFrom");
  const needsCredentials = push === true;
  if (needsCredentials && !hasRegistryToken) {
    problems.push(
      `${NAMESPACE}:registryToken is required to push to ${show(image.registry || imageName)}: run \`pulumi config set --secret registryToken <token>\``,
    );
  }
  if (needsCredentials && registryUsername === undefined) {
    problems.push(
      `${NAMESPACE}:registryUsername is required to push to ${show(image.registry || imageName)}, got undefined`,
    );
  }
  if (promoteFrom !== undefined && !STACK_NAME.test(promoteFrom)) {
    problems.push(
      `${NAMESPACE}:promoteFrom must be a stack name ("dev" or "org/project/dev"), got ${show(promoteFrom)}`,
    );
  }
  if (promoteFrom !== undefined && promoteFrom.split("/").pop() === ctx.stack) {
    problems.push(
      `${NAMESPACE}:promoteFrom cannot name this stack itself, got ${show(promoteFrom)}`,
    );
  }
  if (publish === false && promoteFrom !== undefined) {
    problems.push(
      `${NAMESPACE}:publish false builds for review only; a promotion stack builds nothing (promoteFrom ${show(promoteFrom)})`,
    );
  }
  if (publish === false && push === false) {
    problems.push(
      `${NAMESPACE}:publish false needs push true: a review build pushes its per-platform images to the quarantine repository`,
    );
  }
  const signing = validateSigningConfig(
    raw.signing,
    ctx.stack,
    buildHosts.localBuilder,
    promoteFrom !== undefined,
    problems,
  );
  const baseImage = str("baseImage");
  if (baseImage !== undefined && !/^[a-z0-9][a-z0-9._:/@-]*$/.test(baseImage)) {
    problems.push(`${NAMESPACE}:baseImage is not an image reference, got ${show(baseImage)}`);
  }
  const npmCaFile = str("npmCaFile");
  if (npmCaFile !== undefined) problems.push(...npmCaFileProblems(npmCaFile));

  const vulnerabilityDb = str("vulnerabilityDb");
  const dbRepo = vulnerabilityDb?.replace(
    /(@sha256:[0-9a-f]{64}|:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/,
    "",
  );
  if (
    vulnerabilityDb !== undefined &&
    (dbRepo === vulnerabilityDb || validateImageName(dbRepo).problems.length > 0)
  ) {
    problems.push(
      `${NAMESPACE}:vulnerabilityDb must be an OCI reference with a registry host, a repository and a tag or digest (e.g. 127.0.0.1:5443/image-factory/trivy-db:2), got ${show(vulnerabilityDb)}`,
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    imageName,
    registry: image.registry,
    platforms: platforms.platforms,
    appPath,
    defaultBranch,
    git,
    cache,
    buildHosts,
    registryUsername,
    hasRegistryToken,
    github,
    promoteFrom,
    gates,
    push: push as boolean,
    publish: publish as boolean,
    baseImage,
    npmCaFile,
    vulnerabilityDb,
    signing,
  };
}

/** Keys holding objects or lists arrive from the engine as JSON text. */
export const STRUCTURED_KEYS: readonly ConfigKey[] = [
  "platforms",
  "cache",
  "buildHosts",
  "github",
  "gates",
  "push",
  "publish",
  "signing",
];

/** Turns the engine's `namespace:key → text` map into decoded values; bad JSON is a named problem. */
export function decodeRawConfig(all: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [fullKey, text] of Object.entries(all)) {
    if (!fullKey.startsWith(`${NAMESPACE}:`)) continue;
    const key = fullKey.slice(NAMESPACE.length + 1);
    // Pulumi.yaml declares optional text keys with "" as default: "" means unset.
    if (text === "") continue;
    if ((STRUCTURED_KEYS as readonly string[]).includes(key)) {
      try {
        out[key] = JSON.parse(text);
      } catch {
        problems.push(
          `${fullKey} must be valid ${key === "push" || key === "publish" ? "true/false" : "structured (YAML/JSON)"} config, got ${show(text)}`,
        );
      }
    } else {
      out[key] = text;
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}
