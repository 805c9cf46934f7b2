// The evidence cache on this machine: <tool cache>/evidence-cache (beside the tools, like Trivy's
// cache), keyed by digest. Every file is written to a temp name and renamed, so concurrent runs
// never see half a file; entries unused for PRUNE_DAYS are removed (at most once a day).
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { toolBinDir } from "../exec";

export const PRUNE_DAYS = 14;

export function evidenceCacheDir(): string {
  return path.join(path.dirname(toolBinDir()), "evidence-cache");
}

/** The hex part of a sha256 digest, for file names. */
export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (m === null) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1];
}

/** Writes `file` through a temp name and a rename: readers see all of it or none. */
export async function writeAtomically(
  file: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  try {
    await write(tmp);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Marks an entry used, so pruning keeps it. */
export function touch(file: string): void {
  const now = new Date();
  try {
    fs.utimesSync(file, now, now);
  } catch {
    // a concurrent prune removed it: the caller still holds what it read
  }
}

export async function hashFile(file: string): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/** Removes cache entries unused for PRUNE_DAYS; runs at most once a day. */
export function pruneOnceADay(): void {
  const root = evidenceCacheDir();
  const stamp = path.join(root, "pruned");
  const day = 24 * 3600 * 1000;
  try {
    if (fs.existsSync(stamp) && Date.now() - fs.statSync(stamp).mtimeMs < day) return;
    fs.mkdirSync(root, { recursive: true });
    fs.writeFileSync(stamp, new Date().toISOString());
    const cutoff = Date.now() - PRUNE_DAYS * day;
    const walk = (dir: string): void => {
      if (!fs.existsSync(dir)) return;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (fs.statSync(p).mtimeMs < cutoff) fs.rmSync(p, { force: true });
      }
    };
    walk(root);
  } catch {
    // pruning is housekeeping: never a reason to fail the evidence
  }
}
