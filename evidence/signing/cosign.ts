// Signs, attests and verifies pushed images with the real Sigstore cosign (v3, pinned in
// scripts/versions.env). Plain functions: no Pulumi, nothing from components/.
//
// Secrets never reach a command line or the caller's environment:
// - cosign runs with an allow-listed environment built here (PATH, HOME, SSL_CERT_FILE,
//   DOCKER_CONFIG, COSIGN_PASSWORD; AWS_* only in kms mode; ACTIONS_ID_TOKEN_* only for keyless),
//   so a CI job's Pulumi/GitHub tokens are not handed to it;
// - key mode: the unencrypted PEM (what a Pulumi-made key is) goes to a 0600 file in a fresh 0700
//   directory, is converted by `cosign import-key-pair` into cosign's encrypted format under a
//   random per-run COSIGN_PASSWORD, and the directory is removed in `finally`;
// - registry credentials go to a 0600 config.json in the same directory (DOCKER_CONFIG).
//
// Storage (cosign v3 defaults, checked against distribution v3.1): signatures and attestations are
// Sigstore bundles pushed as OCI 1.1 referrer manifests (artifactType
// application/vnd.dev.sigstore.bundle.v0.3+json, subject = the image). A registry without the
// referrers API gets the OCI fallback tag `<repo>:sha256-<hex>` (an index listing them); no legacy
// `.sig`/`.att` tags are written.
import * as fs from "node:fs";
import * as path from "node:path";
import {
  type AttestationType,
  COSIGN_SIGN_PREDICATE_TYPE,
  PREDICATE_TYPES,
  cosignType,
} from "./predicates";

import { parseTreeOutput, parseVerifyOutput, subjectMatches } from "./statements";
import {
  type Session,
  cosignRun,
  cosignTail,
  openSession,
  parseDigestRef,
  referrersTagOf,
  signerFlags,
  trustFlags,
} from "./session";
import type {
  AttestInput,
  AttestResult,
  InTotoStatement,
  CosignOptions,
  SignOptions,
  SignResult,
  Trust,
  VerifyResult,
} from "./types";

export * from "./types";
export {
  NO_TLOG_SIGNING_CONFIG,
  EMPTY_TRUSTED_ROOT,
  cosignEnv,
  findCosign,
  parseDigestRef,
  referrersTagOf,
} from "./session";

async function referrers(
  s: Session,
  ref: string,
  digest: string,
): Promise<Array<{ predicateType: string; ref: string }>> {
  const r = await cosignRun(s, ["tree", ref]);
  if (r.code !== 0) throw explainFailure("tree", ref, digest, r.stderr, "signature");
  return parseTreeOutput(r.stdout);
}

/** Turns cosign's failure output into a message that names what is missing or wrong. The patterns
 *  are cosign v3.1.3's messages (checked against it; the integration tests hold them). */
function explainFailure(
  op: string,
  ref: string,
  digest: string,
  stderr: string,
  what: "signature" | AttestationType,
): Error {
  const lower = stderr.toLowerCase();
  const thing = what === "signature" ? "signature" : `${what} attestation`;
  let why: string;
  if (/manifest_unknown|entity not found in registry|name_unknown/.test(lower)) {
    why = `image ${ref} not found in the registry`;
  } else if (/unauthorized|authentication required|denied/.test(lower)) {
    why = `the registry refused the credentials for ${ref} (set registry, or DOCKER_CONFIG)`;
  } else if (/x509|certificate signed by unknown authority|tls: failed to verify/.test(lower)) {
    why =
      "the registry's TLS certificate is not trusted: set caBundle (SSL_CERT_FILE) to a bundle that includes its CA";
  } else if (
    /accepted signatures do not match threshold|failed to verify signature|invalid signature/.test(
      lower,
    )
  ) {
    why = `${thing} on ${digest} does not verify with the given key`;
  } else if (
    /none of the expected identities matched|expected identity not found|certificate identity/.test(
      lower,
    )
  ) {
    why = `${thing} on ${digest} was not made by the expected identity`;
  } else if (/none of the attestations matched the predicate type/.test(lower)) {
    const found = /found: (.*)$/m.exec(stderr)?.[1] ?? "";
    why = `no ${thing} on ${digest}${found ? ` (found: ${found})` : ""}`;
  } else if (/no signatures found|no matching signatures|no matching attestations/.test(lower)) {
    why = `no ${thing} on ${digest}`;
  } else if (
    /private key|decrypt|password/.test(lower) &&
    op !== "verify" &&
    op !== "verify-attestation"
  ) {
    why = "cosign could not use the signing key";
  } else {
    why = `cosign ${op} failed`;
  }
  return new Error(`${why} (cosign ${op} ${ref}):\n${cosignTail(stderr)}`);
}

