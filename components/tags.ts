// Pure tag computation with docker/metadata-action semantics. No I/O: the git context comes in,
// tag names come out, so every rule is covered by table-driven tests.
import { parse as semverParse } from "semver";
import type { GitContext } from "./types";

/** The OCI distribution spec's tag grammar. */
import { TAG as OCI_TAG } from "./reference";

export { OCI_TAG };
const SHA = /^[0-9a-f]{40}$/;

export type RefKind = "branch" | "tag" | "pr";

export interface ParsedRef {
  kind: RefKind;
  /** Branch name, tag name or PR number as text. */
  name: string;
}

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  prerelease?: string;
  build?: string;
}

export interface TagPlan {
  ref: ParsedRef;
  /** Tag names (no repository), in a stable order, without duplicates. */
  tags: string[];
  /** The version the image carries in its labels: semver, branch or `pr-N`, then the short sha. */
  version: string;
  /** Parsed semver when the ref is a semver tag. */
  semver?: SemVer;
  /** True for a semver tag with a prerelease part or a 0.x version: never `latest`. */
  prerelease: boolean;
}

export interface TagOptions {
  /** The branch whose builds also get `edge` (metadata-action's `type=edge`). @default "main" */
  defaultBranch?: string;
}

/** Parses `refs/heads/x`, `refs/tags/x`, `refs/pull/N/merge|head`; anything else is refused. */
export function parseRef(ref: string): ParsedRef {
  // `s`: a name may hold any character, line separators included (U+2028 found by the property
  // test); sanitizeTag decides what survives into a tag.
  const branch = /^refs\/heads\/(.+)$/s.exec(ref);
  if (branch) return { kind: "branch", name: branch[1] };
  const tag = /^refs\/tags\/(.+)$/s.exec(ref);
  if (tag) return { kind: "tag", name: tag[1] };
  const pr = /^refs\/pull\/([1-9]\d*)\/(merge|head)$/.exec(ref);
  if (pr) return { kind: "pr", name: pr[1] };
  throw new Error(
    `gitRef "${ref}" is neither a branch (refs/heads/<name>), a tag (refs/tags/<name>) nor a pull request (refs/pull/<n>/merge)`,
  );
}

export function parseSemver(text: string): SemVer | undefined {
  // SemVer 2.0.0 with an optional leading "v", as metadata-action's type=semver accepts it; the
  // `semver` package (npm's own) parses strictly, so "1.2" or "01.2.3" are not versions.
  if (!/^v?\d/.test(text)) return undefined;
  const v = semverParse(text.replace(/^v/, ""), { loose: false });
  if (v === null) return undefined;
  return {
    major: v.major,
    minor: v.minor,
    patch: v.patch,
    prerelease: v.prerelease.length > 0 ? v.prerelease.join(".") : undefined,
    build: v.build.length > 0 ? v.build.join(".") : undefined,
  };
}

/**
 * Makes any text a valid tag: characters outside `[A-Za-z0-9_.-]` become `-`, runs of `-` collapse,
 * leading `.`/`-` are dropped (a tag must start with `[A-Za-z0-9_]`), and the result is cut to 128
 * characters. Returns "" when nothing usable is left, and the caller drops the tag.
 */
export function sanitizeTag(text: string): string {
  const replaced = text
    .replace(/[^A-Za-z0-9_.-]/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[.-]+/, "");
  const cut = replaced.slice(0, 128).replace(/[.-]+$/, "");
  return cut;
}

export function validateSha(sha: string): string {
  if (!SHA.test(sha)) {
    throw new Error(`gitSha "${sha}" is not a full 40-character lowercase hexadecimal commit sha`);
  }
  return sha;
}

/** Renders a semver for a tag: `+build` metadata is not allowed in tags, so `+` becomes `_`. */
function semverTag(v: SemVer): string {
  const core = `${v.major}.${v.minor}.${v.patch}`;
  const pre = v.prerelease ? `-${v.prerelease}` : "";
  const build = v.build ? `_${v.build}` : "";
  return sanitizeTag(`${core}${pre}${build}`);
}

/**
 * Tags for one build, like docker/metadata-action with
 * `type=sha,format=short`, `type=sha,format=long`, `type=ref,event=branch`, `type=ref,event=pr`,
 * `type=semver,pattern={{version}}`, `{{major}}.{{minor}}`, `{{major}}` and `latest=auto`:
 * - every build: `sha-<7>` and `sha-<40>`;
 * - a branch: its sanitised name (`my/feature#12` → `my-feature-12`), plus `edge` on the default
 *   branch (`latest` never follows a branch: it marks the newest stable release);
 * - a pull request: `pr-<n>`;
 * - a semver tag: `x.y.z`, plus `x.y`, `x` and `latest` only for a stable release (no prerelease,
 *   major ≥ 1: 0.x is initial development and moves no floating tag);
 * - any other tag: its sanitised name.
 */
export function computeTags(git: Pick<GitContext, "ref" | "sha">, opts: TagOptions = {}): TagPlan {
  const defaultBranch = opts.defaultBranch ?? "main";
  const ref = parseRef(git.ref);
  const sha = validateSha(git.sha);
  const short = sha.slice(0, 7);
  const tags: string[] = [];
  let version: string;
  let semver: SemVer | undefined;
  let prerelease = false;

  switch (ref.kind) {
    case "branch": {
      const name = sanitizeTag(ref.name);
      if (name) tags.push(name);
      if (ref.name === defaultBranch) tags.push("edge");
      version = `${name === "" ? "branch" : name}-${short}`;
      break;
    }
    case "pr": {
      tags.push(`pr-${ref.name}`);
      version = `pr-${ref.name}-${short}`;
      break;
    }
    case "tag": {
      semver = parseSemver(ref.name);
      if (semver) {
        prerelease = semver.prerelease !== undefined || semver.major === 0;
        tags.push(semverTag(semver));
        if (!prerelease) {
          tags.push(`${semver.major}.${semver.minor}`, `${semver.major}`, "latest");
        }
        version = semverTag(semver);
      } else {
        const name = sanitizeTag(ref.name);
        if (name) tags.push(name);
        version = name === "" ? short : name;
      }
      break;
    }
  }
  tags.push(`sha-${short}`, `sha-${sha}`);
  const unique = [...new Set(tags)];
  for (const t of unique) {
    // A rule above produced an invalid tag: a bug here, never the user's fault.
    if (!OCI_TAG.test(t))
      throw new Error(`internal: computed tag "${t}" violates the OCI tag grammar`);
  }
  return { ref, tags: unique, version, semver, prerelease };
}

/** `repo` + tag → full reference. */
export function fullTags(imageName: string, tags: string[]): string[] {
  return tags.map((t) => `${imageName}:${t}`);
}
