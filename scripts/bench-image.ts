// Benchmark of the app image on the real local engine (npm run bench:image). Per platform:
//   cold build (--no-cache) seconds, warm rebuild after a source-only change, their ratio;
//   total image size, base size, the app's own layers (uncompressed and as pushed, compressed);
//   emulated/native cold build-time ratio (the arm targets' runtime stage is the target's, so
//   a step there would run under QEMU; the dependencies install on amd64 for every target).
// Goals (issue 3): warm <= 10 % of cold; app layers <= 10 MB over the base.
// Usage: npm run bench:image [-- --platforms linux/amd64,linux/arm64] [--repeat 3]
// Build times are the median of --repeat rounds (default 3): the machine is shared and noisy.
// "Cold" is a builder with nothing cached: --no-cache for every layer, and BuildKit's cache mounts
// (npm's download cache) pruned first; the base image itself comes from the local registry.
import {
  APP_SECRETS,
  appBuildArgs,
  BASE_REPOSITORY,
  buildImage,
  BuildResult,
  BuildStep,
  bringUpLocalStack,
  copyAppContext,
  docker,
  inspectImage,
  parsePlatform,
  platformSlug,
  PLATFORMS,
  pullImage,
  pushImage,
  removeImage,
  tempDockerConfig,
  touchAppSource,
} from "../test/e2e/lib";
import * as fs from "fs";
import { stats } from "./bench/model";

const REPOSITORY = "image-factory/app-bench";
const GOAL_WARM_RATIO = 0.1;
const GOAL_APP_MB = 10;

interface Row {
  platform: string;
  coldS: number;
  warmS: number;
  totalMb: number;
  baseMb: number;
  appMb: number;
  appCompressedMb: number;
  warmSlowest: string;
}

interface Args {
  platforms: string[];
  repeat: number;
}

function parseArgs(argv: string[]): Args {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i < 0 ? undefined : (argv[i + 1] ?? "");
  };
  const platformsArg = value("--platforms");
  const platforms =
    platformsArg === undefined ? [...PLATFORMS] : platformsArg.split(",").filter((p) => p !== "");
  for (const p of platforms) {
    if (!(PLATFORMS as readonly string[]).includes(p)) {
      throw new Error(`--platforms: '${p}' is not one of ${PLATFORMS.join(", ")}`);
    }
  }
  if (platforms.length === 0) throw new Error(`--platforms: '${platformsArg}' names no platform`);
  const repeatArg = value("--repeat") ?? "3";
  const repeat = Number(repeatArg);
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) {
    throw new Error(`--repeat: '${repeatArg}' is not a whole number from 1 to 20`);
  }
  return { platforms, repeat };
}

function slowestStep(steps: BuildStep[]): string {
  const ran = steps
    .filter((s) => !s.cached && s.seconds !== undefined)
    .sort((a, b) => (b.seconds ?? 0) - (a.seconds ?? 0));
  const top = ran[0];
  return top === undefined
    ? "none"
    : `${fmt(top.seconds ?? 0)} s ${top.name.replace(/\s+/g, " ").slice(0, 70)}`;
}

const mb = (bytes: number) => bytes / 1e6;
const fmt = (n: number, d = 1) => n.toFixed(d);

