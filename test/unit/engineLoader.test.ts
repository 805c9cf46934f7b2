// The evidence engine's loader (evidence/register.js, evidence/transpileCache.js): Sucrase's output
// for each source, made once and read from the cache by every later engine process.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ENGINE_ENTRY, ENGINE_LOADER } from "../../components/engineProcess";

// Plain JavaScript (it is what loads TypeScript), so required, not imported.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cache = require("../../evidence/transpileCache.js") as {
  cacheDir(env?: NodeJS.ProcessEnv): string;
  cachedTranspile(code: string, filePath: string, dir?: string): string;
  transpile(code: string, filePath: string): string;
};

describe("evidence engine loader: the transpile cache", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "if-transpile-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const source = 'import { x } from "./y";\nexport const z: number = x + 1;\n';

  it("strips the types, rewrites the imports and keeps a source map naming the file", () => {
    const out = cache.cachedTranspile(source, "/w/a.ts", dir);
    assert.match(out, /require\('\.\/y'\)/);
    assert.doesNotMatch(out, /: number/);
    const map = /base64,([A-Za-z0-9+/=]+)$/.exec(out);
    assert.ok(map !== null, out);
    assert.deepEqual(JSON.parse(Buffer.from(map[1], "base64").toString()).file, "/w/a.ts");
  });

  it("reads a source's output from the cache once it was made", () => {
    const first = cache.cachedTranspile(source, "/w/a.ts", dir);
    const [entry] = fs.readdirSync(dir);
    assert.equal(fs.readFileSync(path.join(dir, entry), "utf8"), first);
    fs.writeFileSync(path.join(dir, entry), "// from the cache\n");
    assert.equal(cache.cachedTranspile(source, "/w/a.ts", dir), "// from the cache\n");
  });

  it("makes a new entry when the source or its path changes", () => {
    cache.cachedTranspile(source, "/w/a.ts", dir);
    const changed = cache.cachedTranspile(source.replace("+ 1", "+ 2"), "/w/a.ts", dir);
    assert.match(changed, /x \+ 2/);
    cache.cachedTranspile(source, "/w/b.ts", dir);
    assert.equal(fs.readdirSync(dir).length, 3);
  });

  it("still transpiles when the cache cannot be written", () => {
    const blocked = path.join(dir, "file");
    fs.writeFileSync(blocked, "");
    assert.equal(
      cache.cachedTranspile(source, "/w/a.ts", path.join(blocked, "sub")),
      cache.transpile(source, "/w/a.ts"),
    );
  });

  it("lives in the evidence cache of IMAGE_FACTORY_CACHE, which its prune covers", () => {
    assert.equal(
      cache.cacheDir({ IMAGE_FACTORY_CACHE: "/c" }),
      path.join("/c", "evidence-cache", "transpile"),
    );
  });

  it("loads the engine cold and warm with the same result, the second time from the cache", () => {
    const env = { ...process.env, IMAGE_FACTORY_CACHE: dir };
    const run = () =>
      spawnSync(process.execPath, ["-r", ENGINE_LOADER, ENGINE_ENTRY, "--help"], {
        env,
        encoding: "utf8",
      });
    const cold = run();
    assert.equal(cold.status, 0, cold.stderr);
    const entries = fs.readdirSync(path.join(dir, "evidence-cache", "transpile"));
    assert.ok(entries.length >= 10, `${entries.length} files cached`);
    const warm = run();
    assert.equal(warm.status, 0, warm.stderr);
    assert.equal(warm.stdout, cold.stdout);
    assert.deepEqual(fs.readdirSync(path.join(dir, "evidence-cache", "transpile")), entries);
  });
});
