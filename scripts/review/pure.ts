// The pure parts of the pull-request review command (scripts/review.ts): the review stack's config,
// where a platform failed to build in `pulumi up` output, the compact preview, image sizes from a
// manifest, gates judged without a build. No I/O; tested on recorded real output in
// test/unit/reviewCommand.test.ts.
import type { BuildError, GateSummary } from "../../review";

export const NS = "image-factory";

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, "");
}

/** The quarantine repository a review pushes to: never a repository anyone pulls from. */
export function reviewImageName(imageName: string): string {
  return `${imageName}-review`;
}

const STATUS =
  "(?:creating replacement|created replacement|creating|created|updating|updated|replacing|replaced|reading|read)";
const IMAGE_LINE = new RegExp(
  `^\\s*[-+~<>]*\\s*docker-build:index:Image (\\S+) (\\*\\*)?${STATUS}( failed)?(?:\\*\\*)?(?: \\(\\d+s\\))?(?: \\[diff: [^\\]]*\\];?)?(?: (.*))?$`,
);

/** Where a docker-build Image failed in a `pulumi up` (non-interactive) output: per resource name
 *  (`image-linux-arm-v7`), the Dockerfile stage, the step and the tail of that step's output. */
export function parseBuildFailures(output: string): Record<string, BuildError> {
  const lines = stripAnsi(output).split(/\r?\n/);
  const logs = new Map<string, string[]>();
  const failed = new Set<string>();
  const diagnostics = new Map<string, string[]>();
  let diagFor: string | undefined;
  let inDiagnostics = false;
  for (const line of lines) {
    const m = IMAGE_LINE.exec(line);
    if (m !== null) {
      const [, name, bold, fail, msg] = m;
      if (fail !== undefined || bold !== undefined) failed.add(name);
      if (msg !== undefined && msg.trim() !== "") {
        let l = logs.get(name);
        if (l === undefined) logs.set(name, (l = []));
        if (l[l.length - 1] !== msg) l.push(msg);
      }
      continue;
    }
    if (/^Diagnostics:\s*$/.test(line)) {
      inDiagnostics = true;
      continue;
    }
    if (!inDiagnostics) continue;
    if (/^\S/.test(line)) {
      inDiagnostics = false;
      diagFor = undefined;
      continue;
    }
    const head = /^\s{2}(\S+) \((\S+)\):\s*$/.exec(line);
    if (head !== null) {
      diagFor = head[1] === "docker-build:index:Image" ? head[2] : undefined;
      if (diagFor !== undefined) {
        failed.add(diagFor);
        diagnostics.set(diagFor, []);
      }
      continue;
    }
    if (diagFor !== undefined && line.trim() !== "") diagnostics.get(diagFor)?.push(line.trim());
  }

  const out: Record<string, BuildError> = {};
  for (const name of failed) {
    const vertices = new Map<string, string[]>();
    for (const l of logs.get(name) ?? []) {
      const v = /^#(\d+) /.exec(l);
      if (v === null) continue;
      let vl = vertices.get(v[1]);
      if (vl === undefined) vertices.set(v[1], (vl = []));
      vl.push(l);
    }
    const step = (vl: string[]): RegExpExecArray | null => {
      for (const l of vl) {
        // `[deps 3/5]`, or with the platform first as some BuildKit releases print it (`[linux/arm/v7 deps 3/5]`).
        const s = /^#\d+ \[(?:[^\]\s]+ )?([^\]\s]+) (\d+\/\d+)\] (.+)$/.exec(l);
        if (s !== null) return s;
      }
      return null;
    };
    // The failing step: a vertex with an ERROR line and a `[stage i/n]` header. A cache import
    // that finds no cache also reports ERROR, but it is not a step and not fatal.
    let chosen: { lines: string[]; stage: string; step: string } | undefined;
    for (const vl of vertices.values()) {
      if (!vl.some((l) => /^#\d+ ERROR: /.test(l))) continue;
      const s = step(vl);
      if (s !== null) chosen = { lines: vl, stage: s[1], step: `${s[2]} ${s[3]}` };
    }
    const diag = diagnostics.get(name) ?? [];
    const error = diag.filter((l) => l.startsWith("error: ")).map((l) => l.slice("error: ".length));
    if (chosen === undefined) {
      // pulumi's non-interactive display keeps only a resource's latest message per refresh, so
      // the step's own ERROR line can be missing. The failing step is then one that started and
      // never finished, preferably the one whose command the error names.
      const unfinished = [...vertices.values()].filter(
        (vl) => step(vl) !== null && !vl.some((l) => /^#\d+ (?:DONE|CACHED)\b/.test(l)),
      );
      const said = error.join("\n").replace(/\\"/g, '"');
      const named = unfinished.filter((vl) =>
        said.includes((step(vl)?.[3] ?? "").replace(/^RUN /, "")),
      );
      const vl = (named.length > 0 ? named : unfinished).pop();
      const s = vl === undefined ? null : step(vl);
      if (vl !== undefined && s !== null)
        chosen = { lines: vl, stage: s[1], step: `${s[2]} ${s[3]}` };
    }
    if (chosen === undefined) {
      const anyError = [...vertices.values()]
        .filter(
          (vl) =>
            vl.some((l) => /^#\d+ ERROR: /.test(l)) &&
            !vl.some((l) => /importing cache manifest/.test(l)),
        )
        .pop();
      out[name] = {
        stage: "unknown",
        step:
          error[0] ??
          anyError?.find((l) => /ERROR: /.test(l))?.replace(/^#\d+ ERROR: /, "") ??
          "unknown",
        tail: [...(anyError ?? []), ...diag].join("\n"),
      };
      continue;
    }
    out[name] = {
      stage: chosen.stage,
      step: chosen.step,
      tail: [...chosen.lines, ...diag].join("\n"),
    };
  }
  return out;
}

const PREVIEW_HEADER = /^(\s*)([-+~<>]{1,2}\s+|\s*)([A-Za-z0-9_.:/$-]+): \(([a-z-]+)\)\s*$/;
/** Nested values longer than this are folded to their first line. */
export const PREVIEW_NESTED_LINES = 12;

/** `pulumi preview --diff` text trimmed to what changes: resources that stay the same, unchanged
 *  properties, URNs, ids, provider references and the tool's own log lines are dropped, each
 *  resource is named by its type and name, and long nested values are folded. */
export function compactPreview(text: string): string {
  const lines = stripAnsi(text).split(/\r?\n/);
  const out: string[] = [];
  // resource: keep changed properties only; summary: keep everything (Resources, Diagnostics).
  let mode: "resource" | "summary" | "skip" = "skip";
  let pending: { indent: string; marker: string; type: string; op: string } | undefined;
  const flush = (name: string): void => {
    if (pending === undefined) return;
    const marker = pending.marker.trim();
    out.push(
      `${pending.indent}${marker === "" ? "  " : `${marker} `}${pending.type}${name === "" ? "" : ` ${name}`} (${pending.op})`,
    );
    pending = undefined;
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i].replace(/\s+$/, "");
    i++;
    if (
      line.trim() === "" ||
      /^\[image-factory\]/.test(line) ||
      /^#\d+ /.test(line.trim()) ||
      /^View (Live|in Browser)/.test(line.trim())
    )
      continue;
    const urn = /^\s*\[urn=([^\]]+)\]$/.exec(line);
    if (urn !== null) {
      flush(urn[1].split("::").pop() ?? "");
      continue;
    }
    if (/^\s*\[(id|provider)=[^\]]*\]$/.test(line)) continue;
    const h = PREVIEW_HEADER.exec(line);
    if (h !== null) {
      flush("");
      const [, indent, marker, type, op] = h;
      mode = op === "same" ? "skip" : "resource";
      if (mode === "resource") pending = { indent, marker, type, op };
      continue;
    }
    if (/^\s*--outputs:--$/.test(line)) {
      flush("");
      mode = "resource";
      out.push("  outputs:");
      continue;
    }
    if (/^\S/.test(line)) {
      flush("");
      mode = /^(Resources|Diagnostics):/.test(line) ? "summary" : "skip";
      out.push(line);
      continue;
    }
    if (mode === "skip") continue;
    if (mode === "summary") {
      out.push(line);
      continue;
    }
    flush("");
    if (!/^\s*[-+~]{1,2} /.test(line)) continue;
    const depth = line.length - line.trimStart().length;
    if (!/[{[]$/.test(line)) {
      out.push(line);
      continue;
    }
    // A nested value: kept when short, folded to one line when long.
    const block: string[] = [line];
    while (i < lines.length) {
      const next = stripAnsi(lines[i]).replace(/\s+$/, "");
      const d = next.length - next.trimStart().length;
      if (next === "") {
        i++;
        continue;
      }
      const closes = /^[}\]]/.test(next.trim());
      if (d > depth + 2 || (d === depth + 2 && !closes)) {
        block.push(next);
        i++;
        continue;
      }
      if (d === depth + 2 && closes) {
        block.push(next);
        i++;
      }
      break;
    }
    if (block.length <= PREVIEW_NESTED_LINES) out.push(...block);
    else out.push(`${line} … ${block.length - 2} lines … ${line.endsWith("{") ? "}" : "]"}`);
  }
  flush("");
  return out.join("\n");
}

/** Where to write the JSON beside `--out`: `review.md` → `review.json`, `x` → `x.json`. */
export function jsonPathFor(out: string): string {
  return /\.md$/i.test(out) ? out.replace(/\.md$/i, ".json") : `${out}.json`;
}

/** Compressed size (what a pull downloads) and layer count of one image manifest. */
export function manifestSize(manifest: unknown): { sizeBytes: number; layers: number } {
  const m = manifest as { layers?: Array<{ size?: number }> };
  if (!Array.isArray(m?.layers))
    throw new Error(
      `not an image manifest (no layers[]): ${JSON.stringify(manifest).slice(0, 120)}`,
    );
  return {
    sizeBytes: m.layers.reduce((n, l) => n + (typeof l.size === "number" ? l.size : 0), 0),
    layers: m.layers.length,
  };
}

/** The review stack's config: the target's committed settings, pointed at quarantine. */
export function reviewStackConfig(
  target: Record<string, unknown>,
  opts: {
    sha: string;
    ref: string;
    cacheBucket?: string;
    /** The account the runner's registry credential belongs to, when not the target's. */
    registryUsername?: string;
    /** Where a registry cache goes when the runner's credential reaches only the quarantine
     *  repository (CI): reads and writes both stay there, main's cache is not even read. */
    cacheRef?: string;
  },
): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(target)) {
    if (!k.startsWith(`${NS}:`)) {
      config[k] = v;
      continue;
    }
    // Secrets (the registry token) come from the runner, never from a copy of the target's.
    if (v !== null && typeof v === "object" && "secure" in (v as Record<string, unknown>)) continue;
    if (k === `${NS}:registryToken` || k === `${NS}:promoteFrom`) continue;
    config[k] = v;
  }
  const imageName = String(target[`${NS}:imageName`] ?? "");
  config[`${NS}:imageName`] = reviewImageName(imageName);
  // The cache main's builds use is read (never written: the program scopes review writes), so a
  // default registry cache ref (derived from imageName) is pinned to the target's.
  const cache = { ...((target[`${NS}:cache`] as Record<string, unknown> | undefined) ?? {}) };
  const type = (cache.type as string | undefined) ?? "registry";
  if (type === "registry") cache.ref = opts.cacheRef ?? cache.ref ?? `${imageName}-buildcache`;
  if (type === "s3" && cache.bucket === undefined && opts.cacheBucket !== undefined)
    cache.bucket = opts.cacheBucket;
  config[`${NS}:cache`] = cache;
  if (opts.registryUsername !== undefined) config[`${NS}:registryUsername`] = opts.registryUsername;
  config[`${NS}:publish`] = false;
  config[`${NS}:push`] = true;
  config[`${NS}:gitRef`] = opts.ref;
  config[`${NS}:gitSha`] = opts.sha;
  return config;
}

// ------------------------------------------------------------------------------------------------

/** Gates judged without a build: the coverage checks (which need the build's coverage stage) are
 *  not run for that reason, and only the checks that ran decide. */
export function contextOnlyGates(summary: GateSummary, reason: string): GateSummary {
  const needsBuild = (name: string): boolean =>
    /^(coverage|branchCoverage|functionCoverage)$|\[/.test(name);
  const checks = summary.checks.map((c) =>
    needsBuild(c.name) && c.status !== "waived"
      ? { name: c.name, status: "not-run" as const, reason }
      : c,
  );
  return {
    ...summary,
    passed: !checks.some((c) => c.status === "failed"),
    checks,
    notRun: checks.filter((c) => c.status === "not-run").map((c) => c.name),
  };
}
