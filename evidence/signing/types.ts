// What signs, what a signature must verify against, and what the operations return.
import type { AttestationType } from "./predicates";

/** What signs. `keyRef` in kms mode is cosign's KMS URI, `awskms:///arn:aws:kms:…`. */
export type Signer =
  { mode: "key"; privateKeyPem: string } | { mode: "kms"; keyRef: string } | { mode: "keyless" };

/** What a signature must verify against: a public key (key and kms modes), a KMS key cosign asks
 *  for its public key, or a keyless identity (the signing workflow and its OIDC issuer). */
export type Trust =
  { publicKeyPem: string } | { keyRef: string } | { identity: string; issuer: string };

export interface RegistryAuth {
  /** Registry host as it appears in image references, e.g. `127.0.0.1:5443`, `ghcr.io`. */
  address: string;
  username: string;
  password: string;
}

export interface CosignOptions {
  /** Credentials for the image's registry, written to a temporary DOCKER_CONFIG. @default the
   *  caller's DOCKER_CONFIG (or ~/.docker) */
  registry?: RegistryAuth;
  /** Use the public Sigstore transparency log (Rekor): upload when signing, require an inclusion
   *  proof when verifying. Off by default: the log is public and these images may be private.
   *  Keyless signing needs it. @default false */
  tlog?: boolean;
  /** CA bundle cosign trusts (must include a local registry's CA). @default $SSL_CERT_FILE */
  caBundle?: string;
  /** cosign binary. @default $IMAGE_FACTORY_CACHE/bin/cosign, then PATH */
  cosign?: string;
  /** Per cosign invocation. @default 300000 */
  timeoutMs?: number;
  /** Where the per-run 0700 directory is made. @default os.tmpdir() */
  tempRoot?: string;
  /** The environment the allow-listed variables are read from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

export interface SignOptions extends CosignOptions {
  signer: Signer;
}

export interface SignResult {
  /** `<repo>@sha256:…` that was signed. */
  imageRef: string;
  digest: string;
  /** The signature's own manifest (an OCI referrer of the image): `<repo>@sha256:…`. Look it up with
   *  `cosign tree <imageRef>` or `crane manifest <signatureRef>`. */
  signatureRef: string;
  /** The OCI 1.1 referrers fallback tag that lists it on registries without the referrers API. */
  referrersTag: string;
  predicateType: string;
  seconds: number;
}

export type AttestResult = SignResult;

export interface AttestInput {
  /** File holding the predicate JSON (an SPDX document, a SLSA v1 provenance, a gates predicate). */
  predicatePath: string;
  type: AttestationType;
}

/** A decoded in-toto statement (what an attestation or a v3 signature bundle carries). */
export interface InTotoStatement {
  _type: string;
  predicateType: string;
  subject: Array<{ name?: string; digest: Record<string, string> }>;
  predicate: unknown;
}

export interface VerifyResult {
  imageRef: string;
  digest: string;
  /** One per verified signature or attestation. */
  statements: InTotoStatement[];
  seconds: number;
}
