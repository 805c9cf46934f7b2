// Emulated vs native on the bench's buildkitd: what QEMU costs a stage that runs the target
// platform's code, measured on the deps stage's npm ci. app/Dockerfile installs the dependencies on
// the build platform for the target (`cross`); the same Dockerfile with that stage moved onto the
// target platform (`target`: QEMU for arm, as it ran before) shows what the cross-install saves
// here, and what native Graviton hosts save a step that must run on the target.
import * as fs from "fs";
import * as path from "path";
import {
  CA_BUNDLE,
  STACK_REGISTRY,
  parseBuildSteps,
  runOk,
  type RunResult,
} from "../../test/e2e/lib";
import type { BenchDaemon } from "./daemon";
import { say } from "./log";
import type { DepsStageOn, EmulationResult } from "./tables";

const CROSS_DEPS = /^FROM --platform=\$BUILDPLATFORM \$\{BASE_IMAGE\} AS deps$/m;

/** app/Dockerfile with its deps stage on the target platform: the one FROM line changed. Throws
 *  when the Dockerfile no longer has that line exactly once (the measurement would be void). */
export function depsOnTarget(dockerfile: string): string {
  const found = dockerfile.match(new RegExp(CROSS_DEPS.source, "gm")) ?? [];
  if (found.length !== 1)
    throw new Error(
      `emulation bench: app/Dockerfile must have the line "FROM --platform=$BUILDPLATFORM \${BASE_IMAGE} AS deps" once, found it ${found.length} times`,
    );
  return dockerfile.replace(CROSS_DEPS, "FROM ${BASE_IMAGE} AS deps");
}

/** The deps stage alone (`--target deps`) never taken from cache, per platform and per place the
 *  stage runs, after a first, untimed build of each. Alone: on the build platform it starts from
 *  the same base vertex as the toolchain stage, so `--no-cache-filter deps` on a larger target
 *  would rerun the toolchain's npm ci beside it and time the two together. */
export async function emulation(
  daemon: BenchDaemon,
  dockerConfig: string,
  appDir: string,
  repeat: number,
  logDir: string,
): Promise<EmulationResult[]> {
  const platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
  const onTarget = path.join(appDir, "Dockerfile.deps-on-target");
  fs.writeFileSync(
    onTarget,
    depsOnTarget(fs.readFileSync(path.join(appDir, "Dockerfile"), "utf8")),
  );
  const build = async (
    platform: string,
    on: DepsStageOn,
    noCacheDeps: boolean,
  ): Promise<RunResult> => {
    const args = [
      "buildx",
      "build",
      "--builder",
      daemon.builder,
      "--progress",
      "plain",
      "--platform",
      platform,
      "--target",
      "deps",
      "--secret",
      `id=npm_ca,src=${CA_BUNDLE}`,
      "--build-arg",
      `BASE_IMAGE=${STACK_REGISTRY}/image-factory/node-base:22`,
    ];
    if (on === "target") args.push("-f", onTarget);
    if (noCacheDeps) args.push("--no-cache-filter", "deps");
    args.push(appDir);
    const r = await runOk("docker", args, {
      what: `docker buildx build ${platform}, deps on the ${on} (emulation bench)`,
      env: { DOCKER_CONFIG: dockerConfig },
      timeoutMs: 60 * 60_000,
    });
    const slug = platform.replace(/\//g, "-");
    fs.writeFileSync(
      path.join(
        logDir,
        `emulation-${slug}-${on}-${noCacheDeps ? "timed" : "prime"}-${Date.now()}.log`,
      ),
      `${r.stdout}\n${r.stderr}`,
    );
    return r;
  };
  const cases = platforms.flatMap((p) => (["cross", "target"] as const).map((on) => ({ p, on })));
  const key = (p: string, on: DepsStageOn): string => `${p} ${on}`;
  const rows = new Map(
    cases.map(({ p, on }) => [
      key(p, on),
      { platform: p, depsOn: on, walls: [] as number[], npmCi: [] as number[] },
    ]),
  );
  for (const { p, on } of cases) await build(p, on, false);
  for (let i = 0; i < repeat; i++) {
    for (const { p, on } of i % 2 === 0 ? cases : [...cases].reverse()) {
      const where = on === "cross" ? "installed on amd64 for it" : "on the target";
      say(`emulation: ${p}, deps ${where} (${i + 1}/${repeat}), deps stage not cached`);
      const r = await build(p, on, true);
      const row = rows.get(key(p, on));
      if (row === undefined) continue;
      row.walls.push(r.durationMs / 1000);
      const step = parseBuildSteps(`${r.stdout}\n${r.stderr}`).find(
        (s) => /\[deps .*npm ci/.test(s.name.replace(/\s+/g, " ")) && s.seconds !== undefined,
      );
      if (step?.seconds !== undefined) row.npmCi.push(step.seconds);
    }
  }
  return [...rows.values()];
}