async function main(): Promise<void> {
  const { platforms, repeat } = parseArgs(process.argv.slice(2));
  const stack = await bringUpLocalStack();
  const creds = tempDockerConfig(stack.registry, stack.auth);
  const imageName = `${stack.registry}/${REPOSITORY}`;
  const runId = `bench-${Date.now().toString(36)}`;
  const baseList = await stack.client.manifestList(BASE_REPOSITORY, "22");
  const rows: Row[] = [];
  const cleanup: string[] = [];
  const dirs: string[] = [];
  try {
    for (const platform of platforms) {
      const slug = platformSlug(platform);
      const want = parsePlatform(platform);
      const context = copyAppContext();
      dirs.push(context);
      const tag = `${imageName}:${runId}-${slug}`;
      cleanup.push(tag);
      const colds: number[] = [];
      const warms: number[] = [];
      let warm: BuildResult | undefined;
      for (let r = 1; r <= repeat; r++) {
        // A fresh builder has no npm download cache either: drop BuildKit's cache mounts (only
        // unused ones are removed; they are a cache, so other builds just refill them).
        await docker(["builder", "prune", "--force", "--filter", "type=exec.cachemount"], {
          what: "docker builder prune",
        });
        process.stderr.write(
          `bench: ${platform} (${r}/${repeat}): cold build (--no-cache, empty npm cache)\n`,
        );
        const cold = await buildImage({
          context,
          tag,
          platform,
          buildArgs: appBuildArgs(stack.baseImage),
          secrets: APP_SECRETS,
          noCache: true,
        });
        colds.push(cold.durationMs / 1000);

        const changed = copyAppContext();
        dirs.push(changed);
        // A new marker per platform and round: the build stage runs on the builder's own
        // platform, so an identical change would let a later build reuse an earlier compile.
        touchAppSource(changed, `${runId}-${slug}-${r}`);
        const warmTag = `${tag}-warm`;
        if (!cleanup.includes(warmTag)) cleanup.push(warmTag);
        process.stderr.write(
          `bench: ${platform} (${r}/${repeat}): warm rebuild after a source-only change\n`,
        );
        warm = await buildImage({
          context: changed,
          tag: warmTag,
          platform,
          buildArgs: appBuildArgs(stack.baseImage),
          secrets: APP_SECRETS,
        });
        warms.push(warm.durationMs / 1000);
      }

      // The base for this platform, by the digest its list entry names (never the list tag).
      const entry = baseList.body.manifests.find(
        (m) =>
          m.platform?.architecture === want.architecture &&
          (m.platform.variant ?? "") === (want.variant ?? ""),
      );
      if (entry === undefined) throw new Error(`the base list has no ${platform} entry`);
      const baseRef = `${stack.baseImage.replace(/:22$/, "")}@${entry.digest}`;
      await pullImage(baseRef, platform);
      const base = await inspectImage(baseRef);
      const image = await inspectImage(tag);

      // Compressed sizes as a registry stores them: the app's layers are those not in the base.
      const digest = await pushImage(tag, creds.env);
      const pushedManifest = await stack.client.imageManifest(REPOSITORY, digest);
      const baseManifest = await stack.client.imageManifest(BASE_REPOSITORY, entry.digest);
      const baseLayers = new Set(baseManifest.body.layers.map((l) => l.digest));
      const appCompressed = pushedManifest.body.layers
        .filter((l) => !baseLayers.has(l.digest))
        .reduce((s, l) => s + l.size, 0);
      await stack.client.deleteManifest(REPOSITORY, digest);

      rows.push({
        platform,
        coldS: stats(colds).median,
        warmS: stats(warms).median,
        totalMb: mb(image.Size),
        baseMb: mb(base.Size),
        appMb: mb(image.Size - base.Size),
        appCompressedMb: mb(appCompressed),
        warmSlowest: warm === undefined ? "none" : slowestStep(warm.steps),
      });
    }
  } finally {
    for (const t of cleanup) await removeImage(t);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    creds.cleanup();
  }

  const header = [
    "platform",
    "cold s",
    "warm s",
    "warm/cold",
    "total MB",
    "base MB",
    "app MB",
    "app MB (gz)",
    "emulated/native",
  ];
  const native = rows.find((r) => r.platform === "linux/amd64");
  const table = rows.map((r) => [
    r.platform,
    fmt(r.coldS),
    fmt(r.warmS),
    `${fmt((100 * r.warmS) / r.coldS, 0)} %`,
    fmt(r.totalMb),
    fmt(r.baseMb),
    fmt(r.appMb, 2),
    fmt(r.appCompressedMb, 2),
    r.platform === "linux/amd64"
      ? "1.00 (native)"
      : native
        ? fmt(r.coldS / native.coldS, 2)
        : "n/a",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of table) console.log(line(row));
  console.log("");
  for (const r of rows) {
    const warmOk = r.warmS / r.coldS <= GOAL_WARM_RATIO;
    const appOk = r.appMb <= GOAL_APP_MB;
    console.log(
      `${r.platform}: warm ≤ ${GOAL_WARM_RATIO * 100} % of cold: ${warmOk ? "met" : "NOT met"}; ` +
        `app layers ≤ ${GOAL_APP_MB} MB over the base: ${appOk ? "met" : "NOT met"}; warm's slowest step: ${r.warmSlowest}`,
    );
  }
  console.log(
    `times: median of ${repeat} round(s); cold = docker build --no-cache after pruning npm's cache mount; sizes uncompressed unless marked (gz)`,
  );
}

main().catch((e: unknown) => {
  console.error(`bench:image failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
