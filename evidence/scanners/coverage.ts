// Coverage of the app, measured inside the build from the same source revision as the image: the
// Dockerfile's `coverage` stage runs the app's tests on $BUILDPLATFORM and keeps only
// coverage-summary.json in a FROM-scratch image, pushed by digest beside the platform images. The
// evidence reads it back from the registry, so a rerun on a fresh clone finds the same numbers.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type CoverageMeasurement, type Measured, measured, notRun } from "../gates";
import { errMessage, execTool, lastLines } from "../exec";
import { type RegistryAuth, crane } from "../oci";

/** The file the coverage stage leaves at the image's root. */
export const COVERAGE_SUMMARY_FILE = "coverage-summary.json";

/** Lines, branches and functions from an istanbul/c8 `json-summary` report. */
export function parseCoverageSummary(text: string, where: string): Measured<CoverageMeasurement> {
  let summary: { total?: Record<string, { pct?: unknown }> };
  try {
    summary = JSON.parse(text) as typeof summary;
  } catch (e) {
    return notRun(`coverage summary ${where} is not JSON: ${errMessage(e)}`);
  }
  const pct = (k: string): number | undefined => {
    const v = summary.total?.[k]?.pct;
    return typeof v === "number" && Number.isFinite(v) ? v : undefined;
  };
  const lines = pct("lines");
  const branches = pct("branches");
  const functions = pct("functions");
  if (lines === undefined || branches === undefined || functions === undefined) {
    return notRun(`coverage summary ${where} lacks total.lines/branches/functions.pct`);
  }
  return measured({ lines, branches, functions });
}

export function readCoverageFile(summaryPath: string): Measured<CoverageMeasurement> {
  if (!fs.existsSync(summaryPath)) return notRun(`coverage summary ${summaryPath} not found`);
  return parseCoverageSummary(fs.readFileSync(summaryPath, "utf8"), summaryPath);
}

/** Reads the summary out of the coverage image (`ref@digest`) in the registry. */
export async function readCoverageImage(opts: {
  ref: string;
  auth: RegistryAuth;
  outDir: string;
}): Promise<Measured<CoverageMeasurement>> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "if-coverage-"));
  try {
    const tarPath = path.join(tmp, "fs.tar");
    await crane(opts.auth, ["export", opts.ref, tarPath]);
    const r = await execTool("tar", ["-xf", tarPath, "-C", tmp, COVERAGE_SUMMARY_FILE], {
      timeoutMs: 60_000,
    });
    if (r.code !== 0)
      return notRun(
        `coverage image ${opts.ref} holds no ${COVERAGE_SUMMARY_FILE}: ${lastLines(r.stderr, 2)}`,
      );
    fs.mkdirSync(opts.outDir, { recursive: true });
    const kept = path.join(opts.outDir, COVERAGE_SUMMARY_FILE);
    fs.copyFileSync(path.join(tmp, COVERAGE_SUMMARY_FILE), kept);
    return readCoverageFile(kept);
  } catch (e) {
    return notRun(`coverage image ${opts.ref} could not be read: ${errMessage(e)}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
