// The app image proven on a real engine, built by the factory itself: the images are the ones the
// local Pulumi stack (scripts/local.sh up: docker-build on the local buildkitd)
// pushed for linux/amd64, linux/arm64 and linux/arm/v7 and merged into its index. Each platform
// image is pulled by the digest the stack exports, run, health-checked, stopped and inspected; a
// source-only change and three kinds of bad input go through `pulumi up` of their own stacks.
// One build path: nothing here builds with `docker build`.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import {
  appDevDependencies,
  BASE_REPOSITORY,
  baseNodeVersion,
  containerProcessIds,
  copyApp,
  docker,
  findSecret,
  FactoryOutputs,
  httpGet,
  factoryStackConfig,
  ImageConfig,
  imageFileList,
  inspectImage,
  LOCAL_REGISTRY,
  LOCAL_REGISTRY_USER,
  newRunId,
  parsePlatform,
  platformSlug,
  PLATFORMS,
  pullImage,
  RegistryClient,
  removeContainer,
  removeImage,
  runAppContainer,
  runOk,
  RunningApp,
  SharedFactoryStack,
  sharedFactoryStack,
  STACK_REGISTRY,
  stopContainer,
  tail,
  TestStack,
  toolPath,
  touchAppSource,
} from "./lib";

/** The factory's default size gate (gates.maxImageSizeMb). */
const MAX_IMAGE_SIZE_MB = 500;

/** What Node reports inside each platform's container: process.arch and os.machine() (uname -m). */
const NODE_ARCH: Record<string, { arch: string; machine: string }> = {
  "linux/amd64": { arch: "x64", machine: "x86_64" },
  "linux/arm64": { arch: "arm64", machine: "aarch64" },
  "linux/arm/v7": { arch: "arm", machine: "armv7l" },
};

/** The `<platform>` key of a manifest-list entry or image config. */
const platformOf = (
  p: { os?: string; architecture?: string; variant?: string } | undefined,
): string =>
  [p?.os, p?.architecture, p?.variant].filter((x) => x !== undefined && x !== "").join("/");

