// The proof behind the evidence's SBOM reuse (evidence/scanners/sbomReuse.ts): on the factory's own
// images, for every platform, the SBOM merged from a catalogue of lower layers plus a scan of the
// upper layers alone is the SBOM a full Syft scan of the image writes — package for package, and
// file, relationship, distribution, source and descriptor too — in Syft's JSON and, after
// `syft convert`, in SPDX (all but the creation time and the random document namespace).
// Two splits: the base image's layers under the app's (what a first build after a base change
// reuses) and a whole stored image under one appended layer (what a source change reuses); and a
// split that must not be reused (an upper layer replacing a base file) falls back to a full scan.
import * as assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type RegistryAuth, crane, indexPlatforms } from "../../evidence/oci";
import { localImage } from "../../evidence/scanners/layers";
import type { SyftDocument } from "../../evidence/scanners/sbomReuse";
import { convertSyftJson, runSyft, runSyftReusing } from "../../evidence/scanners/syft";
import {
  PLATFORMS,
  STACK_REGISTRY,
  cacheDir,
  localRegistryAuth,
  localStackConfig,
  sharedFactoryStack,
  type SharedFactoryStack,
} from "./lib";

const byId = <T extends { id: string }>(xs: T[] | undefined): Record<string, T> =>
  Object.fromEntries((xs ?? []).map((x) => [x.id, x]));
const relKeys = (d: SyftDocument): string[] =>
  d.artifactRelationships.map((r) => JSON.stringify(r)).sort();

/** Every part of two Syft documents, compared as Syft means them (arrays of IDs as sets). */
function assertSameDocument(merged: SyftDocument, full: SyftDocument, what: string): void {
  assert.deepEqual(
    Object.keys(byId(merged.artifacts)).sort(),
    Object.keys(byId(full.artifacts)).sort(),
    `${what}: package IDs`,
  );
  assert.deepEqual(byId(merged.artifacts), byId(full.artifacts), `${what}: packages`);
  assert.deepEqual(byId(merged.files), byId(full.files), `${what}: files`);
  assert.deepEqual(relKeys(merged), relKeys(full), `${what}: relationships`);
  assert.deepEqual(merged.distro, full.distro, `${what}: distro`);
  assert.deepEqual(merged.source, full.source, `${what}: source`);
  assert.deepEqual(merged.descriptor, full.descriptor, `${what}: descriptor`);
  assert.deepEqual(merged.schema, full.schema, `${what}: schema`);
}

/** SPDX made by `syft convert` from the merged document vs the full scan's own SPDX output. */
function assertSameSpdx(mergedSpdx: string, fullSpdx: string, what: string): void {
  const norm = (f: string): Record<string, unknown> => {
    const d = JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, unknown> & {
      creationInfo?: Record<string, unknown>;
    };
    delete d.documentNamespace;
    if (d.creationInfo) delete d.creationInfo.created;
    return d;
  };
  const a = norm(mergedSpdx);
  const b = norm(fullSpdx);
  const pkgs = (d: Record<string, unknown>): unknown[] =>
    [...((d.packages as Array<{ SPDXID: string }>) ?? [])].sort((x, y) =>
      x.SPDXID.localeCompare(y.SPDXID),
    );
  assert.deepEqual(pkgs(a), pkgs(b), `${what}: SPDX packages`);
  assert.deepEqual(a, b, `${what}: SPDX document`);
}

