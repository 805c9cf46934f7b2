// Hadolint on the Dockerfile.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Finding } from "../gates";
import { execTool, lastLines, requireTool } from "../exec";

export interface HadolintResult {
  /** Findings at error or warning level: these fail the lint gate. */
  findings: Finding[];
  /** info/style findings, reported but not gating. */
  notes: Finding[];
  seconds: number;
}

/** Hadolint on a Dockerfile. Inline `# hadolint ignore=DLxxxx` comments (each with its
 *  justification) are honoured by Hadolint itself. */
export async function runHadolint(opts: {
  dockerfile: string;
  timeoutMs?: number;
}): Promise<HadolintResult> {
  const hadolint = requireTool("hadolint");
  if (!fs.existsSync(opts.dockerfile))
    throw new Error(`hadolint: Dockerfile ${opts.dockerfile} does not exist`);
  const r = await execTool(
    hadolint,
    ["--no-fail", "--no-color", "--format", "json", opts.dockerfile],
    { timeoutMs: opts.timeoutMs ?? 60_000 },
  );
  if (r.code !== 0) {
    throw new Error(
      `hadolint failed on ${opts.dockerfile}, exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`,
    );
  }
  const items = JSON.parse(r.stdout || "[]") as Array<{
    code: string;
    level: string;
    line: number;
    message: string;
    file: string;
  }>;
  const toFinding = (i: (typeof items)[number]): Finding => ({
    id: i.code,
    severity: i.level,
    message: i.message,
    where: `${path.basename(i.file)}:${i.line}`,
  });
  return {
    findings: items.filter((i) => i.level === "error" || i.level === "warning").map(toFinding),
    notes: items.filter((i) => i.level !== "error" && i.level !== "warning").map(toFinding),
    seconds: r.seconds,
  };
}
