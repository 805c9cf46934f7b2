// The app image proven on a real engine: built from app/Dockerfile for linux/amd64, linux/arm64 and
// linux/arm/v7 (arm under QEMU) against the offline base, pushed with credentials to the local
// registry, merged into one manifest list, run, health-checked, stopped, inspected and rebuilt.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import {
    APP_SECRETS,
    appBuildArgs,
    appDevDependencies,
    BASE_REPOSITORY,
    BuildResult,
    buildImage,
    bringUpLocalStack,
    containerProcessIds,
    copyAppContext,
    docker,
    ImageConfig,
    imageFileList,
    inspectImage,
    LocalStack,
    parsePlatform,
    platformSlug,
    PLATFORMS,
    pushImage,
    removeContainer,
    removeImage,
    runAppContainer,
    stopContainer,
    tempDockerConfig,
    TempDockerConfig,
    touchAppSource,
} from "./lib";

/** The factory's default size gate (gates.maxImageSizeMb). */
const MAX_IMAGE_SIZE_MB = 500;
const REPOSITORY = "image-factory/app-e2e";

describe("app image on a real engine: amd64, arm64 and arm/v7 (emulated)", function () {
    // Cold builds under QEMU and a first bring-up of the engine and base take minutes.
    this.timeout(30 * 60_000);

    const runId = `e2e-${Date.now().toString(36)}-${process.pid}`;
    let stack: LocalStack;
    let imageName: string;
    let context: string;
    let creds: TempDockerConfig;
    const tempDirs: string[] = [];
    const containers: string[] = [];
    const localTags: string[] = [];
    const builds = new Map<string, BuildResult>();
    const pushed = new Map<string, string>();
    const pushedDigests: string[] = [];

    const tagOf = (platform: string) => `${imageName}:${runId}-${platformSlug(platform)}`;
    const requireBuild = (platform: string): BuildResult => {
        const b = builds.get(platform);
        if (b === undefined) throw new Error(`the ${platform} image was not built (see the build test's failure)`);
        return b;
    };

    before(async function () {
        this.timeout(45 * 60_000);
        stack = await bringUpLocalStack();
        imageName = `${stack.registry}/${REPOSITORY}`;
        context = copyAppContext();
        tempDirs.push(context);
        creds = tempDockerConfig(stack.registry, stack.auth);
    });

    after(async function () {
        this.timeout(5 * 60_000);
        for (const c of containers) await removeContainer(c);
        for (const t of localTags) await removeImage(t);
        for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
        creds?.cleanup();
        for (const digest of pushedDigests) await stack?.client.deleteManifest(REPOSITORY, digest).catch(() => undefined);
    });

    for (const platform of PLATFORMS) {
        describe(platform, function () {
            const slug = platformSlug(platform);

            it("builds from app/Dockerfile on top of the offline base for this platform", async function () {
                const tag = tagOf(platform);
                localTags.push(tag);
                const build = await buildImage({
                    context,
                    tag,
                    platform,
                    buildArgs: appBuildArgs(stack.baseImage),
                    secrets: APP_SECRETS,
                });
                builds.set(platform, build);
                const image = await inspectImage(tag);
                const want = parsePlatform(platform);
                assert.strictEqual(`${image.Os}/${image.Architecture}`, `${want.os}/${want.architecture}`);
                // The base layers are exactly the ones the base's manifest list has for this platform.
                const baseList = await stack.client.manifestList(BASE_REPOSITORY, "22");
                const entry = baseList.body.manifests.find(
                    (m) => m.platform?.architecture === want.architecture && (m.platform.variant ?? "") === (want.variant ?? ""),
                );
                assert.ok(entry, `the base list has no ${platform} entry`);
                const baseConfig = await stack.client.imageConfig(BASE_REPOSITORY, entry.digest);
                assert.deepStrictEqual(image.RootFS.Layers.slice(0, baseConfig.rootfs.diff_ids.length), baseConfig.rootfs.diff_ids);
                assert.match(image.Config.User ?? "", /^10001(:10001)?$/);
                assert.deepStrictEqual(image.Config.Healthcheck?.Test?.slice(0, 1), ["CMD"], "HEALTHCHECK must be exec form");
            });

            it("pushes to the registry with credentials", async function () {
                requireBuild(platform);
                const digest = await pushImage(tagOf(platform), creds.env);
                pushed.set(platform, digest);
                pushedDigests.push(digest);
                assert.strictEqual(await stack.client.head(REPOSITORY, `${runId}-${slug}`), digest);
                const config = await stack.client.imageConfig(REPOSITORY, digest);
                const want = parsePlatform(platform);
                assert.strictEqual(config.architecture, want.architecture);
                if (want.variant !== undefined) assert.strictEqual(config.variant, want.variant);
            });

            it("runs: /health answers 200, the HEALTHCHECK turns healthy, the process is uid 10001", async function () {
                requireBuild(platform);
                const name = `if-${runId}-${slug}`;
                containers.push(name);
                const app = await runAppContainer({ image: tagOf(platform), name, platform });
                assert.strictEqual(app.health.status, 200);
                assert.strictEqual(app.state.Health?.Status, "healthy");
                const ids = await containerProcessIds(name);
                assert.deepStrictEqual(ids, { uid: 10001, gid: 10001 }, "the service must not run as root");
            });

            it("stops on SIGTERM cleanly within 10 s with exit code 0", async function () {
                const name = `if-${runId}-${slug}`;
                assert.ok(containers.includes(name), `the ${platform} container was not started`);
                // A long grace period: a SIGKILL after it would show as exit 137 and > 10 s.
                const stopped = await stopContainer(name, 60);
                assert.ok(stopped.durationMs < 10_000, `docker stop took ${Math.round(stopped.durationMs)} ms`);
                assert.strictEqual(stopped.exitCode, 0, "exit code after SIGTERM");
                assert.strictEqual(stopped.oomKilled, false);
            });

            it("holds only production dependencies and the built output, within the size gate", async function () {
                const build = requireBuild(platform);
                const files = await imageFileList(build.tag, platform);
                const appFiles = files.filter((f) => f === "app" || f.startsWith("app/"));
                assert.ok(appFiles.includes("app/dist/server.js"), "app/dist/server.js missing");
                assert.ok(appFiles.includes("app/dist/healthcheck.js"), "app/dist/healthcheck.js missing");
                const own = appFiles.filter((f) => !f.startsWith("app/node_modules/"));
                const sources = own.filter((f) => /\.(ts|tsx|map)$/.test(f) || /^app\/(src|test|coverage)(\/|$)/.test(f) || /tsconfig.*\.json$/.test(f));
                assert.deepStrictEqual(sources, [], "sources, tests or source maps in the image");
                const dev = appDevDependencies().filter((d) => files.includes(`app/node_modules/${d}`));
                assert.deepStrictEqual(dev, [], "devDependencies in the image");
                const npmCache = files.filter((f) => /(^|\/)\.npm\/_cacache(\/|$)/.test(f));
                assert.deepStrictEqual(npmCache, [], "npm cache in the image");
                const image = await inspectImage(build.tag);
                const sizeMb = image.Size / 1e6;
                assert.ok(sizeMb <= MAX_IMAGE_SIZE_MB, `${platform} image is ${sizeMb.toFixed(1)} MB > ${MAX_IMAGE_SIZE_MB} MB`);
            });

            it("rebuilds after a source-only change reusing the dependency layers", async function () {
                const first = requireBuild(platform);
                const changed = copyAppContext();
                tempDirs.push(changed);
                touchAppSource(changed, `${runId}-${slug}`);
                const tag = `${tagOf(platform)}-touched`;
                localTags.push(tag);
                const rebuilt = await buildImage({ context: changed, tag, platform, buildArgs: appBuildArgs(stack.baseImage), secrets: APP_SECRETS });
                const npmSteps = rebuilt.steps.filter((s) => /npm ci/.test(s.name));
                assert.ok(npmSteps.length > 0, `no npm ci step in the build log:\n${rebuilt.log.slice(-2000)}`);
                for (const s of npmSteps) assert.ok(s.cached, `step not reused: ${s.name}`);
                const before = (await inspectImage(first.tag)).RootFS.Layers;
                const after = (await inspectImage(tag)).RootFS.Layers;
                assert.strictEqual(after.length, before.length);
                // Only the last layer (the built dist/) may change; base and dependency layers stay.
                assert.deepStrictEqual(after.slice(0, -1), before.slice(0, -1), "a layer below dist/ changed");
                assert.notStrictEqual(after[after.length - 1], before[before.length - 1], "the dist/ layer did not change");
            });
        });
    }

    describe("manifest list", function () {
        it("merges the three platform images into one list whose entries carry their platform", async function () {
            for (const p of PLATFORMS) assert.ok(pushed.has(p), `the ${p} image was not pushed`);
            const created = await stack.client.createManifestList(
                REPOSITORY,
                runId,
                PLATFORMS.map((p) => ({ reference: pushed.get(p) ?? "", platform: p })),
            );
            pushedDigests.unshift(created.digest);
            const list = await stack.client.manifestList(REPOSITORY, runId);
            assert.strictEqual(list.digest, created.digest);
            assert.strictEqual(list.body.manifests.length, PLATFORMS.length);
            for (const p of PLATFORMS) {
                const entry = list.body.manifests.find((m) => m.digest === pushed.get(p));
                assert.ok(entry, `no entry for ${p}`);
                assert.deepStrictEqual(entry.platform, parsePlatform(p));
                const config = await stack.client.blobJson<ImageConfig>(
                    REPOSITORY,
                    (await stack.client.imageManifest(REPOSITORY, entry.digest)).body.config.digest,
                );
                assert.strictEqual(`${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ""}`, p);
            }
            // The Docker client reads the same list back.
            const inspected = await docker(["manifest", "inspect", "--insecure", `${imageName}:${runId}`], {
                env: { ...creds.env, DOCKER_CLI_EXPERIMENTAL: "enabled" },
                what: "docker manifest inspect",
            });
            for (const p of PLATFORMS) {
                assert.ok(inspected.stdout.includes(pushed.get(p) ?? "?"), `docker manifest inspect does not list ${p}`);
            }
        });
    });

    describe("bad input", function () {
        it("a Dockerfile that fails to build gives a clear error naming the failing step", async function () {
            const broken = copyAppContext();
            tempDirs.push(broken);
            fs.writeFileSync(path.join(broken, "Dockerfile.broken"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo building && exit 3\n");
            const tag = `${imageName}:${runId}-broken`;
            await assert.rejects(
                buildImage({ context: broken, dockerfile: path.join(broken, "Dockerfile.broken"), tag, platform: "linux/amd64", buildArgs: { BASE_IMAGE: stack.baseImage } }),
                (e: Error) => {
                    assert.match(e.message, /docker build of .*-broken for linux\/amd64 failed/);
                    assert.match(e.message, /exit 3/);
                    assert.match(e.message, /exit code: 3|did not complete successfully/);
                    return true;
                },
            );
        });

        it("a wrong registry password fails the push clearly and leaves the registry's tags unchanged", async function () {
            const amd64 = requireBuild("linux/amd64");
            const before = await stack.client.tagDigests(REPOSITORY);
            assert.ok(Object.keys(before).length > 0, "nothing pushed before the bad push");
            // Try to overwrite an existing tag (the manifest list's) and to create a new one.
            const targets = [`${imageName}:${runId}`, `${imageName}:${runId}-wrong-password`];
            const wrong = tempDockerConfig(stack.registry, { username: stack.auth.username, password: `${stack.auth.password}-wrong` });
            try {
                for (const target of targets) {
                    await docker(["tag", amd64.tag, target], { what: "docker tag" });
                    localTags.push(target);
                    await assert.rejects(pushImage(target, wrong.env), (e: Error) => {
                        assert.ok(e.message.startsWith(`docker push ${target} failed`), e.message);
                        assert.match(e.message, /unauthorized|authentication required/i);
                        return true;
                    });
                }
            } finally {
                wrong.cleanup();
            }
            assert.deepStrictEqual(await stack.client.tagDigests(REPOSITORY), before);
        });

        it("a missing base image gives a clear error naming it", async function () {
            const missing = `${stack.registry}/image-factory/does-not-exist:22`;
            await assert.rejects(
                buildImage({ context, tag: `${imageName}:${runId}-nobase`, platform: "linux/amd64", buildArgs: appBuildArgs(missing), secrets: APP_SECRETS }),
                (e: Error) => {
                    assert.match(e.message, /docker build of .* failed/);
                    assert.ok(e.message.includes("image-factory/does-not-exist:22"), e.message);
                    assert.match(e.message, /not found/);
                    return true;
                },
            );
        });
    });
});
