// The rounds: each path runs its scenarios in order on a fresh daemon state, the path order
// alternating between rounds so that neither always runs on a machine the other just warmed.
import * as fs from "fs";
import * as path from "path";
import type { BenchDaemon } from "./daemon";
import { CpuSampler } from "./cpuProfile";
import { FactoryPath } from "./factory";
import { say } from "./log";
import { machineCpuSeconds } from "./monitor";
import type { RunRecord } from "./model";
import type { Options } from "./options";
import { PeerPath } from "./peer";
import { applyScenario, type Manifests } from "./scenarios";

/** What every round of one bench shares. */
export interface Bench {
  id: string;
  sha: string;
  /** The commit's date, the peer's CREATED label. */
  created: string;
  platforms: string[];
  daemon: BenchDaemon;
  base: Manifests;
  bumped: Manifests;
  peerDockerConfig: string;
  sslBundle: string;
}

/** One round: its number and its work folder (logs, event logs, reports, the paths' app copies). */
export interface Round extends Bench {
  round: number;
  dir: string;
}

/** Every round's runs, in the order measured. `factories` gets each factory path as it is made,
 *  so that the caller removes their stacks even when a run fails. */
export async function runRounds(
  bench: Bench,
  opt: Pick<Options, "repeat" | "paths" | "scenarios">,
  benchDir: string,
  factories: FactoryPath[],
): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  for (let round = 1; round <= opt.repeat; round++) {
    const r: Round = { ...bench, round, dir: path.join(benchDir, `r${round}`) };
    fs.mkdirSync(r.dir, { recursive: true });
    const order = (
      round % 2 === 1 ? (["factory", "peer"] as const) : (["peer", "factory"] as const)
    ).filter((p) => opt.paths.includes(p));
    for (const which of order) {
      const runner = which === "factory" ? new FactoryPath(r) : new PeerPath(r);
      if (runner instanceof FactoryPath) factories.push(runner);
      for (const scenario of opt.scenarios) {
        if (scenario === "cold") await bench.daemon.fresh();
        applyScenario(
          scenario,
          runner.appDir,
          bench.bumped,
          `bench ${bench.id} round ${round} ${which}`,
        );
        say(`round ${round}/${opt.repeat}: ${which} ${scenario}`);
        const sampler = new CpuSampler();
        sampler.start();
        const cpu0 = machineCpuSeconds();
        let measured: RunRecord;
        try {
          measured = await runner.run(scenario);
        } finally {
          // A failed run must not leave the sampler reading /proc for the rest of the bench.
          sampler.pause();
        }
        const rec: RunRecord = {
          ...measured,
          cpuSeconds: Math.round((machineCpuSeconds() - cpu0) * 100) / 100,
          cpuBy: sampler.stop(),
        };
        runs.push(rec);
        say(
          `round ${round}/${opt.repeat}: ${which} ${scenario}: ${rec.wallSeconds.toFixed(1)} s, CPU ${(rec.cpuSeconds ?? NaN).toFixed(1)} s (builds ${rec.builds}, scans ${rec.scans}, BuildKit records ${rec.buildkitRecords ?? "?"})`,
        );
      }
    }
  }
  return runs;
}
