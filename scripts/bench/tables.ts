// The Markdown tables of the bench's report and README block: results against the goals, the
// median round's phases, emulated vs native builds, and each tool's cold bootstrap.
import {
  FACTORY_SEGMENT_TITLES,
  PEER_SEGMENT_TITLES,
  SCENARIO_TITLES,
  type RunRecord,
  type Scenario,
  type Stats,
  medianOf,
  stats,
} from "./model";
import { COMPONENTS } from "./cpuProfile";
import { type ScenarioResult, cpuFloor } from "./judge";

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

/** Each scenario's CPU and the floor it sets (judge.cpuFloor); empty for runs recorded before the
 *  CPU was measured. */
export function cpuTable(runs: RunRecord[], results: ScenarioResult[], nproc: number): string {
  const rows = results.flatMap((r) => {
    const c = cpuFloor(runs, r, nproc);
    if (c === undefined) return [];
    return [
      `| ${r.scenario} | ${f1(c.factoryCpu.median)} | ${f1(c.peerCpu.median)} | ${f2(c.factoryCpu.median / c.peerCpu.median)} | ${f1(c.floor)} | ${f2(c.floorRatio)} | ≤ ${r.goal} |`,
    ];
  });
  if (rows.length === 0) return "";
  return [
    `| scenario | factory CPU s (median) | peer CPU s (median) | CPU factory/peer | factory wall floor s (CPU ÷ ${nproc} cores) | best ratio that work allows | goal |`,
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}

/** The CPU of each scenario's median round by component (cpuProfile.ts), both paths. Empty for
 *  runs recorded before it was sampled. */
export function cpuByTable(runs: RunRecord[], scenarios: readonly Scenario[]): string {
  const cols = scenarios.flatMap((scenario) =>
    (["factory", "peer"] as const).flatMap((p) => {
      const r = medianOf(runs, scenario, p);
      return r?.cpuBy !== undefined ? [{ title: `${scenario} ${p}`, r, by: r.cpuBy }] : [];
    }),
  );
  if (cols.length === 0) return "";
  const used = COMPONENTS.filter((c) => cols.some((col) => (col.by[c] ?? 0) >= 0.05));
  const sum = (by: Record<string, number>): number => Object.values(by).reduce((a, b) => a + b, 0);
  return [
    `| CPU s | ${cols.map((c) => c.title).join(" | ")} |`,
    `|---|${cols.map(() => "---|").join("")}`,
    ...used.map((c) => `| ${c} | ${cols.map((col) => f1(col.by[c] ?? 0)).join(" | ")} |`),
    `| sampled total | ${cols.map((col) => f1(sum(col.by))).join(" | ")} |`,
    `| machine total (exact) | ${cols.map((col) => f1(col.r.cpuSeconds ?? NaN)).join(" | ")} |`,
  ].join("\n");
}

/** The median round's segments and details for each scenario, both paths. */
export function phasesTable(runs: RunRecord[], scenarios: readonly Scenario[]): string {
  const out = ["| scenario | path | wall s | phases (s) | detail (s) |", "|---|---|---|---|---|"];
  for (const scenario of scenarios) {
    for (const p of ["factory", "peer"] as const) {
      const r = medianOf(runs, scenario, p);
      if (r === undefined) continue;
      const titles: Record<string, string> =
        p === "factory" ? FACTORY_SEGMENT_TITLES : PEER_SEGMENT_TITLES;
      const segs = Object.entries(r.segments)
        .map(([k, v]) => `${titles[k] ?? k} ${f1(v)}`)
        .join("; ");
      const detail = Object.entries(r.detail)
        .map(([k, v]) => `${k} ${f1(v)}`)
        .join("; ");
      const counts = p === "factory" ? ` (builds ${r.builds}, scans ${r.scans})` : "";
      out.push(`| ${scenario} | ${p}${counts} | ${f1(r.wallSeconds)} | ${segs} | ${detail} |`);
    }
  }
  return out.join("\n");
}

/** Where the deps stage ran: on the build platform for the target (app/Dockerfile), or on the
 *  target platform itself (QEMU for arm). */
export type DepsStageOn = "cross" | "target";

export interface EmulationResult {
  platform: string;
  /** Runs recorded before the cross-install measured only the target. @default "target" */
  depsOn?: DepsStageOn;
  /** Wall seconds of each timed build. */
  walls: number[];
  /** Seconds of the `npm ci` step in each build (from BuildKit's plain progress). */
  npmCi: number[];
}

const DEPS_ON_TITLE: Record<DepsStageOn, (platform: string) => string> = {
  cross: () => "amd64, for the target (app/Dockerfile)",
  target: (p) => `the target${p === "linux/amd64" ? " (native)" : ", under QEMU"}`,
};

/** Each row against amd64's own row of the same kind (the native baseline). */
export function emulationTable(rows: EmulationResult[]): string {
  const on = (r: EmulationResult): DepsStageOn => r.depsOn ?? "target";
  const out = [
    "| platform | deps stage ran on | stage build s (median) | npm ci step s (median) | build ÷ amd64 | npm ci ÷ amd64 |",
    "|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const native = rows.find((x) => x.platform === "linux/amd64" && on(x) === on(r));
    const w = stats(r.walls).median;
    const n = stats(r.npmCi).median;
    const nw = native === undefined ? NaN : stats(native.walls).median;
    const nn = native === undefined ? NaN : stats(native.npmCi).median;
    out.push(
      `| ${r.platform} | ${DEPS_ON_TITLE[on(r)](r.platform)} | ${f1(w)} | ${f1(n)} | ${f2(w / nw)} | ${f2(n / nn)} |`,
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

/** The tools table with the total of the recorded builds (the README's tools block). */
export function toolsBlock(tools: ToolBuild[]): string {
  const recorded = tools.filter((t) => t.seconds !== undefined);
  const total = recorded.reduce((a, t) => a + (t.seconds ?? 0), 0);
  return `${toolsTable(tools)}\n\nThe ${recorded.length} recorded builds add up to ${(total / 60).toFixed(1)} min on this machine (\`npm run bench\` reads each tool's \`build-seconds\` file, written by its install script when it built the pinned version; some were built while other work ran).`;
}
