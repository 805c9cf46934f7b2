// One evidence run: every scanner on the pushed platform digests, then the gates. Platforms run
// concurrently (bounded by cores); build-context checks run once. Writes the SBOMs, the reports
// and gate-results.json under the output folder and returns the results bound to the digests
// judged. Knows nothing of Pulumi: the CLI (evidence/cli.ts) and the stack's thin component both
// call it.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { errMessage, execTool, findTool, mapLimit } from "./exec";
import {
  type BoundGateResults,
  type CoverageMeasurement,
  type Finding,
  type GatesConfig,
  type Measured,
  type Measurements,
  type PlatformMeasurements,
  evaluateGates,
  measured,
  notRun,
} from "./gates";
import {
  type RegistryAuth,
  headManifest,
  credentialsProblem,
  probeInsecure,
  repositoryOf,
  pushSbomArtifact,
  registryOf,
} from "./oci";
import { readCoverageFile, readCoverageImage } from "./scanners/coverage";
import { pullAndSave, removePulledImage, runDive, runDiveOnLocal } from "./scanners/dive";
import { runHadolint } from "./scanners/hadolint";
import { type LocalImage, localImage } from "./scanners/layers";
import { platformSlug, runSyft, runSyftReusing } from "./scanners/syft";
import {
  type TrivyImageAllResult,
  type VulnDbSource,
  runTrivyConfig,
  runTrivyImage,
  runTrivyImageAll,
  runTrivyVulnerabilities,
  trivyVersion,
} from "./scanners/trivy";

/** `file`: SBOM files under `<outputDir>/sbom/` (the local stack). `oci`: also pushed next to the
 *  image as an OCI artifact referring to it (GHCR), and that is the exported location. */
export type SbomStore = "file" | "oci";

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

