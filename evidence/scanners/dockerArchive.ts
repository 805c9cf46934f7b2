// A docker-archive (what `docker save` writes) made from the layer cache, for Dive's
// `--source docker-archive`: no Docker engine needed.
import * as fs from "node:fs";
import { once } from "node:events";
import { hexOf } from "./layerCache";
import type { LocalImage } from "./layers";

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
