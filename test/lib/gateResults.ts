// Gate results as evidence/run.ts returns them, for tests about what results are bound to (the
// digests, the repository, the commit) rather than about the checks themselves.
import type { BoundGateResults, GatesConfig, JudgedSubject } from "../../evidence/gates";

/** Results that passed with no check recorded, judged against `gates`, bound to `subject`. */
export function passedResults(gates: GatesConfig, subject: JudgedSubject): BoundGateResults {
  return {
    passed: true,
    checks: [],
    failed: [],
    notRun: [],
    waived: {},
    tools: {},
    gates,
    ...subject,
  };
}
