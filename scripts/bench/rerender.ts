// `--from <bench-<id>.json>`: renders a recorded run again after a fix to the report, with what
// later versions of the bench measure differently applied to the recorded figures.
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT } from "../../test/e2e/lib";
import { readEventLog } from "./eventLog";
import { judge, verdicts } from "./judge";
import { type RenderOptions, type Summary, render } from "./render";
import { recordSigning } from "./timeline";

/** The factory's signing time re-read from the run's event logs (when they were kept) and the
 *  bench's own launcher (npm, timeout) taken out of the overlap list, which older runs counted as
 *  other work; the goals judged again. The JSON is written back beside `file`. */
export function rerender(file: string, opt: RenderOptions): number {
  const summary = JSON.parse(fs.readFileSync(file, "utf8")) as Summary;
  for (const r of summary.runs) {
    if (r.path !== "factory") continue;
    const events = path.join(
      REPO_ROOT,
      ".local",
      "bench",
      summary.id,
      `r${r.round}`,
      `factory-${r.scenario}.events.jsonl`,
    );
    if (fs.existsSync(events)) recordSigning(r.detail, readEventLog(events));
  }
  withoutLauncher(summary.load);
  summary.results = judge(summary.runs, summary.options.scenarios);
  summary.goals = verdicts(summary.results);
  summary.rendered = new Date().toISOString();
  return render(summary, { ...opt, out: path.dirname(path.resolve(file)) });
}

function withoutLauncher(load: Summary["load"]): void {
  // Runs before this field: the launcher was in every sample, so the overlapping count was all of them.
  load.samples ??= load.foreignSamples;
  const own = (name: string): boolean => /^timeout |\bnpm run bench\b|bench\.ts/.test(name);
  const foreign = Object.fromEntries(Object.entries(load.foreign).filter(([k]) => !own(k)));
  if (Object.keys(foreign).length === Object.keys(load.foreign).length) return;
  load.foreign = foreign;
  // Per-sample data was not kept: the most frequent remaining process is a lower bound.
  load.foreignSamples = Math.max(0, ...Object.values(foreign));
  load.overlapped = load.foreignSamples > 0;
  load.foreignAtLeast = true;
}
