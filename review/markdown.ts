// Renders a Review as the pull request's comment: compact Markdown, one comment per stack, found
// again for editing in place by its marker line. Sections without content are left out. Pure.
import {
  checksWithStatus,
  gateChanges,
  platformChecks,
  sharedChecks,
  type GateChange,
} from "./gates";
import {
  isUnavailable,
  type GateSummary,
  type PackageRef,
  type PlatformReview,
  type Review,
  type SbomDiff,
  type Vulnerability,
  type VulnDiff,
} from "./model";
import { isEmptyDiff } from "./sbomDiff";
import { severityCounts } from "./vulnDiff";

const MB = 1024 * 1024;
/** Lists up to this many rows are shown inline; longer ones fold into `<details>`. */
export const INLINE_ROWS = 5;
/** Rows shown of a package or vulnerability list; the rest are counted. */
export const MAX_ROWS = 50;
/** Build output lines shown of a failed build. */
export const MAX_TAIL_LINES = 40;
/** Characters shown of the preview (a PR comment holds at most 65536). */
export const MAX_PREVIEW_CHARS = 20000;

/** The first line of every review comment for `stack`: the workflow edits the comment that
 *  carries it instead of adding another. */
export function reviewMarker(stack: string): string {
  return `<!-- image-factory-review:${stack.replace(/[^A-Za-z0-9_./-]/g, "_")} -->`;
}

/** Inline code, safe in a table cell. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const ticks = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${ticks}${pad}${text.replace(/\|/g, "\\|").replace(/[\r\n]+/g, " ")}${pad}${ticks}`;
}

/** Plain text for a table cell or a line: no line breaks, pipes escaped, HTML inert. */
function text(s: string): string {
  return s
    .replace(/[\r\n]+/g, " ")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/\|/g, "\\|");
}

