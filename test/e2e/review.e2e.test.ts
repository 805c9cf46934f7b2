// The pull-request review (`npm run review`, scripts/review.ts) for real: one three-platform stack
// is deployed once (scripts/local.sh up), then each test changes that stack's build context (its
// working tree), runs the review against the stack, and restores the tree. Every review is a real
// build of every platform on the local buildkitd into the quarantine repository
// `<repository>-review`, the real evidence engine on those digests, and a diff against what the
// stack ships. Around every review the test reads every tag of the stack's own repository and the
// stack's cache tags from the registry: a review moves nothing a user pulls and never writes the
// cache main's builds import. The last test takes CI's path (`--backend service --build`, a pull
// request's GITHUB_REF, the registry credential and the preview from the environment).
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { platformSlug } from "../../components/naming";
import type { PackageRef, Review } from "../../review";
import {
  PLATFORMS,
  REPO_ROOT,
  copyApp,
  factoryStackConfig,
  localRegistryAuth,
  ownFactoryStacks,
  run,
  tail,
  touchAppSource,
  userTags,
  type FactoryOutputs,
  type TestStack,
} from "./lib";

interface ReviewRun {
  code: number;
  markdown: string;
  file: string;
  review: Review;
  stderr: string;
  seconds: number;
}

describe("pull-request review: what a merge would ship, built for real next to what ships (e2e)", function () {
  this.timeout(60 * 60_000);
  const own = ownFactoryStacks("review");
  const { repository } = own;
  const cacheRepository = `${repository}-cache`;
  const quarantine = `${repository}-review`;
  let stack: TestStack;
  let appDir: string;
  let pristine: string;
  let outputs: FactoryOutputs;
  let published: Record<string, string>;
  let cacheTags: Record<string, string>;
  const timings: string[] = [];

  /** `npm run review` against the test stack, as a person runs it; Markdown from stdout. */
  async function review(
    name: string,
    extra: string[] = [],
    ci?: { env: NodeJS.ProcessEnv },
  ): Promise<ReviewRun> {
    const file = path.join(stack.dir, `${name}.md`);
    const r = await run(
      "npm",
      [
        "run",
        "--silent",
        "review",
        "--",
        "--stack",
        stack.stack,
        "--out",
        file,
        "--sha",
        own.sha,
        "--review-dir",
        path.join(stack.dir, ci === undefined ? "review" : "review-ci"),
        ...extra,
      ],
      {
        cwd: REPO_ROOT,
        env: { ...stack.env(), ...ci?.env },
        timeoutMs: 30 * 60_000,
      },
    );
    const output = `${r.stdout}\n${r.stderr}`;
    assert.ok(
      r.code === 0 || r.code === 1,
      `npm run review made no review (exit ${r.code}):\n${tail(output, 40)}`,
    );
    assert.ok(fs.existsSync(file), `no ${file}:\n${tail(output, 20)}`);
    const markdown = fs.readFileSync(file, "utf8");
    assert.equal(r.stdout, markdown, "stdout is not the Markdown written to --out");
    const review = JSON.parse(fs.readFileSync(file.replace(/\.md$/, ".json"), "utf8")) as Review;
    const seconds = Math.round(r.durationMs / 100) / 10;
    timings.push(`${name}: ${seconds} s (${/done in [^\n]*/.exec(r.stderr)?.[0] ?? "?"})`);
    return { code: r.code, markdown, file, review, stderr: r.stderr, seconds };
  }

  /** Nothing a user pulls moved, main's cache was not written, and the review's images are only in quarantine. */
  async function assertNothingPublished(run: ReviewRun): Promise<void> {
    assert.deepEqual(
      userTags(await own.registry.tagDigests(repository)),
      published,
      "a review moved a tag of the stack's repository",
    );
    const cache = await own.registry.tagDigests(cacheRepository);
    const mainCache = Object.fromEntries(
      Object.entries(cache).filter(([k]) => !k.startsWith("review-")),
    );
    assert.deepEqual(mainCache, cacheTags, "a review wrote the cache main's builds import");
    const q = await own.registry.tagDigests(quarantine);
    // Per-platform digests, and a pull request's review cache (the CI path keeps it there).
    assert.deepEqual(
      Object.keys(q).filter((t) => !/^(sha-[0-9a-f]{7}-(linux-|coverage$)|pr-\d+-linux-)/.test(t)),
      [],
      `the quarantine repository holds more than per-platform digests: ${JSON.stringify(q)}`,
    );
    for (const p of run.review.platforms) {
      if (p.candidate.digest !== undefined)
        assert.equal(
          q[`sha-${own.sha.slice(0, 7)}-${platformSlug(p.platform)}`],
          p.candidate.digest,
          `${p.platform}: the candidate is not in ${quarantine}`,
        );
    }
  }

  const platform = (r: Review, p: string): Review["platforms"][number] => {
    const found = r.platforms.find((x) => x.platform === p);
    assert.ok(
      found,
      `no ${p} in the review: ${JSON.stringify(r.platforms.map((x) => x.platform))}`,
    );
    return found;
  };

  before(async function () {
    ({ stack, appDir } = own.newStack("pr"));
    pristine = copyApp(path.join(stack.dir, "app.pristine"));
    stack.setConfig(
      factoryStackConfig({
        repository,
        appDir,
        sha: own.sha,
        cacheRepository,
        platforms: PLATFORMS,
      }),
    );
    const up = await stack.up();
    timings.push(`deploy of the stack (3 platforms): ${Math.round(up.durationMs / 100) / 10} s`);
    outputs = await stack.outputs<FactoryOutputs>();
    assert.equal(outputs.gateResults?.passed, true, "the clean stack did not pass its gates");
    published = userTags(await own.registry.tagDigests(repository));
    cacheTags = await own.registry.tagDigests(cacheRepository);
    assert.deepEqual(Object.keys(cacheTags).sort(), ["linux-amd64", "linux-arm-v7", "linux-arm64"]);
  });

  afterEach(() => {
    // The working tree back to what the stack deployed.
    fs.rmSync(appDir, { recursive: true, force: true });
    fs.cpSync(pristine, appDir, { recursive: true });
  });

  after(() => {
    console.log(`      timings:\n        ${timings.join("\n        ")}`);
  });

  it("a new production dependency (is-odd 3.0.1) lists it and its own dependency (is-number 6.0.0) as added on every platform, the image grows, the gates still pass", async () => {
    // Only the lock file and package.json change: the image build installs the dependency.
    const add = "install --package-lock-only --ignore-scripts --save-exact --no-audit --no-fund";
    const npm = await run("npm", [...add.split(" "), "is-odd@3.0.1"], { cwd: appDir });
    assert.equal(npm.code, 0, tail(npm.stderr));
    const r = await review("dependency", ["--no-preview"]);
    assert.equal(r.code, 0, `the review says the deploy would fail:\n${r.markdown}`);
    assert.equal(
      r.review.gates.candidate.passed,
      true,
      JSON.stringify(r.review.gates.candidate.checks.filter((c) => c.status !== "passed")),
    );
    assert.deepEqual(r.review.gates.candidate.notRun, []);
    const added: PackageRef[] = [
      { name: "is-number", type: "npm", version: "6.0.0" },
      { name: "is-odd", type: "npm", version: "3.0.1" },
    ];
    for (const p of PLATFORMS) {
      const pr = platform(r.review, p);
      assert.deepEqual(pr.packages, { added, removed: [], changed: [] }, p);
      assert.equal(pr.current?.digest, outputs.platformDigests[p], `${p}: current digest`);
      assert.ok(
        pr.candidate.digest !== undefined && pr.candidate.digest !== pr.current?.digest,
        `${p}: the candidate digest did not change`,
      );
      assert.ok(
        (pr.candidate.sizeBytes ?? 0) > (pr.current?.sizeBytes ?? Infinity),
        `${p}: size ${pr.current?.sizeBytes} → ${pr.candidate.sizeBytes} did not grow`,
      );
      assert.equal(pr.candidate.layers, pr.current?.layers, `${p}: layer count`);
      assert.deepEqual(pr.vulnerabilities, { new: [], fixed: [] }, `${p}: vulnerabilities`);
      assert.equal(pr.candidate.buildError, undefined);
    }
    assert.ok(r.markdown.startsWith(`<!-- image-factory-review:${stack.stack} -->\n`));
    assert.match(r.markdown, /✅ \*\*The merge's deploy would pass the gates\.\*\*/);
    assert.match(r.markdown, /\| packages \| \+2 −0 ~0 \|/);
    assert.match(r.markdown, /\| `is-odd` \| npm \| — \| `3\.0\.1` \|/);
    assert.match(r.markdown, /\| `is-number` \| npm \| — \| `6\.0\.0` \|/);
    await assertNothingPublished(r);
  });

  it("one changed source line: no package change, a small size delta, the same layers, and the tags a merge would move with where they point now; the preview shows the images that would update", async () => {
    touchAppSource(appDir, `review-${own.runId}`);
    const r = await review("source");
    assert.equal(r.code, 0, `the review says the deploy would fail:\n${r.markdown}`);
    for (const p of PLATFORMS) {
      const pr = platform(r.review, p);
      assert.deepEqual(pr.packages, { added: [], removed: [], changed: [] }, p);
      const delta = (pr.candidate.sizeBytes ?? 0) - (pr.current?.sizeBytes ?? 0);
      assert.ok(
        delta !== 0 && Math.abs(delta) < 4096,
        `${p}: size delta ${delta} bytes is not small`,
      );
      assert.equal(pr.candidate.layers, pr.current?.layers, `${p}: layer count`);
      assert.notEqual(pr.candidate.digest, pr.current?.digest, `${p}: digest`);
    }
    assert.deepEqual(r.review.tagsToMove, [
      { tag: "main", currentDigest: outputs.digest },
      { tag: "edge", currentDigest: outputs.digest },
      { tag: `sha-${own.sha.slice(0, 7)}`, currentDigest: outputs.digest },
      { tag: `sha-${own.sha}`, currentDigest: outputs.digest },
    ]);
    const short = outputs.digest.slice(0, "sha256:".length + 12);
    assert.ok(
      r.markdown.includes(
        `**Tags a merge would move**\n\n| tag | points at now |\n|---|---|\n| \`main\` | \`${short}\` |\n| \`edge\` | \`${short}\` |`,
      ),
      r.markdown,
    );
    assert.match(r.markdown, /\| packages \| unchanged \|/);
    // The compact preview: what changes, by type and name; no URNs, ids or provider references.
    const preview = r.review.preview ?? "";
    for (const p of PLATFORMS)
      assert.ok(
        preview.includes(`~ docker-build:index:Image image-${platformSlug(p)} (update)`),
        preview,
      );
    assert.ok(!/urn:pulumi|\[id=|\[provider=/.test(preview), preview);
    assert.ok(
      r.markdown.includes("<details><summary>Pulumi preview</summary>"),
      "no preview block",
    );
    await assertNothingPublished(r);
  });

  it("a Dockerfile step that fails only on linux/arm/v7: the review names the platform, the stage and the step with the output tail, and still shows the other platforms", async () => {
    const dockerfile = path.join(appDir, "Dockerfile");
    const text = fs.readFileSync(dockerfile, "utf8");
    // The runtime stage: the one stage that runs on the target platform (deps installs on the
    // build platform for the target).
    const anchor = "FROM ${BASE_IMAGE} AS runtime\nWORKDIR /app\n";
    assert.ok(text.includes(anchor), "the runtime stage moved: update this test");
    // The pause keeps the step's `[runtime 3/6]` header the resource's latest line for a while:
    // pulumi's display shows one message per refresh, and a step that fails at once can lose it.
    const step = `RUN [ "$(uname -m)" != "armv7l" ] || (sleep 2 && echo "armv7 is not supported by this step" && exit 1)`;
    fs.writeFileSync(dockerfile, text.replace(anchor, `${anchor}${step}\n`));
    const r = await review("arm-step", ["--no-preview"]);
    assert.equal(r.code, 1, `the review does not say the deploy would fail:\n${r.markdown}`);
    const arm = platform(r.review, "linux/arm/v7");
    assert.equal(arm.candidate.digest, undefined);
    assert.equal(arm.candidate.buildError?.stage, "runtime");
    assert.equal(arm.candidate.buildError?.step, `3/6 ${step}`);
    assert.match(arm.candidate.buildError?.tail ?? "", /armv7 is not supported by this step/);
    assert.match(
      arm.candidate.buildError?.tail ?? "",
      /did not complete successfully: exit code: 1/,
    );
    assert.deepEqual(arm.packages, { unavailable: "the candidate did not build on linux/arm/v7" });
    for (const p of ["linux/amd64", "linux/arm64"]) {
      const pr = platform(r.review, p);
      assert.equal(pr.candidate.buildError, undefined, p);
      assert.match(pr.candidate.digest ?? "", /^sha256:[0-9a-f]{64}$/, p);
      assert.deepEqual(pr.packages, { added: [], removed: [], changed: [] }, p);
    }
    assert.ok(
      r.markdown.includes(
        "❌ **The merge's deploy would fail:** the build fails on `linux/arm/v7`",
      ),
      r.markdown,
    );
    assert.ok(
      r.markdown.includes("**Build failed on `linux/arm/v7`** at stage `runtime`, step `3/6 RUN"),
      r.markdown,
    );
    assert.ok(r.markdown.includes("armv7 is not supported by this step"), r.markdown);
    await assertNothingPublished(r);
  });

  it("a planted AWS access key in the build context: the review shows the secrets gate that would fail, without the key", async () => {
    // Built at run time, never committed: AKIA + 16 upper-case hex characters.
    const key = `AKIA${crypto.randomBytes(8).toString("hex").toUpperCase()}`;
    fs.mkdirSync(path.join(appDir, "deploy"), { recursive: true });
    fs.writeFileSync(path.join(appDir, "deploy", "credentials.env"), `AWS_ACCESS_KEY_ID=${key}\n`);
    const r = await review("secret", ["--no-preview"]);
    assert.equal(r.code, 1, `the review does not say the deploy would fail:\n${r.markdown}`);
    const secrets = r.review.gates.candidate.checks.find((c) => c.name === "secrets");
    assert.deepEqual(secrets, {
      name: "secrets",
      status: "failed",
      measured: 1,
      limit: 0,
      unit: "findings",
    });
    assert.equal(
      r.review.gates.current?.checks.find((c) => c.name === "secrets")?.status,
      "passed",
    );
    assert.ok(
      r.markdown.includes("❌ **The merge's deploy would fail:** gates fail: `secrets`."),
      r.markdown,
    );
    assert.ok(r.markdown.includes("Gates changed: `secrets` passed → **failed**."), r.markdown);
    for (const p of PLATFORMS)
      assert.equal(platform(r.review, p).candidate.buildError, undefined, p);
    assert.ok(
      !r.markdown.includes(key) &&
        !fs.readFileSync(r.file.replace(/\.md$/, ".json"), "utf8").includes(key) &&
        !r.stderr.includes(key),
      "the review shows the key itself",
    );
    await assertNothingPublished(r);
  });

  it("without a build (--no-build: what a job without a push credential or builders can do) the build-context checks still judge: the planted key fails secrets, coverage is not run", async () => {
    const key = `AKIA${crypto.randomBytes(8).toString("hex").toUpperCase()}`;
    fs.mkdirSync(path.join(appDir, "deploy"), { recursive: true });
    fs.writeFileSync(path.join(appDir, "deploy", "credentials.env"), `AWS_ACCESS_KEY_ID=${key}\n`);
    const before = await own.registry.tagDigests(quarantine);
    const r = await review("no-build", ["--no-build", "--no-preview"]);
    assert.equal(r.code, 1, r.markdown);
    assert.deepEqual(
      await own.registry.tagDigests(quarantine),
      before,
      "--no-build pushed to the quarantine repository",
    );
    const gates = r.review.gates.candidate;
    assert.equal(gates.checks.find((c) => c.name === "secrets")?.status, "failed");
    assert.deepEqual(gates.notRun, ["coverage", "branchCoverage", "functionCoverage"]);
    for (const p of PLATFORMS) {
      const pr = platform(r.review, p);
      assert.equal(pr.candidate.digest, undefined, p);
      assert.match(
        (pr.packages as { unavailable: string }).unavailable,
        /^not built in this run: a review build needs push access to 127\.0\.0\.1:5443\/image-factory\/review-[a-z0-9]+-review and the stack's builders/,
        p,
      );
    }
    assert.ok(
      r.markdown.includes("❌ **The merge's deploy would fail:** gates fail: `secrets`."),
      r.markdown,
    );
    assert.ok(!r.markdown.includes(key), "the review shows the key itself");
  });

  it("the CI path (--backend service --build, a pull request's GITHUB_REF, the credential and the preview from the environment): a real build whose cache goes to pr-<n> refs in the quarantine repository, never to main's cache", async () => {
    touchAppSource(appDir, `ci-${own.runId}`);
    // What pr.yml's preview job hands over: the stack's own `pulumi preview --diff` output.
    const previewRun = await stack.local(["preview", "--diff"]);
    assert.equal(previewRun.code, 0, tail(previewRun.stderr, 20));
    const previewFile = path.join(stack.dir, "preview.txt");
    fs.writeFileSync(previewFile, previewRun.stdout);
    const local = stack.localDir;
    const auth = localRegistryAuth();
    const r = await review(
      "ci",
      [
        "--backend",
        "service",
        "--build",
        "--preview-file",
        previewFile,
        "--stack-config",
        stack.configFile,
      ],
      {
        env: {
          // The target stack through the pulumi CLI's backend, as CI reaches Pulumi Cloud.
          PULUMI_BACKEND_URL: `file://${path.join(local, "state")}`,
          PULUMI_CONFIG_PASSPHRASE_FILE: path.join(local, "passphrase"),
          SSL_CERT_FILE: path.join(local, "ca-bundle.pem"),
          NODE_EXTRA_CA_CERTS: path.join(local, "ca-bundle.pem"),
          BUILDX_BUILDER: "image-factory-registries",
          PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
          PULUMI_NODEJS_TRANSPILE_ONLY: "true",
          GITHUB_REF: "refs/pull/7/merge",
          IMAGE_FACTORY_REGISTRY_USERNAME: auth.username,
          IMAGE_FACTORY_REGISTRY_TOKEN: auth.password,
        },
      },
    );
    assert.equal(r.code, 0, `the review says the deploy would fail:\n${r.markdown}`);
    for (const p of PLATFORMS) {
      const pr = platform(r.review, p);
      assert.match(pr.candidate.digest ?? "", /^sha256:[0-9a-f]{64}$/, p);
      assert.notEqual(pr.candidate.digest, pr.current?.digest, `${p}: digest`);
      assert.deepEqual(pr.packages, { added: [], removed: [], changed: [] }, p);
    }
    // The pull request's cache: its own pr-7 refs, in quarantine.
    const q = await own.registry.tagDigests(quarantine);
    assert.deepEqual(
      Object.keys(q)
        .filter((t) => t.startsWith("pr-"))
        .sort(),
      PLATFORMS.map((p) => `pr-7-${platformSlug(p)}`).sort(),
    );
    // The preview is the one the file holds, compacted.
    for (const p of PLATFORMS)
      assert.ok(
        (r.review.preview ?? "").includes(
          `~ docker-build:index:Image image-${platformSlug(p)} (update)`,
        ),
        r.review.preview,
      );
    await assertNothingPublished(r);
  });
});
