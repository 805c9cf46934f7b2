// What a verifier needs to read signatures on a registry: cosign options, the trust (key or keyless
// identity), registry credentials, and the referrers an image carries. Shared by verify and publish.
import { execTool, lastLines, requireTool } from "./exec";
import {
  type RegistryAuth,
  isLoopbackRegistry,
  probeInsecure,
  registryOf,
  withDockerConfig,
} from "./oci";
import { type CosignOptions, type Trust } from "./signing/cosign";
import { COSIGN_SIGN_PREDICATE_TYPE } from "./signing/predicates";
import { parseTreeOutput } from "./signing/statements";
import type { VerifyTrust } from "./verify";

/** cosign's options for this registry and trust. The CA bundle comes from SSL_CERT_FILE. */
export function cosignOptions(auth: RegistryAuth, tlog: boolean): CosignOptions {
  return {
    registry:
      auth.username !== undefined && auth.password !== undefined
        ? { address: auth.registry, username: auth.username, password: auth.password }
        : undefined,
    tlog,
  };
}

export function trustOf(t: VerifyTrust): Trust {
  return "identity" in t
    ? { identity: t.identity, issuer: t.issuer }
    : { publicKeyPem: t.publicKeyPem };
}

export interface Referrer {
  predicateType: string;
  /** The bundle's manifest, `<repo>@sha256:…`. */
  ref: string;
}

/** The Sigstore bundles `cosign tree` lists for an image (OCI referrers, or the fallback tag on a
 *  registry without the referrers API). Nothing is verified here: this is what exists. */
export async function listReferrers(imageRef: string, auth: RegistryAuth): Promise<Referrer[]> {
  const bin = requireTool("cosign");
  return withDockerConfig(auth, async (env) => {
    const r = await execTool(bin, ["tree", imageRef], {
      env,
      timeoutMs: 120_000,
      redact: [auth.password ?? ""],
    });
    if (r.code !== 0)
      throw new Error(`cosign tree ${imageRef} failed (exit ${r.code}): ${lastLines(r.stderr, 4)}`);
    return parseTreeOutput(r.stdout);
  });
}

/** The last plain signature (`https://sigstore.dev/cosign/sign/v1`) bundle listed on an image. */
export function signatureRefOf(referrers: Referrer[]): string | undefined {
  return referrers.filter((r) => r.predicateType === COSIGN_SIGN_PREDICATE_TYPE).pop()?.ref;
}

/** Registry access for the image's registry; plain HTTP only for a loopback registry that says so. */
export async function registryAuth(
  imageName: string,
  username?: string,
  password?: string,
): Promise<RegistryAuth> {
  const registry = registryOf(imageName);
  return {
    registry,
    username,
    password,
    insecure: isLoopbackRegistry(registry) ? await probeInsecure(registry) : false,
  };
}
