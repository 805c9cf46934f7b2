// The git context tags and labels come from: config keys, then GITHUB_REF/GITHUB_SHA, then the
// local repository (the only part here that runs a command).
import { execFileSync } from "node:child_process";
import { type GitContext } from "./types";
import { parseRef, validateSha } from "./tags";
import { type ConfigContext, NAMESPACE, show } from "./config";

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
