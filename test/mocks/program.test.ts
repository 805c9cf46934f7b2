// The whole program, as `pulumi up` runs it, for the committed dev and prod stack configs under
// mocks: resource types and counts, the inputs that matter, and the export contract.
import { strict as assert } from "node:assert";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { decodeRawConfig, validateConfig } from "../../components/config";
import type { FactoryOutputs } from "../../components/program";
import { fakeDigest, installMocks, isSecretInput, resolve, stackConfig, unwrapSecret, type Harness } from "./harness";

const ROOT = path.resolve(__dirname, "../..");
const SHA = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const TOKEN = "ghp_mock_token_value_1234567890";

async function runStack(stack: string, env: Record<string, string>, prepare?: (h: Harness) => void) {
  const h = await installMocks("image-factory", stack);
  prepare?.(h);
  const raw = decodeRawConfig({ ...stackConfig(stack), "image-factory:registryToken": TOKEN });
  const cfg = validateConfig(raw, { stack, env, localGit: () => undefined, secretKeys: new Set(["registryToken"]), cwd: ROOT });
  // Imported after setMocks so resource classes bind to the mocked monitor.
  const { createFactory } = await import("../../components/program");
  const out: FactoryOutputs = createFactory({ ...cfg, stack, registryToken: pulumi.secret(TOKEN) });
  const exports = {
    imageName: out.imageName,
    digest: await resolve(out.digest),
    imageRef: await resolve(out.imageRef),
    platformDigests: await resolve(out.platformDigests),
    tags: await resolve(out.tags),
    sbomLocations: await resolve(out.sbomLocations),
    cacheRefs: await resolve(out.cacheRefs),
    buildHosts: out.buildHosts ? await resolve(out.buildHosts) : undefined,
  };
  return { h, out, exports };
}

