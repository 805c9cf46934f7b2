// Brings up the local engine stack with the project's own idempotent scripts, so an end-to-end
// test works from a fresh machine and costs about a second on a ready one.
import { runScript } from "./exec";
import { LOCAL_REGISTRY, localRegistryAuth, RegistryAuth, RegistryClient } from "./registry";

export const BASE_REPOSITORY = "image-factory/node-base";
/** The offline multi-arch Node base (scripts/base-images.sh); arm/v7 carries Node 20. */
export const BASE_IMAGE = `${LOCAL_REGISTRY}/${BASE_REPOSITORY}:22`;
/** The machine's CA bundle; npm inside builds reaches the registry through a TLS proxy it trusts. */
export const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

export interface LocalStack {
  registry: string;
  auth: RegistryAuth;
  client: RegistryClient;
  baseImage: string;
}

/** Idempotent: apt packages, dockerd + binfmt, the registry, the multi-arch base image. */
export async function bringUpLocalStack(opts: { withBase?: boolean } = {}): Promise<LocalStack> {
  await runScript("install-apt.sh");
  await runScript("engine.sh");
  await runScript("registry.sh");
  if (opts.withBase ?? true) await runScript("base-images.sh");
  const auth = localRegistryAuth();
  const client = new RegistryClient(LOCAL_REGISTRY, auth);
  await client.ping();
  return { registry: LOCAL_REGISTRY, auth, client, baseImage: BASE_IMAGE };
}
