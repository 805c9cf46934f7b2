// Package differences between two SPDX JSON SBOMs as Syft writes them (`syft scan -o spdx-json`):
// `packages[]` with `name`, `versionInfo`, `SPDXID` and `externalRefs` holding a purl
// (`pkg:npm/express@4.21.2`, `pkg:deb/debian/libc6@2.36-9+deb12u10?arch=amd64`). The document's
// own root (the scanned image, file or directory: what the document DESCRIBES, and Syft's
// `SPDXRef-DocumentRoot-…` entries) is not a package of the image and is left out. Pure.
import type { PackageChange, PackageRef, SbomDiff } from "./model";

interface SpdxExternalRef {
  referenceCategory?: unknown;
  referenceType?: unknown;
  referenceLocator?: unknown;
}

/** Compares version strings piecewise: runs of digits numerically, the rest by code point,
 *  so `1.10.0` sorts after `1.9.2`. Equal pieces fall back to a plain comparison (total order). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === y) continue;
    // split() with a capture group puts the digit runs at odd indexes.
    if (i % 2 === 1) {
      const nx = x.replace(/^0+(?=\d)/, "");
      const ny = y.replace(/^0+(?=\d)/, "");
      if (nx.length !== ny.length) return nx.length - ny.length;
      if (nx !== ny) return nx < ny ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (pa.length !== pb.length) return pa.length - pb.length;
  return a === b ? 0 : a < b ? -1 : 1;
}

function byCodePoint(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

function comparePackages(a: PackageRef, b: PackageRef): number {
  return (
    byCodePoint(a.type, b.type) ||
    byCodePoint(a.name, b.name) ||
    compareVersions(a.version, b.version)
  );
}

/** The purl type (`npm`, `deb`, …) of a `pkg:` URL, lowercased; undefined for anything else. */
export function purlType(purl: string): string | undefined {
  const m = /^pkg:\/*([A-Za-z][A-Za-z0-9.+-]*)\//.exec(purl);
  return m === null ? undefined : m[1].toLowerCase();
}

function describe(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/** The packages of an SPDX JSON document, without the document's root entries, sorted. */
export function sbomPackages(doc: unknown, what = "SPDX document"): PackageRef[] {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`${what} must be an SPDX JSON object, got ${describe(doc)}`);
  }
  const d = doc as Record<string, unknown>;
  if (typeof d.spdxVersion !== "string" || !d.spdxVersion.startsWith("SPDX-")) {
    throw new Error(`${what} is not SPDX JSON: spdxVersion is ${describe(d.spdxVersion)}`);
  }
  if (d.packages !== undefined && !Array.isArray(d.packages)) {
    throw new Error(`${what}.packages must be an array, got ${describe(d.packages)}`);
  }
  const docId = typeof d.SPDXID === "string" ? d.SPDXID : "SPDXRef-DOCUMENT";
  const roots = new Set<string>();
  if (Array.isArray(d.documentDescribes)) {
    for (const id of d.documentDescribes) if (typeof id === "string") roots.add(id);
  }
  if (Array.isArray(d.relationships)) {
    for (const rel of d.relationships as Array<Record<string, unknown>>) {
      if (
        rel !== null &&
        typeof rel === "object" &&
        rel.spdxElementId === docId &&
        rel.relationshipType === "DESCRIBES" &&
        typeof rel.relatedSpdxElement === "string"
      ) {
        roots.add(rel.relatedSpdxElement);
      }
    }
  }

  const out: PackageRef[] = [];
  ((d.packages as unknown[] | undefined) ?? []).forEach((p, i) => {
    if (typeof p !== "object" || p === null || Array.isArray(p)) {
      throw new Error(`${what}.packages[${i}] must be an object, got ${describe(p)}`);
    }
    const pkg = p as Record<string, unknown>;
    const id = typeof pkg.SPDXID === "string" ? pkg.SPDXID : "";
    if (roots.has(id) || id.startsWith("SPDXRef-DocumentRoot-")) return;
    const refs = Array.isArray(pkg.externalRefs) ? (pkg.externalRefs as SpdxExternalRef[]) : [];
    const purl = refs.find(
      (r) =>
        r !== null &&
        typeof r === "object" &&
        r.referenceType === "purl" &&
        typeof r.referenceLocator === "string",
    )?.referenceLocator as string | undefined;
    const name = typeof pkg.name === "string" ? pkg.name : "";
    if (name === "") {
      throw new Error(`${what}.packages[${i}] (${id || "no SPDXID"}) has no name`);
    }
    const rawVersion = typeof pkg.versionInfo === "string" ? pkg.versionInfo : "";
    const version = rawVersion === "NOASSERTION" || rawVersion === "NONE" ? "" : rawVersion;
    out.push({
      name,
      type: (purl === undefined ? undefined : purlType(purl)) ?? "unknown",
      version,
    });
  });
  return out.sort(comparePackages);
}

