// Pure parts of `npm run bench` (scripts/bench.ts): statistics, the factory's phases from a Pulumi
// event log, the goals, the Markdown tables, the SVG chart and the README blocks. No I/O here, so
// test/unit/bench.test.ts checks them on fixed inputs.

export const SCENARIOS = ["cold", "source", "deps", "noop"] as const;
export type Scenario = (typeof SCENARIOS)[number];
export type PathName = "factory" | "peer";

export const SCENARIO_TITLES: Record<Scenario, string> = {
  cold: "cold (empty BuildKit state, fresh repositories)",
  source: "warm, one line of app/src changed",
  deps: "warm, pino patch bump (package.json + lock)",
  noop: "no-op (nothing changed)",
};

/** Median-ratio goals (factory / peer). The no-op is judged against the peer's warm source run. */
export const GOALS: Record<Scenario, number> = { cold: 1.1, source: 0.5, deps: 0.7, noop: 0.3 };

/** Sequential segments of one factory run, in order; they add up to its wall time. */
export const FACTORY_SEGMENTS = ["start", "build", "evidence", "publish", "finish"] as const;
export type FactorySegment = (typeof FACTORY_SEGMENTS)[number];
export const FACTORY_SEGMENT_TITLES: Record<FactorySegment, string> = {
  start: "engine start (local.sh, CLI, program)",
  build: "builds (platforms + coverage)",
  evidence: "evidence (scans, gates)",
  publish: "publish (index, signing, tags)",
  finish: "engine finish, outputs",
};
export const PEER_SEGMENTS = ["build", "syft", "trivy"] as const;
export type PeerSegment = (typeof PEER_SEGMENTS)[number];
export const PEER_SEGMENT_TITLES: Record<PeerSegment, string> = {
  build: "buildx build --push (3 platforms)",
  syft: "Syft SPDX, per platform",
  trivy: "Trivy secret/misconfig, per platform",
};

export interface RunRecord {
  round: number;
  scenario: Scenario;
  path: PathName;
  wallSeconds: number;
  /** Sequential segments adding up to the wall time (FACTORY_SEGMENTS or PEER_SEGMENTS). */
  segments: Record<string, number>;
  /** Concurrent or finer figures: each platform's build, each tool per platform, … */
  detail: Record<string, number>;
  /** Images built (docker-build Image resources created or updated; the peer: 1 buildx build). */
  builds: number;
  /** Evidence runs (the Evidence resource created or updated; the peer: scanner invocations). */
  scans: number;
  /** Build records the bench's buildkitd added during the run. */
  buildkitRecords?: number;
  startedAt: string;
}

export interface Stats {
  min: number;
  median: number;
  max: number;
  n: number;
}

export function stats(values: number[]): Stats {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN, n: 0 };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], median, max: s[s.length - 1], n: s.length };
}

/** The run whose wall time is the median one (the lower middle for an even count): its phases
 *  are the ones shown, since medians of parts do not add up to the median of the whole. */
export function medianRun(runs: RunRecord[]): RunRecord | undefined {
  if (runs.length === 0) return undefined;
  const s = [...runs].sort((a, b) => a.wallSeconds - b.wallSeconds);
  return s[Math.floor((s.length - 1) / 2)];
}

// ---- Pulumi event log ---------------------------------------------------------------------------

export interface EngineEventLine {
  /** When the bench read the line (ms since the epoch); Pulumi's own `timestamp` is whole seconds. */
  at: number;
  event: {
    sequence?: number;
    timestamp?: number;
    resourcePreEvent?: { metadata?: { op?: string; urn?: string; type?: string } };
    resOutputsEvent?: { metadata?: { op?: string; urn?: string; type?: string } };
    resOpFailedEvent?: { metadata?: { op?: string; urn?: string; type?: string } };
    summaryEvent?: unknown;
  };
}

export interface ResourceSpan {
  urn: string;
  type: string;
  name: string;
  op: string;
  start: number;
  end?: number;
}

/** Resource spans (pre event → outputs event) from the event log, in start order. */
export function resourceSpans(lines: EngineEventLine[]): ResourceSpan[] {
  const byUrn = new Map<string, ResourceSpan>();
  for (const { at, event } of lines) {
    const pre = event.resourcePreEvent?.metadata;
    if (pre?.urn !== undefined && !byUrn.has(pre.urn)) {
      byUrn.set(pre.urn, {
        urn: pre.urn,
        type: pre.type ?? "",
        name: pre.urn.split("::").pop() ?? pre.urn,
        op: pre.op ?? "",
        start: at,
      });
    }
    const out = event.resOutputsEvent?.metadata ?? event.resOpFailedEvent?.metadata;
    const span = out?.urn !== undefined ? byUrn.get(out.urn) : undefined;
    if (span !== undefined && span.end === undefined) span.end = at;
  }
  return [...byUrn.values()].sort((a, b) => a.start - b.start);
}

