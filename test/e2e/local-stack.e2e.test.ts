// The whole factory for real on this machine: the Pulumi engine (file backend, passphrase secrets),
// the docker-build provider, buildkitd over mutual TLS (no build step under QEMU) and the local registry, driven
// through scripts/local.sh exactly as `npm run local` runs it — on a fresh stack in a temp directory.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { newRunId, REPO_ROOT } from "./lib/exec";
import { localRegistryAuth, LOCAL_REGISTRY_USER, parseRef, RegistryClient } from "./lib/registry";
import { type SharedFactoryStack, sharedFactoryStack } from "./lib/factoryStack";
import { buildkitHistory, findSecret, PreviewResult, urnType } from "./lib/pulumiStack";

const PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/** Steps whose operation is not `same`, as `op type urn`. */
function changes(p: PreviewResult): { op: string; type: string; urn: string }[] {
  return (p.steps ?? [])
    .filter((s) => s.op !== "same")
    .map((s) => ({ op: s.op, type: urnType(s.urn), urn: s.urn }));
}

describe("local stack: real pulumi up on docker-build + BuildKit + registry", function () {
  this.timeout(90 * 60_000);
  let shared: SharedFactoryStack;
  let registry: RegistryClient;

  before(async function () {
    // The stack every e2e file of this run shares (test/e2e/lib/factoryStack.ts): built once,
    // removed when the process exits. Only previews here; a changed file is put back.
    shared = await sharedFactoryStack();
    registry = new RegistryClient();
  });

  it("exports a manifest-list digest that resolves in the registry to exactly platformDigests", async function () {
    assert.match(
      shared.outputs.digest,
      /^sha256:[0-9a-f]{64}$/,
      `digest export: ${shared.outputs.digest}`,
    );
    assert.equal(shared.outputs.imageRef, `${shared.outputs.imageName}@${shared.outputs.digest}`);
    assert.deepEqual(Object.keys(shared.outputs.platformDigests).sort(), [...PLATFORMS].sort());
    const list = await registry.manifestList(shared.repository, shared.outputs.digest);
    assert.equal(
      list.digest,
      shared.outputs.digest,
      "the registry serves the index under the exported digest",
    );
    const entries = Object.fromEntries(
      list.body.manifests.map((m) => [
        [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join("/"),
        m.digest,
      ]),
    );
    assert.deepEqual(
      entries,
      shared.outputs.platformDigests,
      "manifest list entries (platform → digest) equal the platformDigests export",
    );
  });

  it("pushes each platform's image with the architecture its platform names", async function () {
    for (const [platform, digest] of Object.entries(shared.outputs.platformDigests)) {
      const config = await registry.imageConfig(shared.repository, digest);
      const [osName, arch, variant] = platform.split("/");
      assert.equal(config.os, osName, `${platform} image os`);
      assert.equal(config.architecture, arch, `${platform} image architecture`);
      if (variant !== undefined) assert.equal(config.variant, variant, `${platform} image variant`);
    }
  });

  it("publishes every exported tag at the index digest", async function () {
    assert.ok(
      shared.outputs.tags.length >= 2,
      `tags export: ${JSON.stringify(shared.outputs.tags)}`,
    );
    for (const ref of shared.outputs.tags) {
      const { repository: repo, reference } = parseRef(ref);
      assert.equal(repo, shared.repository, `tag ${ref} is in the stack's repository`);
      assert.equal(
        await registry.head(repo, reference),
        shared.outputs.digest,
        `tag ${ref} resolves to the index digest`,
      );
    }
  });

  it("exports a cache ref per platform and each exists in the registry", async function () {
    assert.deepEqual(Object.keys(shared.outputs.cacheRefs).sort(), [...PLATFORMS].sort());
    for (const [platform, ref] of Object.entries(shared.outputs.cacheRefs)) {
      const { repository: repo, reference } = parseRef(ref);
      assert.ok(
        await registry.head(repo, reference),
        `cache ref ${ref} for ${platform} exists in the registry`,
      );
    }
  });

  it("previews no change and builds nothing on an unchanged tree", async function () {
    const before = await buildkitHistory();
    const preview = await shared.stack.preview();
    const after = await buildkitHistory();
    assert.deepEqual(
      changes(preview),
      [],
      "no resource changes (a spurious contextHash diff would show an Image update)",
    );
    assert.deepEqual(
      Object.keys(preview.changeSummary ?? {}),
      ["same"],
      `change summary: ${JSON.stringify(preview.changeSummary)}`,
    );
    assert.deepEqual(
      after.filter((r) => !before.includes(r)),
      [],
      "BuildKit recorded no build during the preview",
    );
  });

  it("previews exactly the image updates a source change implies", async function () {
    const sources = path.join(shared.appDir, "src");
    const file = fs
      .readdirSync(sources)
      .filter((f) => f.endsWith(".ts"))
      .sort()[0];
    assert.ok(file, `no TypeScript source in ${sources}`);
    const changedFile = path.join(sources, file);
    const original = fs.readFileSync(changedFile, "utf8");
    fs.appendFileSync(changedFile, `\n// e2e source change ${newRunId()}\n`);
    let preview: PreviewResult;
    try {
      preview = await shared.stack.preview();
    } finally {
      // Other files' tests share this stack and expect the tree it deployed.
      fs.writeFileSync(changedFile, original);
    }
    const changed = changes(preview);
    const images = changed.filter((c) => c.type === "docker-build:index:Image");
    // Every platform image, and the coverage stage (its tests run on the changed sources).
    assert.deepEqual(
      images.map((c) => c.urn.split("::").pop()).sort(),
      [...PLATFORMS.map((p) => `image-${p.replace(/\//g, "-")}`), "image-coverage"].sort(),
      `every platform Image and the coverage Image change: ${JSON.stringify(changed, null, 2)}`,
    );
    for (const c of changed) {
      assert.ok(
        ["update", "replace", "create-replacement", "delete-replaced"].includes(c.op) ||
          c.type !== "docker-build:index:Image",
        `${c.urn}: ${c.op}`,
      );
      assert.notEqual(c.op, "delete", `${c.urn} must not be deleted by a source change`);
      // Only images and what is derived from their digests may change: the manifest lists and
      // the supply-chain evidence (a dynamic resource over the image digests).
      assert.ok(
        ["docker-build:index:Image", "docker-build:index:Index", "pulumi:pulumi:Stack"].includes(
          c.type,
        ) || c.type.startsWith("pulumi-nodejs:dynamic"),
        `unexpected change ${c.op} ${c.urn}`,
      );
    }
  });

  it("generates the stack config with the salt and the token as a secret, from a salt-free committed file", async function () {
    // scripts/local.sh → scripts/prepare-stack.ts (Automation API) wrote it before every command.
    const generated = parse(fs.readFileSync(shared.stack.generatedConfigFile, "utf8")) as {
      encryptionsalt?: string;
      config?: Record<string, unknown>;
    };
    assert.match(
      generated.encryptionsalt ?? "",
      /^v1:[^:]+:v1:[^:]+:[^:]+$/,
      "the generated config carries the stack's encryption salt",
    );
    assert.match(
      (generated.config?.["image-factory:registryToken"] as { secure?: string } | undefined)
        ?.secure ?? "",
      /^v1:[^:]+:[^:]+$/,
      "the token is a secure value",
    );
    assert.equal(
      fs.statSync(shared.stack.generatedConfigFile).mode & 0o077,
      0,
      "the generated config is private to its owner",
    );
    for (const committed of fs.readdirSync(REPO_ROOT).filter((f) => /^Pulumi\..+\.yaml$/.test(f))) {
      assert.doesNotMatch(
        fs.readFileSync(path.join(REPO_ROOT, committed), "utf8"),
        /^encryptionsalt:/m,
        `${committed} stays free of a salt`,
      );
    }
  });

  it("never writes the registry token to the state, the exports, the generated config or the logs", async function () {
    const { password } = localRegistryAuth();
    const texts = [
      {
        name: shared.stack.generatedConfigFile,
        text: fs.readFileSync(shared.stack.generatedConfigFile, "utf8"),
      },
      ...shared.stack.stateFiles().map((f) => ({ name: f.file, text: f.text })),
      { name: "stack outputs", text: JSON.stringify(await shared.stack.outputs()) },
      { name: "stack export", text: JSON.stringify(await shared.stack.exportState()) },
      ...shared.stack.logs.map((text, i) => ({ name: `log ${i}`, text })),
    ];
    assert.ok(
      texts.some((t) => t.name.endsWith(".json")),
      "the backend holds a checkpoint file to search",
    );
    assert.deepEqual(
      findSecret(password, LOCAL_REGISTRY_USER, texts),
      [],
      "the registry token appears nowhere",
    );
  });
});
