// The goals judged on the rounds: each scenario's median ratio factory/peer against GOALS, and a
// no-op that built or scanned anything fails whatever its time.
import { GOALS, type PathName, type RunRecord, type Scenario, type Stats, stats } from "./model";

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

/** What the JSON's `goals` keeps of a result. */
const VERDICT = ["scenario", "goal", "ratio", "met", "problems"] as const;
export type GoalVerdict = Pick<ScenarioResult, (typeof VERDICT)[number]>;

/** One figure of one scenario's runs on one path, over the runs that have it. */
function statsOf(
  runs: RunRecord[],
  scenario: Scenario,
  p: PathName,
  figure: (r: RunRecord) => number | undefined,
): Stats {
  return stats(
    runs.filter((r) => r.scenario === scenario && r.path === p).flatMap((r) => figure(r) ?? []),
  );
}

/** The peer's wall times a scenario is held against: its own, and for the no-op the warm source. */
function referenceWalls(runs: RunRecord[], scenario: Scenario): Stats {
  return statsOf(runs, scenario === "noop" ? "source" : scenario, "peer", (r) => r.wallSeconds);
}

export function judge(runs: RunRecord[], scenarios: readonly Scenario[]): ScenarioResult[] {
  const walls = (s: Scenario, p: PathName): Stats => statsOf(runs, s, p, (r) => r.wallSeconds);
  return scenarios.map((scenario) => {
    const factory = walls(scenario, "factory");
    const peer = walls(scenario, "peer");
    const reference = referenceWalls(runs, scenario);
    const ratio = factory.median / reference.median;
    const goal = GOALS[scenario];
    const problems = scenario === "noop" ? noopWork(runs) : [];
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

/** Whatever the factory's no-op runs built, scanned or asked BuildKit for. */
function noopWork(runs: RunRecord[]): string[] {
  const problems: string[] = [];
  for (const r of runs.filter((x) => x.scenario === "noop" && x.path === "factory")) {
    if (r.builds !== 0) problems.push(`round ${r.round}: ${r.builds} image build(s)`);
    if (r.scans !== 0) problems.push(`round ${r.round}: ${r.scans} evidence run(s)`);
    if ((r.buildkitRecords ?? 0) !== 0)
      problems.push(`round ${r.round}: ${r.buildkitRecords} BuildKit build record(s)`);
  }
  return problems;
}

export function verdicts(results: ScenarioResult[]): GoalVerdict[] {
  return results.map((r) => Object.fromEntries(VERDICT.map((k) => [k, r[k]])) as GoalVerdict);
}

/** What a scenario's work costs in CPU and the best ratio it allows: on `nproc` cores no schedule
 *  of the factory's median CPU seconds takes less wall time than them ÷ nproc. A floor above the
 *  goal means the goal needs less work, not better overlap. Undefined for runs recorded before the
 *  CPU was measured. */
export interface CpuFloor {
  factoryCpu: Stats;
  peerCpu: Stats;
  /** Seconds: the factory's median CPU ÷ nproc. */
  floor: number;
  /** The floor over the scenario's reference median (the ratio's denominator). */
  floorRatio: number;
}

export function cpuFloor(
  runs: RunRecord[],
  result: ScenarioResult,
  nproc: number,
): CpuFloor | undefined {
  const cpu = (p: PathName): Stats => statsOf(runs, result.scenario, p, (r) => r.cpuSeconds);
  const factoryCpu = cpu("factory");
  if (factoryCpu.n === 0) return undefined;
  const floor = factoryCpu.median / nproc;
  const reference = referenceWalls(runs, result.scenario).median;
  return { factoryCpu, peerCpu: cpu("peer"), floor, floorRatio: floor / reference };
}
