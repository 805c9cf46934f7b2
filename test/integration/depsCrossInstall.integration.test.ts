// app/Dockerfile's deps stage installs the production dependencies on the build platform for the
// target's CPU, OS and C library (npm ci --cpu/--os/--libc), so no arm step runs under QEMU. What
// that must still get right is the one thing running on the target did for free: picking the
// platform-specific optional package a prebuilt native dependency ships (esbuild, sharp, swc, ...).
// Here, through the real builder (image-factory-local) and the app's own Dockerfile, a fixture
// package with one optional package per CPU and C library is served by an npm registry on
// loopback, and the deps stage is built for every platform on a glibc base (the local node-base)
// and on the same base marked as musl (the loader file Alpine has), each output read back.
// Needs the local services (scripts/bootstrap.sh); a missing one FAILS the test.
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { buildxEnv } from "../e2e/lib/docker";
import { REPO_ROOT, run, tail } from "../e2e/lib/exec";
import { cacheDir } from "../e2e/lib/registry";

const IF_CACHE = cacheDir();
const IF_BIN = path.join(IF_CACHE, "bin");
const BUILDER = "image-factory-local";
const BASE = "127.0.0.1:5443/image-factory/node-base:22";
const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
/** Node's process.arch of each platform: what a prebuilt package's `cpu` names. */
const NODE_CPU: Record<string, string> = {
  "linux/amd64": "x64",
  "linux/arm64": "arm64",
  "linux/arm/v7": "arm",
};
const LIBCS = { glibc: "gnu", musl: "musl" } as const;

/** The project's asynchronous runner (the registry below answers from this very process while npm
 *  and BuildKit ask it), with the tools' bin first on PATH; output as one text. */
async function sh(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ code: number; out: string }> {
  const r = await run(file, args, {
    cwd: opts.cwd,
    env: { PATH: `${IF_BIN}:${process.env.PATH ?? ""}`, ...opts.env },
    timeoutMs: 600_000,
  });
  return { code: r.code, out: `${r.stdout}${r.stderr}` };
}

interface Published {
  manifest: Record<string, unknown>;
  tarball: Buffer;
}

/** An npm package tarball (`package/package.json`) and the registry's version document for it. */
async function pack(
  work: string,
  manifest: Record<string, unknown>,
  baseUrl: string,
): Promise<Published> {
  const name = String(manifest.name);
  const dir = fs.mkdtempSync(path.join(work, "pkg-"));
  fs.mkdirSync(path.join(dir, "package"));
  fs.writeFileSync(path.join(dir, "package", "package.json"), JSON.stringify(manifest));
  fs.writeFileSync(
    path.join(dir, "package", "index.js"),
    `module.exports = ${JSON.stringify(name)};\n`,
  );
  const file = path.join(dir, "package.tgz");
  const t = await sh("tar", ["-C", dir, "-czf", file, "package"]);
  assert.equal(t.code, 0, t.out);
  const tarball = fs.readFileSync(file);
  return {
    tarball,
    manifest: {
      ...manifest,
      dist: {
        tarball: `${baseUrl}/${name}/-/${name}-1.0.0.tgz`,
        integrity: `sha512-${crypto.createHash("sha512").update(tarball).digest("base64")}`,
        shasum: crypto.createHash("sha1").update(tarball).digest("hex"),
      },
    },
  };
}

