// Emulated vs native on the bench's buildkitd: what QEMU costs the one stage that runs the target
// platform's code (the deps stage's npm ci), against amd64 natively.
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
import type { EmulationResult } from "./tables";

/** The runtime target with the deps stage (npm ci on the TARGET platform) never taken from cache:
 *  under QEMU for arm, natively for amd64; every other stage cached by a first, untimed build. */
export async function emulation(
  daemon: BenchDaemon,
  dockerConfig: string,
  appDir: string,
  repeat: number,
  logDir: string,
): Promise<EmulationResult[]> {
  const platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"];
  const build = async (platform: string, noCacheDeps: boolean): Promise<RunResult> => {
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
      "runtime",
      "--secret",
      `id=npm_ca,src=${CA_BUNDLE}`,
      "--build-arg",
      `BASE_IMAGE=${STACK_REGISTRY}/image-factory/node-base:22`,
    ];
    if (noCacheDeps) args.push("--no-cache-filter", "deps");
    args.push(appDir);
    const r = await runOk("docker", args, {
      what: `docker buildx build ${platform} (emulation bench)`,
      env: { DOCKER_CONFIG: dockerConfig },
      timeoutMs: 60 * 60_000,
    });
    const slug = platform.replace(/\//g, "-");
    fs.writeFileSync(
      path.join(logDir, `emulation-${slug}-${noCacheDeps ? "timed" : "prime"}-${Date.now()}.log`),
      `${r.stdout}\n${r.stderr}`,
    );
    return r;
  };
  const rows = new Map(
    platforms.map((p) => [p, { platform: p, walls: [] as number[], npmCi: [] as number[] }]),
  );
  for (const p of platforms) await build(p, false);
  for (let i = 0; i < repeat; i++) {
    for (const p of i % 2 === 0 ? platforms : [...platforms].reverse()) {
      say(`emulation: ${p} (${i + 1}/${repeat}), deps stage not cached`);
      const r = await build(p, true);
      const row = rows.get(p);
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
