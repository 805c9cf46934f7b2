// One evidence run, in two halves: `scanEvidence` (every scanner on the given platform digests,
// concurrently and bounded by cores, and/or the build-context checks) needs no coverage, so the
// stack runs one per platform as each image lands and one of the context at once; `judgeEvidence`
// reads the coverage and applies the gates to exactly the digests that were scanned. Writes the
// SBOMs, the reports and gate-results.json under the output folder and returns the results bound to
// the digests judged. Knows nothing of Pulumi: the CLI (evidence/cli.ts) and the stack's thin
// component both call it; `runEvidence` does both halves in one process.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type ContextChecks, readCoverage, runContextChecks } from "./contextChecks";
import { mapLimit } from "./exec";
import {
  type BoundGateResults,
  type DiveLimits,
  type GatesConfig,
  type Measurements,
  diveLimits,
  evaluateGates,
} from "./gates";
import { mapMeasured } from "./measurements";
import {
  type RegistryAuth,
  credentialsProblem,
  probeInsecure,
  repositoryOf,
  registryOf,
} from "./oci";
import {
  type PlatformEvidence,
  type PlatformScanned,
  type SbomStore,
  scanPlatform,
} from "./platformScan";
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
  /** What earlier `scanEvidence` runs measured of these very digests (the stack's Scans steps:
   *  one per platform and one of the build context), judged without scanning again. */
  scanned?: ScannedEvidence[];
}

/** What `scanEvidence` needs: no coverage, no commit, and of the gates only Dive's own limits. */
export type ScanRequest = Omit<
  EvidenceRequest,
  "sourceRevision" | "coverageImage" | "coverageSummaryPath" | "gates" | "scanned"
> & {
  gates: DiveLimits;
  /** Run the build-context checks too. @default true */
  contextChecks?: boolean;
};

/** What one scan measured: the digests in `platforms`, and the build context when asked. */
export interface ScannedEvidence {
  imageName: string;
  platforms: PlatformScanned[];
  context?: ContextChecks;
  notes: string[];
  seconds: number;
}

export interface EvidenceResult {
  gateResults: BoundGateResults;
  sbomLocations: Record<string, string>;
  platforms: Record<string, PlatformEvidence>;
  evidenceDir: string;
  notes: string[];
  /** Seconds of scanning and judging together. */
  seconds: number;
  /** Seconds of the judging alone (reading the coverage, applying the gates). */
  judgeSeconds?: number;
  /** Seconds of the build-context checks (they run while the platforms are scanned). */
  contextSeconds?: Record<string, number>;
}

/** The registry's credentials, checked: a registry that does not answer (or refuses them) is no
 *  measurement to judge, so the run stops before judging, naming the registry, rather than
 *  counting every check it would have read there as "not run". */
async function checkedAuth(
  req: Pick<EvidenceRequest, "imageName" | "registryUsername" | "registryToken">,
): Promise<RegistryAuth> {
  const registry = registryOf(req.imageName);
  const auth: RegistryAuth = {
    registry,
    username: req.registryUsername,
    password: req.registryToken,
    insecure: await probeInsecure(registry),
  };
  const unreachable = await credentialsProblem(auth, repositoryOf(req.imageName));
  if (unreachable !== undefined) throw new Error(unreachable);
  return auth;
}

function dirsOf(outputDir: string): { outDir: string; sbomDir: string; reportDir: string } {
  const outDir = path.resolve(outputDir);
  const sbomDir = path.join(outDir, "sbom");
  const reportDir = path.join(outDir, "reports");
  fs.mkdirSync(sbomDir, { recursive: true });
  fs.mkdirSync(reportDir, { recursive: true });
  return { outDir, sbomDir, reportDir };
}

