// Parts of a Syft catalogue cut along layers, and the merge of a lower and an upper part into the
// document Syft would write for the whole image.
import type { LocalImage } from "./layers";
import type {
  SyftArtifact,
  SyftDocument,
  SyftFile,
  SyftRelationship,
  SyftSource,
} from "./syftDocument";

export interface CatalogPart {
  artifacts: SyftArtifact[];
  artifactRelationships: SyftRelationship[];
  files: SyftFile[];
  distro: unknown;
  /** The source ID the part's `contains` relationships start from. */
  sourceId: string;
}

/** The part of a catalogue located in `layers` (artifacts all of whose locations are there, their
 *  files and relationships); undefined when an artifact straddles the split. */
export function catalogPart(
  doc: Omit<CatalogPart, "sourceId"> & { sourceId: string },
  layers: Set<string>,
): CatalogPart | undefined {
  const artifacts: SyftArtifact[] = [];
  for (const a of doc.artifacts) {
    const inside = a.locations.filter(
      (l) => l.layerID !== undefined && layers.has(l.layerID),
    ).length;
    if (inside === a.locations.length && inside > 0) artifacts.push(a);
    else if (inside > 0) return undefined;
  }
  const files = doc.files.filter(
    (f) => f.location.layerID !== undefined && layers.has(f.location.layerID),
  );
  const keep = new Set<string>([
    doc.sourceId,
    ...artifacts.map((a) => a.id),
    ...files.map((f) => f.id),
  ]);
  const artifactRelationships = doc.artifactRelationships.filter(
    (r) => keep.has(r.parent) && keep.has(r.child),
  );
  return { artifacts, artifactRelationships, files, distro: doc.distro, sourceId: doc.sourceId };
}

/** Lower + upper into one document for `source`; the sources' IDs become the image's. */
export function mergeParts(
  lower: CatalogPart,
  upper: CatalogPart | undefined,
  source: SyftSource,
  descriptor: unknown,
  schema: unknown,
): SyftDocument {
  const parts = upper === undefined ? [lower] : [lower, upper];
  const ids = new Set(parts.map((p) => p.sourceId));
  const mapId = (id: string): string => (ids.has(id) ? source.id : id);
  const seen = new Set<string>();
  const artifacts: SyftArtifact[] = [];
  for (const p of parts) {
    for (const a of p.artifacts) {
      if (seen.has(a.id))
        throw new Error(`package ID ${a.id} (${a.name}) on both sides of the split`);
      seen.add(a.id);
      artifacts.push(a);
    }
  }
  const rel = new Map<string, SyftRelationship>();
  for (const p of parts) {
    for (const r of p.artifactRelationships) {
      const m = { ...r, parent: mapId(r.parent), child: mapId(r.child) };
      rel.set(JSON.stringify([m.parent, m.child, m.type]), m);
    }
  }
  const files = new Map<string, SyftFile>();
  for (const p of parts) for (const f of p.files) files.set(f.id, f);
  const distro = lower.distro ?? upper?.distro ?? null;
  return {
    artifacts,
    artifactRelationships: [...rel.values()],
    files: [...files.values()],
    source,
    distro,
    descriptor,
    schema,
  };
}

/** The `source` block Syft writes for `registry:<repo>@<digest>`, from the registry's own bytes. */
export function imageSource(local: Pick<LocalImage, "image" | "listings">): SyftSource {
  const { image, listings } = local;
  const layers = image.manifest.layers.map((l, i) => ({
    mediaType: l.mediaType,
    digest: image.config.rootfs.diff_ids[i],
    size: listings[i].size,
  }));
  const metadata: Record<string, unknown> = {
    userInput: image.ref,
    imageID: image.manifest.config.digest,
    manifestDigest: image.digest,
    mediaType: image.mediaType,
    tags: [],
    imageSize: layers.reduce((s, l) => s + l.size, 0),
    layers,
    manifest: image.manifestRaw.toString("base64"),
    config: image.configRaw.toString("base64"),
    repoDigests: [image.ref],
    architecture: image.config.architecture ?? "",
    os: image.config.os ?? "",
  };
  if (image.config.variant !== undefined && image.config.variant !== "")
    metadata.architectureVariant = image.config.variant;
  const labels = image.config.config?.Labels;
  if (labels !== undefined && labels !== null && Object.keys(labels).length > 0)
    metadata.labels = labels;
  return {
    id: image.digest.replace(/^sha256:/, ""),
    name: image.imageName,
    version: image.digest,
    type: "image",
    metadata,
  };
}
