// Dive: layer efficiency and wasted bytes of one platform image, plus its uncompressed size. Dive
// reads a docker-archive written from the evidence's layer cache (layers.ts: no Docker engine, each
// layer fetched and uncompressed once per machine); pullAndSave (docker pull + save) remains for an
// image whose layers cannot be cached (a compression Node cannot read).
import * as fs from "node:fs";
import * as path from "node:path";
import { execTool, lastLines, requireTool } from "../exec";
import { type RegistryAuth, withDockerConfig } from "../oci";
import { type LocalImage, writeDockerArchive } from "./layers";

export interface PulledImage {
  archivePath: string;
  sizeBytes: number;
  seconds: number;
  /** The engine's image ID. */
  imageId: string;
  /** Whether this pull put the reference into the engine (it was not there before): only then
   *  is it this run's to remove. */
  added: boolean;
}

/** Pulls one platform image by digest into the local engine and saves it as a docker-archive for
 *  Dive. Returns the engine's (uncompressed) image size. An image this call added is removed again
 *  when a later step fails; on success the caller removes it (removePulledImage) once done. */
export async function pullAndSave(opts: {
  imageRef: string;
  archivePath: string;
  auth?: RegistryAuth;
  timeoutMs?: number;
}): Promise<PulledImage> {
  const docker = requireTool("docker");
  const started = Date.now();
  return withDockerConfig(opts.auth, async (env) => {
    const redact = [opts.auth?.password ?? ""];
    const present =
      (await execTool(docker, ["image", "inspect", "--format", "{{.Id}}", opts.imageRef], { env }))
        .code === 0;
    const pull = await execTool(docker, ["pull", "-q", opts.imageRef], {
      env,
      timeoutMs: opts.timeoutMs ?? 600_000,
      redact,
    });
    if (pull.code !== 0)
      throw new Error(
        `docker pull ${opts.imageRef} failed, exit ${pull.code}: ${lastLines(pull.stderr || pull.stdout)}`,
      );
    try {
      const inspect = await execTool(
        docker,
        ["image", "inspect", "--format", "{{.Id}} {{.Size}}", opts.imageRef],
        { env },
      );
      if (inspect.code !== 0)
        throw new Error(
          `docker image inspect ${opts.imageRef} failed: ${lastLines(inspect.stderr)}`,
        );
      const [imageId, size] = inspect.stdout.trim().split(" ");
      fs.mkdirSync(path.dirname(opts.archivePath), { recursive: true });
      const save = await execTool(docker, ["save", "-o", opts.archivePath, opts.imageRef], {
        env,
        timeoutMs: opts.timeoutMs ?? 600_000,
      });
      if (save.code !== 0)
        throw new Error(`docker save ${opts.imageRef} failed: ${lastLines(save.stderr)}`);
      return {
        archivePath: opts.archivePath,
        sizeBytes: Number(size),
        seconds: (Date.now() - started) / 1000,
        imageId,
        added: !present,
      };
    } catch (e) {
      if (!present)
        await removePulledImage({ imageRef: opts.imageRef, added: true }).catch(() => undefined);
      throw e;
    }
  });
}

/** Removes what pullAndSave added to the engine: the pulled reference only, never by ID and never
 *  forced, so an image another reference or a container still uses stays (the engine then just
 *  drops this reference). A reference that was already there before the pull is left alone.
 *  Without this every evidence run leaves each platform image behind (hundreds of MB a run). */
export async function removePulledImage(pulled: {
  imageRef: string;
  added: boolean;
}): Promise<{ removed: boolean; error?: string }> {
  if (!pulled.added) return { removed: false };
  const r = await execTool(requireTool("docker"), ["image", "rm", pulled.imageRef], {
    timeoutMs: 120_000,
  });
  if (r.code === 0 || /No such image/i.test(r.stderr)) return { removed: r.code === 0 };
  return {
    removed: false,
    error: `docker image rm ${pulled.imageRef} failed, exit ${r.code}: ${lastLines(r.stderr || r.stdout, 3)}`,
  };
}

export interface DiveResult {
  efficiency: number;
  wastedBytes: number;
  userWastedPercent: number;
  /** Dive's own CI verdict with the thresholds passed to it. */
  pass: boolean;
  output: string;
  seconds: number;
}

