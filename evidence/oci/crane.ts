// Reads, tags and pushes through crane (go-containerregistry): no hand-written registry client.
import { execTool, lastLines, requireTool } from "../exec";
import { type RegistryAuth, insecureOf, withDockerConfig } from "./auth";

/** Runs crane with this registry's credentials in a private Docker config. */
export async function crane(
  auth: RegistryAuth,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<string> {
  const bin = requireTool("crane");
  return withDockerConfig(auth, async (env) => {
    const full = insecureOf(auth) ? [...args, "--insecure"] : args;
    const r = await execTool(bin, full, {
      env,
      timeoutMs: opts.timeoutMs ?? 300_000,
      redact: [auth.password ?? ""],
    });
    if (r.code !== 0)
      throw new Error(
        `crane ${args[0]} failed against ${auth.registry}, exit ${r.code}: ${lastLines(r.stderr || r.stdout, 4)}`,
      );
    return r.stdout;
  });
}

export interface ManifestDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

/** The platform manifests a manifest list (index) holds, keyed `os/arch[/variant]`; attestation
 *  manifests (platform unknown/unknown) are left out. */
export async function indexPlatforms(
  auth: RegistryAuth,
  ref: string,
): Promise<Record<string, string>> {
  const manifest = JSON.parse(await crane(auth, ["manifest", ref])) as {
    manifests?: ManifestDescriptor[];
  };
  if (manifest.manifests === undefined)
    throw new Error(`${ref} is not a manifest list (no manifests[])`);
  const out: Record<string, string> = {};
  for (const m of manifest.manifests) {
    if (m.platform === undefined || m.platform.os === "unknown") continue;
    out[[m.platform.os, m.platform.architecture, m.platform.variant].filter((x) => x).join("/")] =
      m.digest;
  }
  return out;
}

/** The digest a tag points at now, or undefined when the tag does not exist. */
export async function digestOfTag(auth: RegistryAuth, ref: string): Promise<string | undefined> {
  try {
    return (await crane(auth, ["digest", ref])).trim();
  } catch (e) {
    if (
      /MANIFEST_UNKNOWN|NAME_UNKNOWN|not found|404/i.test(
        e instanceof Error ? e.message : String(e),
      )
    )
      return undefined;
    throw e;
  }
}
