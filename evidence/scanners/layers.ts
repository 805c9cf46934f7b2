// One image's parts for the scanners that need them locally (Dive, the SBOM's partial scans): the
// raw manifest and config (digests checked), each layer blob in a content-addressed cache shared by
// every run on this machine, and each layer once uncompressed with its file listing. Each layer is
// fetched and read once per machine, not once per run and tool: a rebuild that changed only the
// app's top layers fetches and reads only those. The cache itself: layerCache.ts.
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { once } from "node:events";
import * as zlib from "node:zlib";
import { lastLines, requireTool, toolEnv } from "../exec";
import { type RegistryAuth, crane, insecureOf, withDockerConfig } from "../oci";
import {
  evidenceCacheDir,
  hashFile,
  hexOf,
  pruneOnceADay,
  touch,
  writeAtomically,
} from "./layerCache";
import { type LayerListing, TarLister } from "./tarListing";

export { writeDockerArchive } from "./dockerArchive";

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
