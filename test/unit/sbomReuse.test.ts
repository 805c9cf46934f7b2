// The SBOM reuse rules (evidence/scanners/sbomReuse.ts), the tar reader they rely on
// (evidence/scanners/tarListing.ts) and the upper layers' OCI layout, on fixed inputs. The proof that a merged SBOM equals a full Syft
// scan of a real image is test/e2e/sbom-reuse.e2e.test.ts.
import * as assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { LocalImage } from "../../evidence/scanners/layers";
import { type LayerEntry, type LayerListing, TarLister } from "../../evidence/scanners/tarListing";
import {
  type CatalogPart,
  type SyftArtifact,
  type SyftDocument,
  CatalogCache,
  catalogPart,
  catalogProblems,
  chainIds,
  mergeParts,
  resolveLink,
  splitProblems,
  upperLayout,
} from "../../evidence/scanners/sbomReuse";

const listing = (
  diffID: string,
  entries: Array<Partial<LayerEntry> & { path: string }>,
): LayerListing => ({
  diffID,
  size: entries.reduce((s, e) => s + (e.size ?? 0), 0),
  entries: entries.map((e) => ({ type: "file", size: 0, ...e })),
});

const BASE = listing("sha256:b", [
  { path: "usr", type: "dir" },
  { path: "usr/local/bin/node", elf: true, size: 100 },
  { path: "usr/local/lib/node_modules/npm/package.json", size: 10 },
  { path: "etc/os-release", size: 5 },
  { path: "usr/bin/nodejs", type: "symlink", link: "../local/bin/node" },
]);
const APP = listing("sha256:a", [
  { path: "app", type: "dir" },
  { path: "app/node_modules/pino/package.json", size: 3 },
  { path: "app/node_modules/.bin/pino", type: "symlink", link: "../pino/bin.js" },
  { path: "app/node_modules/pino/bin.js", size: 3 },
  { path: "app/dist/server.js", size: 4 },
]);

describe("sbom reuse: chain IDs", () => {
  it("follows the OCI image spec's ChainID", () => {
    const d = ["sha256:" + "1".repeat(64), "sha256:" + "2".repeat(64)];
    const expected =
      "sha256:" + crypto.createHash("sha256").update(`${d[0]} ${d[1]}`).digest("hex");
    assert.deepEqual(chainIds(d), [d[0], expected]);
  });
});

describe("sbom reuse: the filesystem split", () => {
  it("resolves links lexically from their directory", () => {
    assert.equal(
      resolveLink("app/node_modules/.bin/pino", "../pino/bin.js"),
      "app/node_modules/pino/bin.js",
    );
    assert.equal(resolveLink("usr/bin/x", "/etc/passwd"), "etc/passwd");
  });

  it("accepts app layers in a directory of their own", () => {
    assert.deepEqual(splitProblems([BASE], [APP]), []);
  });

  const cases: Array<{
    name: string;
    upper: Array<Partial<LayerEntry> & { path: string }>;
    problem: RegExp;
  }> = [
    {
      name: "a whiteout",
      upper: [{ path: "usr/local/lib/node_modules/npm/.wh.package.json" }],
      problem: /deletes/,
    },
    {
      name: "a replaced lower file",
      upper: [{ path: "usr/local/lib/node_modules/npm/package.json" }],
      problem: /replaces/,
    },
    {
      name: "a file beside lower files",
      upper: [{ path: "usr/local/bin/extra" }],
      problem: /beside lower files/,
    },
    { name: "an ELF file", upper: [{ path: "app/native.node", elf: true }], problem: /ELF/ },
    {
      name: "a link out of the upper layers",
      upper: [{ path: "app/lib", type: "symlink", link: "/usr/local/lib" }],
      problem: /leaves the upper layers/,
    },
    {
      name: "a distribution file",
      upper: [{ path: "etc/alpine-release" }],
      problem: /names the distribution/,
    },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      const problems = splitProblems([BASE], [listing("sha256:u", c.upper)]);
      assert.ok(
        problems.some((p) => c.problem.test(p)),
        JSON.stringify(problems),
      );
    });
  }

  it("refuses a lower link that points into the upper layers", () => {
    const lower = listing("sha256:l", [
      { path: "usr/bin/app", type: "symlink", link: "/app/dist/server.js" },
    ]);
    assert.match(splitProblems([lower], [APP]).join("\n"), /points into the upper layers/);
  });
});

