// Promotion by digest on real stacks: a source stack builds and pushes (real pulumi up on BuildKit),
// a second stack with `promoteFrom` publishes its release tags at the source's index digest without
// building anything, and a stack promoting from a source that has no digest is refused clearly.
// All stacks share one temp file backend, as dev and prod share one backend in real use.
import { strict as assert } from "assert";
import * as fs from "fs";
import * as path from "path";
import { newRunId } from "./lib/exec";
import { parseRef, RegistryClient } from "./lib/registry";
import { type PublishedOutputs, factoryStackConfig } from "./lib/factoryStack";
import {
  STACK_REGISTRY,
  SharedBackend,
  bootstrapOnce,
  buildkitHistory,
  copyApp,
  headSha,
  localStackConfig,
  requireLocalStackTools,
  TestStack,
} from "./lib/pulumiStack";

describe("promotion: a stack with promoteFrom republishes another stack's digest", function () {
  this.timeout(60 * 60_000);
  const runId = newRunId();
  const repository = `image-factory/e2e-promo-${runId}`;
  let backend: SharedBackend;
  let source: TestStack;
  let sourceOutputs: PublishedOutputs;
  let registry: RegistryClient;
  let sha: string;

  before(async function () {
    await bootstrapOnce();
    requireLocalStackTools();
    registry = new RegistryClient();
    sha = await headSha();
    backend = new SharedBackend("promotion");
    const appDir = copyApp(path.join(backend.root, "app"));
    sourceAppDir = appDir;
    // One platform keeps the source build short; promotion copies whatever index it finds.
    source = backend.stack(
      `src-${runId}`,
      factoryStackConfig({ repository, appDir, sha, platforms: ["linux/amd64"] }),
    );
    await source.up();
    sourceOutputs = await source.outputs<PublishedOutputs>();
    assert.match(
      sourceOutputs.digest,
      /^sha256:[0-9a-f]{64}$/,
      "the source stack exports an index digest",
    );
  });

  after(function () {
    backend?.remove();
  });

  /** A `pulumi up` of `prod` that fails with `message` and moves no tag in the registry. */
  async function refusedUp(prod: TestStack, message: RegExp): Promise<void> {
    const tagsBefore = await registry.tagDigests(repository);
    const r = await prod.local(["up"]);
    const output = `${r.stdout}\n${r.stderr}`;
    assert.notEqual(r.code, 0, `pulumi up passed:\n${output.slice(-3000)}`);
    assert.match(output, message, output.slice(-3000));
    assert.deepEqual(
      await registry.tagDigests(repository),
      tagsBefore,
      "no tag moved in the registry",
    );
  }

  let sourceAppDir: string;
  const promotingConfig = (from: string): Record<string, unknown> => ({
    ...localStackConfig(),
    "image-factory:imageName": `${STACK_REGISTRY}/${repository}`,
    "image-factory:promoteFrom": from,
    "image-factory:gitRef": "refs/tags/v1.4.2",
    "image-factory:gitSha": sha,
  });

  it("publishes the release tags at the source digest, with no Image and no build", async function () {
    const prod = backend.stack(`prod-${runId}`, promotingConfig(source.stack));
    const before = await buildkitHistory();
    await prod.up();
    const after = await buildkitHistory();
    const out = await prod.outputs<PublishedOutputs>();

    assert.equal(
      out.digest,
      sourceOutputs.digest,
      "the promoted digest is the source stack's digest",
    );
    assert.equal(out.imageRef, `${STACK_REGISTRY}/${repository}@${sourceOutputs.digest}`);
    const tagNames = out.tags.map((t) => parseRef(t).reference);
    for (const t of ["1.4.2", "1.4", "1", "latest"]) {
      assert.ok(tagNames.includes(t), `release tag ${t} is published: ${JSON.stringify(out.tags)}`);
    }
    for (const ref of out.tags) {
      const { repository: repo, reference } = parseRef(ref);
      assert.equal(
        await registry.head(repo, reference),
        sourceOutputs.digest,
        `${ref} points at the source digest`,
      );
    }

    const state = await prod.exportState();
    const types = (state.deployment.resources ?? []).map((r) => r.type);
    assert.deepEqual(
      types.filter((t) => t === "docker-build:index:Image"),
      [],
      "the promoting stack has no Image resource",
    );
    assert.ok(
      types.includes("docker-build:index:Index"),
      `the promoting stack publishes with Index resources: ${types.join(", ")}`,
    );
    assert.deepEqual(
      after.filter((r) => !before.includes(r)),
      [],
      "BuildKit recorded no build during the promotion",
    );
  });

  it("refuses to promote from a stack that has no digest, naming the stack and the export", async function () {
    const empty = backend.stack(`empty-${runId}`, promotingConfig("nowhere"));
    // A stack that exists but was never deployed: it has no outputs at all.
    const init = await empty.local(["pulumi", "stack", "ls"]);
    assert.equal(init.code, 0, `stack ${empty.stack} is created: ${init.stderr}`);

    const prod = backend.stack(`prod-empty-${runId}`, promotingConfig(empty.stack));
    await refusedUp(prod, new RegExp(`source stack "${empty.stack}" has no "digest" output`));
  });

  // Last: it leaves the source stack with an image newer than its evidence.
  it("refuses a source whose platform digests moved past what its gates judged (`pulumi up --target` on an Image), moving no tag", async function () {
    const state = await source.exportState();
    const image = (state.deployment.resources ?? []).find(
      (r) => r.type === "docker-build:index:Image" && !r.urn.endsWith("-coverage"),
    );
    assert.ok(image, "the source stack has a platform Image");
    fs.appendFileSync(
      path.join(sourceAppDir, "src", "server.ts"),
      `\nexport const promotionE2eChange = ${JSON.stringify(runId)};\n`,
    );
    // Only the Image: the evidence and the publication (and so gateResults and digest) stay behind.
    await source.localOk([
      "pulumi",
      "up",
      "--yes",
      "--skip-preview",
      "--non-interactive",
      "--target",
      image.urn,
    ]);
    const moved = await source.outputs<PublishedOutputs>();
    assert.notEqual(
      moved.platformDigests["linux/amd64"],
      sourceOutputs.platformDigests["linux/amd64"],
      "the targeted up built a new image",
    );

    const prod = backend.stack(`prod-moved-${runId}`, promotingConfig(source.stack));
    // Promotion verifies on the registry (evidence/verify.ts): the list still holds the judged
    // (and signed) image, the source stack's export names the new one.
    await refusedUp(
      prod,
      /platform digests: the source stack exports linux\/amd64 = "sha256:[0-9a-f]{64}", but the manifest list sha256:[0-9a-f]{12}… holds "sha256:[0-9a-f]{64}"/,
    );
  });
});
