// What one bench run is: the scenarios, the two paths, their sequential segments, the goals, and
// the statistics over rounds. Pure, like the rest of the report (test/unit/bench.test.ts).

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

/** Seconds by name. */
export type Timings = Record<string, number>;

export interface RunRecord {
  round: number;
  scenario: Scenario;
  path: PathName;
  startedAt: string;
  wallSeconds: number;
  /** CPU seconds the whole machine was busy during the run (monitor.cpuBusySeconds): with
   *  `nproc` cores, no schedule of the same work can take less wall time than this ÷ nproc. */
  cpuSeconds?: number;
  /** The same CPU by component, as sampled (cpuProfile.ts: approximate, a breakdown of the above). */
  cpuBy?: Timings;
  /** Sequential segments adding up to the wall time (FACTORY_SEGMENTS or PEER_SEGMENTS). */
  segments: Timings;
  /** Concurrent or finer figures: each platform's build, each tool per platform, … */
  detail: Timings;
  /** Images built (docker-build Image resources created or updated; the peer: 1 buildx build). */
  builds: number;
  /** Scans run (the Scans resource created or updated; the peer: scanner invocations). */
  scans: number;
  /** Build records the bench's buildkitd added during the run. */
  buildkitRecords?: number;
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

/** The median-round run of one scenario on one path. */
export function medianOf(
  runs: RunRecord[],
  scenario: Scenario,
  path: PathName,
): RunRecord | undefined {
  return medianRun(runs.filter((x) => x.scenario === scenario && x.path === path));
}