function fenced(body: string, lang = "text"): string {
  const longest = Math.max(0, ...(body.match(/`{3,}/g) ?? []).map((r) => r.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return `${fence}${lang}\n${body}\n${fence}`;
}

/** `sha256:` and the first 12 hex digits. */
export function shortDigest(digest: string): string {
  const m = /^([a-z0-9]+):([0-9a-f]+)$/.exec(digest);
  return m === null ? digest : `${m[1]}:${m[2].slice(0, 12)}`;
}

function signed(n: number, digits: number): string {
  const abs = Math.abs(n).toFixed(digits);
  if (Number(abs) === 0) return `±${abs}`;
  return `${n > 0 ? "+" : "−"}${abs}`;
}

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/** A size delta with its sign in the unit that shows it: `+1.30 MB`, `−1.2 KB`, `+312 B` (a
 *  one-line change moves an image by bytes, which MB with two decimals rounds to nothing). */
export function signedSize(deltaBytes: number): string {
  const abs = Math.abs(deltaBytes);
  // 1023.96 KB would print as 1024.0 KB: from there on it is MB.
  if (Number((abs / 1024).toFixed(1)) >= 1024) return `${signed(deltaBytes / MB, 2)} MB`;
  if (abs >= 1024) return `${signed(deltaBytes / 1024, 1)} KB`;
  return `${signed(deltaBytes, 0)} B`;
}

/** A relative change with its sign; one that rounds to 0.0 but is not zero says so (`+<0.1 %`). */
function signedPercent(fraction: number): string {
  const pct = fraction * 100;
  if (pct !== 0 && Math.abs(pct) < 0.05) return `${pct > 0 ? "+" : "−"}<0.1 %`;
  return `${signed(pct, 1)} %`;
}

/** `146.8 MB → 148.1 MB (+1.30 MB, +0.9 %)`; undefined without a candidate size (nothing to
 *  compare: the row is left out). */
export function sizeChange(
  before: number | undefined,
  after: number | undefined,
): string | undefined {
  if (after === undefined) return undefined;
  if (before === undefined) return mb(after);
  if (before === after) return `${mb(after)} (unchanged)`;
  const delta = after - before;
  const pct = before === 0 ? "" : `, ${signedPercent(delta / before)}`;
  return `${mb(before)} → ${mb(after)} (${signedSize(delta)}${pct})`;
}

function countChange(before: number | undefined, after: number | undefined): string | undefined {
  if (after === undefined) return undefined;
  if (before === undefined) return String(after);
  if (before === after) return `${after} (unchanged)`;
  return `${before} → ${after} (${signed(after - before, 0)})`;
}

export function packageCounts(diff: SbomDiff): string {
  return `+${diff.added.length} −${diff.removed.length} ~${diff.changed.length}`;
}

function vulnSummary(diff: VulnDiff): string {
  const parts: string[] = [];
  if (diff.new.length > 0) parts.push(`**${diff.new.length} new** (${severityCounts(diff.new)})`);
  if (diff.fixed.length > 0)
    parts.push(`${diff.fixed.length} fixed (${severityCounts(diff.fixed)})`);
  return parts.length === 0 ? "no change" : parts.join(" · ");
}

function gateChangeText(c: GateChange, hasCurrent = true): string {
  if (c.before === undefined)
    return `${code(c.name)} **${c.after}**${hasCurrent ? " (new check)" : ""}`;
  if (c.after === undefined) return `${code(c.name)} ${c.before} → removed`;
  const after = c.after === "passed" ? c.after : `**${c.after}**`;
  return `${code(c.name)} ${c.before} → ${after}`;
}

/** A platform's checks named without the `[platform]` suffix. */
function platformGates(
  explicit: GateSummary | undefined,
  all: GateSummary | undefined,
  platform: string,
): GateSummary | undefined {
  if (explicit !== undefined) {
    const suffix = `[${platform}]`;
    return {
      ...explicit,
      checks: explicit.checks.map((c) =>
        c.name.endsWith(suffix) ? { ...c, name: c.name.slice(0, -suffix.length) } : c,
      ),
    };
  }
  return all === undefined ? undefined : platformChecks(all, platform);
}

/** The table's rows, or a `<details>` block when there are more than INLINE_ROWS. */
function foldable(summary: string, header: string[], rows: string[][]): string {
  const shown = rows.slice(0, MAX_ROWS);
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...shown.map((r) => `| ${r.join(" | ")} |`),
  ];
  if (rows.length > MAX_ROWS)
    lines.push(`| … and ${rows.length - MAX_ROWS} more |${" |".repeat(header.length - 1)}`);
  const table = lines.join("\n");
  return rows.length > INLINE_ROWS
    ? `<details><summary>${summary}</summary>\n\n${table}\n\n</details>`
    : table;
}

function packageTable(platform: string, diff: SbomDiff): string {
  type Row = { type: string; name: string; before: string; after: string; version: string };
  const rows: Row[] = [
    ...diff.changed.map((c) => ({ ...c, version: c.before })),
    ...diff.added.map((p: PackageRef) => ({
      type: p.type,
      name: p.name,
      before: "",
      after: p.version || "(no version)",
      version: p.version,
    })),
    ...diff.removed.map((p: PackageRef) => ({
      type: p.type,
      name: p.name,
      before: p.version || "(no version)",
      after: "",
      version: p.version,
    })),
  ];
  const cmp = (a: string, b: string): number => (a === b ? 0 : a < b ? -1 : 1);
  rows.sort((a, b) => cmp(a.type, b.type) || cmp(a.name, b.name) || cmp(a.version, b.version));
  const v = (s: string): string => (s === "" ? "—" : code(s));
  return foldable(
    `Packages on ${text(platform)}: ${packageCounts(diff)}`,
    ["package", "type", "now", "after merge"],
    rows.map((r) => [code(r.name), text(r.type), v(r.before), v(r.after)]),
  );
}

function vulnTable(platform: string, diff: VulnDiff): string {
  const row = (change: string, x: Vulnerability): string[] => [
    change,
    code(x.id),
    x.severity.toLowerCase(),
    code(x.pkgName),
    x.installedVersion === "" ? "—" : code(x.installedVersion),
    x.fixedVersion === "" ? "—" : code(x.fixedVersion),
  ];
  return foldable(
    `Vulnerabilities on ${text(platform)}: ${diff.new.length} new, ${diff.fixed.length} fixed`,
    ["change", "vulnerability", "severity", "package", "installed", "fixed in"],
    [...diff.new.map((x) => row("new", x)), ...diff.fixed.map((x) => row("fixed", x))],
  );
}

function platformSection(review: Review, p: PlatformReview): string {
  const rows: Array<[string, string]> = [];
  const cur = p.current;
  const cand = p.candidate;
  if (cand.buildError !== undefined) {
    rows.push([
      "build",
      `❌ failed at stage ${code(cand.buildError.stage)}, step ${code(cand.buildError.step)}`,
    ]);
  }
  if (cur !== undefined || cand.digest !== undefined) {
    const now = cur === undefined ? undefined : code(shortDigest(cur.digest));
    const next = cand.digest === undefined ? undefined : code(shortDigest(cand.digest));
    rows.push([
      "digest",
      now === undefined
        ? `${next} (new platform)`
        : next === undefined
          ? `${now} → ${cand.buildError === undefined ? "unknown" : "not built"}`
          : cur?.digest === cand.digest
            ? `${now} (unchanged)`
            : `${now} → ${next}`,
    ]);
  }
  const size = sizeChange(cur?.sizeBytes, cand.sizeBytes);
  if (size !== undefined) rows.push(["size", size]);
  const layers = countChange(cur?.layers, cand.layers);
  if (layers !== undefined) rows.push(["layers", layers]);
  if (isUnavailable(p.packages))
    rows.push(["packages", `unavailable: ${text(p.packages.unavailable)}`]);
  else rows.push(["packages", isEmptyDiff(p.packages) ? "unchanged" : packageCounts(p.packages)]);
  if (p.vulnerabilities !== undefined) {
    rows.push([
      "vulnerabilities",
      isUnavailable(p.vulnerabilities)
        ? `unavailable: ${text(p.vulnerabilities.unavailable)}`
        : vulnSummary(p.vulnerabilities),
    ]);
  }
  const candGates = platformGates(cand.gates, review.gates.candidate, p.platform);
  if (candGates !== undefined && candGates.checks.length > 0) {
    const curGates = platformGates(cur?.gates, review.gates.current, p.platform);
    const hasCurrent = curGates !== undefined && curGates.checks.length > 0;
    const changes = gateChanges(hasCurrent ? curGates : undefined, candGates);
    rows.push([
      "gates",
      changes.length > 0
        ? changes.map((c) => gateChangeText(c, hasCurrent)).join(", ")
        : hasCurrent
          ? "unchanged"
          : "all passed",
    ]);
  }

  const parts = [
    [
      `| ${text(p.platform)} | now → after merge |`,
      "|---|---|",
      ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    ].join("\n"),
  ];
  if (!isUnavailable(p.packages) && !isEmptyDiff(p.packages))
    parts.push(packageTable(p.platform, p.packages));
  const vulns = p.vulnerabilities;
  if (vulns !== undefined && !isUnavailable(vulns) && vulns.new.length + vulns.fixed.length > 0) {
    parts.push(vulnTable(p.platform, vulns));
  }
  return parts.join("\n\n");
}

function buildFailure(p: PlatformReview): string | undefined {
  const e = p.candidate.buildError;
  if (e === undefined) return undefined;
  const lines = e.tail.replace(/\s+$/, "").split(/\r?\n/);
  const shown = lines.slice(-MAX_TAIL_LINES).join("\n");
  const head = `**Build failed on ${code(p.platform)}** at stage ${code(e.stage)}, step ${code(e.step)}`;
  if (shown === "") return `${head}.`;
  const cut =
    lines.length > MAX_TAIL_LINES ? ` (last ${MAX_TAIL_LINES} of ${lines.length} lines)` : "";
  return `${head}${cut}:\n\n${fenced(shown)}`;
}

function verdict(review: Review): string {
  const gates = review.gates.candidate;
  const broken = review.platforms
    .filter((p) => p.candidate.buildError !== undefined)
    .map((p) => code(p.platform));
  const failed = checksWithStatus(gates, "failed").map(code);
  const extras: string[] = [];
  const waived = Object.entries(gates.waived ?? {});
  if (waived.length > 0) {
    extras.push(
      `Waived: ${waived.map(([n, r]) => (r === "" ? code(n) : `${code(n)} (${text(r)})`)).join(", ")}.`,
    );
  }
  if (gates.notRun.length > 0) extras.push(`Not run: ${gates.notRun.map(code).join(", ")}.`);
  const tail = extras.length > 0 ? ` ${extras.join(" ")}` : "";
  if (broken.length === 0 && gates.passed)
    return `✅ **The merge's deploy would pass the gates.**${tail}`;
  const reasons: string[] = [];
  if (broken.length > 0) reasons.push(`the build fails on ${broken.join(", ")}`);
  if (failed.length > 0) reasons.push(`gates fail: ${failed.join(", ")}`);
  else if (!gates.passed) reasons.push("the gates did not pass");
  return `❌ **The merge's deploy would fail:** ${reasons.join("; ")}.${tail}`;
}

function tagsSection(review: Review): string | undefined {
  if (review.tagsToMove.length === 0) return undefined;
  const withNew = review.tagsToMove.some((t) => t.newDigest !== undefined);
  const header = withNew
    ? "| tag | points at now | after merge |\n|---|---|---|"
    : "| tag | points at now |\n|---|---|";
  const rows = review.tagsToMove.map((t) => {
    const now = t.currentDigest === undefined ? "(new tag)" : code(shortDigest(t.currentDigest));
    if (!withNew) return `| ${code(t.tag)} | ${now} |`;
    return `| ${code(t.tag)} | ${now} | ${t.newDigest === undefined ? "—" : code(shortDigest(t.newDigest))} |`;
  });
  return `**Tags a merge would move**\n\n${header}\n${rows.join("\n")}`;
}

function previewSection(preview: string | undefined): string | undefined {
  const body = (preview ?? "").replace(/\s+$/, "");
  if (body.trim() === "") return undefined;
  const shown =
    body.length > MAX_PREVIEW_CHARS
      ? `${body.slice(0, MAX_PREVIEW_CHARS)}\n… (${body.length - MAX_PREVIEW_CHARS} more characters)`
      : body;
  return `<details><summary>Pulumi preview</summary>\n\n${fenced(shown)}\n\n</details>`;
}

/** The review as the PR comment's Markdown. */
export function renderMarkdown(review: Review): string {
  const sections: string[] = [];
  sections.push(
    `${reviewMarker(review.stack)}\n### Image review: ${code(review.stack)} · ${code(review.imageName)}`,
  );
  const lines = [verdict(review)];
  const shared = sharedChecks(review.gates.candidate);
  if (review.gates.current !== undefined && shared.checks.length > 0) {
    const changes = gateChanges(sharedChecks(review.gates.current), shared);
    if (changes.length > 0)
      lines.push(`Gates changed: ${changes.map((c) => gateChangeText(c)).join(", ")}.`);
  }
  if (review.forks === true) {
    lines.push(
      `ℹ️ Pull request from a fork: the evidence was built without secrets and nothing was pushed.${review.preview === undefined ? " The Pulumi preview needs secrets and is not shown." : ""}`,
    );
  }
  sections.push(lines.join("\n"));
  for (const p of review.platforms) sections.push(platformSection(review, p));
  for (const p of review.platforms) {
    const failure = buildFailure(p);
    if (failure !== undefined) sections.push(failure);
  }
  const tags = tagsSection(review);
  if (tags !== undefined) sections.push(tags);
  const preview = previewSection(review.preview);
  if (preview !== undefined) sections.push(preview);
  return `${sections.join("\n\n")}\n`;
}

/** The review as JSON (two-space indent, trailing newline), e.g. for an artifact. */
export function renderJson(review: Review): string {
  return `${JSON.stringify(review, null, 2)}\n`;
}
