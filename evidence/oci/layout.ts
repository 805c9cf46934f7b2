// An OCI image layout directory (oci-layout, index.json, blobs/sha256/…) holding one manifest: what
// Syft reads with `oci-dir:` and what `crane push <dir> <ref>` uploads byte for byte.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

export interface BlobDescriptor {
  digest: string;
  size: number;
}

/** A fresh layout in a temp directory; `write` it once its blobs are in. The caller removes `dir`. */
export class OciLayout {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-layout-"));
  private readonly blobs = path.join(this.dir, "blobs", "sha256");

  constructor() {
    fs.mkdirSync(this.blobs, { recursive: true });
  }

  /** Stores `data` as a blob. */
  put(data: Buffer): BlobDescriptor {
    const hex = crypto.createHash("sha256").update(data).digest("hex");
    fs.writeFileSync(path.join(this.blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  }

  /** Stores a file already known (checked) to hash to `digest`, e.g. from the layer cache. */
  copy(file: string, digest: string): void {
    const target = path.join(this.blobs, digest.replace(/^sha256:/, ""));
    if (!fs.existsSync(target)) fs.copyFileSync(file, target);
  }

  /** Stores the manifest and names it in index.json, the layout's one entry. */
  write(manifest: { mediaType: string; [key: string]: unknown }): BlobDescriptor {
    const m = this.put(Buffer.from(JSON.stringify(manifest)));
    fs.writeFileSync(
      path.join(this.dir, "oci-layout"),
      JSON.stringify({ imageLayoutVersion: "1.0.0" }),
    );
    fs.writeFileSync(
      path.join(this.dir, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [{ mediaType: manifest.mediaType, ...m }],
      }),
    );
    return m;
  }
}
