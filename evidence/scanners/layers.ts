// One image's parts for the scanners that need them locally (Dive, the SBOM's partial scans): the
// raw manifest and config (digests checked), each layer blob in a content-addressed cache shared by
// every run on this machine, and each layer once uncompressed with its file listing. Each layer is
// fetched and read once per machine, not once per run and tool: a rebuild that changed only the
// app's top layers fetches and reads only those.
//
// Cache: <tool cache>/evidence-cache (beside the tools, like Trivy's cache), keyed by digest;
// every file is written to a temp name and renamed, so concurrent runs never see half a file.
// Entries unused for PRUNE_DAYS are removed (at most once a day).
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { once } from "node:events";
import * as zlib from "node:zlib";
import { lastLines, requireTool, toolBinDir, toolEnv } from "../exec";
import { type RegistryAuth, crane, insecureOf, withDockerConfig } from "../oci";

export const PRUNE_DAYS = 14;

export function evidenceCacheDir(): string {
  return path.join(path.dirname(toolBinDir()), "evidence-cache");
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ImageManifest {
  schemaVersion?: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: { Labels?: Record<string, string> | null };
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

/** A platform image as the registry holds it. */
export interface ImageParts {
  /** `<repository>@<digest>` */
  ref: string;
  /** Repository with its registry, no tag (e.g. `127.0.0.1:5443/image-factory/shop-api`). */
  imageName: string;
  digest: string;
  mediaType: string;
  manifestRaw: Buffer;
  manifest: ImageManifest;
  configRaw: Buffer;
  config: ImageConfig;
}

function sha256(data: Buffer): string {
  return `sha256:${crypto.createHash("sha256").update(data).digest("hex")}`;
}

function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (m === null) throw new Error(`not a sha256 digest: ${digest}`);
  return m[1];
}

/** Manifest and config of one platform image, each checked against its digest. */
export async function readImage(
  auth: RegistryAuth,
  imageName: string,
  digest: string,
): Promise<ImageParts> {
  const ref = `${imageName}@${digest}`;
  const manifestRaw = Buffer.from(await crane(auth, ["manifest", ref]), "utf8");
  if (sha256(manifestRaw) !== digest)
    throw new Error(`the manifest crane returned for ${ref} does not hash to its digest`);
  const manifest = JSON.parse(manifestRaw.toString("utf8")) as ImageManifest & {
    manifests?: unknown;
  };
  if (manifest.manifests !== undefined || manifest.config === undefined)
    throw new Error(`${ref} is not a single-platform image manifest`);
  // The config blob by its digest (one request; `crane config` would fetch the manifest again).
  const configRaw = Buffer.from(
    await crane(auth, ["blob", `${imageName}@${manifest.config.digest}`]),
    "utf8",
  );
  if (sha256(configRaw) !== manifest.config.digest)
    throw new Error(
      `the config crane returned for ${ref} does not hash to ${manifest.config.digest}`,
    );
  const config = JSON.parse(configRaw.toString("utf8")) as ImageConfig;
  if (config.rootfs?.diff_ids?.length !== manifest.layers.length) {
    throw new Error(
      `${ref}: ${manifest.layers.length} layers but ${config.rootfs?.diff_ids?.length ?? 0} diff_ids in its config`,
    );
  }
  const mediaType = manifest.mediaType ?? "application/vnd.oci.image.manifest.v1+json";
  return { ref, imageName, digest, mediaType, manifestRaw, manifest, configRaw, config };
}

async function writeAtomically(file: string, write: (tmp: string) => Promise<void>): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
  try {
    await write(tmp);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function touch(file: string): void {
  const now = new Date();
  try {
    fs.utimesSync(file, now, now);
  } catch {
    // a concurrent prune removed it: the caller still holds what it read
  }
}

async function hashFile(file: string): Promise<string> {
  const h = crypto.createHash("sha256");
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/** The compressed blob of a layer, from the cache or fetched with `crane blob` (checked). */
export async function cachedBlob(
  auth: RegistryAuth,
  imageName: string,
  desc: Descriptor,
): Promise<string> {
  const file = path.join(evidenceCacheDir(), "blobs", "sha256", hexOf(desc.digest));
  if (fs.existsSync(file)) {
    touch(file);
    return file;
  }
  const bin = requireTool("crane");
  const ref = `${imageName.replace(/@.*$/, "")}@${desc.digest}`;
  await writeAtomically(file, async (tmp) => {
    await withDockerConfig(auth, async (env) => {
      const fd = fs.openSync(tmp, "w", 0o600);
      const err: Buffer[] = [];
      const code = await new Promise<number>((resolve, reject) => {
        const args = ["blob", ref, ...(insecureOf(auth) ? ["--insecure"] : [])];
        const p = childProcess.spawn(bin, args, {
          env: toolEnv(env),
          stdio: ["ignore", fd, "pipe"],
        });
        p.stderr?.on("data", (d: Buffer) => err.push(d));
        p.on("error", reject);
        p.on("close", (c) => resolve(c ?? 1));
      }).finally(() => fs.closeSync(fd));
      const stderr = Buffer.concat(err)
        .toString("utf8")
        .split(auth.password || "\0")
        .join("***");
      if (code !== 0)
        throw new Error(
          `crane blob ${ref} failed against ${auth.registry}, exit ${code}: ${lastLines(stderr, 4)}`,
        );
    });
    const got = await hashFile(tmp);
    if (got !== desc.digest) throw new Error(`blob ${ref} hashed to ${got}`);
  });
  return file;
}

// ---- tar listings ------------------------------------------------------------------------------

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

/** A layer's listing and its uncompressed tar, from the cache or made from the blob (the
 *  uncompressed stream must hash to the diffID the image config names). */
export async function layerListing(
  blobPath: string,
  desc: Descriptor,
  diffID: string,
): Promise<{ listing: LayerListing; tarPath: string }> {
  const dir = path.join(evidenceCacheDir(), "layers");
  const listingFile = path.join(dir, `${hexOf(diffID)}.json`);
  const tarPath = path.join(dir, `${hexOf(diffID)}.tar`);
  if (fs.existsSync(listingFile) && fs.existsSync(tarPath)) {
    touch(listingFile);
    touch(tarPath);
    return { listing: JSON.parse(fs.readFileSync(listingFile, "utf8")) as LayerListing, tarPath };
  }
  const gzip = /gzip$/.test(desc.mediaType);
  if (!gzip && !/\.tar$|rootfs\.diff\.tar$|layer\.v1\.tar$/.test(desc.mediaType)) {
    throw new Error(
      `layer ${desc.digest}: media type ${desc.mediaType} is neither gzip nor plain tar`,
    );
  }
  const lister = new TarLister();
  const hash = crypto.createHash("sha256");
  await writeAtomically(tarPath, async (tmp) => {
    const out = fs.createWriteStream(tmp, { mode: 0o600 });
    const input = fs.createReadStream(blobPath);
    const stream = gzip ? input.pipe(zlib.createGunzip()) : input;
    try {
      for await (const c of stream) {
        const chunk = c as Buffer;
        hash.update(chunk);
        lister.push(chunk);
        if (!out.write(chunk)) await once(out, "drain");
      }
    } finally {
      out.end();
      await once(out, "close");
    }
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== diffID)
      throw new Error(
        `layer ${desc.digest} uncompresses to ${got}, not the diffID ${diffID} its image names`,
      );
  });
  const listing: LayerListing = {
    diffID,
    size: lister.entries.reduce((s, e) => s + (e.type === "file" ? e.size : 0), 0),
    entries: lister.entries,
  };
  await writeAtomically(listingFile, async (tmp) => fs.writeFileSync(tmp, JSON.stringify(listing)));
  return { listing, tarPath };
}

export interface LocalImage {
  image: ImageParts;
  blobs: string[];
  listings: LayerListing[];
  /** Uncompressed layer tars, in order. */
  tars: string[];
  seconds: number;
}

/** Every layer of the image in the local cache, listed; fetched and read only when new. */
export async function localImage(
  auth: RegistryAuth,
  imageName: string,
  digest: string,
): Promise<LocalImage> {
  const started = Date.now();
  pruneOnceADay();
  const image = await readImage(auth, imageName, digest);
  const blobs: string[] = [];
  const listings: LayerListing[] = [];
  const tars: string[] = [];
  for (const [i, desc] of image.manifest.layers.entries()) {
    const blob = await cachedBlob(auth, imageName, desc);
    const { listing, tarPath } = await layerListing(blob, desc, image.config.rootfs.diff_ids[i]);
    blobs.push(blob);
    listings.push(listing);
    tars.push(tarPath);
  }
  return { image, blobs, listings, tars, seconds: (Date.now() - started) / 1000 };
}

// ---- a docker-archive for Dive -----------------------------------------------------------------

function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512, 0);
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, "utf8");
  h.write("0000644\0", 100, "latin1");
  h.write("0000000\0", 108, "latin1");
  h.write("0000000\0", 116, "latin1");
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124, "latin1");
  h.write(`${"0".padStart(11, "0")}\0`, 136, "latin1");
  h.write("        ", 148, "latin1");
  h.write("0", 156, "latin1");
  h.write("ustar\0", 257, "latin1");
  h.write("00", 263, "latin1");
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return h;
}

