// What the SLSA provenance needs that the publish step measures itself: each platform's base image
// digest as the registry resolves it now, and the BuildKit version of each builder.
import * as fs from "node:fs";
import * as path from "node:path";
import { execTool, findTool, lastLines, toolBinDir } from "./exec";
import { type RegistryAuth, crane, registryOf } from "./oci";
import { registryAuth } from "./trust";

/** The BuildKit version a buildx builder reports (`docker buildx inspect <builder>`). */
export async function buildkitVersionOf(builder: string): Promise<string> {
  const own = path.join(toolBinDir(), "docker-buildx");
  const candidates = [
    own,
    ...(process.env.PATH ?? "")
      .split(path.delimiter)
      .filter((d) => d !== "")
      .map((d) => path.join(d, "docker-buildx")),
  ];
  const buildx = candidates.find((c) => fs.existsSync(c));
  const docker = findTool("docker");
  const [file, args] =
    buildx !== undefined
      ? [buildx, ["inspect", builder]]
      : docker !== undefined
        ? [docker, ["buildx", "inspect", builder]]
        : [undefined, []];
  if (file === undefined)
    throw new Error(
      `provenance: neither docker-buildx nor docker is installed, so builder ${builder} cannot be asked for its BuildKit version (scripts/install-go-tools.sh docker-buildx)`,
    );
  // The builders live in the user's buildx config ($HOME/.docker/buildx, or DOCKER_CONFIG/BUILDX_CONFIG).
  const env: Record<string, string> = {};
  for (const k of ["DOCKER_CONFIG", "BUILDX_CONFIG"])
    if (process.env[k] !== undefined) env[k] = process.env[k] as string;
  const r = await execTool(file, args, { env, timeoutMs: 60_000 });
  const v = /BuildKit version:\s*(\S+)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || v === undefined)
    throw new Error(
      `provenance: \`docker buildx inspect ${builder}\` gave no BuildKit version (exit ${r.code}): ${lastLines(r.stderr || r.stdout, 3)}`,
    );
  return v;
}

/** `repo[:tag][@sha256:…]` → the reference without its digest. */
export function withoutDigest(ref: string): string {
  return ref.replace(/@sha256:[0-9a-f]{64}$/, "");
}

/** The platform's manifest digest of the base image (`crane digest --platform`). */
export async function baseImageDigest(
  baseImage: string,
  platform: string,
  image: RegistryAuth,
): Promise<string> {
  const auth = registryOf(baseImage) === image.registry ? image : await registryAuth(baseImage);
  const d = (await crane(auth, ["digest", "--platform", platform, baseImage])).trim();
  if (!/^sha256:[0-9a-f]{64}$/.test(d))
    throw new Error(
      `provenance: crane digest --platform ${platform} ${baseImage} printed ${JSON.stringify(d)}`,
    );
  return d;
}

export interface ProvenanceContext {
  /** Platform → the base image's manifest digest for that platform. */
  bases: Record<string, string>;
  /** Builder → its BuildKit version. */
  versions: Record<string, string>;
  finishedOn: string;
}

/** Base digests and builder versions, asked concurrently (each is a registry or buildx round trip). */
export async function provenanceContext(
  baseImage: string,
  builders: Record<string, string>,
  platforms: string[],
  auth: RegistryAuth,
): Promise<ProvenanceContext> {
  const names = [...new Set(platforms.map((p) => builders[p] ?? "default"))];
  const [bases, versions] = await Promise.all([
    Promise.all(platforms.map((p) => baseImageDigest(baseImage, p, auth))),
    Promise.all(names.map((b) => buildkitVersionOf(b))),
  ]);
  return {
    bases: Object.fromEntries(platforms.map((p, i) => [p, bases[i]])),
    versions: Object.fromEntries(names.map((b, i) => [b, versions[i]])),
    // The index was pushed and judged; nothing of the build happens after this.
    finishedOn: new Date().toISOString(),
  };
}
