// A bench's summary and its outputs: the raw JSON (and latest.json), the Markdown report on
// stdout, docs/bench.svg and README.md's bench and tools blocks, and the exit code from the goals.
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../../test/e2e/lib";
import { type GoalVerdict, type ScenarioResult, cpuFloor } from "./judge";
import { say } from "./log";
import type { RunRecord } from "./model";
import type { LoadSummary, Machine } from "./monitor";
import type { Options } from "./options";
import { replaceBlock } from "./readme";
import { benchSvg } from "./svg";
import {
  type EmulationResult,
  type ToolBuild,
  cpuByTable,
  cpuTable,
  emulationTable,
  phasesTable,
  resultsTable,
  toolsBlock,
} from "./tables";

/** The raw JSON of one bench (`.local/bench/bench-<id>.json`), which `--from` renders again. */
export interface Summary {
  id: string;
  date: string;
  machine: Machine;
  load: LoadSummary & {
    atStart: number[];
    atEnd: number[];
    samples: number;
    /** Set by `--from` when it took the launcher out: the count is then a lower bound. */
    foreignAtLeast?: boolean;
  };
  options: Options;
  goals: GoalVerdict[];
  results: ScenarioResult[];
  runs: RunRecord[];
  emulation: EmulationResult[];
  tools: ToolBuild[];
  /** When `--from` rendered it again. */
  rendered?: string;
}

export type RenderOptions = Pick<Options, "out" | "readme" | "dry">;

/** Markdown on stdout, the raw JSON, the SVG and (unless --no-readme/--dry) README.md's blocks and
 *  docs/bench.svg; the exit code from the goals. */
export function render(summary: Summary, opt: RenderOptions): number {
  const jsonFile = path.join(opt.out, `bench-${summary.id}.json`);
  fs.mkdirSync(opt.out, { recursive: true });
  fs.writeFileSync(jsonFile, JSON.stringify(summary, null, 2) + "\n");
  fs.copyFileSync(jsonFile, path.join(opt.out, "latest.json"));

  const svg = benchSvg(summary.runs, summary.results, caption(summary));
  const benchDir = path.join(REPO_ROOT, ".local", "bench", summary.id);
  if (fs.existsSync(benchDir)) fs.writeFileSync(path.join(benchDir, "bench.svg"), svg);
  const block = benchBlock(summary);
  const tools = toolsBlock(summary.tools);
  const report = [
    `# npm run bench ${summary.id}`,
    "",
    block,
    "",
    "Cold bootstrap per tool (build-seconds files in ~/.cache/image-factory):",
    "",
    tools,
    "",
  ].join("\n");
  process.stdout.write(report + "\n");

  if (opt.readme) {
    fs.writeFileSync(path.join(REPO_ROOT, "docs", "bench.svg"), svg);
    const readmeFile = path.join(REPO_ROOT, "README.md");
    const readme = fs.readFileSync(readmeFile, "utf8");
    fs.writeFileSync(
      readmeFile,
      replaceBlock(replaceBlock(readme, "bench", block), "tools", tools),
    );
    say("README.md (bench and tools blocks) and docs/bench.svg regenerated");
  }
  say(`raw figures: ${jsonFile}`);
  if (opt.dry) return 0;
  const failed = summary.results.filter((r) => !r.met);
  for (const f of failed) say(`goal not met: ${notMet(f, summary)}`);
  return failed.length > 0 ? 1 : 0;
}

/** Why a goal is not met, and whether this run's work could meet it on this machine at all. */
export function notMet(
  f: ScenarioResult,
  { runs, machine: m }: Pick<Summary, "runs" | "machine">,
): string {
  const c = cpuFloor(runs, f, m.nproc);
  const floor =
    c === undefined
      ? ""
      : c.floorRatio > f.goal
        ? `; its work cannot go below ${c.floorRatio.toFixed(2)} on ${m.nproc} cores (${c.factoryCpu.median.toFixed(1)} CPU s): the goal needs less work, not more overlap`
        : `; its work allows ${c.floorRatio.toFixed(2)} on ${m.nproc} cores: the goal needs more overlap`;
  return `${f.scenario}: ratio ${f.ratio.toFixed(2)} > ${f.goal}${f.problems.length > 0 ? ` (${f.problems.join("; ")})` : ""}${floor}`;
}

function machineLine({ machine: m }: Summary): string {
  return `${m.nproc} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}`;
}

/** The chart's caption: when, where, how many rounds, and the load. */
function caption(s: Summary): string {
  const { load } = s;
  return `${s.date.slice(0, 10)}, ${machineLine(s)}; ${s.options.repeat} round(s), median round shown; load 1-min ${load.atStart[0].toFixed(2)} at start, mean ${load.load1Mean.toFixed(2)}, max ${load.load1Max.toFixed(2)}`;
}

/** Whether other work shared the machine, and the most frequent of it. */
function overlap({ load }: Summary): string {
  if (!load.overlapped) return "no other work seen in any sample";
  const others = Object.entries(load.foreign)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([k, n]) => `${k} ×${n}`)
    .join(", ");
  return `other engineers' work overlapped in ${load.foreignAtLeast === true ? "at least " : ""}${load.foreignSamples} of ${load.samples} ten-second samples (${others})`;
}

/** README.md's bench block: the run, the chart, the results, the median round's phases and the
 *  emulation table. */
function benchBlock(s: Summary): string {
  const { id, date, load, options: o } = s;
  const cpu = cpuTable(s.runs, s.results, s.machine.nproc);
  const cpuBy = cpuByTable(s.runs, o.scenarios);
  return [
    `\`npm run bench\` run ${id} on ${date.slice(0, 16).replace("T", " ")} UTC: ${machineLine(s)}. ${o.repeat} round(s) per path and scenario, platforms ${o.platforms.join(", ")}; load (1-min) ${load.atStart[0].toFixed(2)} at the start, mean ${load.load1Mean.toFixed(2)}, max ${load.load1Max.toFixed(2)}; ${overlap(s)}. Raw figures: \`.local/bench/bench-${id}.json\`.`,
    "",
    "![factory vs peer](docs/bench.svg)",
    "",
    resultsTable(s.results),
    "",
    ...(cpu !== ""
      ? [
          `CPU: the machine's busy CPU seconds during each run (all processes: the engine, buildkitd's steps, the scanners, the registry), and the wall time no schedule of that work can beat on ${s.machine.nproc} cores:`,
          "",
          cpu,
          "",
        ]
      : []),
    ...(cpuBy !== ""
      ? [
          "Where that CPU went in each median round, by component (processes sampled ten times a second; a process's last tenth of a second before it exits is missed, hence the gap to the exact total):",
          "",
          cpuBy,
          "",
        ]
      : []),
    "Phases of the median round (the factory's segments add up to its wall time; details overlap, since platforms build and scan concurrently):",
    "",
    phasesTable(s.runs, o.scenarios),
    ...(s.emulation.length > 0
      ? [
          "",
          "Emulated vs native: the `deps` stage alone (`--target deps`, `npm ci --omit=dev`), not taken from cache (`--no-cache-filter deps`), on the bench's buildkitd; the stage as app/Dockerfile runs it (on amd64, for the target's CPU and C library) and moved onto the target platform (QEMU for arm, what a step that must run on the target costs without native hosts):",
          "",
          emulationTable(s.emulation),
        ]
      : []),
  ].join("\n");
}