/** Every scanner on the platform digests, and the build-context checks, concurrently. */
export async function scanEvidence(req: ScanRequest): Promise<ScannedEvidence> {
  const started = Date.now();
  const { sbomDir, reportDir } = dirsOf(req.outputDir);
  const platforms = Object.keys(req.platformDigests).sort();
  // The build context alone needs no registry.
  const auth: RegistryAuth =
    platforms.length > 0 ? await checkedAuth(req) : { registry: registryOf(req.imageName) };
  const notes: string[] = [];
  const contextChecks =
    (req.contextChecks ?? true)
      ? runContextChecks({
          dockerfile: path.resolve(req.dockerfile),
          contextDir: path.resolve(req.contextDir),
          reportDir,
          notes,
        })
      : undefined;
  const scanContext = { ...req, auth, sbomDir, reportDir, notes };
  const perPlatform = await mapLimit(platforms, req.concurrency ?? os.cpus().length, (platform) =>
    scanPlatform(scanContext, platform, req.platformDigests[platform]),
  );
  return {
    imageName: req.imageName,
    platforms: perPlatform,
    context: await contextChecks,
    notes,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Why `scanned` is not one measurement of exactly `req`'s image and digests (each platform
 *  once, the build context once), or undefined. */
export function scannedMismatch(
  req: Pick<EvidenceRequest, "imageName" | "platformDigests">,
  scanned: ScannedEvidence[],
): string | undefined {
  const other = scanned.find((s) => s.imageName !== req.imageName);
  if (other !== undefined) return `the scans measured ${other.imageName}, not ${req.imageName}`;
  const contexts = scanned.filter((s) => s.context !== undefined).length;
  if (contexts !== 1) return `the scans hold ${contexts} build-context checks, not one`;
  const got: Record<string, string> = {};
  for (const p of scanned.flatMap((s) => s.platforms)) {
    if (p.platform in got) return `platform ${p.platform} was scanned twice`;
    got[p.platform] = p.evidence.digest;
  }
  for (const p of [...new Set([...Object.keys(got), ...Object.keys(req.platformDigests)])].sort())
    if (got[p] !== req.platformDigests[p])
      return `platform ${p}: the scans measured ${got[p] ?? "nothing"}, the request names ${req.platformDigests[p] ?? "nothing"}`;
  return undefined;
}

/** The coverage, then the gates, on what `scanned` measured of `req`'s digests. */
export async function judgeEvidence(
  req: EvidenceRequest,
  scanned: ScannedEvidence[],
): Promise<EvidenceResult> {
  const started = Date.now();
  const mismatch = scannedMismatch(req, scanned);
  if (mismatch !== undefined) throw new Error(`evidence: refusing to judge, ${mismatch}`);
  const { outDir, reportDir } = dirsOf(req.outputDir);
  const auth = (req.coverageImage ?? "") !== "" ? await checkedAuth(req) : undefined;
  const coverageStarted = Date.now();
  const coverage = await readCoverage({ ...req, reportDir, auth });
  const perPlatform = scanned
    .flatMap((s) => s.platforms)
    .sort((a, b) => a.platform.localeCompare(b.platform));
  const ctx = scanned.find((s) => s.context !== undefined)?.context as ContextChecks;
  // Misconfigurations found in the image configs join the Dockerfile's (same gate).
  const measurements: Measurements = {
    platforms: Object.fromEntries(perPlatform.map((p) => [p.platform, p.m])),
    coverage,
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
  const platforms = perPlatform.map((p) => p.platform);
  const gateResults: BoundGateResults = {
    ...evaluateGates(measurements, req.gates, { tools }),
    imageName: req.imageName,
    platformDigests: Object.fromEntries(platforms.map((p) => [p, req.platformDigests[p]])),
    sourceRevision: req.sourceRevision,
  };
  const judgeSeconds = (Date.now() - started) / 1000;
  const result: EvidenceResult = {
    gateResults,
    sbomLocations: Object.fromEntries(
      perPlatform.map((p) => [p.platform, p.evidence.sbomLocation]),
    ),
    platforms: Object.fromEntries(perPlatform.map((p) => [p.platform, p.evidence])),
    evidenceDir: outDir,
    notes: scanned.flatMap((s) => s.notes),
    // The scans ran side by side: the longest of them, then the judging.
    seconds: Math.max(0, ...scanned.map((s) => s.seconds)) + judgeSeconds,
    judgeSeconds,
    contextSeconds: { ...ctx.seconds, coverage: (Date.now() - coverageStarted) / 1000 },
  };
  fs.writeFileSync(path.join(outDir, "gate-results.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}

/** Scan (unless `req.scanned` already holds the scans of these digests), then judge. */
export async function runEvidence(req: EvidenceRequest): Promise<EvidenceResult> {
  return judgeEvidence(
    req,
    req.scanned ?? [await scanEvidence({ ...req, gates: diveLimits(req.gates) })],
  );
}
