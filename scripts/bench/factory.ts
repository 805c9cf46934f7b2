// The factory's path: `pulumi up` through scripts/local.sh on a stack of its own per round, timed
// from its event log (phases, builds, scans) and the evidence engine's gate-results.json
// (each tool's own time), with the build records the bench's buildkitd added.
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT, TestStack, copyApp, factoryStackConfig, tail } from "../../test/e2e/lib";
import { EventLogWatcher } from "./eventLog";
import type { RunRecord, Scenario, Timings } from "./model";
import type { Round } from "./round";
import { writeManifests } from "./scenarios";
import { factoryTimeline, recordSigning } from "./timeline";

export class FactoryPath {
  readonly stack: TestStack;
  readonly appDir: string;
  readonly repository: string;
  private readonly evidenceDir: string;

  constructor(private readonly r: Round) {
    const name = `bench-${r.id}-r${r.round}`;
    this.repository = `image-factory/${name}`;
    const dir = path.join(r.dir, "factory");
    fs.mkdirSync(dir, { recursive: true });
    this.appDir = copyApp(path.join(dir, "app"));
    writeManifests(this.appDir, r.base);
    this.stack = new TestStack(name, {}, path.join(dir, "stack"));
    this.stack.setConfig({
      ...factoryStackConfig({
        repository: this.repository,
        appDir: this.appDir,
        sha: r.sha,
        platforms: r.platforms,
      }),
      "image-factory:buildHosts": { enabled: false, localBuilder: r.daemon.builder },
    });
    this.evidenceDir = path.join(REPO_ROOT, ".local", "evidence", name);
  }

  async run(scenario: Scenario): Promise<RunRecord> {
    const events = path.join(this.r.dir, `factory-${scenario}.events.jsonl`);
    fs.rmSync(events, { force: true });
    const gateFile = path.join(this.evidenceDir, "gate-results.json");
    const gateBefore = fs.existsSync(gateFile) ? fs.statSync(gateFile).mtimeMs : 0;
    const recordsBefore = await this.r.daemon.records();
    const watcher = new EventLogWatcher(events);
    watcher.start();
    const startedAt = new Date();
    const t0 = Date.now();
    const res = await this.stack.local(["up", "--event-log", events]);
    const t1 = Date.now();
    watcher.stop();
    fs.writeFileSync(
      path.join(this.r.dir, `factory-${scenario}.log`),
      `${res.stdout}\n${res.stderr}`,
    );
    if (res.code !== 0)
      throw new Error(
        `factory ${scenario} (round ${this.r.round}): scripts/local.sh up failed (exit ${res.code}):\n${tail(`${res.stdout}\n${res.stderr}`, 30)}`,
      );
    const timeline = factoryTimeline(watcher.lines, t0, t1);
    const detail: Timings = { ...timeline.detail };
    recordSigning(detail, watcher.lines);
    // Only a gate-results.json this run wrote: a run without evidence leaves the last one there.
    if (fs.existsSync(gateFile) && fs.statSync(gateFile).mtimeMs > gateBefore) {
      fs.copyFileSync(gateFile, path.join(this.r.dir, `factory-${scenario}.gate-results.json`));
      Object.assign(detail, evidenceTimings(gateFile));
    }
    return {
      round: this.r.round,
      scenario,
      path: "factory",
      wallSeconds: (t1 - t0) / 1000,
      segments: timeline.segments,
      detail,
      builds: timeline.builds,
      scans: timeline.scans,
      buildkitRecords: (await this.r.daemon.records()) - recordsBefore,
      startedAt: startedAt.toISOString(),
    };
  }

  remove(): void {
    this.stack.remove();
  }
}

/** The evidence engine's own timings (whole run, shared context, each tool per platform). */
function evidenceTimings(gateFile: string): Timings {
  const g = JSON.parse(fs.readFileSync(gateFile, "utf8")) as {
    seconds?: number;
    judgeSeconds?: number;
    contextSeconds?: Timings;
    platforms?: Record<string, { seconds?: Timings }>;
  };
  const out: Timings = {};
  if (g.seconds !== undefined) out["evidence engine total"] = g.seconds;
  if (g.judgeSeconds !== undefined) out["evidence judging"] = g.judgeSeconds;
  for (const [k, v] of Object.entries(g.contextSeconds ?? {})) out[`evidence ${k}`] = v;
  for (const [p, e] of Object.entries(g.platforms ?? {}))
    for (const [tool, s] of Object.entries(e.seconds ?? {})) out[`evidence ${tool} ${p}`] = s;
  return out;
}
