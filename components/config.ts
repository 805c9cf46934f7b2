// Reads and checks the whole `image-factory` config namespace. Everything here is pure except
// `localGitContext` (runs git) and `readDockerfileProblems` (reads a file): index.ts calls
// `validateConfig` before it registers a single resource, so bad input never half-creates a stack.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
  KNOWN_PLATFORMS,
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
import { SIGNING_MODES, type SigningMode, validateSigningKey } from "./signing";
import { DEFAULT_GATES, validateGates } from "../evidence/gates";
import { PATH_COMPONENT, REGISTRY_HOST, STACK_NAME } from "./reference";
import { parseRef, validateSha } from "./tags";

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

/** `image-factory:signing`, validated, defaults applied. */
export interface SigningConfig {
  /** `key` on local/e2e/test stacks and with buildHosts.localBuilder, else `kms`. */
  mode: SigningMode;
  /** Public transparency log (Rekor). Keyless needs it. @default false */
  tlog: boolean;
  /** keyless: the workflow's certificate identity and its OIDC issuer. */
  identity?: string;
  issuer?: string;
  /** Promoting stacks: the PEM public key signatures must verify with (pinned here instead of read
   *  from the source stack's `signing` export). */
  publicKey?: string;
  /** kms: roles that may sign. Unset = the role `pulumi up` runs as. */
  signerRoleArns?: string[];
  /** kms: roles that may read the public key and verify through KMS. */
  readerRoleArns?: string[];
}

const SIGNING_SHAPE: Shape = {
  mode: "string",
  tlog: "boolean",
  identity: "string",
  issuer: "string",
  publicKey: "string",
  signerRoleArns: "string[]",
  readerRoleArns: "string[]",
};

/** Stands in for "the role `pulumi up` runs as" while the rest of a kms signer is checked. */
const CALLER_ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/caller";

/** Checks `image-factory:signing` (through validateSigningKey from components/signing.ts) and applies
 *  the default mode: `key` where the factory runs on this machine (stacks `local`, `e2e*`, `test*`,
 *  or any stack with buildHosts.localBuilder), `kms` elsewhere (dev, prod). Problems name the key
 *  and the value. */