/** cosign reports "no signatures found" for a digest that does not exist at all; tell the two apart. */
async function notFoundOr(s: Session, ref: string, digest: string, err: Error): Promise<Error> {
  if (!err.message.startsWith("no ")) return err;
  try {
    await referrers(s, ref, digest);
    return err;
  } catch (e) {
    return /not found in the registry/.test((e as Error).message) ? (e as Error) : err;
  }
}

// ------------------------------------------------------------------------------------------------
// Operations
// ------------------------------------------------------------------------------------------------

/** What one `cosign sign` (no predicate) or `cosign attest` pushes. */
export type BundleRequest = { path: string; type: AttestationType } | undefined;

/** One image's pieces. `before`: the referrers the caller has just listed on it (`cosign tree`),
 *  which spares a second listing. */
export interface ImageBundles {
  imageRef: string;
  requests: BundleRequest[];
  before?: Array<{ ref: string }>;
}

/** Signs and attests one image; see `withSigningSession`. */
export async function signAndAttestImage(
  imageRef: string,
  requests: BundleRequest[],
  opts: SignOptions,
): Promise<SignResult[]> {
  return withSigningSession(opts, (sign) => sign({ imageRef, requests }));
}

/** Runs `fn` with a `sign` that signs and attests one image, all in one cosign session: one key
 *  import for every image (an import costs a cosign process, as much as a signature), made at the
 *  first image that needs a piece, so each image starts as soon as the caller hands it over. Per
 *  image: one `cosign tree` before (unless the caller listed it) and one after, however many
 *  pieces. Images may be signed concurrently; one image's pieces run one after another, never
 *  concurrently: on a registry without the referrers API (GHCR) they all update that image's
 *  fallback tag, which concurrent writers would race on. Results come in the order of `requests`;
 *  pieces of the same predicate type get the new referrers of that type in `cosign tree`'s order.
 *  The session's directory (key, password-protected key, registry credentials) is removed when
 *  `fn` settles. */
export async function withSigningSession<T>(
  opts: SignOptions,
  fn: (sign: (image: ImageBundles) => Promise<SignResult[]>) => Promise<T>,
): Promise<T> {
  const s = openSession(opts, {
    kms: opts.signer.mode === "kms",
    keyless: opts.signer.mode === "keyless",
  });
  const started = Date.now();
  let signer: ReturnType<typeof signerFlags> | undefined;
  const sign = async ({
    imageRef,
    requests,
    before: listed,
  }: ImageBundles): Promise<SignResult[]> => {
    const { repository, digest, ref } = parseDigestRef(imageRef);
    for (const p of requests) {
      if (p !== undefined && !(p.type in PREDICATE_TYPES))
        throw new Error(
          `attest: type must be one of ${Object.keys(PREDICATE_TYPES).join(", ")}, got "${p.type}"`,
        );
      if (p !== undefined && !fs.existsSync(p.path))
        throw new Error(`attest: predicate file ${p.path} does not exist`);
    }
    if (requests.length === 0) return [];
    const flags = await (signer ??= signerFlags(s, opts.signer, opts.tlog ?? false));
    const before = new Set((listed ?? (await referrers(s, ref, digest))).map((r) => r.ref));
    for (const p of requests) {
      const args =
        p === undefined
          ? ["sign", "--yes", ...flags.args, ref]
          : [
              "attest",
              "--yes",
              ...flags.args,
              "--type",
              cosignType(p.type),
              "--predicate",
              path.resolve(p.path),
              ref,
            ];
      const r = await cosignRun(s, args, flags.env);
      if (r.code !== 0)
        throw explainFailure(
          p === undefined ? "sign" : "attest",
          ref,
          digest,
          r.stderr,
          p === undefined ? "signature" : p.type,
        );
    }
    const added = (await referrers(s, ref, digest)).filter((x) => !before.has(x.ref));
    const seconds = (Date.now() - started) / 1000;
    return requests.map((p) => {
      const predicateType = p === undefined ? COSIGN_SIGN_PREDICATE_TYPE : PREDICATE_TYPES[p.type];
      const i = added.findIndex((x) => x.predicateType === predicateType);
      if (i < 0)
        throw new Error(
          `cosign ${p === undefined ? "sign" : "attest"} ${ref} succeeded but no new ${predicateType} referrer is listed for ${digest} (cosign tree ${ref})`,
        );
      const [mine] = added.splice(i, 1);
      return {
        imageRef: ref,
        digest,
        signatureRef: mine.ref,
        referrersTag: referrersTagOf(repository, digest),
        predicateType,
        seconds,
      };
    });
  };
  try {
    return await fn(sign);
  } finally {
    // A rejected import must not go unhandled when no image awaited it again.
    await signer?.catch(() => undefined);
    s.dir.close();
  }
}