describe("SBOM reuse: a merged SBOM is a full Syft scan (real images, every platform)", function () {
  this.timeout(30 * 60_000);
  let shared: SharedFactoryStack;
  let auth: RegistryAuth;
  let work: string;
  let catalog: string;
  const previousCert = process.env.SSL_CERT_FILE;
  // Whether an earlier platform's step 3 already catalogued the appended layer.
  let extraCatalogued = false;

  before(async () => {
    shared = await sharedFactoryStack();
    const { username, password } = localRegistryAuth();
    auth = { registry: STACK_REGISTRY, username, password, insecure: false };
    // Syft and crane reach the local TLS registry through its CA (scripts/registry-tls.sh).
    process.env.SSL_CERT_FILE = path.join(cacheDir(), "registry-tls", "ca-bundle.pem");
    work = fs.mkdtempSync(path.join(os.tmpdir(), "if-sbom-reuse-"));
    // A catalogue of its own: the machine's layer cache is shared, the catalogues start empty.
    catalog = path.join(work, "catalog");
  });

  after(() => {
    if (previousCert === undefined) delete process.env.SSL_CERT_FILE;
    else process.env.SSL_CERT_FILE = previousCert;
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  });

  /** A full scan from the registry, Syft JSON and SPDX. */
  async function fullScan(
    imageName: string,
    digest: string,
    platform: string,
    dir: string,
  ): Promise<{ doc: SyftDocument; spdx: string }> {
    const syftJsonPath = path.join(dir, "full.syft.json");
    const r = await runSyft({
      imageRef: `${imageName}@${digest}`,
      platform,
      outDir: dir,
      auth,
      syftJsonPath,
    });
    return {
      doc: JSON.parse(fs.readFileSync(syftJsonPath, "utf8")) as SyftDocument,
      spdx: r.spdxPath,
    };
  }

  for (const platform of PLATFORMS) {
    it(`${platform}: base catalogue + app layers = full scan; whole image + one appended layer = full scan`, async () => {
      const slug = platform.replace(/\//g, "-");
      const dir = path.join(work, slug);
      fs.mkdirSync(dir, { recursive: true });
      const baseImage = String(localStackConfig()["image-factory:baseImage"]);
      const baseDigest = (await indexPlatforms(auth, baseImage))[platform];
      assert.ok(baseDigest, `${baseImage} has no ${platform} image`);
      const baseName = baseImage.replace(/:[^/]*$/, "");
      // Syft through the catalogue this test fills, for this platform, into dir/<out>.
      const reusing = (
        local: Parameters<typeof runSyftReusing>[0]["local"],
        out: string,
      ): ReturnType<typeof runSyftReusing> =>
        runSyftReusing({ local, platform, outDir: path.join(dir, out), auth, cacheDir: catalog });

      // 1. The base alone: no catalogue yet, so a full scan, which is stored.
      const baseLocal = await localImage(auth, baseName, baseDigest);
      const base = await reusing(baseLocal, "base");
      assert.match(base.reuse ?? "", /^full scan/);

      // 2. The app image: the base's layers from the catalogue, the app's layers scanned alone.
      const appDigest = shared.outputs.platformDigests[platform];
      const app = await localImage(auth, shared.outputs.imageName, appDigest);
      const merged = await reusing(app, "merged");
      assert.match(
        merged.reuse ?? "",
        new RegExp(
          `^first ${baseLocal.listings.length} of ${app.listings.length} layers catalogued before`,
        ),
        merged.reuse,
      );
      const full = await fullScan(
        shared.outputs.imageName,
        appDigest,
        platform,
        path.join(dir, "full"),
      );
      assertSameDocument(
        JSON.parse(fs.readFileSync(merged.syftJsonPath ?? "", "utf8")) as SyftDocument,
        full.doc,
        `${platform} app`,
      );
      assertSameSpdx(merged.spdxPath, full.spdx, `${platform} app`);
      assert.equal(
        merged.packageCount,
        full.doc.artifacts.length + 1,
        "SPDX lists the image itself beside the packages",
      );

      // 3. One more layer in a directory of its own on top of the app image (what a source change
      //    adds): every app layer from the catalogue the previous step stored.
      const layerDir = path.join(dir, "extra");
      fs.mkdirSync(path.join(layerDir, "app", "extra", "node_modules", "left-pad"), {
        recursive: true,
      });
      fs.writeFileSync(path.join(layerDir, "app", "extra", "index.js"), "module.exports = 1;\n");
      fs.writeFileSync(
        path.join(layerDir, "app", "extra", "node_modules", "left-pad", "package.json"),
        JSON.stringify({ name: "left-pad", version: "1.3.0", license: "WTFPL" }),
      );
      const repo = `${shared.outputs.imageName}-sbomreuse`;
      // A layer of `top` (a folder of `from`) on top of the app image, tagged `<slug>-<name>`.
      const appendLayer = async (from: string, top: string, name: string): Promise<string> => {
        const tarball = path.join(dir, `${name}.tar.gz`);
        // The same bytes on every platform (fixed times and order), as a source change's `dist`
        // layer is: the first platform's scan of it serves the others (CatalogCache.upper).
        childProcess.execFileSync("tar", [
          "-C",
          from,
          "--owner=0",
          "--group=0",
          "--numeric-owner",
          "--mtime=@0",
          "--sort=name",
          "-czf",
          tarball,
          top,
        ]);
        const tag = `${repo}:${slug}-${name}`;
        await crane(auth, [
          "append",
          "-b",
          `${shared.outputs.imageName}@${appDigest}`,
          "-f",
          tarball,
          "-t",
          tag,
        ]);
        return (await crane(auth, ["digest", tag])).trim();
      };
      const extraDigest = await appendLayer(layerDir, "app", "extra");
      const extra = await localImage(auth, repo, extraDigest);
      const mergedExtra = await reusing(extra, "merged-extra");
      assert.match(
        mergedExtra.reuse ?? "",
        new RegExp(
          `^first ${app.listings.length} of ${app.listings.length + 1} layers catalogued before; 1 ${extraCatalogued ? "catalogued with another image on the same layers" : "scanned"}`,
        ),
        mergedExtra.reuse,
      );
      extraCatalogued = true;
      const fullExtra = await fullScan(repo, extraDigest, platform, path.join(dir, "full-extra"));
      assert.ok(
        fullExtra.doc.artifacts.some((a) => a.name === "left-pad"),
        "the appended package is in the full scan",
      );
      assertSameDocument(
        JSON.parse(fs.readFileSync(mergedExtra.syftJsonPath ?? "", "utf8")) as SyftDocument,
        fullExtra.doc,
        `${platform} app + layer`,
      );
      assertSameSpdx(mergedExtra.spdxPath, fullExtra.spdx, `${platform} app + layer`);

      // 4. A layer that replaces a base file must not be merged: a full scan, equal to itself.
      const npmPkg = "usr/local/lib/node_modules/npm/package.json";
      const replaced = path.join(dir, "replace");
      fs.mkdirSync(path.join(replaced, path.dirname(npmPkg)), { recursive: true });
      fs.writeFileSync(
        path.join(replaced, npmPkg),
        JSON.stringify({ name: "npm", version: "0.0.1-replaced" }),
      );
      const replDigest = await appendLayer(replaced, "usr", "replace");
      const repl = await reusing(await localImage(auth, repo, replDigest), "replace-out");
      assert.match(
        repl.reuse ?? "",
        /^full scan; catalogue of the first \d+ layers not reused: .*replaces usr\/local\/lib\/node_modules\/npm\/package\.json/,
        repl.reuse,
      );
      assert.ok(
        repl.packages.some((p) => p.name === "npm" && p.version === "0.0.1-replaced"),
        "the full scan sees the replaced npm",
      );

      const converted = path.join(dir, "roundtrip.spdx.json");
      await convertSyftJson(
        path.join(dir, "full", "full.syft.json"),
        converted,
        path.join(dir, "roundtrip.cdx.json"),
      );
      assertSameSpdx(converted, full.spdx, `${platform}: syft convert of a full scan's JSON`);
    });
  }
});