/** How many leading pieces (digit runs and what separates them) two versions share. */
function sharedPrefix(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  let n = 0;
  while (n < pa.length && n < pb.length && pa[n] === pb[n]) n++;
  return n;
}

/** Pairs the versions only one side has: closest first (the longest shared prefix, so `7.5.4`
 *  goes to `7.7.1` rather than to `6.3.1`), then in version order. The order depends only on the
 *  unordered pair, so swapping the sides swaps the pairs. Returns [before, after] pairs. */
function pairVersions(onlyBefore: string[], onlyAfter: string[]): Array<[string, string]> {
  const candidates: Array<{ b: string; a: string; score: number; lo: string; hi: string }> = [];
  for (const b of onlyBefore) {
    for (const a of onlyAfter) {
      const [lo, hi] = compareVersions(b, a) <= 0 ? [b, a] : [a, b];
      candidates.push({ b, a, score: sharedPrefix(b, a), lo, hi });
    }
  }
  candidates.sort(
    (x, y) => y.score - x.score || compareVersions(x.lo, y.lo) || compareVersions(x.hi, y.hi),
  );
  const usedB = new Set<string>();
  const usedA = new Set<string>();
  const pairs: Array<[string, string]> = [];
  for (const c of candidates) {
    if (usedB.has(c.b) || usedA.has(c.a)) continue;
    usedB.add(c.b);
    usedA.add(c.a);
    pairs.push([c.b, c.a]);
  }
  return pairs;
}

/** Packages added, removed and changed from `before` to `after`. A package is its type and name;
 *  versions present on both sides are unchanged; the other versions of a package are paired as
 *  changes (closest versions first, see pairVersions), and what is left over is added or removed:
 *  a package installed in two versions that loses one shows that version as removed. Duplicate
 *  entries (the same version installed twice) count once. */
export function diffPackages(before: PackageRef[], after: PackageRef[]): SbomDiff {
  const group = (list: PackageRef[]): Map<string, Set<string>> => {
    const m = new Map<string, Set<string>>();
    for (const p of list) {
      const key = `${p.type}\u0000${p.name}`;
      let versions = m.get(key);
      if (versions === undefined) m.set(key, (versions = new Set()));
      versions.add(p.version);
    }
    return m;
  };
  const b = group(before);
  const a = group(after);
  const added: PackageRef[] = [];
  const removed: PackageRef[] = [];
  const changed: PackageChange[] = [];
  for (const key of new Set([...b.keys(), ...a.keys()])) {
    const [type, name] = key.split("\u0000");
    const vb = b.get(key) ?? new Set<string>();
    const va = a.get(key) ?? new Set<string>();
    const onlyBefore = [...vb].filter((v) => !va.has(v));
    const onlyAfter = [...va].filter((v) => !vb.has(v));
    const pairs = pairVersions(onlyBefore, onlyAfter);
    for (const [from, to] of pairs) changed.push({ name, type, before: from, after: to });
    const paired = new Set(pairs.flat());
    for (const v of onlyBefore) if (!paired.has(v)) removed.push({ name, type, version: v });
    for (const v of onlyAfter) if (!paired.has(v)) added.push({ name, type, version: v });
  }
  changed.sort(
    (x, y) =>
      byCodePoint(x.type, y.type) ||
      byCodePoint(x.name, y.name) ||
      compareVersions(x.before, y.before) ||
      compareVersions(x.after, y.after),
  );
  return { added: added.sort(comparePackages), removed: removed.sort(comparePackages), changed };
}

/** The package diff between the SBOM of what ships (absent: nothing ships, every package is
 *  added) and the candidate's SBOM. */
export function sbomDiff(current: unknown | undefined, candidate: unknown): SbomDiff {
  return diffPackages(
    current === undefined ? [] : sbomPackages(current, "current SBOM"),
    sbomPackages(candidate, "candidate SBOM"),
  );
}

export function isEmptyDiff(diff: SbomDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}