/** Signs `<repo>@sha256:…` and pushes the signature bundle next to it. */
export async function sign(imageRef: string, opts: SignOptions): Promise<SignResult> {
  return (await signAndAttestImage(imageRef, [undefined], opts))[0];
}

/** Attests a predicate about `<repo>@sha256:…` (in-toto statement, subject = the digest). */
export async function attest(
  imageRef: string,
  input: AttestInput,
  opts: SignOptions,
): Promise<AttestResult> {
  return (
    await signAndAttestImage(imageRef, [{ path: input.predicatePath, type: input.type }], opts)
  )[0];
}

/** One `cosign verify` (a signature) or `verify-attestation` (a type) on a digest: the verified
 *  statements about that digest, handed to `pick`, which keeps the wanted ones or says what is
 *  missing. */
async function verifyDigest(
  imageRef: string,
  what: "signature" | AttestationType,
  trust: Trust,
  opts: CosignOptions,
  pick: (verified: InTotoStatement[], ref: string, digest: string) => InTotoStatement[],
): Promise<VerifyResult> {
  const { digest, ref } = parseDigestRef(imageRef);
  const op = what === "signature" ? "verify" : "verify-attestation";
  const s = openSession(opts, { kms: "keyRef" in trust });
  const started = Date.now();
  try {
    const flags = what === "signature" ? ["--output", "json"] : ["--type", cosignType(what)];
    const r = await cosignRun(s, [op, ...trustFlags(s, trust, opts.tlog ?? false), ...flags, ref]);
    if (r.code !== 0)
      throw await notFoundOr(s, ref, digest, explainFailure(op, ref, digest, r.stderr, what));
    const verified = parseVerifyOutput(r.stdout, ref).filter((st) => subjectMatches(st, digest));
    return {
      imageRef: ref,
      digest,
      statements: pick(verified, ref, digest),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    s.dir.close();
  }
}

/** Verifies the signatures on `<repo>@sha256:…`; resolves with the signed statements (each names
 *  the digest), rejects with a message naming what is missing or wrong. */
export async function verify(
  imageRef: string,
  trust: Trust,
  opts: CosignOptions = {},
): Promise<VerifyResult> {
  return verifyDigest(imageRef, "signature", trust, opts, (verified, ref, digest) => {
    // cosign v3 `verify` accepts any verified bundle on the image, attestations included: an image
    // that only carries an SBOM attestation "verifies". A signature is a cosign/sign/v1 statement.
    const statements = verified.filter((st) => st.predicateType === COSIGN_SIGN_PREDICATE_TYPE);
    if (statements.length === 0) {
      const others = [...new Set(verified.map((st) => st.predicateType))].join(", ");
      throw new Error(
        `no signature on ${digest}${others ? ` (only attestations: ${others})` : ""} (cosign verify ${ref})`,
      );
    }
    return statements;
  });
}

/** Verifies the `type` attestations on `<repo>@sha256:…` and returns their decoded statements. */
export async function verifyAttestation(
  imageRef: string,
  type: AttestationType,
  trust: Trust,
  opts: CosignOptions = {},
): Promise<VerifyResult> {
  if (!(type in PREDICATE_TYPES)) {
    throw new Error(
      `verifyAttestation: type must be one of ${Object.keys(PREDICATE_TYPES).join(", ")}, got "${type}"`,
    );
  }
  return verifyDigest(imageRef, type, trust, opts, (verified, ref, digest) => {
    const statements = verified.filter((st) => st.predicateType === PREDICATE_TYPES[type]);
    if (statements.length === 0)
      throw new Error(
        `no ${type} attestation on ${digest} (cosign verify-attestation ${ref} printed none for ${PREDICATE_TYPES[type]})`,
      );
    return statements;
  });
}
