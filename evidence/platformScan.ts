// The evidence of one platform image, read from the registry by digest: its SBOM (pushed next to
// it when the store is OCI), Trivy's vulnerabilities, secrets and config checks, and Dive's size,
// efficiency and waste. A scanner that fails leaves its figures "not run" for the gates to judge;
// only the SBOM is required outright (no SBOM, no release).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { errMessage } from "./exec";
import type { DiveLimits } from "./gatesConfig";
import {
  type Finding,
  type PlatformMeasurements,
  mapMeasured,
  measured,
  notRun,
  settle,
  valueOf,
} from "./measurements";
import { type RegistryAuth, headManifest, pushSbomArtifact } from "./oci";
import { pullAndSave, removePulledImage, runDive, runDiveOnLocal } from "./scanners/dive";
import { type LocalImage, localImage } from "./scanners/layers";
import { type SyftResult, platformSlug, runSyft, runSyftReusing } from "./scanners/syft";
import {
  type TrivyImageAllResult,
  type VulnDbSource,
  runTrivyImage,
  runTrivyImageAll,
  runTrivyVulnerabilities,
} from "./scanners/trivy";

/** `file`: SBOM files under `<outputDir>/sbom/` (the local stack). `oci`: also pushed next to the
 *  image as an OCI artifact referring to it (GHCR), and that is the exported location. */
export type SbomStore = "file" | "oci";

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

/** What every platform of one run shares. */
export interface PlatformScanContext {
  imageName: string;
  auth: RegistryAuth;
  sbomStore: SbomStore;
  vulnDb: VulnDbSource;
  /** Dive is told the limits so its own report says pass or fail. */
  gates: DiveLimits;
  sbomDir: string;
  reportDir: string;
  /** What the run's reader should know (a fallback taken) is added here. */
  notes: string[];
}

export interface PlatformScanned {
  platform: string;
  m: PlatformMeasurements;
  evidence: PlatformEvidence;
  /** Misconfigurations of the image config (they join the Dockerfile's in one gate). */
  imageMisconfigurations: Finding[];
  syftVersion: string;
  /** The vulnerability DB that judged; "" when no vulnerability scan ran. */
  vulnDb: string;
}

/** One platform image being scanned: the shared context, and where this image's figures go. */
interface Scan extends PlatformScanContext {
  platform: string;
  digest: string;
  ref: string;
  slug: string;
  seconds: Record<string, number>;
}

/** The SBOM and where it is kept: on disk, or pushed as an artifact referring to the image. */
async function sbomOf(
  scan: Scan,
  local: LocalImage | undefined,
): Promise<{ syft: SyftResult; location: string }> {
  const { platform, auth } = scan;
  const syft =
    local !== undefined
      ? await runSyftReusing({ local, platform, outDir: scan.sbomDir, auth })
      : await runSyft({ imageRef: scan.ref, platform, outDir: scan.sbomDir, auth });
  scan.seconds.syft = syft.seconds;
  if (scan.sbomStore !== "oci") return { syft, location: `file://${syft.spdxPath}` };
  const subject = await headManifest(auth, scan.imageName, scan.digest);
  const location = await pushSbomArtifact({
    imageName: scan.imageName,
    subjectDigest: scan.digest,
    subjectSize: subject.size,
    subjectMediaType: subject.mediaType,
    sbomPath: syft.spdxPath,
    platform,
    auth,
  });
  return { syft, location };
}

/** Trivy's figures: one call for vulnerabilities, secrets and the config's misconfigurations;
 *  should it fail (the vulnerability DB unreachable, say), two separate calls, so the secret and
 *  misconfiguration checks do not depend on the DB. */
async function trivyOf(scan: Scan) {
  const image = { imageRef: scan.ref, platform: scan.platform, auth: scan.auth };
  const imageReport = path.join(scan.reportDir, `trivy-image-${scan.slug}.json`);
  const vulnReport = path.join(scan.reportDir, `trivy-vuln-${scan.slug}.json`);
  let all: TrivyImageAllResult | undefined;
  try {
    all = await runTrivyImageAll({ ...image, reportPath: imageReport, db: scan.vulnDb });
    fs.copyFileSync(all.reportPath, vulnReport);
    scan.seconds.trivy = all.seconds;
  } catch (e) {
    scan.notes.push(`${scan.platform}: ${errMessage(e)}; Trivy run again as two calls`);
  }
  const orFallback = <T extends { seconds: number }>(key: string, run: () => Promise<T>) =>
    settle(async (): Promise<T | TrivyImageAllResult> => {
      if (all !== undefined) return all;
      const r = await run();
      scan.seconds[key] = r.seconds;
      return r;
    });
  const findings = await orFallback("trivyImage", () =>
    runTrivyImage({ ...image, reportPath: imageReport }),
  );
  const vulns = await orFallback("trivyVuln", () =>
    runTrivyVulnerabilities({ ...image, reportPath: vulnReport, db: scan.vulnDb }),
  );
  return {
    imageSecrets: mapMeasured(findings, (f) => f.secrets),
    imageMisconfigurations: (valueOf(findings)?.misconfigurations ?? []).map((f) => ({
      ...f,
      where: `${scan.platform} image config`,
    })),
    criticalVulnerabilities: mapMeasured(vulns, (v) => v.critical),
    vulnerabilities: valueOf(vulns)?.vulnerabilities.filter(
      (x) => x.severity === "CRITICAL" || x.severity === "HIGH",
    ),
    vulnDb: valueOf(vulns)?.db ?? "",
  };
}