/** Parses `dive --ci` output (efficiency, wastedBytes, userWastedPercent, Result). */
export function parseDiveCi(rawOutput: string): Omit<DiveResult, "seconds" | "output"> {
  // Dive colours its CI report even without a terminal.
  const output = rawOutput.replace(/\x1b\[[0-9;]*m/g, "");
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(output);
    if (!m) throw new Error(`dive output has no ${what}: ${lastLines(output, 12)}`);
    return Number(m[1]);
  };
  return {
    efficiency: num(/efficiency:\s*([0-9.]+)\s*%/, "efficiency") / 100,
    wastedBytes: num(/wastedBytes:\s*([0-9]+)\s*bytes/, "wastedBytes"),
    userWastedPercent: num(/userWastedPercent:\s*([0-9.]+)\s*%/, "userWastedPercent") / 100,
    pass: /Result:\s*PASS/.test(output),
  };
}

/** Dive in CI mode on a saved image with the gates' thresholds. */
export async function runDive(opts: {
  archivePath: string;
  minEfficiency: number;
  maxWastedMb: number;
  timeoutMs?: number;
}): Promise<DiveResult> {
  const dive = requireTool("dive");
  const r = await execTool(
    dive,
    [
      "--ci",
      "--source",
      "docker-archive",
      `--lowestEfficiency=${opts.minEfficiency}`,
      `--highestWastedBytes=${Math.floor(opts.maxWastedMb * 1024 * 1024)}`,
      // The factory has no gate on the user-wasted share; Dive's default (10 %) would add one.
      "--highestUserWastedPercent=disabled",
      opts.archivePath,
    ],
    { env: { CI: "true" }, timeoutMs: opts.timeoutMs ?? 600_000 },
  );
  const output = r.stdout + r.stderr;
  if (!/Result:\s*(PASS|FAIL)/.test(output)) {
    throw new Error(`dive failed on ${opts.archivePath}, exit ${r.code}: ${lastLines(output)}`);
  }
  return { ...parseDiveCi(output), output, seconds: r.seconds };
}

/** Dive's own JSON export (`--json`): the image's size, efficiency and wasted bytes. */
export interface DiveJson {
  sizeBytes: number;
  inefficientBytes: number;
  efficiencyScore: number;
}

export function parseDiveJson(text: string): DiveJson {
  const image = (JSON.parse(text) as { image?: Partial<DiveJson> }).image;
  const num = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new Error(`dive --json has no image.${what}`);
    return v;
  };
  return {
    sizeBytes: num(image?.sizeBytes, "sizeBytes"),
    inefficientBytes: num(image?.inefficientBytes, "inefficientBytes"),
    efficiencyScore: num(image?.efficiencyScore, "efficiencyScore"),
  };
}

/** Dive on an image from the layer cache: the CI verdict with the gates' thresholds (runDive) and,
 *  from Dive's JSON export of the same archive, the uncompressed size (the sum of the layers' file
 *  sizes: what Docker's image Size reports). */
export async function runDiveOnLocal(opts: {
  local: LocalImage;
  archivePath: string;
  minEfficiency: number;
  maxWastedMb: number;
  timeoutMs?: number;
}): Promise<DiveResult & { sizeBytes: number; archiveSeconds: number }> {
  const started = Date.now();
  fs.mkdirSync(path.dirname(opts.archivePath), { recursive: true });
  const jsonPath = `${opts.archivePath}.dive.json`;
  try {
    await writeDockerArchive(opts.local, opts.archivePath);
    const archiveSeconds = (Date.now() - started) / 1000;
    const ci = await runDive({
      archivePath: opts.archivePath,
      minEfficiency: opts.minEfficiency,
      maxWastedMb: opts.maxWastedMb,
      timeoutMs: opts.timeoutMs,
    });
    const r = await execTool(
      requireTool("dive"),
      ["--source", "docker-archive", "--json", jsonPath, opts.archivePath],
      { env: { CI: "true" }, timeoutMs: opts.timeoutMs ?? 600_000 },
    );
    if (r.code !== 0 || !fs.existsSync(jsonPath))
      throw new Error(
        `dive --json failed on ${opts.archivePath}, exit ${r.code}: ${lastLines(r.stdout + r.stderr)}`,
      );
    const json = parseDiveJson(fs.readFileSync(jsonPath, "utf8"));
    return { ...ci, sizeBytes: json.sizeBytes, archiveSeconds, seconds: ci.seconds + r.seconds };
  } finally {
    fs.rmSync(opts.archivePath, { force: true });
    fs.rmSync(jsonPath, { force: true });
  }
}
