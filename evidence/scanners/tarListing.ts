// A streaming tar reader that lists a layer's entries (path, type, size, ELF or not) while the
// layer is uncompressed into the cache, so the SBOM reuse checks need no second pass over it.

export type EntryType = "file" | "dir" | "symlink" | "hardlink" | "other";

export interface LayerEntry {
  /** Path without a leading `/` or `./`, no trailing `/`. */
  path: string;
  type: EntryType;
  size: number;
  /** A regular file starting with the ELF magic. */
  elf?: boolean;
  /** Target of a symlink or hard link, as written in the archive. */
  link?: string;
}

export interface LayerListing {
  diffID: string;
  /** Sum of the regular files' sizes (what Docker, Syft and Dive call the layer's size). */
  size: number;
  entries: LayerEntry[];
}

function octal(b: Buffer, start: number, len: number): number {
  if ((b[start] & 0x80) !== 0) {
    // base-256 (GNU) for large values
    let v = 0;
    for (let i = start + 1; i < start + len; i++) v = v * 256 + b[i];
    return v;
  }
  const s = b
    .subarray(start, start + len)
    .toString("latin1")
    .replace(/\0.*$/s, "")
    .trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function cstr(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString("utf8");
}

export function normalizeTarPath(p: string): string {
  return p
    .replace(/^(\.\/)+/, "")
    .replace(/^\/+/, "")
    .replace(/\/+$/, "");
}

/** A streaming tar reader that keeps each entry's path, type, size and whether it is an ELF file
 *  (ustar, pax `path`/`linkpath`/`size` records and GNU long names). */
export class TarLister {
  readonly entries: LayerEntry[] = [];
  private header = Buffer.alloc(0);
  private dataLeft = 0;
  private padLeft = 0;
  private current?: LayerEntry & { kind: string };
  private captured: Buffer[] = [];
  private capturedLen = 0;
  private captureLimit = 0;
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;
  ended = false;

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, chunk.length - off);
        if (this.capturedLen < this.captureLimit) {
          const take = Math.min(n, this.captureLimit - this.capturedLen);
          this.captured.push(chunk.subarray(off, off + take));
          this.capturedLen += take;
        }
        off += n;
        this.dataLeft -= n;
        if (this.dataLeft === 0) this.endData();
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, chunk.length - off);
        off += n;
        this.padLeft -= n;
        continue;
      }
      const take = Math.min(512 - this.header.length, chunk.length - off);
      this.header = Buffer.concat([this.header, chunk.subarray(off, off + take)]);
      off += take;
      if (this.header.length === 512) {
        const h = this.header;
        this.header = Buffer.alloc(0);
        this.onHeader(h);
      }
    }
  }

  private onHeader(h: Buffer): void {
    if (h.every((x) => x === 0)) {
      this.ended = true;
      return;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    if (sum !== octal(h, 148, 8)) throw new Error("tar header checksum mismatch");
    const kind = String.fromCharCode(h[156] || 48);
    const size = octal(h, 124, 12);
    const magic = h.subarray(257, 262).toString("latin1");
    const prefix = magic === "ustar" ? cstr(h, 345, 155) : "";
    let name = cstr(h, 0, 100);
    if (prefix !== "") name = `${prefix}/${name}`;
    if (kind === "x" || kind === "g" || kind === "L" || kind === "K") {
      this.current = { path: "", type: "other", size, kind };
      this.startData(size, size);
      return;
    }
    if (this.longName !== undefined) name = this.longName;
    if (this.pax.path !== undefined) name = this.pax.path;
    const realSize = this.pax.size !== undefined ? Number(this.pax.size) : size;
    this.longName = undefined;
    const type: EntryType =
      kind === "0" || kind === "7"
        ? "file"
        : kind === "5"
          ? "dir"
          : kind === "2"
            ? "symlink"
            : kind === "1"
              ? "hardlink"
              : "other";
    const link = this.pax.linkpath ?? this.longLink ?? cstr(h, 157, 100);
    const entry: LayerEntry & { kind: string } = {
      path: normalizeTarPath(name),
      type,
      size: type === "file" ? realSize : 0,
      kind,
    };
    if (type === "symlink" || type === "hardlink") entry.link = link;
    this.longLink = undefined;
    this.pax = {};
    this.current = entry;
    // Hard links and the like carry no data even when the header names a size.
    const dataSize = type === "file" || kind === "S" ? realSize : 0;
    this.startData(dataSize, type === "file" ? 4 : 0);
  }

  private startData(size: number, capture: number): void {
    this.dataLeft = size;
    this.padLeft = (512 - (size % 512)) % 512;
    this.captured = [];
    this.capturedLen = 0;
    this.captureLimit = capture;
    if (size === 0) this.endData();
  }

  private endData(): void {
    const cur = this.current;
    this.current = undefined;
    if (cur === undefined) return;
    const data = Buffer.concat(this.captured);
    if (cur.kind === "x") {
      let i = 0;
      const text = data.toString("utf8");
      while (i < text.length) {
        const sp = text.indexOf(" ", i);
        if (sp < 0) break;
        const len = Number(text.slice(i, sp));
        if (!Number.isFinite(len) || len <= 0) break;
        const rec = text.slice(sp + 1, i + len - 1);
        const eq = rec.indexOf("=");
        if (eq > 0) this.pax[rec.slice(0, eq)] = rec.slice(eq + 1);
        i += len;
      }
      return;
    }
    if (cur.kind === "L") {
      this.longName = cstr(data, 0, data.length);
      return;
    }
    if (cur.kind === "K") {
      this.longLink = cstr(data, 0, data.length);
      return;
    }
    if (cur.kind === "g") return;
    const entry: LayerEntry = { path: cur.path, type: cur.type, size: cur.size };
    if (cur.link !== undefined) entry.link = cur.link;
    if (entry.type === "file")
      entry.elf =
        data.length >= 4 &&
        data[0] === 0x7f &&
        data[1] === 0x45 &&
        data[2] === 0x4c &&
        data[3] === 0x46;
    if (entry.path !== "") this.entries.push(entry);
  }
}