describe("app/Dockerfile deps stage: installed natively, resolved for the target (real builder)", function () {
  this.timeout(900_000);
  let work: string;
  let server: http.Server;
  let env: ReturnType<typeof buildxEnv>;
  let context: string;
  // One tag, rewritten by every run (the same bytes each time): nothing piles up in the registry.
  const muslBase = "127.0.0.1:5443/image-factory/deps-musl-base:test";

  const buildx = (args: string[], ctx: string) =>
    sh("docker", ["buildx", "build", "--builder", BUILDER, "--progress", "plain", ...args, ctx], {
      env,
    });

  before(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "if-deps-cross-"));
    // The registry: packuments and tarballs of the fixture packages, on loopback only.
    const packages = new Map<string, Published>();
    server = http.createServer((req, res) => {
      const url = decodeURIComponent(req.url ?? "/");
      const tgz = /^\/([^/]+)\/-\/[^/]+\.tgz$/.exec(url);
      const doc = /^\/([^/]+)$/.exec(url);
      const p = packages.get((tgz ?? doc)?.[1] ?? "");
      if (p === undefined) {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
      } else if (tgz) {
        res.writeHead(200, { "content-type": "application/octet-stream" }).end(p.tarball);
      } else {
        const name = String(p.manifest.name);
        res.writeHead(200, { "content-type": "application/json" }).end(
          JSON.stringify({
            name,
            "dist-tags": { latest: "1.0.0" },
            versions: { "1.0.0": p.manifest },
          }),
        );
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const variants: string[] = [];
    for (const cpu of Object.values(NODE_CPU)) {
      for (const [libc, suffix] of Object.entries(LIBCS)) {
        const name = `plat-demo-linux-${cpu}-${suffix}`;
        variants.push(name);
        packages.set(
          name,
          await pack(
            work,
            { name, version: "1.0.0", os: ["linux"], cpu: [cpu], libc: [libc] },
            baseUrl,
          ),
        );
      }
    }
    packages.set(
      "plat-demo",
      await pack(
        work,
        {
          name: "plat-demo",
          version: "1.0.0",
          optionalDependencies: Object.fromEntries(variants.map((v) => [v, "1.0.0"])),
        },
        baseUrl,
      ),
    );

    // The build context: the app's Dockerfile and .npmrc, a fixture package.json pointing at the
    // registry above, and the lockfile npm writes for it (as a team would commit it).
    context = path.join(work, "context");
    fs.mkdirSync(context);
    fs.copyFileSync(path.join(REPO_ROOT, "app", "Dockerfile"), path.join(context, "Dockerfile"));
    fs.writeFileSync(
      path.join(context, ".npmrc"),
      `${fs.readFileSync(path.join(REPO_ROOT, "app", ".npmrc"), "utf8")}registry=${baseUrl}/\n`,
    );
    fs.writeFileSync(
      path.join(context, "package.json"),
      JSON.stringify({
        name: "deps-fixture",
        version: "1.0.0",
        private: true,
        dependencies: { "plat-demo": "1.0.0" },
      }),
    );
    const lock = await sh("npm", ["install", "--package-lock-only", "--ignore-scripts"], {
      cwd: context,
      env: { npm_config_cache: path.join(work, "npm-cache") },
    });
    assert.equal(lock.code, 0, `npm install --package-lock-only: ${tail(lock.out)}`);

    // Registry credentials for the bases in a DOCKER_CONFIG of this test's own.
    env = buildxEnv(path.join(work, "docker"));

    // The musl base: the local base plus the file that marks Alpine (its dynamic loader), per
    // platform; COPY only, so nothing runs under emulation.
    const muslContext = path.join(work, "musl-base");
    fs.mkdirSync(muslContext);
    fs.writeFileSync(path.join(muslContext, "loader"), "");
    fs.writeFileSync(
      path.join(muslContext, "Dockerfile"),
      `ARG BASE\nFROM \${BASE}\nARG TARGETARCH\nCOPY loader /lib/ld-musl-\${TARGETARCH}.so.1\n`,
    );
    const musl = await buildx(
      [
        "--platform",
        PLATFORMS.join(","),
        "--build-arg",
        `BASE=${BASE}`,
        "--output",
        `type=image,name=${muslBase},push=true`,
      ],
      muslContext,
    );
    assert.equal(musl.code, 0, `building the musl-marked base: ${tail(musl.out)}`);
  });

  after(async () => {
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  for (const [libc, suffix] of Object.entries(LIBCS)) {
    for (const platform of PLATFORMS) {
      it(`${platform} on a ${libc} base gets plat-demo-linux-${NODE_CPU[platform]}-${suffix} and no other variant`, async () => {
        const out = path.join(work, `out-${libc}-${platform.replace(/\//g, "-")}`);
        const r = await buildx(
          [
            "--target",
            "deps",
            "--platform",
            platform,
            "--build-arg",
            `BASE_IMAGE=${libc === "musl" ? muslBase : BASE}`,
            "--output",
            `type=local,dest=${out}`,
          ],
          context,
        );
        assert.equal(r.code, 0, `deps stage for ${platform} (${libc}): ${tail(r.out)}`);
        // (npm's own .package-lock.json aside)
        const installed = fs
          .readdirSync(path.join(out, "app", "node_modules"))
          .filter((n) => !n.startsWith("."));
        assert.deepEqual(installed.sort(), [
          "plat-demo",
          `plat-demo-linux-${NODE_CPU[platform]}-${suffix}`,
        ]);
      });
    }
  }
});
