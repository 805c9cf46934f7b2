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
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type LayerListing, type LocalImage, evidenceCacheDir } from "./layers";

export interface SyftLocation {
  path: string;
  layerID?: string;
  accessPath?: string;
  annotations?: Record<string, string>;
}

export interface SyftArtifact {
  id: string;
  name: string;
  version: string;
  type: string;
  foundBy: string;
  locations: SyftLocation[];
  metadata?: unknown;
  [k: string]: unknown;
}

export interface SyftRelationship {
  parent: string;
  child: string;
  type: string;
  metadata?: unknown;
}

export interface SyftFile {
  id: string;
  location: SyftLocation;
  [k: string]: unknown;
}

export interface SyftSource {
  id: string;
  name: string;
  version: string;
  type: string;
  metadata: Record<string, unknown>;
  [k: string]: unknown;
}

/** Syft's own JSON format (lossless: `syft convert` makes SPDX and CycloneDX from it). */
export interface SyftDocument {
  artifacts: SyftArtifact[];
  artifactRelationships: SyftRelationship[];
  files?: SyftFile[];
  source: SyftSource;
  distro: unknown;
  descriptor: unknown;
  schema: unknown;
}

/** Catalogers whose packages come from one file and its own directory. */
export const REUSABLE_CATALOGERS = new Set(["javascript-package-cataloger"]);
export const REUSABLE_RELATIONSHIPS = new Set(["contains", "evident-by"]);

/** OCI chain IDs of every prefix: chain[0] = diff[0], chain[k] = sha256(chain[k-1] + " " + diff[k]). */
export function chainIds(diffIDs: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIDs) {
    out.push(
      out.length === 0
        ? d
        : `sha256:${crypto
            .createHash("sha256")
            .update(`${out[out.length - 1]} ${d}`)
            .digest("hex")}`,
    );
  }
  return out;
}

/** Files Syft reads the distribution from: the upper layers must not hold one (the lower layers'
 *  distribution then holds for the whole image). */
const DISTRO_EVIDENCE = new Set([
  "etc/os-release",
  "usr/lib/os-release",
  "etc/system-release-cpe",
  "etc/redhat-release",
  "etc/centos-release",
  "etc/alpine-release",
  "etc/debian_version",
  "bin/busybox",
]);

const parentOf = (p: string): string => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : "");

/** Lexical resolution of a link target (relative to the link's directory; absolute from the root). */
export function resolveLink(linkPath: string, target: string): string {
  const joined = target.startsWith("/") ? target : `${parentOf(linkPath)}/${target}`;
  const out: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out.join("/");
}

/** Why the `upper` layers could change what Syft finds in the `lower` ones, or the reverse; [] when
 *  the split is clean (filesystem checks; see catalogProblems for the catalogue's). */
export function splitProblems(lower: LayerListing[], upper: LayerListing[]): string[] {
  const lowerPaths = new Set<string>();
  const lowerParents = new Set<string>();
  const lowerLinks: Array<{ path: string; link: string; hard: boolean }> = [];
  for (const l of lower) {
    for (const e of l.entries) {
      lowerPaths.add(e.path);
      if (e.type !== "dir") lowerParents.add(parentOf(e.path));
      if (e.link !== undefined)
        lowerLinks.push({ path: e.path, link: e.link, hard: e.type === "hardlink" });
    }
  }
  const upperPaths = new Set<string>();
  for (const u of upper) for (const e of u.entries) upperPaths.add(e.path);
  const problems: string[] = [];
  for (const u of upper) {
    for (const e of u.entries) {
      if (DISTRO_EVIDENCE.has(e.path))
        problems.push(`upper layer ${u.diffID} holds ${e.path}, which names the distribution`);
      const base = e.path.slice(e.path.lastIndexOf("/") + 1);
      if (base.startsWith(".wh.")) problems.push(`upper layer ${u.diffID} deletes ${e.path}`);
      else if (e.type !== "dir" && lowerPaths.has(e.path))
        problems.push(`upper layer ${u.diffID} replaces ${e.path}`);
      else if (e.type !== "dir" && lowerParents.has(parentOf(e.path)))
        problems.push(`upper layer ${u.diffID} adds ${e.path} beside lower files`);
      if (e.elf === true) problems.push(`upper layer ${u.diffID} holds an ELF file, ${e.path}`);
      if (e.link !== undefined) {
        const target = e.type === "hardlink" ? normalize(e.link) : resolveLink(e.path, e.link);
        if (!upperPaths.has(target) || lowerPaths.has(target))
          problems.push(`upper link ${e.path} → ${e.link} leaves the upper layers`);
      }
    }
  }
  for (const l of lowerLinks) {
    const target = l.hard ? normalize(l.link) : resolveLink(l.path, l.link);
    if (
      upperPaths.has(target) ||
      [...upperPaths].some((p) => p.startsWith(`${target}/`) && !lowerPaths.has(target))
    )
      problems.push(`lower link ${l.path} → ${l.link} points into the upper layers`);
  }
  return problems.slice(0, 20);
}

function normalize(p: string): string {
  return p
    .replace(/^(\.\/)+/, "")
    .replace(/^\/+/, "")
    .replace(/\/+$/, "");
}

/** Paths a lower package claims in its metadata (OS packages list their files). */
function claimedPaths(a: SyftArtifact): string[] {
  const files = (a.metadata as { files?: Array<{ path?: string }> } | undefined)?.files;
  return Array.isArray(files)
    ? files.map((f) => normalize(f.path ?? "")).filter((p) => p !== "")
    : [];
}

/** Why a catalogue split cannot be trusted: catalogers or relationships that may cross it, a
 *  distribution found in the upper layers, lower packages claiming upper paths. */