export function validateSigningConfig(
  value: unknown,
  stack: string,
  localBuilder: string | undefined,
  promoting: boolean,
  problems: string[],
): SigningConfig {
  const key = `${NAMESPACE}:signing`;
  const before = problems.length;
  const obj = checkObject("signing", value, SIGNING_SHAPE, problems);
  const local =
    stack === "local" || /^(e2e|test)([-_.]|$)/.test(stack) || localBuilder !== undefined;
  const mode = (obj.mode ?? (local ? "key" : "kms")) as SigningMode;
  if (!SIGNING_MODES.includes(mode)) {
    problems.push(`${key}.mode must be one of ${SIGNING_MODES.join(", ")}, got ${show(obj.mode)}`);
  }
  const cfg: SigningConfig = {
    mode,
    tlog: typeof obj.tlog === "boolean" ? obj.tlog : false,
    identity: typeof obj.identity === "string" && obj.identity !== "" ? obj.identity : undefined,
    issuer: typeof obj.issuer === "string" && obj.issuer !== "" ? obj.issuer : undefined,
    publicKey:
      typeof obj.publicKey === "string" && obj.publicKey !== "" ? obj.publicKey : undefined,
    signerRoleArns: Array.isArray(obj.signerRoleArns)
      ? (obj.signerRoleArns as string[])
      : undefined,
    readerRoleArns: Array.isArray(obj.readerRoleArns)
      ? (obj.readerRoleArns as string[])
      : undefined,
  };
  if (problems.length > before) return cfg;
  if (mode === "keyless" && !cfg.tlog) {
    problems.push(
      `${key}.tlog must be true in keyless mode (a Fulcio certificate is only provable through the log), got ${show(obj.tlog ?? false)}`,
    );
  }
  if (cfg.publicKey !== undefined) {
    const pem =
      /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/.test(
        cfg.publicKey.trim() + "\n",
      );
    if (!pem)
      problems.push(
        `${key}.publicKey must be a PEM public key (-----BEGIN PUBLIC KEY-----), got ${show(cfg.publicKey.slice(0, 40))}`,
      );
    if (!promoting) {
      problems.push(
        `${key}.publicKey pins the key a promoting stack (promoteFrom) verifies with; this stack signs with its own ${mode} key, got ${show(cfg.publicKey.slice(0, 40))}`,
      );
    }
    if (mode === "keyless")
      problems.push(
        `${key}.publicKey is for key and kms modes; keyless pins identity and issuer, got ${show(cfg.publicKey.slice(0, 40))}`,
      );
  }
  if (mode !== "keyless" && (cfg.identity !== undefined || cfg.issuer !== undefined)) {
    problems.push(
      `${key}.identity and signing.issuer are for keyless mode, got mode ${show(mode)} with identity ${show(cfg.identity)}`,
    );
  }
  // What SigningKey will be given (a promoting stack creates none: only keyless identities matter).
  if (!promoting || mode === "keyless") {
    try {
      validateSigningKey({
        mode,
        signerRoleArns:
          mode === "kms" ? (cfg.signerRoleArns ?? [CALLER_ROLE_PLACEHOLDER]) : undefined,
        readerRoleArns: cfg.readerRoleArns,
        identity:
          mode === "keyless"
            ? { workflowRef: cfg.identity as string, issuer: cfg.issuer as string }
            : undefined,
      });
    } catch (e) {
      problems.push(`${NAMESPACE}:${(e as Error).message}`);
    }
  }
  return cfg;
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

/** Checks `imageName` and returns its registry host. */
export function validateImageName(imageName: unknown): { problems: string[]; registry: string } {
  const key = `${NAMESPACE}:imageName`;
  if (typeof imageName !== "string" || imageName === "") {
    return {
      problems: [`${key} is required (e.g. "ghcr.io/acme/shop-api"), got ${show(imageName)}`],
      registry: "",
    };
  }
  if (imageName !== imageName.toLowerCase()) {
    return { problems: [`${key} must be lowercase, got ${show(imageName)}`], registry: "" };
  }
  if (/[@]/.test(imageName) || /:[^/]*$/.test(imageName.split("/").slice(1).join("/"))) {
    return {
      problems: [
        `${key} must not carry a tag or digest (tags come from git), got ${show(imageName)}`,
      ],
      registry: "",
    };
  }
  const parts = imageName.split("/");
  const host = parts[0];
  const repo = parts.slice(1);
  if (parts.length < 2 || !REGISTRY_HOST.test(host)) {
    return {
      problems: [
        `${key} must start with a registry host (e.g. "ghcr.io/<owner>/<name>"), got ${show(imageName)}`,
      ],
      registry: "",
    };
  }
  const bad = repo.find((c) => !PATH_COMPONENT.test(c));
  if (bad !== undefined || imageName.length > 255) {
    return {
      problems: [
        `${key} has an invalid repository path component ${show(bad ?? imageName)} in ${show(imageName)}`,
      ],
      registry: "",
    };
  }
  if (host === "ghcr.io" && repo.length < 2) {
    return {
      problems: [`${key} on ghcr.io must be "ghcr.io/<owner>/<name>", got ${show(imageName)}`],
      registry: host,
    };
  }
  return { problems: [], registry: host };
}

export function validatePlatforms(value: unknown): { problems: string[]; platforms: Platform[] } {
  const key = `${NAMESPACE}:platforms`;
  if (value === undefined) return { problems: [], platforms: [...KNOWN_PLATFORMS] };
  if (!Array.isArray(value))
    return { problems: [`${key} must be a list of platforms, got ${show(value)}`], platforms: [] };
  if (value.length === 0) {
    return {
      problems: [
        `${key} must name at least one platform (known: ${KNOWN_PLATFORMS.join(", ")}), got []`,
      ],
      platforms: [],
    };
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((p, i) => {
    if (typeof p !== "string" || !(KNOWN_PLATFORMS as readonly string[]).includes(p)) {
      problems.push(
        `${key}[${i}] is not a known platform (known: ${KNOWN_PLATFORMS.join(", ")}), got ${show(p)}`,
      );
    } else if (seen.has(p)) {
      problems.push(`${key}[${i}] duplicates platform ${show(p)}`);
    }
    seen.add(String(p));
  });
  return { problems, platforms: problems.length ? [] : (value as Platform[]) };
}

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

/** The git context: config first, then GitHub Actions' environment, then the local repository. */
export function resolveGit(
  raw: Record<string, unknown>,
  ctx: ConfigContext,
  problems: string[],
): GitContext & { created: string } {
  const fromConfig = raw.gitRef !== undefined || raw.gitSha !== undefined;
  const fromEnv = ctx.env.GITHUB_REF !== undefined && ctx.env.GITHUB_SHA !== undefined;
  const local =
    fromConfig && raw.gitRef !== undefined && raw.gitSha !== undefined ? undefined : ctx.localGit();
  let ref: unknown;
  let sha: unknown;
  let source: GitContext["source"];
  if (fromConfig) {
    ref = raw.gitRef ?? (fromEnv ? ctx.env.GITHUB_REF : local?.ref);
    sha = raw.gitSha ?? (fromEnv ? ctx.env.GITHUB_SHA : local?.sha);
    source = "config";
  } else if (fromEnv) {
    ref = ctx.env.GITHUB_REF;
    sha = ctx.env.GITHUB_SHA;
    source = "env";
  } else {
    ref = local?.ref;
    sha = local?.sha;
    source = "git";
  }
  if (ref === undefined || sha === undefined) {
    problems.push(
      `no git context: set ${NAMESPACE}:gitRef and ${NAMESPACE}:gitSha, or GITHUB_REF and GITHUB_SHA, or run inside a git checkout (got gitRef ${show(ref)}, gitSha ${show(sha)})`,
    );
    return { ref: "", sha: "", source, created: "" };
  }
  try {
    parseRef(String(ref));
  } catch (e) {
    problems.push(`${NAMESPACE}:${(e as Error).message} (source: ${source})`);
  }
  try {
    validateSha(String(sha));
  } catch (e) {
    problems.push(`${NAMESPACE}:${(e as Error).message} (source: ${source})`);
  }
  // Commit time, not build time: a label that changed on every run would rebuild every image.
  const epoch = ctx.env.SOURCE_DATE_EPOCH;
  const created =
    local?.created ??
    (epoch !== undefined && /^\d+$/.test(epoch)
      ? new Date(Number(epoch) * 1000).toISOString()
      : "1970-01-01T00:00:00Z");
  return { ref: String(ref), sha: String(sha), source, created };
}

/** Reads ref, sha and commit time from the repository around `cwd`; undefined outside git. */
export function localGitContext(
  cwd: string,
): Partial<GitContext & { created: string }> | undefined {
  const git = (...args: string[]): string | undefined => {
    try {
      return execFileSync("git", args, {
        cwd,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    } catch {
      return undefined;
    }
  };
  const sha = git("rev-parse", "HEAD");
  if (sha === undefined) return undefined;
  const branch = git("symbolic-ref", "-q", "HEAD");
  const tag = branch === undefined ? git("describe", "--tags", "--exact-match", "HEAD") : undefined;
  const ref = branch ?? (tag !== undefined ? `refs/tags/${tag}` : undefined);
  return { sha, ref, created: git("show", "-s", "--format=%cI", "HEAD") };
}

const within = (p: string, base: string): boolean => {
  const rel = path.relative(base, p);
  return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
};

/** appPath is the build context sent to the builders: it must stay inside the repository (`cwd`).
 *  `..` escapes and absolute paths elsewhere are refused, and so is a symlink out of it. */
export function appPathProblems(appPathRaw: string, cwd: string): string[] {
  const key = `${NAMESPACE}:appPath`;
  const root = path.resolve(cwd);
  const resolved = path.resolve(root, appPathRaw);
  if (!within(resolved, root)) {
    return [
      `${key} must stay inside the repository ${show(root)}, got ${show(appPathRaw)} (resolves to ${show(resolved)})`,
    ];
  }
  let real: string;
  try {
    real = fs.realpathSync(resolved);
  } catch {
    return []; // missing: readDockerfileProblems names it
  }
  const realRoot = fs.realpathSync(root);
  if (!within(real, realRoot)) {
    return [
      `${key} leaves the repository through a symlink: ${show(appPathRaw)} resolves to ${show(real)}, outside ${show(realRoot)}`,
    ];
  }
  return [];
}

const PEM_CERTIFICATE =
  /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/;

/** npmCaFile becomes the build's `npm_ca` secret: a readable PEM bundle with a certificate in it. */
export function npmCaFileProblems(file: string): string[] {
  const key = `${NAMESPACE}:npmCaFile`;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return [
      code === "ENOENT"
        ? `${key} does not exist, got ${show(file)}`
        : `${key} is not a readable file (${code ?? String(e)}), got ${show(file)}`,
    ];
  }
  if (!PEM_CERTIFICATE.test(text)) {
    return [
      `${key} must be a PEM bundle with at least one -----BEGIN CERTIFICATE----- block, got ${show(file)}`,
    ];
  }
  return [];
}

/** Problems that make a Dockerfile unbuildable, found without a build: missing file, no FROM. */
export function readDockerfileProblems(appPath: string): string[] {
  const key = `${NAMESPACE}:appPath`;
  const file = path.join(appPath, "Dockerfile");
  if (!fs.existsSync(appPath) || !fs.statSync(appPath).isDirectory())
    return [`${key} is not a directory, got "${appPath}"`];
  if (!fs.existsSync(file)) return [`${key} has no Dockerfile: "${file}" does not exist`];
  const lines = fs
    .readFileSync(file, "utf8")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const first = lines[0] ?? "";
  if (!/^(FROM|ARG)\s/i.test(first)) {
    return [
      `${key}: "${file}" must start with FROM (or ARG before FROM), got "${first.slice(0, 60)}"`,
    ];
  }
  if (!lines.some((l) => /^FROM\s/i.test(l))) return [`${key}: "${file}" has no FROM instruction`];
  return [];
}

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
