// A bench run record for the bench's unit tests: the given fields over a ten-second factory run
// of the source scenario that built and scanned nothing.
import type { RunRecord } from "../../scripts/bench/model";

export function record(over: Partial<RunRecord>): RunRecord {
  return {
    round: 1,
    scenario: "source",
    path: "factory",
    wallSeconds: 10,
    segments: {},
    detail: {},
    builds: 0,
    scans: 0,
    startedAt: "",
    ...over,
  };
}