export const IMAGE_TYPE = "docker-build:index:Image";
export const INDEX_TYPE = "docker-build:index:Index";
export const EVIDENCE_TYPE = "pulumi-nodejs:dynamic/supplychain:Evidence";
export const TAGS_TYPE = "pulumi-nodejs:dynamic/publication:Tags";
const DID_WORK = new Set(["create", "update", "replace", "create-replacement"]);

export interface FactoryTimeline {
  segments: Record<FactorySegment, number>;
  detail: Record<string, number>;
  builds: number;
  scans: number;
}

/**
 * Splits one factory run (from `startMs` to `endMs`, the wall time of scripts/local.sh up) into
 * sequential segments at these boundaries, each clamped to be no earlier than the one before:
 * the first registration of a resource other than the stack and providers (engine start), the end
 * of the last Image (builds), the end of the Evidence (evidence), the end of the Index and Tags
 * (publish), the end of the command (finish). Detail: each Image's, the Evidence's, the Index's
 * and the Tags' own durations.
 */
export function factoryTimeline(
  lines: EngineEventLine[],
  startMs: number,
  endMs: number,
): FactoryTimeline {
  const spans = resourceSpans(lines);
  const isWork = (s: ResourceSpan): boolean =>
    s.type !== "pulumi:pulumi:Stack" && !s.type.startsWith("pulumi:providers:");
  const images = spans.filter((s) => s.type === IMAGE_TYPE);
  const evidence = spans.filter((s) => s.type === EVIDENCE_TYPE);
  const publish = spans.filter((s) => s.type === INDEX_TYPE || s.type === TAGS_TYPE);
  const lastEnd = (xs: ResourceSpan[]): number | undefined =>
    xs.length === 0 ? undefined : Math.max(...xs.map((s) => s.end ?? s.start));
  const firstWork = spans.find(isWork)?.start;
  const bounds = [
    startMs,
    firstWork ?? startMs,
    lastEnd(images),
    lastEnd(evidence),
    lastEnd(publish),
    endMs,
  ];
  const clamped: number[] = [];
  for (const b of bounds) {
    const prev = clamped.length === 0 ? startMs : clamped[clamped.length - 1];
    clamped.push(Math.min(endMs, Math.max(prev, b ?? prev)));
  }
  const segments = Object.fromEntries(
    FACTORY_SEGMENTS.map((name, i) => [name, (clamped[i + 1] - clamped[i]) / 1000]),
  ) as Record<FactorySegment, number>;
  const detail: Record<string, number> = {};
  for (const s of [...images, ...evidence, ...publish]) {
    if (s.end !== undefined)
      detail[`${s.type.split(":").pop()} ${s.name}`] = (s.end - s.start) / 1000;
  }
  return {
    segments,
    detail,
    builds: images.filter((s) => DID_WORK.has(s.op)).length,
    scans: evidence.filter((s) => DID_WORK.has(s.op)).length,
  };
}

// ---- Results -----------------------------------------------------------------------------------

export interface ScenarioResult {
  scenario: Scenario;
  factory: Stats;
  peer: Stats;
  /** factory median / reference median (the peer's same scenario; the no-op: the peer's warm source). */
  ratio: number;
  reference: string;
  goal: number;
  met: boolean;
  /** Why the goal is not met besides the ratio (the no-op built or scanned). */
  problems: string[];
}

export function judge(runs: RunRecord[], scenarios: readonly Scenario[]): ScenarioResult[] {
  const walls = (s: Scenario, p: PathName): number[] =>
    runs.filter((r) => r.scenario === s && r.path === p).map((r) => r.wallSeconds);
  return scenarios.map((scenario) => {
    const factory = stats(walls(scenario, "factory"));
    const peer = stats(walls(scenario, "peer"));
    const refScenario: Scenario = scenario === "noop" ? "source" : scenario;
    const reference = stats(walls(refScenario, "peer"));
    const ratio = factory.median / reference.median;
    const goal = GOALS[scenario];
    const problems: string[] = [];
    if (scenario === "noop") {
      for (const r of runs.filter((x) => x.scenario === "noop" && x.path === "factory")) {
        if (r.builds !== 0) problems.push(`round ${r.round}: ${r.builds} image build(s)`);
        if (r.scans !== 0) problems.push(`round ${r.round}: ${r.scans} evidence run(s)`);
        if ((r.buildkitRecords ?? 0) !== 0)
          problems.push(`round ${r.round}: ${r.buildkitRecords} BuildKit build record(s)`);
      }
    }
    if (!Number.isFinite(ratio)) problems.push("no measurement");
    return {
      scenario,
      factory,
      peer,
      ratio,
      reference: scenario === "noop" ? "peer warm source" : "peer",
      goal,
      met: Number.isFinite(ratio) && ratio <= goal && problems.length === 0,
      problems,
    };
  });
}