type DiveFigures = Pick<PlatformMeasurements, "sizeBytes" | "efficiency" | "wastedBytes">;

function unmeasured(e: unknown): DiveFigures {
  const reason = notRun<number>(errMessage(e));
  return { sizeBytes: reason, efficiency: reason, wastedBytes: reason };
}

/** Dive's figures: from the cached layers, or else from an image Docker pulls and saves (and
 *  sizes), removed again afterwards. */
async function diveOf(scan: Scan, local: LocalImage | undefined): Promise<DiveFigures> {
  const archivePath = path.join(os.tmpdir(), `if-evidence-${process.pid}-${scan.slug}.tar`);
  const limits = { minEfficiency: scan.gates.minEfficiency, maxWastedMb: scan.gates.maxWastedMb };
  const report = (output: string): void =>
    fs.writeFileSync(path.join(scan.reportDir, `dive-${scan.slug}.txt`), output);
  if (local !== undefined) {
    try {
      const d = await runDiveOnLocal({ local, archivePath, ...limits });
      scan.seconds.archive = d.archiveSeconds;
      scan.seconds.dive = d.seconds;
      report(d.output);
      return {
        sizeBytes: measured(d.sizeBytes),
        efficiency: measured(d.efficiency),
        wastedBytes: measured(d.wastedBytes),
      };
    } catch (e) {
      return unmeasured(e);
    }
  }
  try {
    const pulled = await pullAndSave({ imageRef: scan.ref, archivePath, auth: scan.auth });
    scan.seconds.pull = pulled.seconds;
    const sizeBytes = measured(pulled.sizeBytes);
    try {
      const d = await runDive({ archivePath, ...limits });
      scan.seconds.dive = d.seconds;
      report(d.output);
      return {
        sizeBytes,
        efficiency: measured(d.efficiency),
        wastedBytes: measured(d.wastedBytes),
      };
    } catch (e) {
      return { ...unmeasured(e), sizeBytes };
    } finally {
      const removed = await removePulledImage({ imageRef: scan.ref, added: pulled.added });
      if (removed.error !== undefined) scan.notes.push(removed.error);
    }
  } catch (e) {
    return unmeasured(e);
  } finally {
    fs.rmSync(archivePath, { force: true });
  }
}

/** Every scanner on one platform image. */
export async function scanPlatform(
  ctx: PlatformScanContext,
  platform: string,
  digest: string,
): Promise<PlatformScanned> {
  const ref = `${ctx.imageName}@${digest}`;
  const scan: Scan = { ...ctx, platform, digest, ref, slug: platformSlug(platform), seconds: {} };

  // Every layer in the machine's layer cache (fetched and read only when new): Dive and the SBOM's
  // partial scans read them there. Without it (a layer Node cannot uncompress), both fall back to
  // the registry and the Docker engine.
  let local: LocalImage | undefined;
  try {
    local = await localImage(ctx.auth, ctx.imageName, digest);
    scan.seconds.layers = local.seconds;
  } catch (e) {
    ctx.notes.push(
      `${platform}: layers not cached locally (${errMessage(e)}); full Syft scan and docker pull for Dive`,
    );
  }

  const { syft, location } = await sbomOf(scan, local);
  const trivy = await trivyOf(scan);
  const dive = await diveOf(scan, local);
  const m: PlatformMeasurements = {
    ...dive,
    criticalVulnerabilities: trivy.criticalVulnerabilities,
    imageSecrets: trivy.imageSecrets,
  };
  const evidence: PlatformEvidence = {
    digest,
    sbomPath: syft.spdxPath,
    sbomLocation: location,
    packageCount: syft.packageCount,
    sizeBytes: valueOf(dive.sizeBytes),
    efficiency: valueOf(dive.efficiency),
    wastedBytes: valueOf(dive.wastedBytes),
    vulnerabilities: trivy.vulnerabilities,
    sbomMethod: syft.reuse,
    seconds: scan.seconds,
  };
  const { imageMisconfigurations, vulnDb } = trivy;
  return { platform, m, evidence, imageMisconfigurations, syftVersion: syft.syftVersion, vulnDb };
}
