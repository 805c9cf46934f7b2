// Syft: the SPDX (and CycloneDX) SBOM of one pushed platform image, read from the registry by digest.
import * as fs from "node:fs";
import * as path from "node:path";
import { execTool, lastLines, requireTool } from "../exec";
import { type RegistryAuth, insecureOf } from "../oci";

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
}

/** SBOM of one pushed image, read from the registry by digest (no Docker daemon involved). */
export async function runSyft(opts: {
  imageRef: string;
  platform: string;
  outDir: string;
  auth?: RegistryAuth;
  timeoutMs?: number;
}): Promise<SyftResult> {
  const syft = requireTool("syft");
  fs.mkdirSync(opts.outDir, { recursive: true });
  const slug = platformSlug(opts.platform);
  const spdxPath = path.join(opts.outDir, `${slug}.spdx.json`);
  const cyclonedxPath = path.join(opts.outDir, `${slug}.cdx.json`);
  const env: Record<string, string> = {
    SYFT_CHECK_FOR_APP_UPDATE: "false",
    SYFT_REGISTRY_INSECURE_USE_HTTP: String(insecureOf(opts.auth)),
  };
  if (opts.auth?.username !== undefined && opts.auth.password !== undefined) {
    env.SYFT_REGISTRY_AUTH_AUTHORITY = opts.auth.registry;
    env.SYFT_REGISTRY_AUTH_USERNAME = opts.auth.username;
    env.SYFT_REGISTRY_AUTH_PASSWORD = opts.auth.password;
  }
  const r = await execTool(
    syft,
    ["scan", `registry:${opts.imageRef}`, "--platform", opts.platform, "-q", "-o", `spdx-json=${spdxPath}`, "-o", `cyclonedx-json=${cyclonedxPath}`],
    { env, timeoutMs: opts.timeoutMs ?? 600_000, redact: [opts.auth?.password ?? ""] },
  );
  if (r.code !== 0) {
    throw new Error(`syft failed on ${opts.imageRef} (${opts.platform}), exit ${r.code}: ${lastLines(r.stderr || r.stdout)}`);
  }
  const spdx = JSON.parse(fs.readFileSync(spdxPath, "utf8")) as { packages?: Array<{ name?: string; versionInfo?: string }>; creationInfo?: { creators?: string[] } };
  const packages = (spdx.packages ?? []).map((p) => ({ name: p.name ?? "", version: p.versionInfo ?? "" }));
  const creator = (spdx.creationInfo?.creators ?? []).find((c) => c.startsWith("Tool: syft-")) ?? "";
  return { spdxPath, cyclonedxPath, packageCount: packages.length, packages, seconds: r.seconds, syftVersion: creator.replace("Tool: syft-", "") };
}

