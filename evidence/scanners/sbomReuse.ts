// The SBOM of an image whose lower layers were catalogued before: Syft's catalogue of those layers
// (kept per layer chain) plus Syft's scan of the new upper layers alone, merged into one Syft JSON
// document and converted by Syft itself to SPDX and CycloneDX. A rebuild after a source change then
// scans a few hundred kilobytes instead of the whole base again.
//
// Only when the split cannot change what Syft finds: the merge is used when every check below
// passes, and a full scan is made otherwise.
//   - the upper layers delete nothing (no whiteouts), replace no lower path, add no file in a
//     directory that holds lower files, hold no ELF file, and their links resolve among their own
//     paths; no lower link points into them; no lower package claims one of their paths;
//   - the upper scan finds packages only with the per-file catalogers in REUSABLE_CATALOGERS, no
//     distribution, and only `contains`/`evident-by` relationships (none that could cross the split).
// test/e2e/sbom-reuse.e2e.test.ts proves, on the factory's real images for every platform, that the
// merged document equals a full Syft scan package for package (and file, relationship and source).
// The pieces: syftDocument.ts (the format), reuseRules.ts (the checks), catalogMerge.ts (cutting
// and merging catalogues), catalogCache.ts (what was catalogued before); here, the plan and the
// upper layers' own image.
import { type CatalogCache, chainIds } from "./catalogCache";
import { type CatalogPart, catalogPart } from "./catalogMerge";
import type { LocalImage } from "./layers";
import { splitProblems } from "./reuseRules";
import { OCI_MANIFEST, OciLayout } from "../oci/layout";

export type { SyftArtifact, SyftDocument } from "./syftDocument";
export { catalogProblems, resolveLink, splitProblems } from "./reuseRules";
export { type CatalogPart, catalogPart, imageSource, mergeParts } from "./catalogMerge";
export { CatalogCache, chainIds } from "./catalogCache";

/** An OCI layout holding an image made of layers [k..] of `local` only (their blobs from the cache,
 *  the config's diff_ids cut to match), for Syft's `oci-dir:` source. */
export function upperLayout(local: LocalImage, k: number): string {
  const layout = new OciLayout();
  const layers = local.image.manifest.layers.slice(k);
  for (const [i, l] of layers.entries()) layout.copy(local.blobs[k + i], l.digest);
  const config = {
    ...local.image.config,
    rootfs: { type: "layers", diff_ids: local.image.config.rootfs.diff_ids.slice(k) },
    history: [],
  };
  layout.write({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      ...layout.put(Buffer.from(JSON.stringify(config))),
    },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  });
  return layout.dir;
}

export interface ReusePlan {
  /** `whole`: these exact layers were catalogued before; `prefix`: the first `k` layers were. */
  kind: "whole" | "prefix";
  k: number;
  lower: CatalogPart;
  descriptor: unknown;
  schema: unknown;
}

/** What the cache offers for this image: the longest catalogued prefix whose split is clean. */
export function planReuse(
  cache: CatalogCache,
  local: LocalImage,
): { plan?: ReusePlan; notes: string[] } {
  const layers = local.listings.map((l) => l.diffID);
  const chains = chainIds(layers);
  const notes: string[] = [];
  const whole = cache.stack(chains[chains.length - 1]);
  if (whole !== undefined)
    return {
      plan: {
        kind: "whole",
        k: layers.length,
        lower: whole.part,
        descriptor: whole.descriptor,
        schema: whole.schema,
      },
      notes,
    };
  for (let k = layers.length - 1; k >= 1; k--) {
    // An image whose layers are exactly these (the base itself), or a clean prefix of another one.
    const stored = cache.stack(chains[k - 1]);
    const hit = stored !== undefined ? { stack: stored, k } : cache.prefix(chains[k - 1]);
    if (hit === undefined) continue;
    const lower = catalogPart(hit.stack.part, new Set(layers.slice(0, k)));
    if (lower === undefined) continue;
    const problems = splitProblems(local.listings.slice(0, k), local.listings.slice(k));
    if (problems.length > 0) {
      notes.push(
        `catalogue of the first ${k} layers not reused: ${problems.slice(0, 3).join("; ")}`,
      );
      continue;
    }
    return {
      plan: {
        kind: "prefix",
        k,
        lower,
        descriptor: hit.stack.descriptor,
        schema: hit.stack.schema,
      },
      notes,
    };
  }
  return { notes };
}