describe("app image built by the factory (local Pulumi stack): amd64, arm64 and arm/v7 (emulated)", function () {
  // A first bring-up builds the tools, the base and three images: minutes.
  this.timeout(30 * 60_000);

  const runId = newRunId();
  let shared: SharedFactoryStack;
  let outputs: FactoryOutputs;
  // The stack pushes to the TLS twin (127.0.0.1:5443); the engine and these checks use the plain
  // registry on 127.0.0.1:5000, which serves the same storage.
  let registry: RegistryClient;
  const containers: string[] = [];
  const apps = new Map<string, RunningApp>();
  const pulled = new Set<string>();
  const stacks: TestStack[] = [];

  const digestOf = (platform: string): string => {
    const digest = outputs.platformDigests[platform];
    if (digest === undefined)
      throw new Error(
        `the stack exports no digest for ${platform}: ${JSON.stringify(outputs.platformDigests)}`,
      );
    return digest;
  };
  /** The platform image on the plain registry, by the digest the stack exported. */
  const refOf = (platform: string): string =>
    `${LOCAL_REGISTRY}/${shared.repository}@${digestOf(platform)}`;
  const pulledRef = async (platform: string): Promise<string> => {
    const ref = refOf(platform);
    if (!pulled.has(ref)) {
      // By digest with --platform: Docker 20.10 must never pull a list tag (engine notes).
      await pullImage(ref, platform);
      pulled.add(ref);
    }
    return ref;
  };
  const newStack = (name: string, config: Record<string, unknown>): TestStack => {
    const s = new TestStack(`${name}-${runId}`, config);
    stacks.push(s);
    return s;
  };

  before(async function () {
    this.timeout(60 * 60_000);
    shared = await sharedFactoryStack();
    outputs = shared.outputs;
    registry = new RegistryClient();
  });

  after(async function () {
    this.timeout(5 * 60_000);
    for (const c of containers) await removeContainer(c);
    for (const ref of pulled) await removeImage(ref);
    if (process.env.IF_E2E_KEEP !== "1") for (const s of stacks) s.remove();
  });

  for (const platform of PLATFORMS) {
    describe(platform, function () {
      const slug = platformSlug(platform);
      const name = `if-${runId}-${slug}`;

      it("is pushed by the stack for this platform on the offline base, as uid 10001 with an exec-form HEALTHCHECK", async function () {
        const want = parsePlatform(platform);
        const config = await registry.imageConfig(shared.repository, digestOf(platform));
        assert.strictEqual(platformOf(config), platform, "image config os/architecture/variant");
        // The base layers are exactly the ones the base's manifest list has for this platform.
        const baseList = await registry.manifestList(BASE_REPOSITORY, "22");
        const entry = baseList.body.manifests.find(
          (m) => platformOf(m.platform) === platformOf(want),
        );
        assert.ok(entry, `the base list has no ${platform} entry`);
        const baseConfig = await registry.imageConfig(BASE_REPOSITORY, entry.digest);
        assert.deepStrictEqual(
          config.rootfs.diff_ids.slice(0, baseConfig.rootfs.diff_ids.length),
          baseConfig.rootfs.diff_ids,
        );
        assert.match(config.config?.User ?? "", /^10001(:10001)?$/);
        assert.deepStrictEqual(
          config.config?.Healthcheck?.Test?.slice(0, 1),
          ["CMD"],
          "HEALTHCHECK must be exec form",
        );
        assert.strictEqual(
          config.config?.Labels?.["org.opencontainers.image.revision"],
          shared.sha,
          "revision label from the stack's git context",
        );
      });

      it("runs from its digest: /health answers 200, the HEALTHCHECK turns healthy, the process is uid 10001", async function () {
        const ref = await pulledRef(platform);
        containers.push(name);
        const app = await runAppContainer({ image: ref, name, platform });
        apps.set(name, app);
        assert.strictEqual(app.health.status, 200);
        assert.strictEqual(app.state.Health?.Status, "healthy");
        const ids = await containerProcessIds(name);
        assert.deepStrictEqual(ids, { uid: 10001, gid: 10001 }, "the service must not run as root");
      });

      it("runs this platform's Node on this architecture and reports the stack's revision", async function () {
        assert.ok(containers.includes(name), `the ${platform} container was not started`);
        const r = await docker(
          [
            "exec",
            name,
            "node",
            "-p",
            "JSON.stringify({ arch: process.arch, machine: require('os').machine(), node: process.version })",
          ],
          {
            what: `node in ${name}`,
          },
        );
        const seen = JSON.parse(r.stdout) as { arch: string; machine: string; node: string };
        const node = `v${baseNodeVersion(platform)}`;
        assert.deepStrictEqual(seen, { ...NODE_ARCH[platform], node });
        const app = apps.get(name);
        assert.ok(app, `the ${platform} container did not answer /health`);
        const version = await httpGet(`http://127.0.0.1:${app.port}/version`);
        assert.strictEqual(version.status, 200, version.body);
        const body = JSON.parse(version.body) as { revision?: string; node?: string };
        assert.strictEqual(body.revision, shared.sha, "/version names the commit the stack built");
        assert.strictEqual(body.node, node);
      });

      it("stops on SIGTERM cleanly within 10 s with exit code 0", async function () {
        assert.ok(containers.includes(name), `the ${platform} container was not started`);
        // A long grace period: a SIGKILL after it would show as exit 137 and > 10 s.
        const stopped = await stopContainer(name, 60);
        assert.ok(
          stopped.durationMs < 10_000,
          `docker stop took ${Math.round(stopped.durationMs)} ms`,
        );
        assert.strictEqual(stopped.exitCode, 0, "exit code after SIGTERM");
        assert.strictEqual(stopped.oomKilled, false);
      });

      it("holds only production dependencies and the built output, within the size gate", async function () {
        const ref = await pulledRef(platform);
        const files = await imageFileList(ref, platform);
        const appFiles = files.filter((f) => f === "app" || f.startsWith("app/"));
        assert.ok(appFiles.includes("app/dist/server.js"), "app/dist/server.js missing");
        assert.ok(appFiles.includes("app/dist/healthcheck.js"), "app/dist/healthcheck.js missing");
        const own = appFiles.filter((f) => !f.startsWith("app/node_modules/"));
        const sources = own.filter(
          (f) =>
            /\.(ts|tsx|map)$/.test(f) ||
            /^app\/(src|test|coverage)(\/|$)/.test(f) ||
            /tsconfig.*\.json$/.test(f),
        );
        assert.deepStrictEqual(sources, [], "sources, tests or source maps in the image");
        const dev = appDevDependencies().filter((d) => files.includes(`app/node_modules/${d}`));
        assert.deepStrictEqual(dev, [], "devDependencies in the image");
        const npmCache = files.filter((f) => /(^|\/)\.npm\/_cacache(\/|$)/.test(f));
        assert.deepStrictEqual(npmCache, [], "npm cache in the image");
        const image = await inspectImage(ref);
        assert.strictEqual(
          platformOf({ os: image.Os, architecture: image.Architecture, variant: image.Variant }),
          platform,
          "the engine pulled this platform",
        );
        const sizeMb = image.Size / 1e6;
        assert.ok(
          sizeMb <= MAX_IMAGE_SIZE_MB,
          `${platform} image is ${sizeMb.toFixed(1)} MB > ${MAX_IMAGE_SIZE_MB} MB`,
        );
      });
    });
  }

  describe("manifest list", function () {
    it("the stack's index digest lists exactly the three platform images, each entry carrying its platform", async function () {
      const list = await registry.manifestList(shared.repository, outputs.digest);
      assert.strictEqual(list.digest, outputs.digest);
      assert.strictEqual(
        list.body.manifests.length,
        PLATFORMS.length,
        JSON.stringify(list.body.manifests),
      );
      for (const p of PLATFORMS) {
        const entry = list.body.manifests.find((m) => m.digest === digestOf(p));
        assert.ok(entry, `no entry for ${p}`);
        assert.strictEqual(platformOf(entry.platform), p);
        const config = await registry.blobJson<ImageConfig>(
          shared.repository,
          (await registry.imageManifest(shared.repository, entry.digest)).body.config.digest,
        );
        assert.strictEqual(platformOf(config), p);
      }
      // Another client resolves each platform from the index as a pull would. (Docker 20.10's
      // `manifest inspect` does not read OCI indexes, which buildx writes; crane does.)
      for (const p of PLATFORMS) {
        const r = await runOk(
          toolPath("crane"),
          [
            "digest",
            "--insecure",
            "--platform",
            p,
            `${LOCAL_REGISTRY}/${shared.repository}@${outputs.digest}`,
          ],
          {
            what: `crane digest --platform ${p}`,
          },
        );
        assert.strictEqual(r.stdout.trim(), digestOf(p), `crane resolves ${p} from the index`);
      }
    });
  });

  describe("a source-only change through the factory", function () {
    let touched: FactoryOutputs;
    let touchedRepository: string;

    before(async function () {
      this.timeout(60 * 60_000);
      // A stack of its own (another repository, so the shared stack's tags never move), with
      // the shared stack's registry cache: what CI sees when the next commit only edits code.
      touchedRepository = `${shared.repository}-touched`;
      const s = newStack("touched", {});
      const appDir = copyApp(path.join(s.dir, "app"));
      touchAppSource(appDir, runId);
      s.setConfig(
        factoryStackConfig({
          repository: touchedRepository,
          appDir,
          sha: shared.sha,
          cacheRepository: shared.cacheRepository,
        }),
      );
      await s.up();
      touched = await s.outputs<FactoryOutputs>();
    });

    for (const platform of PLATFORMS) {
      it(`reuses the base and dependency layers for ${platform}: only the dist/ layer changes`, async function () {
        const before = (
          await registry.imageManifest(shared.repository, digestOf(platform))
        ).body.layers.map((l) => l.digest);
        const digest = touched.platformDigests[platform];
        assert.ok(digest, `the touched stack exports no digest for ${platform}`);
        assert.notStrictEqual(
          digest,
          digestOf(platform),
          "a source change must produce a new image",
        );
        const after = (await registry.imageManifest(touchedRepository, digest)).body.layers.map(
          (l) => l.digest,
        );
        assert.strictEqual(
          after.length,
          before.length,
          `layers before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`,
        );
        const baseList = await registry.manifestList(BASE_REPOSITORY, "22");
        const baseEntry = baseList.body.manifests.find((m) => platformOf(m.platform) === platform);
        assert.ok(baseEntry, `the base list has no ${platform} entry`);
        const base = (
          await registry.imageManifest(BASE_REPOSITORY, baseEntry.digest)
        ).body.layers.map((l) => l.digest);
        assert.deepStrictEqual(after.slice(0, base.length), base, "the base layers");
        assert.ok(
          before.length >= base.length + 2,
          `no dependency layer between the base and dist/: ${JSON.stringify(before)}`,
        );
        // The runtime stage's last layer is the built dist/; base, node_modules and
        // package.json below it are the very same blobs.
        assert.deepStrictEqual(
          after.slice(0, -1),
          before.slice(0, -1),
          "a layer below dist/ changed",
        );
        assert.notStrictEqual(
          after[after.length - 1],
          before[before.length - 1],
          "the dist/ layer did not change",
        );
      });
    }
  });

  describe("bad input through the factory", function () {
    /** `pulumi up` of a one-platform stack on a copy of app/ that `edit` may change; must fail,
     *  leaving in the repository no tag but the `quarantine` ones (images pushed by digest for the
     *  evidence, never a tag a user pulls). */
    const failingUp = async (
      label: string,
      edit: (appDir: string) => void,
      over: Record<string, unknown> = {},
      quarantine: string[] = [],
    ) => {
      const repository = `${shared.repository}-${label}`;
      const s = newStack(label, {});
      const appDir = copyApp(path.join(s.dir, "app"));
      edit(appDir);
      s.setConfig({
        ...factoryStackConfig({ repository, appDir, sha: shared.sha, platforms: ["linux/amd64"] }),
        ...over,
      });
      const r = await s.local(["up"]);
      const output = `${r.stdout}\n${r.stderr}`;
      assert.notStrictEqual(r.code, 0, `pulumi up must fail:\n${tail(output, 30)}`);
      assert.deepStrictEqual(
        await registry.tags(repository),
        quarantine,
        `nothing may be published to ${repository}`,
      );
      return output;
    };

    it("a Dockerfile that fails to build fails `pulumi up`, naming the image, the failing step and its exit code", async function () {
      const output = await failingUp("broken", (appDir) => {
        const file = path.join(appDir, "Dockerfile");
        const text = fs.readFileSync(file, "utf8");
        // The one compile the image and the tests share: neither builds, nothing is pushed.
        const step = "FROM toolchain AS compile\nCOPY src ./src\nRUN npm run build\n";
        assert.ok(
          text.includes(step),
          `app/Dockerfile no longer has the step "${step}" this test breaks`,
        );
        fs.writeFileSync(
          file,
          text.replace(step, step.replace("npm run build", "npm run build-e2e-missing-script")),
        );
      });
      assert.match(output, /docker-build:index:Image \(image-linux-amd64\)/, tail(output, 30));
      assert.match(output, /npm run build-e2e-missing-script/, tail(output, 30));
      assert.match(output, /exit code: 1|did not complete successfully/, tail(output, 30));
    });

    it("a missing base image fails `pulumi up`, naming the image reference", async function () {
      const missing = `${STACK_REGISTRY}/image-factory/does-not-exist-${runId}:22`;
      const output = await failingUp("nobase", () => undefined, {
        "image-factory:baseImage": missing,
      });
      assert.ok(output.includes(`image-factory/does-not-exist-${runId}:22`), tail(output, 30));
      assert.match(output, /not found/, tail(output, 30));
    });

    it("a wrong registry token fails `pulumi up` before any build, naming the registry, the user and the next step; tags unchanged; never printed", async function () {
      const wrongToken = `wrong-${runId}-token`;
      // On the shared repository, from a changed source on another branch: a push that got
      // through would move the sha- tags and add a branch tag. The base image lives on the
      // same registry, so the token is refused first when BuildKit resolves FROM (HEAD 401),
      // before any layer or tag could be pushed.
      const s = newStack("wrongtoken", {});
      const appDir = copyApp(path.join(s.dir, "app"));
      touchAppSource(appDir, `wrong-token-${runId}`);
      s.setConfig(
        factoryStackConfig({
          repository: shared.repository,
          appDir,
          sha: shared.sha,
          cacheRepository: shared.cacheRepository,
          gitRef: "refs/heads/e2e/wrong-token",
        }),
      );
      const before = await registry.tagDigests(shared.repository);
      assert.ok(
        Object.keys(before).length > 0,
        "the shared stack published no tag to compare against",
      );
      const r = await s.upWithSecret("image-factory:registryToken", wrongToken);
      const output = `${r.stdout}\n${r.stderr}`;
      assert.notStrictEqual(
        r.code,
        0,
        `pulumi up with a wrong token must fail:\n${tail(output, 30)}`,
      );
      assert.match(
        output,
        new RegExp(
          `registryCredentials: registry ${STACK_REGISTRY.replace(/\./g, "\\.")} refused user factory's credentials \\(HTTP 401\\)\\. Nothing was built or pushed\\. Next: set a valid token with \`pulumi config set --secret image-factory:registryToken\``,
        ),
        tail(output, 30),
      );
      assert.deepStrictEqual(
        await registry.tagDigests(shared.repository),
        before,
        "the registry's tags changed",
      );
      const texts = [
        ...s.logs.map((text, i) => ({ name: `log ${i}`, text })),
        ...s.stateFiles().map((f) => ({ name: f.file, text: f.text })),
      ];
      assert.deepStrictEqual(
        findSecret(wrongToken, LOCAL_REGISTRY_USER, texts),
        [],
        "the token appears in the logs or the state",
      );
    });
  });
});
