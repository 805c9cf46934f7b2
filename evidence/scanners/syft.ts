// Syft: the SPDX (and CycloneDX) SBOM of one pushed platform image, read from the registry by digest,
// or (runSyftReusing) merged from the catalogue of layers Syft read before and a scan of the new ones.
import * as fs from "node:fs";
import * as path from "node:path";
import { execTool, mustSucceed, requireTool } from "../exec";
import { type RegistryAuth, insecureOf, withDockerConfig } from "../oci";
import type { LocalImage } from "./layers";
import {
  type SyftDocument,
  CatalogCache,
  catalogProblems,
  imageSource,
  mergeParts,
  planReuse,
  upperLayout,
} from "./sbomReuse";

export function platformSlug(platform: string): string {
  return platform.replace(/\//g, "-");
}

export interface SyftResult {
  spdxPath: string;
  cyclonedxPath: string;
  packageCount: number;
  packages: Array<{ name: string; version: string }>;
  seconds: number;
  syftVersion: string;
  /** Syft's own JSON (lossless), when written. */
  syftJsonPath?: string;
  /** How the SBOM was made: a full scan, or which catalogued layers were reused and why not. */
  reuse?: string;
}

/** SBOM of one pushed image, read from the registry by digest (no Docker daemon involved). */
export async function runSyft(opts: {
  imageRef: string;
  platform: string;
  outDir: string;
  auth?: RegistryAuth;
  timeoutMs?: number;
  /** Also write Syft's JSON here. */
  syftJsonPath?: string;
}): Promise<SyftResult> {
  const syft = requireTool("syft");
  fs.mkdirSync(opts.outDir, { recursive: true });
  const slug = platformSlug(opts.platform);
  const spdxPath = path.join(opts.outDir, `${slug}.spdx.json`);
  const cyclonedxPath = path.join(opts.outDir, `${slug}.cdx.json`);
  // Credentials through a private 0600 Docker config (Syft's default keychain), never its environment.
  const r = await withDockerConfig(opts.auth, (dockerEnv) =>
    execTool(
      syft,
      [
        "scan",
        `registry:${opts.imageRef}`,
        "--platform",
        opts.platform,
        "-q",
        "-o",
        `spdx-json=${spdxPath}`,
        "-o",
        `cyclonedx-json=${cyclonedxPath}`,
        ...(opts.syftJsonPath !== undefined ? ["-o", `syft-json=${opts.syftJsonPath}`] : []),
      ],
      {
        env: {
          ...dockerEnv,
          SYFT_CHECK_FOR_APP_UPDATE: "false",
          SYFT_REGISTRY_INSECURE_USE_HTTP: String(insecureOf(opts.auth)),
        },
        timeoutMs: opts.timeoutMs ?? 600_000,
        redact: [opts.auth?.password ?? ""],
      },
    ),
  );
  mustSucceed(r, `syft failed on ${opts.imageRef} (${opts.platform})`);
  return {
    ...readSpdx(spdxPath),
    spdxPath,
    cyclonedxPath,
    seconds: r.seconds,
    syftJsonPath: opts.syftJsonPath,
  };
}

function readSpdx(spdxPath: string): Pick<SyftResult, "packageCount" | "packages" | "syftVersion"> {
  const spdx = JSON.parse(fs.readFileSync(spdxPath, "utf8")) as {
    packages?: Array<{ name?: string; versionInfo?: string }>;
    creationInfo?: { creators?: string[] };
  };
  const packages = (spdx.packages ?? []).map((p) => ({
    name: p.name ?? "",
    version: p.versionInfo ?? "",
  }));
  const creator =
    (spdx.creationInfo?.creators ?? []).find((c) => c.startsWith("Tool: syft-")) ?? "";
  return {
    packageCount: packages.length,
    packages,
    syftVersion: creator.replace("Tool: syft-", ""),
  };
}

/** Syft on local files (no registry, so no credentials): `failure` names what it was run on. */
async function syftLocal(args: string[], failure: string, timeoutMs: number): Promise<void> {
  const r = await execTool(requireTool("syft"), args, {
    env: { SYFT_CHECK_FOR_APP_UPDATE: "false" },
    timeoutMs,
  });
  mustSucceed(r, failure);
}

/** Syft's catalogue of an OCI layout (the upper layers of an image, see sbomReuse.upperLayout). */
export async function scanLayout(
  layoutDir: string,
  outJson: string,
  timeoutMs = 600_000,
): Promise<SyftDocument> {
  const args = ["scan", `oci-dir:${layoutDir}`, "-q", "-o", `syft-json=${outJson}`];
  await syftLocal(args, `syft failed on the layout ${layoutDir}`, timeoutMs);
  return JSON.parse(fs.readFileSync(outJson, "utf8")) as SyftDocument;
}

/** SPDX and CycloneDX from Syft's JSON, by Syft itself (`syft convert`, lossless from syft-json). */
export async function convertSyftJson(
  syftJson: string,
  spdxPath: string,
  cyclonedxPath: string,
  timeoutMs = 300_000,
): Promise<void> {
  const outputs = ["-o", `spdx-json=${spdxPath}`, "-o", `cyclonedx-json=${cyclonedxPath}`];
  await syftLocal(
    ["convert", syftJson, "-q", ...outputs],
    `syft convert ${syftJson} failed`,
    timeoutMs,
  );
}

/** The SBOM of one platform image whose layers are in the local cache (layers.localImage): when
 *  Syft catalogued its lower layers before and the split is clean (sbomReuse.ts), that catalogue
 *  plus a scan of the upper layers alone; otherwise a full scan from the registry. Either way the
 *  image's catalogue is kept for the next run. */
export async function runSyftReusing(opts: {
  local: LocalImage;
  platform: string;
  outDir: string;
  auth?: RegistryAuth;
  cacheDir?: string;
  timeoutMs?: number;
}): Promise<SyftResult> {
  const started = Date.now();
  const syft = requireTool("syft");
  fs.mkdirSync(opts.outDir, { recursive: true });
  const slug = platformSlug(opts.platform);
  const spdxPath = path.join(opts.outDir, `${slug}.spdx.json`);
  const cyclonedxPath = path.join(opts.outDir, `${slug}.cdx.json`);
  const syftJsonPath = path.join(opts.outDir, `${slug}.syft.json`);
  const cache = CatalogCache.forSyft(syft, opts.cacheDir);
  const { plan, notes } = planReuse(cache, opts.local);
  let doc: SyftDocument | undefined;
  let reuse = "";
  if (plan?.kind === "whole") {
    doc = mergeParts(plan.lower, undefined, imageSource(opts.local), plan.descriptor, plan.schema);
    reuse = `all ${plan.k} layers catalogued before`;
  } else if (plan?.kind === "prefix") {
    const { k } = plan;
    const { doc: upper, shared } = await cache.upper(
      opts.local.listings.slice(k).map((l) => l.diffID),
      async () => {
        const layout = upperLayout(opts.local, k);
        try {
          return await scanLayout(layout, path.join(layout, "upper.syft.json"), opts.timeoutMs);
        } finally {
          fs.rmSync(layout, { recursive: true, force: true });
        }
      },
      opts.timeoutMs,
    );
    const problems = catalogProblems(plan.lower, upper, opts.local.listings.slice(k));
    if (problems.length === 0) {
      const upperPart = {
        artifacts: upper.artifacts,
        artifactRelationships: upper.artifactRelationships,
        files: upper.files ?? [],
        distro: upper.distro,
        sourceId: upper.source.id,
      };
      doc = mergeParts(
        plan.lower,
        upperPart,
        imageSource(opts.local),
        plan.descriptor,
        plan.schema,
      );
      const n = opts.local.listings.length;
      reuse = `first ${k} of ${n} layers catalogued before; ${n - k} ${shared ? "catalogued with another image on the same layers" : "scanned"}`;
    } else {
      notes.push(`upper scan not merged: ${problems.slice(0, 3).join("; ")}`);
    }
  }
  if (doc === undefined) {
    const full = await runSyft({
      imageRef: opts.local.image.ref,
      platform: opts.platform,
      outDir: opts.outDir,
      auth: opts.auth,
      timeoutMs: opts.timeoutMs,
      syftJsonPath,
    });
    cache.store(
      opts.local.listings,
      JSON.parse(fs.readFileSync(syftJsonPath, "utf8")) as SyftDocument,
    );
    return {
      ...full,
      seconds: (Date.now() - started) / 1000,
      reuse: ["full scan", ...notes].join("; "),
    };
  }
  fs.writeFileSync(syftJsonPath, JSON.stringify(doc));
  await convertSyftJson(syftJsonPath, spdxPath, cyclonedxPath, opts.timeoutMs);
  if (plan?.kind === "prefix") cache.store(opts.local.listings, doc);
  return {
    ...readSpdx(spdxPath),
    spdxPath,
    cyclonedxPath,
    syftJsonPath,
    seconds: (Date.now() - started) / 1000,
    reuse: [reuse, ...notes].join("; "),
  };
}
