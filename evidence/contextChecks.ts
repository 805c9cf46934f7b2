// The checks an evidence run makes once, on the build rather than on an image: Hadolint on the
// Dockerfile, Trivy on the build context and the versions of the tools that measured, while the
// platform images are scanned; and, when judging, the coverage the build measured (evidence/run.ts).
import * as path from "node:path";
import { execTool, findTool } from "./exec";
import {
  type CoverageMeasurement,
  type Finding,
  type Measured,
  notRun,
  settle,
} from "./measurements";
import type { RegistryAuth } from "./oci";
import { readCoverageFile, readCoverageImage } from "./scanners/coverage";
import { runHadolint } from "./scanners/hadolint";
import { type TrivyConfigResult, runTrivyConfig, trivyVersion } from "./scanners/trivy";

export interface ContextChecksRequest {
  dockerfile: string;
  contextDir: string;
  reportDir: string;
  /** What the run's reader should know (Hadolint's notes) is added here. */
  notes: string[];
}

export interface ContextChecks {
  lint: Measured<Finding[]>;
  config: Measured<TrivyConfigResult>;
  tools: Record<string, string>;
  /** Seconds of each check. */
  seconds: Record<string, number>;
}

async function versionOf(tool: "hadolint" | "dive" | "syft"): Promise<string> {
  const bin = findTool(tool);
  if (bin === undefined) return "not installed";
  const r = await execTool(bin, ["--version"], { timeoutMs: 30_000 });
  return /v?(\d+\.\d+\.\d+)/.exec(r.stdout + r.stderr)?.[1] ?? "unknown";
}

export interface CoverageSource {
  /** `ref@digest` of the image the Dockerfile's coverage stage produced (read with `auth`), or */
  coverageImage?: string;
  /** a json-summary file on disk. */
  coverageSummaryPath?: string;
  reportDir: string;
  auth?: RegistryAuth;
}

/** The coverage the build measured, from its image or a summary file. */
export async function readCoverage(req: CoverageSource): Promise<Measured<CoverageMeasurement>> {
  if (req.coverageImage !== undefined && req.auth !== undefined)
    return readCoverageImage({ ref: req.coverageImage, auth: req.auth, outDir: req.reportDir });
  if (req.coverageSummaryPath !== undefined)
    return readCoverageFile(path.resolve(req.coverageSummaryPath));
  return notRun("no coverage measured: neither a coverage image nor a summary file was given");
}

/** Each check in turn (they share the machine with the platform scans); one failing leaves the
 *  others measured. */
export async function runContextChecks(req: ContextChecksRequest): Promise<ContextChecks> {
  const seconds: Record<string, number> = {};
  const timed = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      seconds[key] = (Date.now() - t) / 1000;
    }
  };
  const lint = await timed("hadolint", () =>
    settle(async () => {
      const h = await runHadolint({ dockerfile: req.dockerfile });
      if (h.notes.length > 0)
        req.notes.push(`hadolint notes: ${h.notes.map((n) => `${n.id} ${n.where}`).join(", ")}`);
      return h.findings;
    }),
  );
  const config = await timed("trivyContext", () =>
    settle(() =>
      runTrivyConfig({
        dir: req.contextDir,
        reportPath: path.join(req.reportDir, "trivy-context.json"),
      }),
    ),
  );
  const tools = await timed("versions", async () => ({
    trivy: await trivyVersion().catch(() => "unknown"),
    hadolint: await versionOf("hadolint"),
    dive: await versionOf("dive"),
    syft: await versionOf("syft"),
  }));
  return { lint, config, tools, seconds };
}