export interface PlatformEvidence {
  digest: string;
  sbomPath: string;
  sbomLocation: string;
  packageCount: number;
  sizeBytes?: number;
  efficiency?: number;
  wastedBytes?: number;
  vulnerabilities?: Array<{ id: string; pkg: string; installed: string; severity: string }>;
  /** How the SBOM was made: a full Syft scan, or which catalogued layers it reused (sbomReuse.ts). */
  sbomMethod?: string;
  seconds: Record<string, number>;
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

async function versionOf(tool: "hadolint" | "dive" | "syft"): Promise<string> {
  const bin = findTool(tool);
  if (bin === undefined) return "not installed";
  const r = await execTool(bin, ["--version"], { timeoutMs: 30_000 });
  return /v?(\d+\.\d+\.\d+)/.exec(r.stdout + r.stderr)?.[1] ?? "unknown";
}

async function settle<T>(fn: () => Promise<T>): Promise<Measured<T>> {
  try {
    return measured(await fn());
  } catch (e) {
    return notRun(errMessage(e));
  }
}

export async function runEvidence(req: EvidenceRequest): Promise<EvidenceResult> {
  const started = Date.now();
  const outDir = path.resolve(req.outputDir);
  const dockerfile = path.resolve(req.dockerfile);
  const contextDir = path.resolve(req.contextDir);
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
  const contextSeconds: Record<string, number> = {};
  const timed = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      contextSeconds[key] = (Date.now() - t) / 1000;
    }
  };
  const contextChecks = (async () => {
    const lint = await timed("hadolint", () =>
      settle(async () => {
        const h = await runHadolint({ dockerfile });
        if (h.notes.length > 0)
          notes.push(`hadolint notes: ${h.notes.map((n) => `${n.id} ${n.where}`).join(", ")}`);
        return h.findings;
      }),
    );
    const config = await timed("trivyContext", () =>
      settle(() =>
        runTrivyConfig({ dir: contextDir, reportPath: path.join(reportDir, "trivy-context.json") }),
      ),
    );
    const coverage: Measured<CoverageMeasurement> = await timed("coverage", async () => {
      if (req.coverageImage !== undefined)
        return readCoverageImage({ ref: req.coverageImage, auth, outDir: reportDir });
      if (req.coverageSummaryPath !== undefined)
        return readCoverageFile(path.resolve(req.coverageSummaryPath));
      return notRun("no coverage measured: neither a coverage image nor a summary file was given");
    });
    const tools = await timed("versions", async () => ({
      trivy: await trivyVersion().catch(() => "unknown"),
      hadolint: await versionOf("hadolint"),
      dive: await versionOf("dive"),
      syft: await versionOf("syft"),
    }));
    return { lint, config, coverage, tools };
  })();

  const platforms = Object.keys(req.platformDigests).sort();
  const perPlatform = await mapLimit(
    platforms,
    req.concurrency ?? os.cpus().length,
    async (platform) => {
      const digest = req.platformDigests[platform];
      const ref = `${req.imageName}@${digest}`;
      const slug = platformSlug(platform);
      const seconds: Record<string, number> = {};

      // Every layer in the machine's layer cache (fetched and read only when new): Dive and the SBOM's
      // partial scans read them there. Without it (a layer Node cannot uncompress), both fall back to
      // the registry and the Docker engine.
      let local: LocalImage | undefined;
      try {
        local = await localImage(auth, req.imageName, digest);
        seconds.layers = local.seconds;
      } catch (e) {
        notes.push(
          `${platform}: layers not cached locally (${errMessage(e)}); full Syft scan and docker pull for Dive`,
        );
      }

      // The SBOM is the evidence itself: no SBOM, no release.
      const s =
        local !== undefined
          ? await runSyftReusing({ local, platform, outDir: sbomDir, auth })
          : await runSyft({ imageRef: ref, platform, outDir: sbomDir, auth });
      seconds.syft = s.seconds;
      let location = `file://${s.spdxPath}`;
      if (req.sbomStore === "oci") {
        const subject = await headManifest(auth, req.imageName, digest);
        location = await pushSbomArtifact({
          imageName: req.imageName,
          subjectDigest: digest,
          subjectSize: subject.size,
          subjectMediaType: subject.mediaType,
          sbomPath: s.spdxPath,
          platform,
          auth,
        });
      }

      // One Trivy call for vulnerabilities, secrets and the config's misconfigurations; should it
      // fail (the vulnerability DB unreachable, say), the two separate calls below, so the secret and
      // misconfiguration checks do not depend on the DB.
      let all: TrivyImageAllResult | undefined;
      try {
        all = await runTrivyImageAll({
          imageRef: ref,
          platform,
          reportPath: path.join(reportDir, `trivy-image-${slug}.json`),
          auth,
          db: req.vulnDb,
        });
        fs.copyFileSync(all.reportPath, path.join(reportDir, `trivy-vuln-${slug}.json`));
        seconds.trivy = all.seconds;
      } catch (e) {
        notes.push(`${platform}: ${errMessage(e)}; Trivy run again as two calls`);
      }

      let imageMisconfigurations: Finding[] = [];
      const imageSecrets = await settle(async () => {
        if (all !== undefined) {
          imageMisconfigurations = all.misconfigurations.map((f) => ({
            ...f,
            where: `${platform} image config`,
          }));
          return all.secrets;
        }
        const t = await runTrivyImage({
          imageRef: ref,
          platform,
          reportPath: path.join(reportDir, `trivy-image-${slug}.json`),
          auth,
        });
        seconds.trivyImage = t.seconds;
        imageMisconfigurations = t.misconfigurations.map((f) => ({
          ...f,
          where: `${platform} image config`,
        }));
        return t.secrets;
      });

      let vulnerabilities: PlatformEvidence["vulnerabilities"];
      let vulnDb = "";
      const criticalVulnerabilities = await settle(async () => {
        const v =
          all ??
          (await runTrivyVulnerabilities({
            imageRef: ref,
            platform,
            reportPath: path.join(reportDir, `trivy-vuln-${slug}.json`),
            auth,
            db: req.vulnDb,
          }));
        if (all === undefined) seconds.trivyVuln = v.seconds;
        vulnerabilities = v.vulnerabilities.filter(
          (x) => x.severity === "CRITICAL" || x.severity === "HIGH",
        );
        vulnDb = v.db;
        return v.critical;
      });

      let sizeBytes: Measured<number> = notRun("not measured");
      let efficiency: Measured<number> = notRun("not measured");
      let wastedBytes: Measured<number> = notRun("not measured");
      const archive = path.join(os.tmpdir(), `if-evidence-${process.pid}-${slug}.tar`);
      if (local !== undefined) {
        try {
          const d = await runDiveOnLocal({
            local,
            archivePath: archive,
            minEfficiency: req.gates.minEfficiency,
            maxWastedMb: req.gates.maxWastedMb,
          });
          seconds.archive = d.archiveSeconds;
          seconds.dive = d.seconds;
          sizeBytes = measured(d.sizeBytes);
          efficiency = measured(d.efficiency);
          wastedBytes = measured(d.wastedBytes);
          fs.writeFileSync(path.join(reportDir, `dive-${slug}.txt`), d.output);
        } catch (e) {
          sizeBytes = notRun(errMessage(e));
          efficiency = notRun(errMessage(e));
          wastedBytes = notRun(errMessage(e));
        }
      } else {
        // No local layers: Docker pulls and saves the image for Dive (and sizes it).
        try {
          const pulled = await pullAndSave({ imageRef: ref, archivePath: archive, auth });
          seconds.pull = pulled.seconds;
          sizeBytes = measured(pulled.sizeBytes);
          try {
            const d = await runDive({
              archivePath: archive,
              minEfficiency: req.gates.minEfficiency,
              maxWastedMb: req.gates.maxWastedMb,
            });
            seconds.dive = d.seconds;
            efficiency = measured(d.efficiency);
            wastedBytes = measured(d.wastedBytes);
            fs.writeFileSync(path.join(reportDir, `dive-${slug}.txt`), d.output);
          } catch (e) {
            efficiency = notRun(errMessage(e));
            wastedBytes = notRun(errMessage(e));
          } finally {
            const removed = await removePulledImage({ imageRef: ref, added: pulled.added });
            if (removed.error !== undefined) notes.push(removed.error);
          }
        } catch (e) {
          sizeBytes = notRun(errMessage(e));
          efficiency = notRun(errMessage(e));
          wastedBytes = notRun(errMessage(e));
        } finally {
          fs.rmSync(archive, { force: true });
        }
      }

      const m: PlatformMeasurements = {
        sizeBytes,
        efficiency,
        wastedBytes,
        criticalVulnerabilities,
        imageSecrets,
      };
      const evidence: PlatformEvidence = {
        digest,
        sbomPath: s.spdxPath,
        sbomLocation: location,
        packageCount: s.packageCount,
        sizeBytes: "value" in sizeBytes ? sizeBytes.value : undefined,
        efficiency: "value" in efficiency ? efficiency.value : undefined,
        wastedBytes: "value" in wastedBytes ? wastedBytes.value : undefined,
        vulnerabilities,
        sbomMethod: s.reuse,
        seconds,
      };
      return { platform, m, evidence, imageMisconfigurations, syftVersion: s.syftVersion, vulnDb };
    },
  );

  const ctx = await contextChecks;
  // Misconfigurations found in the image configs join the Dockerfile's (same gate).
  const misconfigurations: Measured<Finding[]> =
    "value" in ctx.config
      ? measured([
          ...ctx.config.value.misconfigurations,
          ...perPlatform.flatMap((p) => p.imageMisconfigurations),
        ])
      : ctx.config;
  const secrets: Measured<Finding[]> =
    "value" in ctx.config ? measured(ctx.config.value.secrets) : ctx.config;
  const measurements: Measurements = {
    platforms: Object.fromEntries(perPlatform.map((p) => [p.platform, p.m])),
    coverage: ctx.coverage,
    lint: ctx.lint,
    misconfigurations,
    secrets,
  };
  const tools: Record<string, string> = { ...ctx.tools };
  if (perPlatform[0]?.syftVersion) tools.syft = perPlatform[0].syftVersion;
  const db = perPlatform.find((p) => p.vulnDb !== "")?.vulnDb;
  if (db !== undefined) tools.trivyDb = db;
  const results = evaluateGates(measurements, req.gates, { tools });
  const gateResults: BoundGateResults = {
    ...results,
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
    contextSeconds,
  };
  fs.writeFileSync(path.join(outDir, "gate-results.json"), JSON.stringify(result, null, 2) + "\n");
  return result;
}
