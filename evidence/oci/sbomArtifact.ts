// The SBOM as an OCI 1.1 artifact beside its platform image, written and read through crane: the
// artifact is an OCI layout made here and pushed with `crane push`, read back with `crane manifest`
// and `crane blob`.
import * as fs from "node:fs";
import * as path from "node:path";
import { registryOf, repositoryOf } from "../reference";
import type { RegistryAuth } from "./auth";
import { crane } from "./crane";
import { OCI_MANIFEST, OciLayout } from "./layout";

export const SPDX_ARTIFACT_TYPE = "application/spdx+json";

/** Pushes an SBOM next to the image as an OCI 1.1 artifact whose `subject` is the platform image,
 *  so registries with the referrers API list it under the image (crane also updates the OCI
 *  referrers fallback tag `sha256-<hex>` on registries without it); it is also tagged
 *  `sha256-<hex>.sbom` (the cosign convention) so it is found by a plain tag too.
 *  Returns `oci://<repo>@<artifact digest>`. */
export async function pushSbomArtifact(opts: {
  imageName: string;
  subjectDigest: string;
  subjectSize: number;
  subjectMediaType: string;
  sbomPath: string;
  platform: string;
  auth: RegistryAuth;
}): Promise<string> {
  const layout = new OciLayout();
  try {
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SPDX_ARTIFACT_TYPE,
      config: { mediaType: "application/vnd.oci.empty.v1+json", ...layout.put(Buffer.from("{}")) },
      layers: [
        {
          mediaType: SPDX_ARTIFACT_TYPE,
          ...layout.put(fs.readFileSync(opts.sbomPath)),
          annotations: { "org.opencontainers.image.title": path.basename(opts.sbomPath) },
        },
      ],
      subject: {
        mediaType: opts.subjectMediaType,
        digest: opts.subjectDigest,
        size: opts.subjectSize,
      },
      annotations: {
        "org.opencontainers.image.created": new Date().toISOString(),
        "dev.image-factory.platform": opts.platform,
      },
    };
    const { digest } = layout.write(manifest);
    const repo = `${registryOf(opts.imageName)}/${repositoryOf(opts.imageName)}`;
    const tag = `${opts.subjectDigest.replace(":", "-")}.sbom`;
    // Pushed by tag: the registry then also holds the manifest by its digest.
    await crane(opts.auth, ["push", layout.dir, `${repo}:${tag}`]);
    return `oci://${repo}@${digest}`;
  } finally {
    fs.rmSync(layout.dir, { recursive: true, force: true });
  }
}

/** Reads a manifest's media type and size (needed for an artifact's `subject`). */
export async function headManifest(
  auth: RegistryAuth,
  imageName: string,
  digest: string,
): Promise<{ mediaType: string; size: number }> {
  const raw = await crane(auth, ["manifest", `${imageName}@${digest}`]);
  const manifest = JSON.parse(raw) as { mediaType?: string; manifests?: unknown };
  // An OCI manifest may leave its media type out; an index is told apart by its manifests[].
  const mediaType =
    manifest.mediaType ??
    (manifest.manifests !== undefined ? "application/vnd.oci.image.index.v1+json" : OCI_MANIFEST);
  return { mediaType, size: Buffer.byteLength(raw) };
}

/** Fetches an SBOM artifact back (`oci://registry/repo@digest`): what a user or a test does. */
export async function fetchSbomArtifact(uri: string, auth: RegistryAuth): Promise<unknown> {
  const m = /^oci:\/\/([^/]+\/.+)@(sha256:[0-9a-f]{64})$/.exec(uri);
  if (!m) throw new Error(`not an oci:// SBOM location: ${uri}`);
  const [, repo, digest] = m;
  const manifest = JSON.parse(await crane(auth, ["manifest", `${repo}@${digest}`])) as {
    layers?: Array<{ digest: string }>;
  };
  const layer = manifest.layers?.[0]?.digest;
  if (!layer) throw new Error(`SBOM artifact ${uri} has no layer`);
  return JSON.parse(await crane(auth, ["blob", `${repo}@${layer}`]));
}