// ---- Markdown ----------------------------------------------------------------------------------

const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : "–");
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : "–");
const triple = (s: Stats): string => `${f1(s.min)} / **${f1(s.median)}** / ${f1(s.max)}`;

export function resultsTable(results: ScenarioResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${SCENARIO_TITLES[r.scenario]} | ${triple(r.factory)} | ${triple(r.peer)} | **${f2(r.ratio)}**${r.scenario === "noop" ? " (of the peer's warm source)" : ""} | ≤ ${r.goal} | ${r.met ? "met" : `**not met**${r.problems.length > 0 ? ` (${r.problems.join("; ")})` : ""}`} |`,
  );
  return [
    "| scenario | factory s (min / median / max) | peer s (min / median / max) | factory/peer | goal | |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** The median round's segments and details for each scenario, both paths. */
export function phasesTable(runs: RunRecord[], scenarios: readonly Scenario[]): string {
  const out = ["| scenario | path | wall s | phases (s) | detail (s) |", "|---|---|---|---|---|"];
  for (const scenario of scenarios) {
    for (const p of ["factory", "peer"] as const) {
      const r = medianRun(runs.filter((x) => x.scenario === scenario && x.path === p));
      if (r === undefined) continue;
      const titles: Record<string, string> =
        p === "factory" ? FACTORY_SEGMENT_TITLES : PEER_SEGMENT_TITLES;
      const segs = Object.entries(r.segments)
        .map(([k, v]) => `${titles[k] ?? k} ${f1(v)}`)
        .join("; ");
      const detail = Object.entries(r.detail)
        .map(([k, v]) => `${k} ${f1(v)}`)
        .join("; ");
      const counts = p === "factory" ? ` (builds ${r.builds}, evidence runs ${r.scans})` : "";
      out.push(`| ${scenario} | ${p}${counts} | ${f1(r.wallSeconds)} | ${segs} | ${detail} |`);
    }
  }
  return out.join("\n");
}

export interface EmulationResult {
  platform: string;
  /** Wall seconds of each timed build. */
  walls: number[];
  /** Seconds of the `npm ci` step in each build (from BuildKit's plain progress). */
  npmCi: number[];
}

export function emulationTable(rows: EmulationResult[]): string {
  const native = rows.find((r) => r.platform === "linux/amd64");
  const nativeWall = native === undefined ? NaN : stats(native.walls).median;
  const nativeNpm = native === undefined ? NaN : stats(native.npmCi).median;
  const out = [
    "| platform | how | build s (median) | npm ci step s (median) | build ÷ amd64 | npm ci ÷ amd64 |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const w = stats(r.walls).median;
    const n = stats(r.npmCi).median;
    out.push(
      `| ${r.platform} | ${r.platform === "linux/amd64" ? "native" : "QEMU"} | ${f1(w)} | ${f1(n)} | ${f2(w / nativeWall)} | ${f2(n / nativeNpm)} |`,
    );
  }
  return out.join("\n");
}

export interface ToolBuild {
  tool: string;
  version: string;
  source: string;
  seconds?: number;
  /** Where the figure comes from (the build-seconds file), or why there is none. */
  note: string;
}

export function toolsTable(tools: ToolBuild[]): string {
  const out = ["| tool | version | source | cold build, 2 cores |", "|---|---|---|---|"];
  for (const t of tools)
    out.push(
      `| ${t.tool} | ${t.version} | ${t.source} | ${t.seconds === undefined ? t.note : `${t.seconds} s`} |`,
    );
  return out.join("\n");
}

// ---- SVG ---------------------------------------------------------------------------------------

const FACTORY_COLOURS: Record<FactorySegment, string> = {
  start: "#9ecae1",
  build: "#3182bd",
  evidence: "#31a354",
  publish: "#fd8d3c",
  finish: "#bdbdbd",
};
const PEER_COLOURS: Record<PeerSegment, string> = {
  build: "#636363",
  syft: "#969696",
  trivy: "#cccccc",
};

function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** One bar group per scenario: the factory's median round stacked by segment, the peer's beside. */
export function benchSvg(runs: RunRecord[], results: ScenarioResult[], caption: string): string {
  const groups = results.map((r) => ({
    result: r,
    factory: medianRun(runs.filter((x) => x.scenario === r.scenario && x.path === "factory")),
    peer: medianRun(runs.filter((x) => x.scenario === r.scenario && x.path === "peer")),
  }));
  const maxWall = Math.max(
    1,
    ...groups.flatMap((g) => [g.factory?.wallSeconds ?? 0, g.peer?.wallSeconds ?? 0]),
  );
  const step = maxWall > 200 ? 50 : maxWall > 80 ? 20 : maxWall > 40 ? 10 : 5;
  const top = Math.ceil(maxWall / step) * step;
  const W = 820;
  const H = 440;
  const left = 60;
  const right = 220;
  const plotTop = 50;
  const plotBottom = H - 70;
  const plotH = plotBottom - plotTop;
  const groupW = (W - left - right) / Math.max(1, groups.length);
  const barW = Math.min(46, groupW / 3);
  const y = (v: number): number => plotBottom - (v / top) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(
    `<text x="${left}" y="22" font-size="15" font-weight="bold">pulumi up (factory) vs the seed's buildx + Syft + Trivy pipeline (peer), wall seconds</text>`,
  );
  parts.push(`<text x="${left}" y="40" fill="#555">${esc(caption)}</text>`);
  for (let v = 0; v <= top; v += step) {
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v}</text>`,
    );
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotBottom}" stroke="#333"/>`);
  parts.push(
    `<line x1="${left}" x2="${W - right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`,
  );
  const stack = (
    x: number,
    run: RunRecord | undefined,
    order: readonly string[],
    colours: Record<string, string>,
    label: string,
  ): void => {
    if (run === undefined) return;
    let acc = 0;
    for (const seg of order) {
      const v = run.segments[seg] ?? 0;
      if (v <= 0) continue;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(acc + v).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(acc) - y(acc + v)).toFixed(1)}" fill="${colours[seg]}"><title>${esc(`${label} ${seg}: ${v.toFixed(1)} s`)}</title></rect>`,
      );
      acc += v;
    }
    parts.push(
      `<text x="${(x + barW / 2).toFixed(1)}" y="${(y(run.wallSeconds) - 4).toFixed(1)}" text-anchor="middle">${run.wallSeconds.toFixed(1)}</text>`,
    );
    parts.push(
      `<text x="${(x + barW / 2).toFixed(1)}" y="${plotBottom + 14}" text-anchor="middle" fill="#555">${label}</text>`,
    );
  };
  groups.forEach((g, i) => {
    const gx = left + i * groupW + (groupW - 2 * barW - 8) / 2;
    stack(gx, g.factory, FACTORY_SEGMENTS, FACTORY_COLOURS, "factory");
    stack(gx + barW + 8, g.peer, PEER_SEGMENTS, PEER_COLOURS, "peer");
    const cx = left + i * groupW + groupW / 2;
    parts.push(
      `<text x="${cx.toFixed(1)}" y="${plotBottom + 32}" text-anchor="middle" font-weight="bold">${g.result.scenario}</text>`,
    );
    const verdict = `${Number.isFinite(g.result.ratio) ? g.result.ratio.toFixed(2) : "–"} (goal ≤ ${g.result.goal}${g.result.scenario === "noop" ? " of peer source" : ""})`;
    parts.push(
      `<text x="${cx.toFixed(1)}" y="${plotBottom + 48}" text-anchor="middle" fill="${g.result.met ? "#1a7f37" : "#cf222e"}">${esc(verdict)}</text>`,
    );
  });
  let ly = plotTop;
  const legend = (colour: string, text: string): void => {
    parts.push(`<rect x="${W - right + 16}" y="${ly}" width="12" height="12" fill="${colour}"/>`);
    parts.push(`<text x="${W - right + 34}" y="${ly + 10}">${esc(text)}</text>`);
    ly += 18;
  };
  parts.push(`<text x="${W - right + 16}" y="${ly - 6}" font-weight="bold">factory</text>`);
  ly += 4;
  for (const s of FACTORY_SEGMENTS) legend(FACTORY_COLOURS[s], FACTORY_SEGMENT_TITLES[s]);
  ly += 14;
  parts.push(`<text x="${W - right + 16}" y="${ly - 6}" font-weight="bold">peer</text>`);
  ly += 4;
  for (const s of PEER_SEGMENTS) legend(PEER_COLOURS[s], PEER_SEGMENT_TITLES[s]);
  parts.push(`</svg>`);
  return parts.join("\n") + "\n";
}

// ---- README blocks -----------------------------------------------------------------------------

/** Replaces the text between `<!-- <name>:start -->` and `<!-- <name>:end -->` (markers kept). */
export function replaceBlock(text: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < 0 || j < i) throw new Error(`README.md has no ${start} … ${end} block`);
  return `${text.slice(0, i + start.length)}\n${body.trim()}\n${text.slice(j)}`;
}
