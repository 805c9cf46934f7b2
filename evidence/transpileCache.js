// Sucrase's transform of the evidence engine's TypeScript, as its own `sucrase/register/ts` runs
// it (types stripped, imports rewritten), with the output kept on disk by the hash of the source
// (evidence/register.js is the require hook that uses it). Plain JavaScript: it is what makes
// TypeScript loadable. Entries live in the evidence cache and go with its prune
// (evidence/scanners/layerCache.ts) when unused for a while.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { transform } = require("sucrase");
const { version } = require("sucrase/package.json");

// sucrase/dist/register.js registerTS's options.
const OPTIONS = { transforms: ["imports", "typescript"] };

function cacheDir(env = process.env) {
  const root = env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory");
  return path.join(root, "evidence-cache", "transpile");
}

/** What Sucrase makes of `code` (with an inline source map, as its own hook writes it). */
function transpile(code, filePath) {
  const out = transform(code, {
    ...OPTIONS,
    sourceMapOptions: { compiledFilename: filePath },
    filePath,
  });
  const map = Buffer.from(JSON.stringify(out.sourceMap)).toString("base64");
  return `${out.code}\n//# sourceMappingURL=data:application/json;charset=utf-8;base64,${map}`;
}

/** The cache file of one source: its path and content decide the output (the source map names the
 *  file), as do Sucrase's version and options. */
function entryOf(dir, code, filePath) {
  const key = crypto
    .createHash("sha256")
    .update(JSON.stringify([version, OPTIONS, filePath]))
    .update("\0")
    .update(code)
    .digest("hex");
  return path.join(dir, `${key}.js`);
}

/** The output for `code`: read from the cache, or made and stored (through a temp name and a
 *  rename, so a concurrent process reads all of an entry or none). A cache that cannot be read or
 *  written costs the transform, never the run. */
function cachedTranspile(code, filePath, dir = cacheDir()) {
  const file = entryOf(dir, code, filePath);
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    // not made yet, or pruned meanwhile
  }
  const out = transpile(code, filePath);
  try {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
    fs.writeFileSync(tmp, out);
    fs.renameSync(tmp, file);
  } catch {
    // a read-only or full disk: this process has its code all the same
  }
  return out;
}

module.exports = { cacheDir, cachedTranspile, transpile };