export function catalogProblems(
  lower: Pick<SyftDocument, "artifacts" | "artifactRelationships">,
  upper: Pick<SyftDocument, "artifacts" | "artifactRelationships" | "distro">,
  upperListings: LayerListing[],
): string[] {
  const problems: string[] = [];
  for (const a of upper.artifacts)
    if (!REUSABLE_CATALOGERS.has(a.foundBy))
      problems.push(`upper package ${a.name}@${a.version} found by ${a.foundBy}`);
  for (const r of [...lower.artifactRelationships, ...upper.artifactRelationships]) {
    if (!REUSABLE_RELATIONSHIPS.has(r.type)) {
      problems.push(`relationship of type ${r.type}`);
      break;
    }
  }
  if (
    upper.distro !== null &&
    upper.distro !== undefined &&
    Object.keys(upper.distro as object).length > 0
  )
    problems.push("the upper layers name a distribution");
  const upperPaths = new Set(upperListings.flatMap((l) => l.entries.map((e) => e.path)));
  for (const a of lower.artifacts) {
    const claim = claimedPaths(a).find((p) => upperPaths.has(p));
    if (claim !== undefined) problems.push(`lower package ${a.name} claims ${claim}`);
  }
  return problems.slice(0, 20);
}

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

// ---- the catalogue cache -----------------------------------------------------------------------

interface StoredStack {
  layers: string[];
  part: CatalogPart;
  descriptor: unknown;
  schema: unknown;
}

export class CatalogCache {
  constructor(readonly dir: string) {}

  static forSyft(syftBinary: string, cacheDir = evidenceCacheDir()): CatalogCache {
    // Keyed by the Syft binary (path, size, mtime) and this module's scan arguments: a new Syft or
    // new arguments start a new catalogue.
    const st = fs.statSync(syftBinary);
    const key = crypto
      .createHash("sha256")
      .update(`${syftBinary} ${st.size} ${st.mtimeMs} scan-v1 -q default catalogers`)
      .digest("hex")
      .slice(0, 16);
    return new CatalogCache(path.join(cacheDir, "sbom", key));
  }

  private stackFile(chain: string): string {
    return path.join(this.dir, "stacks", `${chain.replace(/^sha256:/, "")}.json`);
  }

  private prefixFile(chain: string): string {
    return path.join(this.dir, "prefixes", chain.replace(/^sha256:/, ""));
  }

  stack(chain: string): StoredStack | undefined {
    const f = this.stackFile(chain);
    if (!fs.existsSync(f)) return undefined;
    try {
      const now = new Date();
      fs.utimesSync(f, now, now);
      return JSON.parse(fs.readFileSync(f, "utf8")) as StoredStack;
    } catch {
      return undefined;
    }
  }

  /** The stored stack whose first `k` layers have this chain ID, when that split was clean. */
  prefix(chain: string): { stack: StoredStack; k: number } | undefined {
    const f = this.prefixFile(chain);
    if (!fs.existsSync(f)) return undefined;
    const [stackChain, k] = fs.readFileSync(f, "utf8").trim().split(" ");
    const stack = this.stack(stackChain);
    return stack === undefined ? undefined : { stack, k: Number(k) };
  }

  /** Stores an image's catalogue by the chain ID of its layers and registers every clean prefix. */
  store(listings: LayerListing[], doc: SyftDocument): void {
    const layers = listings.map((l) => l.diffID);
    const chains = chainIds(layers);
    const top = chains[chains.length - 1];
    const part: CatalogPart = {
      artifacts: doc.artifacts,
      artifactRelationships: doc.artifactRelationships,
      files: doc.files ?? [],
      distro: doc.distro,
      sourceId: doc.source.id,
    };
    write(
      this.stackFile(top),
      JSON.stringify({
        layers,
        part,
        descriptor: doc.descriptor,
        schema: doc.schema,
      } satisfies StoredStack),
    );
    for (let k = 1; k < layers.length; k++) {
      const lowerSet = new Set(layers.slice(0, k));
      const lowerPart = catalogPart(part, lowerSet);
      const upperPart = catalogPart(part, new Set(layers.slice(k)));
      if (lowerPart === undefined || upperPart === undefined) continue;
      const problems = [
        ...splitProblems(listings.slice(0, k), listings.slice(k)),
        ...catalogProblems(lowerPart, { ...upperPart, distro: null }, listings.slice(k)),
      ];
      if (problems.length === 0) write(this.prefixFile(chains[k - 1]), `${top} ${k}\n`);
    }
  }
}

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

// ---- the upper layers on their own -------------------------------------------------------------

/** An OCI layout holding an image made of layers [k..] of `local` only (their blobs from the cache,
 *  the config's diff_ids cut to match), for Syft's `oci-dir:` source. */
export function upperLayout(local: LocalImage, k: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-upper-"));
  const blobs = path.join(dir, "blobs", "sha256");
  fs.mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer): { digest: string; size: number } => {
    const hex = crypto.createHash("sha256").update(data).digest("hex");
    fs.writeFileSync(path.join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layers = local.image.manifest.layers.slice(k);
  for (const [i, l] of layers.entries()) {
    const target = path.join(blobs, l.digest.replace(/^sha256:/, ""));
    if (!fs.existsSync(target)) fs.copyFileSync(local.blobs[k + i], target);
  }
  const config = {
    ...local.image.config,
    rootfs: { type: "layers", diff_ids: local.image.config.rootfs.diff_ids.slice(k) },
    history: [],
  };
  const cfg = put(Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const m = put(Buffer.from(JSON.stringify(manifest)));
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  fs.writeFileSync(
    path.join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: manifest.mediaType, ...m }],
    }),
  );
  return dir;
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