const art = (
  id: string,
  layer: string,
  foundBy = "javascript-package-cataloger",
  metadata?: unknown,
): SyftArtifact => ({
  id,
  name: `pkg-${id}`,
  version: "1.0.0",
  type: "npm",
  foundBy,
  locations: [{ path: `/x/${id}/package.json`, layerID: layer }],
  metadata,
});

describe("sbom reuse: catalogues", () => {
  const doc: CatalogPart = {
    artifacts: [art("p1", "sha256:b"), art("p2", "sha256:a")],
    artifactRelationships: [
      { parent: "SRC", child: "p1", type: "contains" },
      { parent: "SRC", child: "p2", type: "contains" },
      { parent: "p1", child: "f1", type: "evident-by" },
      { parent: "p2", child: "f2", type: "evident-by" },
    ],
    files: [
      { id: "f1", location: { path: "/x/p1/package.json", layerID: "sha256:b" } },
      { id: "f2", location: { path: "/x/p2/package.json", layerID: "sha256:a" } },
    ],
    distro: { id: "debian" },
    sourceId: "SRC",
  };

  it("cuts a catalogue at a layer boundary, relationships and files included", () => {
    const lower = catalogPart(doc, new Set(["sha256:b"]));
    assert.deepEqual(
      lower?.artifacts.map((a) => a.id),
      ["p1"],
    );
    assert.deepEqual(
      lower?.files.map((f) => f.id),
      ["f1"],
    );
    assert.deepEqual(
      lower?.artifactRelationships.map((r) => r.child),
      ["p1", "f1"],
    );
  });

  it("refuses to cut through a package with locations on both sides", () => {
    const straddling = {
      ...doc,
      artifacts: [
        {
          ...art("p3", "sha256:b"),
          locations: [
            { path: "/a", layerID: "sha256:b" },
            { path: "/b", layerID: "sha256:a" },
          ],
        },
      ],
    };
    assert.equal(catalogPart(straddling, new Set(["sha256:b"])), undefined);
  });

  it("merges two parts under the image's source ID", () => {
    const lower = catalogPart(doc, new Set(["sha256:b"]));
    const upper = {
      ...(catalogPart(doc, new Set(["sha256:a"])) as CatalogPart),
      sourceId: "UPPER",
      distro: null,
    };
    upper.artifactRelationships = upper.artifactRelationships.map((r) =>
      r.parent === "SRC" ? { ...r, parent: "UPPER" } : r,
    );
    const merged = mergeParts(
      lower as CatalogPart,
      upper,
      { id: "IMG", name: "r", version: "sha256:x", type: "image", metadata: {} },
      { name: "syft" },
      { version: "16" },
    );
    assert.deepEqual(merged.artifacts.map((a) => a.id).sort(), ["p1", "p2"]);
    assert.deepEqual(
      merged.artifactRelationships.filter((r) => r.type === "contains").map((r) => r.parent),
      ["IMG", "IMG"],
    );
    assert.deepEqual(merged.distro, { id: "debian" });
    assert.throws(
      () => mergeParts(lower as CatalogPart, lower as CatalogPart, merged.source, {}, {}),
      /on both sides of the split/,
    );
  });

  it("refuses upper packages from other catalogers, crossing relationships and claimed paths", () => {
    const upperListing = [listing("sha256:a", [{ path: "app/x" }])];
    assert.match(
      catalogProblems(
        { artifacts: [], artifactRelationships: [] },
        {
          artifacts: [art("d", "sha256:a", "dpkg-db-cataloger")],
          artifactRelationships: [],
          distro: null,
        },
        upperListing,
      ).join(),
      /found by dpkg-db-cataloger/,
    );
    assert.match(
      catalogProblems(
        {
          artifacts: [],
          artifactRelationships: [{ parent: "a", child: "b", type: "dependency-of" }],
        },
        { artifacts: [], artifactRelationships: [], distro: null },
        upperListing,
      ).join(),
      /dependency-of/,
    );
    assert.match(
      catalogProblems(
        {
          artifacts: [art("o", "sha256:b", "dpkg-db-cataloger", { files: [{ path: "/app/x" }] })],
          artifactRelationships: [],
        },
        { artifacts: [], artifactRelationships: [], distro: null },
        upperListing,
      ).join(),
      /claims app\/x/,
    );
    assert.match(
      catalogProblems(
        { artifacts: [], artifactRelationships: [] },
        { artifacts: [], artifactRelationships: [], distro: { id: "alpine" } },
        upperListing,
      ).join(),
      /distribution/,
    );
    assert.deepEqual(
      catalogProblems(
        { artifacts: [art("p1", "sha256:b")], artifactRelationships: [] },
        { artifacts: [art("p2", "sha256:a")], artifactRelationships: [], distro: null },
        upperListing,
      ),
      [],
    );
  });

  it("registers the clean prefixes of a stored image only", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-catalog-"));
    try {
      const cache = new CatalogCache(dir);
      const full = {
        ...doc,
        source: { id: "SRC", name: "r", version: "v", type: "image", metadata: {} },
        descriptor: {},
        schema: {},
      };
      cache.store([BASE, APP], full);
      const chains = chainIds(["sha256:b", "sha256:a"]);
      assert.ok(cache.stack(chains[1]) !== undefined);
      assert.equal(cache.prefix(chains[0])?.k, 1);
      // An upper layer that replaces a lower file makes that split unusable.
      const dirty = listing("sha256:a", [{ path: "usr/local/lib/node_modules/npm/package.json" }]);
      const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), "if-catalog-"));
      const cache2 = new CatalogCache(dir2);
      cache2.store([BASE, dirty], full);
      assert.equal(cache2.prefix(chains[0]), undefined);
      fs.rmSync(dir2, { recursive: true, force: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("sbom reuse: one catalogue of the same upper layers for every image", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-uppers-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const doc = (name: string): SyftDocument => ({
    artifacts: [],
    artifactRelationships: [],
    files: [],
    source: { id: name, name, version: "", type: "image", metadata: {} },
    distro: null,
    descriptor: {},
    schema: {},
  });
  const uppers = ["sha256:d1", "sha256:d2"];
  const lockOf = (): string => {
    const chain = chainIds(uppers)[1].replace(/^sha256:/, "");
    return path.join(dir, "uppers", `${chain}.json.lock`);
  };

  it("scans once for callers at the same time; the others get that scan", async () => {
    const cache = new CatalogCache(dir);
    let scans = 0;
    const scan = async (): Promise<SyftDocument> => {
      scans++;
      await new Promise((r) => setTimeout(r, 300));
      return doc(`scan ${scans}`);
    };
    const got = await Promise.all([1, 2, 3].map(() => cache.upper(uppers, scan)));
    assert.equal(scans, 1);
    assert.deepEqual(
      got.map((g) => g.doc.source.id),
      ["scan 1", "scan 1", "scan 1"],
    );
    assert.deepEqual(got.map((g) => g.shared).sort(), [false, true, true]);
    assert.ok(!fs.existsSync(lockOf()), "the lock is released");
  });

  it("reads a later image's catalogue from the cache, and scans other layers afresh", async () => {
    await new CatalogCache(dir).upper(uppers, async () => doc("first"));
    const again = await new CatalogCache(dir).upper(uppers, async () => doc("second"));
    assert.deepEqual([again.doc.source.id, again.shared], ["first", true]);
    const other = await new CatalogCache(dir).upper(["sha256:d1"], async () => doc("third"));
    assert.deepEqual([other.doc.source.id, other.shared], ["third", false]);
  });

  it("takes over the lock of a process that is gone", async () => {
    const gone = childProcess.spawnSync(process.execPath, ["-e", "0"]).pid;
    fs.mkdirSync(path.dirname(lockOf()), { recursive: true });
    fs.writeFileSync(lockOf(), String(gone));
    const t = Date.now();
    const got = await new CatalogCache(dir).upper(uppers, async () => doc("mine"), 5_000);
    assert.deepEqual([got.doc.source.id, got.shared], ["mine", false]);
    assert.ok(Date.now() - t < 2_000, "taken over at once, not after waiting out the timeout");
  });

  it("scans for itself when a live holder does not finish in time", async () => {
    fs.mkdirSync(path.dirname(lockOf()), { recursive: true });
    fs.writeFileSync(lockOf(), String(process.pid));
    const got = await new CatalogCache(dir).upper(uppers, async () => doc("mine"), 300);
    assert.deepEqual([got.doc.source.id, got.shared], ["mine", false]);
    assert.ok(fs.existsSync(lockOf()), "the live holder's lock is left alone");
  });

  it("releases the lock when the scan fails, so the next caller scans", async () => {
    const cache = new CatalogCache(dir);
    await assert.rejects(
      cache.upper(uppers, async () => {
        throw new Error("syft failed");
      }),
      /syft failed/,
    );
    assert.ok(!fs.existsSync(lockOf()));
    const got = await cache.upper(uppers, async () => doc("retry"));
    assert.deepEqual([got.doc.source.id, got.shared], ["retry", false]);
  });
});

describe("layers: the tar reader", () => {
  it("lists paths, types, sizes, links and ELF files as GNU tar writes them (long names included)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-tar-"));
    try {
      const root = path.join(dir, "root");
      const long = `app/${"d".repeat(60)}/${"e".repeat(60)}/file.js`;
      fs.mkdirSync(path.join(root, path.dirname(long)), { recursive: true });
      fs.writeFileSync(path.join(root, long), "x".repeat(700));
      fs.mkdirSync(path.join(root, "bin"));
      fs.writeFileSync(
        path.join(root, "bin", "tool"),
        Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]),
      );
      fs.symlinkSync("../bin/tool", path.join(root, "app", "link"));
      for (const format of ["gnu", "posix"]) {
        const tar = path.join(dir, `${format}.tar`);
        childProcess.execFileSync("tar", ["--format", format, "-C", root, "-cf", tar, "."]);
        const lister = new TarLister();
        const data = fs.readFileSync(tar);
        for (let i = 0; i < data.length; i += 333) lister.push(data.subarray(i, i + 333));
        const by = Object.fromEntries(lister.entries.map((e) => [e.path, e]));
        assert.deepEqual(by[long], { path: long, type: "file", size: 700, elf: false }, format);
        assert.deepEqual(
          by["bin/tool"],
          { path: "bin/tool", type: "file", size: 7, elf: true },
          format,
        );
        assert.deepEqual(
          by["app/link"],
          { path: "app/link", type: "symlink", size: 0, link: "../bin/tool" },
          format,
        );
        assert.equal(by.app?.type, "dir", format);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("sbom reuse: the upper layers' own image", () => {
  it("is an OCI layout of layers k.. only, every blob stored under its digest", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-upper-test-"));
    let layout: string | undefined;
    try {
      const digestOf = (b: Buffer): string =>
        `sha256:${crypto.createHash("sha256").update(b).digest("hex")}`;
      const blobs = ["base", "deps", "app"].map((name) => {
        const file = path.join(dir, name);
        fs.writeFileSync(file, `${name} layer`);
        return file;
      });
      const layers = blobs.map((f) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: digestOf(fs.readFileSync(f)),
        size: fs.statSync(f).size,
      }));
      const diffIds = ["sha256:d0", "sha256:d1", "sha256:d2"];
      const local = {
        image: {
          manifest: { config: layers[0], layers },
          config: {
            architecture: "arm64",
            os: "linux",
            rootfs: { type: "layers", diff_ids: diffIds },
          },
        },
        blobs,
      } as unknown as LocalImage;
      layout = upperLayout(local, 1);
      const blob = (digest: string): Buffer => {
        const data = fs.readFileSync(path.join(layout!, "blobs", "sha256", digest.slice(7)));
        assert.equal(digestOf(data), digest, `blob ${digest} holds other bytes`);
        return data;
      };
      const index = JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as {
        manifests: Array<{ digest: string; size: number }>;
      };
      assert.equal(index.manifests.length, 1);
      const manifestRaw = blob(index.manifests[0].digest);
      assert.equal(manifestRaw.length, index.manifests[0].size);
      const manifest = JSON.parse(manifestRaw.toString("utf8")) as {
        config: { digest: string };
        layers: Array<{ digest: string }>;
      };
      assert.deepEqual(manifest.layers, layers.slice(1));
      for (const l of manifest.layers) blob(l.digest);
      const config = JSON.parse(blob(manifest.config.digest).toString("utf8")) as {
        architecture: string;
        rootfs: { diff_ids: string[] };
        history: unknown[];
      };
      assert.deepEqual(config.rootfs.diff_ids, diffIds.slice(1));
      assert.equal(config.architecture, "arm64");
      assert.deepEqual(config.history, []);
      assert.equal(
        fs.existsSync(path.join(layout, "blobs", "sha256", layers[0].digest.slice(7))),
        false,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      if (layout !== undefined) fs.rmSync(layout, { recursive: true, force: true });
    }
  });
});
