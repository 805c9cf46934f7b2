// When a catalogue of lower layers plus a scan of the upper layers alone finds what a full Syft
// scan finds (the conditions are listed in sbomReuse.ts): the filesystem checks on the layer
// listings, and the checks on the two catalogues.
import type { SyftArtifact, SyftDocument } from "./syftDocument";
import { type LayerListing, normalizeTarPath } from "./tarListing";

/** Catalogers whose packages come from one file and its own directory. */
export const REUSABLE_CATALOGERS = new Set(["javascript-package-cataloger"]);
export const REUSABLE_RELATIONSHIPS = new Set(["contains", "evident-by"]);

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
        const target =
          e.type === "hardlink" ? normalizeTarPath(e.link) : resolveLink(e.path, e.link);
        if (!upperPaths.has(target) || lowerPaths.has(target))
          problems.push(`upper link ${e.path} → ${e.link} leaves the upper layers`);
      }
    }
  }
  for (const l of lowerLinks) {
    const target = l.hard ? normalizeTarPath(l.link) : resolveLink(l.path, l.link);
    if (
      upperPaths.has(target) ||
      [...upperPaths].some((p) => p.startsWith(`${target}/`) && !lowerPaths.has(target))
    )
      problems.push(`lower link ${l.path} → ${l.link} points into the upper layers`);
  }
  return problems.slice(0, 20);
}

/** Paths a lower package claims in its metadata (OS packages list their files). */
function claimedPaths(a: SyftArtifact): string[] {
  const files = (a.metadata as { files?: Array<{ path?: string }> } | undefined)?.files;
  return Array.isArray(files)
    ? files.map((f) => normalizeTarPath(f.path ?? "")).filter((p) => p !== "")
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
