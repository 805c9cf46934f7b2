// One evidence run: every scanner on the pushed platform digests, then the gates. Platforms run
// concurrently (bounded by cores); build-context checks run once. Writes the SBOMs, the reports
// and gate-results.json under the output folder and returns the results bound to the digests
// judged. Knows nothing of Pulumi: the CLI (evidence/cli.ts) and the stack's thin component both
// call it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runContextChecks } from "./contextChecks";
import { mapLimit } from "./exec";
import { type BoundGateResults, type GatesConfig, type Measurements, evaluateGates } from "./gates";
import { mapMeasured } from "./measurements";
import {
  type RegistryAuth,
  credentialsProblem,
  probeInsecure,
  repositoryOf,
  registryOf,
} from "./oci";
import { type PlatformEvidence, type SbomStore, scanPlatform } from "./platformScan";
import type { VulnDbSource } from "./scanners/trivy";

export type { PlatformEvidence, SbomStore } from "./platformScan";

export interface EvidenceRequest {
  imageName: string;
  platformDigests: Record<string, string>;
  /** Commit the images were built from. */
  sourceRevision: string;
  dockerfile: string;
  contextDir: string;
  /** `ref@digest` of the image the Dockerfile's coverage stage produced. */
  coverageImage?: string;
  /** Or a json-summary file on disk (the CLI on a developer's machine). */
  coverageSummaryPath?: string;
  gates: GatesConfig;
  outputDir: string;
  sbomStore: SbomStore;
  vulnDb: VulnDbSource;
  registryUsername?: string;
  /** Only ever from the environment (IMAGE_FACTORY_REGISTRY_TOKEN), never a flag or a file. */
  registryToken?: string;
  /** Platforms scanned at once. @default the number of cores */
  concurrency?: number;
}

export interface EvidenceResult {
  gateResults: BoundGateResults;
  sbomLocations: Record<string, string>;
  platforms: Record<string, PlatformEvidence>;
  evidenceDir: string;
  notes: string[];
  seconds: number;
  /** Seconds of the build-context checks (they run while the platforms are scanned). */
  contextSeconds?: Record<string, number>;
}

export async function runEvidence(req: EvidenceRequest): Promise<EvidenceResult> {
  const started = Date.now();
  const outDir = path.resolve(req.outputDir);
  const sbomDir = path.join(outDir, "sbom");
  const reportDir = path.join(outDir, "reports");
  fs.mkdirSync(sbomDir, { recursive: true });
  fs.mkdirSync(reportDir, { recursive: true });
  const registry = registryOf(req.imageName);
  const auth: RegistryAuth = {
    registry,
    username: req.registryUsername,
    password: req.registryToken,
    insecure: await probeInsecure(registry),
  };
  // A registry that does not answer (or refuses the credentials) is no measurement to judge: the
  // run stops before judging, naming the registry, rather than failing every check as "not run".
  // (Only when there is something to read there: a run on the build context alone needs none.)
  if (Object.keys(req.platformDigests).length > 0 || (req.coverageImage ?? "") !== "") {
    const unreachable = await credentialsProblem(auth, repositoryOf(req.imageName));
    if (unreachable !== undefined) throw new Error(unreachable);
  }
  const notes: string[] = [];

  // Build-context checks and tool versions, once, while the platforms are scanned.
  const contextChecks = runContextChecks({
    dockerfile: path.resolve(req.dockerfile),
    contextDir: path.resolve(req.contextDir),
    reportDir,
    coverageImage: req.coverageImage,
    coverageSummaryPath: req.coverageSummaryPath,
    auth,
    notes,
  });
  const platforms = Object.keys(req.platformDigests).sort();
  const scanContext = { ...req, auth, sbomDir, reportDir, notes };
  const perPlatform = await mapLimit(platforms, req.concurrency ?? os.cpus().length, (platform) =>
    scanPlatform(scanContext, platform, req.platformDigests[platform]),
  );
  const ctx = await contextChecks;

  // Misconfigurations found in the image configs join the Dockerfile's (same gate).
  const measurements: Measurements = {
    platforms: Object.fromEntries(perPlatform.map((p) => [p.platform, p.m])),
    coverage: ctx.coverage,
    lint: ctx.lint,
    misconfigurations: mapMeasured(ctx.config, (c) => [
      ...c.misconfigurations,
      ...perPlatform.flatMap((p) => p.imageMisconfigurations),
    ]),
    secrets: mapMeasured(ctx.config, (c) => c.secrets),
  };
  const tools: Record<string, string> = { ...ctx.tools };
  if (perPlatform[0]?.syftVersion) tools.syft = perPlatform[0].syftVersion;
  const db = perPlatform.find((p) => p.vulnDb !== "")?.vulnDb;
  if (db !== undefined) tools.trivyDb = db;
  const gateResults: BoundGateResults = {
    ...evaluateGates(measurements, req.gates, { tools }),
    imageName: req.imageName,
    platformDigests: Object.fromEntries(platforms.map((p) => [p, req.platformDigests[p]])),
    sourceRevision: req.sourceRevision,
  };
  const result: EvidenceResult = {
    gateResults,
    sbomLocations: Object.fromEntries(
      perPlatform.map((p) => [p.platform, p.evidence.sbomLocation]),
    ),
    platforms: Object.fromEntries(perPlatform.map((p) => [p.platform, p.evidence])),
    evidenceDir: outDir,
    notes,
    seconds: (Date.now() - started) / 1000,
    contextSeconds: ctx.seconds,
  };
  fs.writeFileSync(path.join(outDir, "gate-results.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}
