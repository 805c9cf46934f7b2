// The program as `npm run review` runs it (image-factory:publish false) for the committed dev
// stack's config, made into a review config by the review command's own reviewStackConfig, under
// mocks: the same builds on the same builders into the quarantine repository, and nothing else —
// no build hosts, no GitHub settings, no evidence resource, no manifest list, no tag, and cache
// writes only in the pull request's scope.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { decodeRawConfig, validateConfig } from "../../components/config";
import { reviewStackConfig } from "../../scripts/review/pure";
import { engineConfig, installMocks, resolve, type Harness } from "./harness";

const ROOT = path.resolve(__dirname, "../..");
const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const TOKEN = "ghp_mock_token_value_1234567890";

describe("program under mocks: a review build of the dev stack (publish: false)", () => {
  const IMAGE = "docker-build:index:Image";
  let h: Harness;
  let exports: Record<string, unknown>;

  before(async () => {
    // The dev config as the review command rewrites it.
    const dev = (
      parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as {
        config: Record<string, unknown>;
      }
    ).config;
    const engine = {
      ...engineConfig(reviewStackConfig(dev, { sha: SHA, ref: "refs/pull/42/merge" })),
      "image-factory:registryToken": TOKEN,
    };

    h = await installMocks("image-factory", "dev");
    // No environment and no local repository: the review config alone decides.
    const noLocalGit = { localGit: () => undefined, cwd: ROOT };
    const secretKeys = new Set(["registryToken"]);
    const cfg = validateConfig(decodeRawConfig(engine), {
      stack: "dev",
      env: {},
      secretKeys,
      ...noLocalGit,
    });
    assert.equal(cfg.publish, false);
    const { createFactory } = await import("../../components/program");
    const real = globalThis.fetch;
    globalThis.fetch = (async () => new Response(null, { status: 200 })) as typeof fetch;
    try {
      const out = createFactory({ ...cfg, stack: "dev", registryToken: pulumi.secret(TOKEN) });
      exports = {
        digest: await resolve(out.digest),
        tags: await resolve(out.tags),
        sbomLocations: await resolve(out.sbomLocations),
        platformDigests: await resolve(out.platformDigests),
        gateResults: out.gateResults,
        buildHosts: out.buildHosts,
      };
    } finally {
      globalThis.fetch = real;
    }
  });

  it("registers the per-platform images and the coverage image, and nothing that publishes, administers or provisions", () => {
    const types = [...new Set(h.resources.map((r) => r.type))].sort();
    assert.deepEqual(
      types.filter((t) => !t.startsWith("image-factory:") && t !== "pulumi:providers:docker-build"),
      [IMAGE],
    );
    assert.deepEqual(
      h
        .byType(IMAGE)
        .map((r) => r.name)
        .sort(),
      ["image-coverage", "image-linux-amd64", "image-linux-arm-v7", "image-linux-arm64"],
    );
    assert.deepEqual(exports, {
      digest: "",
      tags: [],
      sbomLocations: {},
      platformDigests: exports.platformDigests,
      gateResults: undefined,
      buildHosts: undefined,
    });
    assert.deepEqual(Object.keys(exports.platformDigests as Record<string, string>).sort(), [
      "linux/amd64",
      "linux/arm/v7",
      "linux/arm64",
    ]);
  });

  it("pushes only into the quarantine repository, tagged sha-<7>-<platform>", () => {
    for (const img of h.byType(IMAGE)) {
      const tags = img.inputs.tags as string[];
      assert.equal(tags.length, 1, img.name);
      assert.match(
        tags[0],
        /^ghcr\.io\/acme\/shop-api-review:sha-1a2b3c4-(linux-amd64|linux-arm64|linux-arm-v7|coverage)$/,
        img.name,
      );
      assert.equal(img.inputs.push, true, img.name);
    }
  });

  it("builds on the dev stack's own builders", () => {
    const builder = (name: string): unknown =>
      (h.byType(IMAGE).find((r) => r.name === name)?.inputs.builder as { name: string }).name;
    assert.equal(builder("image-linux-amd64"), "image-factory-dev-amd64");
    assert.equal(builder("image-linux-arm64"), "image-factory-dev-arm64");
    assert.equal(builder("image-linux-arm-v7"), "image-factory-dev-arm64");
  });

  it("reads main's cache and writes only the pull request's scope", () => {
    for (const slug of ["linux-amd64", "linux-arm64", "linux-arm-v7"]) {
      const img = h.byType(IMAGE).find((r) => r.name === `image-${slug}`);
      assert.deepEqual(
        img?.inputs.cacheFrom,
        [
          { registry: { ref: `ghcr.io/acme/shop-api-buildcache:pr-42-${slug}` } },
          { registry: { ref: `ghcr.io/acme/shop-api-buildcache:${slug}` } },
        ],
        slug,
      );
      const to = img?.inputs.cacheTo as Array<{ registry: { ref: string } }>;
      assert.deepEqual(
        to.map((c) => c.registry.ref),
        [`ghcr.io/acme/shop-api-buildcache:pr-42-${slug}`],
        slug,
      );
    }
  });
}).timeout(60000);
