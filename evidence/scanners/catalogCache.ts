// The catalogue cache: each image's Syft catalogue stored by the chain ID of its layers, and every
// prefix of it whose split is clean registered, so a later image on the same lower layers finds it.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { type CatalogPart, catalogPart } from "./catalogMerge";
import { evidenceCacheDir, touch } from "./layerCache";
import { catalogProblems, splitProblems } from "./reuseRules";
import type { SyftDocument } from "./syftDocument";
import type { LayerListing } from "./tarListing";

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

export interface StoredStack {
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
    return readJson<StoredStack>(this.stackFile(chain));
  }

  /** The stored stack whose first `k` layers have this chain ID, when that split was clean. */
  prefix(chain: string): { stack: StoredStack; k: number } | undefined {
    const f = this.prefixFile(chain);
    if (!fs.existsSync(f)) return undefined;
    const [stackChain, k] = fs.readFileSync(f, "utf8").trim().split(" ");
    const stack = this.stack(stackChain);
    return stack === undefined ? undefined : { stack, k: Number(k) };
  }

  private upperFile(chain: string): string {
    return path.join(this.dir, "uppers", `${chain.replace(/^sha256:/, "")}.json`);
  }

  /** Syft's catalogue of an image's upper layers alone (these diff IDs, in order), shared by every
   *  image on the same upper layers: after a source change each platform's new `dist` layer is the
   *  same layer. The first process to ask runs `scan`; concurrent ones wait for its file, later ones
   *  read it. A lock whose process is gone, or older than `timeoutMs`, is taken over; a waiter that
   *  times out scans for itself. The catalogue holds no platform: only the layers' own paths, and
   *  its source is replaced when merged (catalogMerge.mergeParts). */
  async upper(
    diffIDs: string[],
    scan: () => Promise<SyftDocument>,
    timeoutMs = 600_000,
  ): Promise<{ doc: SyftDocument; shared: boolean }> {
    const file = this.upperFile(chainIds(diffIDs)[diffIDs.length - 1]);
    const lock = `${file}.lock`;
    const deadline = Date.now() + timeoutMs;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    for (;;) {
      const stored = readJson<SyftDocument>(file);
      if (stored !== undefined) return { doc: stored, shared: true };
      let fd: number;
      try {
        fd = fs.openSync(lock, "wx");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        if (Date.now() > deadline) return { doc: await scan(), shared: false };
        if (lockAbandoned(lock, timeoutMs)) fs.rmSync(lock, { force: true });
        else await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      try {
        fs.writeSync(fd, String(process.pid));
        const doc = await scan();
        write(file, JSON.stringify(doc));
        return { doc, shared: false };
      } finally {
        fs.closeSync(fd);
        fs.rmSync(lock, { force: true });
      }
    }
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

/** Through a temp name and a rename: concurrent runs never read half a file. */
function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

/** A whole JSON file, marked used so pruning keeps it; undefined when it is missing or not (yet)
 *  readable. */
function readJson<T>(file: string): T | undefined {
  let value: T;
  try {
    value = JSON.parse(fs.readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
  touch(file);
  return value;
}

/** A lock left by a process that is gone (its pid, written first thing, names no process) or
 *  older than `maxAgeMs`. */
function lockAbandoned(lock: string, maxAgeMs: number): boolean {
  try {
    if (Date.now() - fs.statSync(lock).mtimeMs > maxAgeMs) return true;
    const pid = Number(fs.readFileSync(lock, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return false;
  } catch (e) {
    // ESRCH: no such process; ENOENT: released meanwhile (the loop looks again either way)
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}