/** `docker save`'s format (manifest.json, the config, one uncompressed tar per layer), written from
 *  the cache: what Dive reads with `--source docker-archive`, without a Docker engine. */
export async function writeDockerArchive(local: LocalImage, out: string): Promise<void> {
  const configName = `${hexOf(local.image.manifest.config.digest)}.json`;
  const layerNames = local.image.config.rootfs.diff_ids.map((d) => `${hexOf(d)}/layer.tar`);
  const manifest = Buffer.from(
    JSON.stringify([{ Config: configName, RepoTags: [], Layers: layerNames }]),
  );
  const ws = fs.createWriteStream(out, { mode: 0o600 });
  const write = async (b: Buffer): Promise<void> => {
    if (!ws.write(b)) await once(ws, "drain");
  };
  const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512, 0);
  try {
    await write(tarHeader(configName, local.image.configRaw.length));
    await write(local.image.configRaw);
    await write(pad(local.image.configRaw.length));
    const written = new Set<string>();
    for (const [i, name] of layerNames.entries()) {
      if (written.has(name)) continue;
      written.add(name);
      const size = fs.statSync(local.tars[i]).size;
      await write(tarHeader(name, size));
      for await (const c of fs.createReadStream(local.tars[i])) await write(c as Buffer);
      await write(pad(size));
    }
    await write(tarHeader("manifest.json", manifest.length));
    await write(manifest);
    await write(pad(manifest.length));
    await write(Buffer.alloc(1024, 0));
  } finally {
    ws.end();
    await once(ws, "close");
  }
}

// ---- pruning -----------------------------------------------------------------------------------

function pruneOnceADay(): void {
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