describe("program under mocks: dev stack (build on main)", function () {
  this.timeout(60000);
  let run: Awaited<ReturnType<typeof runStack>>;
  before(async () => {
    run = await runStack("dev", { GITHUB_REF: "refs/heads/main", GITHUB_SHA: SHA });
  });

  it("registers one Image per platform with the platform, push, host network and cache", () => {
    const images = run.h.byType("docker-build:index:Image");
    assert.equal(images.length, 3);
    const platforms = images.map((i) => (i.inputs.platforms as string[])[0]).sort();
    assert.deepEqual(platforms, ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    for (const img of images) {
      const platform = (img.inputs.platforms as string[])[0];
      const slug = platform.replace(/\//g, "-");
      assert.equal(img.inputs.push, true);
      assert.equal(img.inputs.network, "host");
      assert.deepEqual(img.inputs.tags, [`ghcr.io/acme/shop-api:sha-1a2b3c4-${slug}`]);
      const cacheTo = img.inputs.cacheTo as Array<{ registry: { ref: string; mode: string } }>;
      assert.equal(cacheTo[0].registry.ref, `ghcr.io/acme/shop-api-buildcache:${slug}`);
      assert.equal(cacheTo[0].registry.mode, "max");
      const cacheFrom = img.inputs.cacheFrom as Array<{ registry: { ref: string } }>;
      assert.equal(cacheFrom[0].registry.ref, `ghcr.io/acme/shop-api-buildcache:${slug}`);
    }
  });

  it("routes amd64 to the x86 builder and arm64 + arm/v7 to the Graviton builder", () => {
    const builderOf = (p: string) =>
      (run.h.byType("docker-build:index:Image").find((i) => (i.inputs.platforms as string[])[0] === p)?.inputs.builder as { name: string })
        .name;
    assert.equal(builderOf("linux/amd64"), "image-factory-dev-amd64");
    assert.equal(builderOf("linux/arm64"), "image-factory-dev-arm64");
    assert.equal(builderOf("linux/arm/v7"), "image-factory-dev-arm64");
  });

  it("labels and build args come from the git context", () => {
    for (const img of run.h.byType("docker-build:index:Image")) {
      const labels = img.inputs.labels as Record<string, string>;
      assert.equal(labels["org.opencontainers.image.revision"], SHA);
      assert.equal(labels["org.opencontainers.image.version"], "main-1a2b3c4");
      assert.equal(labels["org.opencontainers.image.source"], "https://github.com/acme/shop-api");
      const args = img.inputs.buildArgs as Record<string, string>;
      assert.equal(args.REVISION, SHA);
      assert.equal(args.VERSION, "main-1a2b3c4");
    }
  });

  it("passes credentials to every Image and Index with the token only as a secret", () => {
    const all = [...run.h.byType("docker-build:index:Image"), ...run.h.byType("docker-build:index:Index")];
    for (const r of all) {
      // The SDK marks the smallest enclosing input value secret: the registries list or the registry.
      const reg = r.type.endsWith(":Image") ? r.inputs.registries : r.inputs.registry;
      assert.ok(isSecretInput(reg), `${r.name}: registry credentials are not a secret`);
      const unwrapped = unwrapSecret<unknown>(reg);
      const plain = (Array.isArray(unwrapped) ? unwrapped[0] : unwrapped) as { address: string; username: string; password: string };
      assert.deepEqual([plain.address, plain.username, plain.password], ["ghcr.io", "acme-ci", TOKEN]);
    }
  });

  it("merges the platform images into one Index per tag", () => {
    const indexes = run.h.byType("docker-build:index:Index");
    const tags = indexes.map((i) => i.inputs.tag).sort();
    assert.deepEqual(tags, [
      "ghcr.io/acme/shop-api:edge",
      "ghcr.io/acme/shop-api:main",
      "ghcr.io/acme/shop-api:sha-1a2b3c4",
      `ghcr.io/acme/shop-api:sha-${SHA}`,
    ]);
    for (const idx of indexes) {
      assert.equal((idx.inputs.sources as string[]).length, 3);
      assert.equal(idx.inputs.push, true);
    }
  });

  it("declares the GHCR package settings on GitHub", () => {
    const vars = run.h.byType("github:index/actionsVariable:ActionsVariable").map((v) => v.inputs.variableName).sort();
    assert.ok(vars.includes("IMAGE_NAME") && vars.includes("GHCR_UNTAGGED_RETENTION_DAYS"), vars.join(","));
    const env = run.h.byType("github:index/repositoryEnvironment:RepositoryEnvironment");
    assert.equal(env.length, 1);
    assert.equal(env[0].inputs.environment, "production");
    const reviewers = env[0].inputs.reviewers as Array<{ teams: number[] }>;
    assert.deepEqual(reviewers[0].teams, [2002]);
    const policy = run.h.byType("github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy");
    assert.equal(policy[0].inputs.tagPattern, "v*");
  });

  it("exports the contract", () => {
    const e = run.exports;
    assert.equal(e.imageName, "ghcr.io/acme/shop-api");
    assert.match(e.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(e.imageRef, `ghcr.io/acme/shop-api@${e.digest}`);
    assert.deepEqual(Object.keys(e.platformDigests).sort(), ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    for (const d of Object.values(e.platformDigests)) assert.match(d, /^sha256:/);
    assert.ok(e.tags.includes("ghcr.io/acme/shop-api:sha-1a2b3c4"));
    assert.deepEqual(e.cacheRefs, {
      "linux/amd64": "ghcr.io/acme/shop-api-buildcache:linux-amd64",
      "linux/arm64": "ghcr.io/acme/shop-api-buildcache:linux-arm64",
      "linux/arm/v7": "ghcr.io/acme/shop-api-buildcache:linux-arm-v7",
    });
  });

  it("provisions one native BuildKit host per architecture and exports their endpoints", () => {
    const instances = run.h.byType("aws:ec2/instance:Instance");
    assert.equal(instances.length, 2);
    assert.deepEqual(Object.keys(run.exports.buildHosts ?? {}).sort(), ["amd64", "arm64"]);
    for (const ep of Object.values(run.exports.buildHosts ?? {})) assert.match(ep, /^tcp:\/\/[^:]+:1234$/);
    const types = instances.map((i) => i.inputs.instanceType).sort();
    assert.deepEqual(types, ["c7g.xlarge", "c7i.xlarge"]);
  });

  it("hands CI the builder TLS material with the client key as a secret", async () => {
    const tls = run.out.builderTls;
    assert.ok(tls !== undefined);
    assert.equal(await pulumi.isSecret(tls.clientKeyPem), true);
    assert.equal(await pulumi.isSecret(tls.caCertPem), false);
    assert.match(await resolve(tls.caCertPem), /BEGIN CERTIFICATE/);
  });

  it("collects supply-chain evidence for every pushed platform digest", () => {
    const evidence = run.h.resources.filter((r) => r.type === "pulumi-nodejs:dynamic/supplychain:Evidence");
    assert.equal(evidence.length, 1);
    assert.deepEqual(evidence[0].inputs.platformDigests, run.exports.platformDigests);
    assert.deepEqual(Object.keys(run.exports.sbomLocations).sort(), ["linux/amd64", "linux/arm/v7", "linux/arm64"]);
    assert.ok(isSecretInput(evidence[0].inputs.registryToken), "the scanners' registry token must be a secret input");
  });

  it("never exports the token", () => {
    assert.ok(!JSON.stringify(run.exports).includes(TOKEN));
  });
});

describe("program under mocks: prod stack (promotion by digest on a release tag)", function () {
  this.timeout(60000);
  const devDigest = fakeDigest("dev-index");
  let run: Awaited<ReturnType<typeof runStack>>;
  before(async () => {
    run = await runStack("prod", { GITHUB_REF: "refs/tags/v1.4.2", GITHUB_SHA: SHA }, (h) => {
      h.stackOutputs["acme/image-factory/dev"] = {
        imageName: "ghcr.io/acme/shop-api",
        digest: devDigest,
        imageRef: `ghcr.io/acme/shop-api@${devDigest}`,
        platformDigests: { "linux/amd64": fakeDigest("a"), "linux/arm64": fakeDigest("b"), "linux/arm/v7": fakeDigest("c") },
        sbomLocations: { "linux/amd64": "s3://x/a.spdx.json" },
        gateResults: { passed: true, checks: [{ gate: "imageSize", status: "passed" }] },
        release: { ref: "refs/heads/main", sha: SHA, version: "main-1a2b3c4", prerelease: false },
      };
    });
  });

  it("builds nothing and publishes the release tags at the dev digest", () => {
    assert.equal(run.h.byType("docker-build:index:Image").length, 0);
    const indexes = run.h.byType("docker-build:index:Index");
    const tags = indexes.map((i) => (i.inputs.tag as string).split(":").pop()).sort();
    for (const t of ["1.4.2", "1.4", "1", "latest"]) assert.ok(tags.includes(t), `missing ${t} in ${tags.join(",")}`);
    for (const idx of indexes) assert.deepEqual(idx.inputs.sources, [`ghcr.io/acme/shop-api@${devDigest}`]);
    assert.equal(run.h.byType("pulumi:pulumi:StackReference").length, 1);
  });

  it("exports the source digest and no build hosts or cache", () => {
    assert.equal(run.exports.digest, devDigest);
    assert.equal(run.exports.imageRef, `ghcr.io/acme/shop-api@${devDigest}`);
    assert.deepEqual(run.exports.cacheRefs, {});
    assert.equal(run.exports.buildHosts, undefined);
    assert.equal(run.h.byType("aws:ec2/instance:Instance").length, 0);
  });

  it("leaves GitHub settings to the dev stack", () => {
    assert.equal(run.h.byType("github:index/repositoryEnvironment:RepositoryEnvironment").length, 0);
  });
});
