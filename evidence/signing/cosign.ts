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
// Storage (cosign v3 defaults, checked against distribution 2.8): signatures and attestations are
// Sigstore bundles pushed as OCI 1.1 referrer manifests (artifactType
// application/vnd.dev.sigstore.bundle.v0.3+json, subject = the image). A registry without the
// referrers API gets the OCI fallback tag `<repo>:sha256-<hex>` (an index listing them); no legacy
// `.sig`/`.att` tags are written.
import * as childProcess from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  type AttestationType,
  COSIGN_SIGN_PREDICATE_TYPE,
  PREDICATE_TYPES,
  cosignType,
} from "./predicates";

// ------------------------------------------------------------------------------------------------
// Public types
// ------------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

const DIGEST_REF = /^(?<repo>[^@\s]+?)(?::[\w][\w.-]{0,127})?@(?<digest>sha256:[0-9a-f]{64})$/;

/** Splits `<repo>[:tag]@sha256:<hex>`; anything not pinned by digest is refused (a tag can be
 *  re-pointed after signing, which is exactly what a signature must not follow). */
export function parseDigestRef(imageRef: string): {
  repository: string;
  digest: string;
  ref: string;
} {
  const m = DIGEST_REF.exec(imageRef.trim());
  if (m?.groups === undefined) {
    throw new Error(
      `image reference must be pinned by digest (<repo>@sha256:<64 hex>), got "${imageRef}"`,
    );
  }
  const { repo, digest } = m.groups;
  return { repository: repo, digest, ref: `${repo}@${digest}` };
}

/** `<repo>:sha256-<hex>`: the OCI 1.1 referrers fallback tag (and cosign's tag prefix). */
export function referrersTagOf(repository: string, digest: string): string {
  return `${repository}:${digest.replace(":", "-")}`;
}

/** cosign from the project's tool cache ($IF_BIN), then PATH. */
export function findCosign(env: NodeJS.ProcessEnv = process.env): string {
  const cache = env.IMAGE_FACTORY_CACHE ?? path.join(os.homedir(), ".cache", "image-factory");
  const candidates = [
    path.join(cache, "bin", "cosign"),
    ...(env.PATH ?? "")
      .split(path.delimiter)
      .filter((d) => d !== "")
      .map((d) => path.join(d, "cosign")),
  ];
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {
      // next candidate
    }
  }
  throw new Error(
    `cosign not found in ${path.join(cache, "bin")} or on PATH; run scripts/install-go-tools.sh cosign`,
  );
}

/** The variables cosign may see. Everything else in the caller's environment is dropped. */
export function cosignEnv(
  purpose: { keyless?: boolean; kms?: boolean },
  from: NodeJS.ProcessEnv,
  extra: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "SSL_CERT_FILE", "DOCKER_CONFIG"]) {
    const v = from[k];
    if (v !== undefined) env[k] = v;
  }
  for (const [k, v] of Object.entries(from)) {
    if (v === undefined) continue;
    // AWS credentials only where cosign talks to KMS; the GitHub OIDC token request only where it
    // asks Fulcio for a keyless certificate.
    if (purpose.kms && k.startsWith("AWS_")) env[k] = v;
    if (purpose.keyless && k.startsWith("ACTIONS_ID_TOKEN_")) env[k] = v;
  }
  return { ...env, ...extra };
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(
  file: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  timeoutMs: number,
  redact: string[],
): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = childProcess.spawn(file, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cosign could not start (${file}): ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const scrub = (s: string): string =>
        redact.filter((r) => r !== "").reduce((acc, r) => acc.split(r).join("***"), s);
      resolve({
        code: code ?? 128,
        stdout: scrub(Buffer.concat(out).toString("utf8")),
        stderr:
          scrub(Buffer.concat(err).toString("utf8")) +
          (signal ? `\n(killed by ${signal} after ${timeoutMs} ms)` : ""),
        seconds: (Date.now() - started) / 1000,
      });
    });
  });
}

function lastLines(s: string, n = 6): string {
  return s
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("WARNING") && !/deprecated/i.test(l))
    .slice(-n)
    .join("\n");
}

/** No transparency log and no timestamp authority: what an offline (or private) signature uses
 *  instead of `--tlog-upload=false`, which cosign v3 deprecates. */
export const NO_TLOG_SIGNING_CONFIG = {
  mediaType: "application/vnd.dev.sigstore.signingconfig.v0.2+json",
  caUrls: [],
  oidcUrls: [],
  rekorTlogUrls: [],
  tsaUrls: [],
  rekorTlogConfig: { selector: "ANY" },
  tsaConfig: { selector: "ANY" },
};

/** A trusted root with no Sigstore services: key-based signatures need none, and handing cosign
 *  this file keeps it from fetching the public-good root over TUF (which offline only times out). */
export const EMPTY_TRUSTED_ROOT = {
  mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

/** A private 0700 directory for one operation; removed (with everything in it) by `close`. */
class RunDir {
  readonly dir: string;
  constructor(root: string) {
    this.dir = fs.mkdtempSync(path.join(root, "image-factory-cosign-"));
    fs.chmodSync(this.dir, 0o700);
  }
  /** Writes a file only the current user can read; refuses to overwrite. */
  write(name: string, content: string): string {
    const p = path.join(this.dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
    fs.writeFileSync(p, content, { mode: 0o600, flag: "wx" });
    return p;
  }
  close(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The environment, flags and files one cosign operation needs, in a RunDir. */
interface Session {
  dir: RunDir;
  cosign: string;
  env: Record<string, string>;
  timeoutMs: number;
  redact: string[];
}

function openSession(opts: CosignOptions, purpose: { kms?: boolean; keyless?: boolean }): Session {
  const from = opts.env ?? process.env;
  const cosign = opts.cosign ?? findCosign(from);
  const dir = new RunDir(opts.tempRoot ?? os.tmpdir());
  try {
    const extra: Record<string, string> = {};
    if (opts.caBundle !== undefined) extra.SSL_CERT_FILE = opts.caBundle;
    const redact: string[] = [];
    if (opts.registry !== undefined) {
      const { address, username, password } = opts.registry;
      const auth = Buffer.from(`${username}:${password}`).toString("base64");
      dir.write("docker/config.json", JSON.stringify({ auths: { [address]: { auth } } }));
      extra.DOCKER_CONFIG = path.join(dir.dir, "docker");
      redact.push(password, auth);
    }
    return {
      dir,
      cosign,
      env: cosignEnv(purpose, from, extra),
      timeoutMs: opts.timeoutMs ?? 300_000,
      redact,
    };
  } catch (e) {
    dir.close();
    throw e;
  }
}

async function cosignRun(
  s: Session,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<RunResult> {
  return run(s.cosign, args, { ...s.env, ...extraEnv }, s.dir.dir, s.timeoutMs, s.redact);
}

/** Flags for the signing side: where the key is, and whether a transparency log is used. */
async function signerFlags(
  s: Session,
  signer: Signer,
  tlog: boolean,
): Promise<{ args: string[]; env: Record<string, string> }> {
  const args: string[] = [];
  const env: Record<string, string> = {};
  if (signer.mode === "keyless") {
    // Keyless rests on Fulcio's short-lived certificate, which is only verifiable later through the
    // log's inclusion time: without the log it could not be verified once the certificate expired.
    if (!tlog)
      throw new Error(
        "keyless signing needs the transparency log (tlog: true): a Fulcio certificate expires within minutes and only the log's inclusion time proves the signature was made while it was valid",
      );
  } else if (signer.mode === "kms") {
    if (!/^awskms:\/\/[^/]*\/.+/.test(signer.keyRef)) {
      throw new Error(
        `kms signing needs an AWS KMS key URI (awskms:///arn:aws:kms:<region>:<account>:key/<id> or alias/…), got "${signer.keyRef}"`,
      );
    }
    args.push("--key", signer.keyRef);
  } else {
    if (!/-----BEGIN (EC |)PRIVATE KEY-----/.test(signer.privateKeyPem ?? "")) {
      throw new Error(
        "key signing needs privateKeyPem: an unencrypted PKCS#8 or SEC1 (EC) PEM private key",
      );
    }
    const password = crypto.randomBytes(32).toString("base64url");
    s.redact.push(password);
    const pem = s.dir.write("key/signing.pem", signer.privateKeyPem);
    const imported = await cosignRun(
      s,
      ["import-key-pair", "--key", pem, "--output-key-prefix", "key/cosign", "--yes"],
      { COSIGN_PASSWORD: password },
    );
    // The plain PEM is needed only for the import.
    fs.rmSync(pem, { force: true });
    if (imported.code !== 0) {
      throw new Error(
        `cosign import-key-pair refused the private key: ${lastLines(imported.stderr)}`,
      );
    }
    args.push("--key", path.join(s.dir.dir, "key", "cosign.key"));
    env.COSIGN_PASSWORD = password;
  }
  if (!tlog) {
    args.push(
      "--signing-config",
      s.dir.write("signing-config.json", JSON.stringify(NO_TLOG_SIGNING_CONFIG)),
    );
    args.push(
      "--trusted-root",
      s.dir.write("trusted-root.json", JSON.stringify(EMPTY_TRUSTED_ROOT)),
    );
  }
  return { args, env };
}

/** Flags for the verifying side. */
function trustFlags(s: Session, trust: Trust, tlog: boolean): string[] {
  const args: string[] = [];
  if ("identity" in trust) {
    if (!tlog)
      throw new Error(
        "keyless verification needs the transparency log (tlog: true): the certificate's validity is proven by the log's inclusion time",
      );
    args.push("--certificate-identity", trust.identity, "--certificate-oidc-issuer", trust.issuer);
  } else if ("keyRef" in trust) {
    args.push("--key", trust.keyRef);
  } else {
    if (!/-----BEGIN PUBLIC KEY-----/.test(trust.publicKeyPem ?? "")) {
      throw new Error(
        "verification needs publicKeyPem: a PEM public key (-----BEGIN PUBLIC KEY-----)",
      );
    }
    args.push("--key", s.dir.write("verify/key.pub", trust.publicKeyPem));
  }
  if (!tlog && !("identity" in trust)) {
    args.push(
      "--insecure-ignore-tlog",
      "--trusted-root",
      s.dir.write("verify/trusted-root.json", JSON.stringify(EMPTY_TRUSTED_ROOT)),
    );
  }
  return args;
}

/** The referrer manifests `cosign tree` lists for an image (v3 reads OCI referrers by default,
 *  through the fallback tag where the registry has no referrers API). */
async function referrers(
  s: Session,
  ref: string,
  digest: string,
): Promise<Array<{ predicateType: string; ref: string }>> {
  const r = await cosignRun(s, ["tree", ref]);
  if (r.code !== 0) throw explainFailure("tree", ref, digest, r.stderr, "signature");
  const out: Array<{ predicateType: string; ref: string }> = [];
  for (const line of r.stdout.split("\n")) {
    const m = /\s(\S+) artifacts via OCI referrer: (\S+@sha256:[0-9a-f]{64})/.exec(line);
    if (m) out.push({ predicateType: m[1], ref: m[2] });
  }
  return out;
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
  return new Error(`${why} (cosign ${op} ${ref}):\n${lastLines(stderr)}`);
}

function decodeStatement(json: string, source: string): InTotoStatement {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new Error(
      `cosign printed something that is not JSON for ${source}: ${(e as Error).message}`,
    );
  }
  const o = parsed as Record<string, unknown>;
  // verify-attestation prints DSSE envelopes ({payloadType, payload: base64 statement, signatures}).
  if (typeof o.payload === "string") {
    return decodeStatement(Buffer.from(o.payload, "base64").toString("utf8"), source);
  }
  if (typeof o.predicateType === "string") {
    return {
      _type: String(o._type ?? ""),
      predicateType: o.predicateType,
      subject: (o.subject as InTotoStatement["subject"]) ?? [],
      predicate: o.predicate ?? {},
    };
  }
  // cosign v3's `verify --output json` prints every verified bundle in this shape, with the bundle's
  // predicate type in critical.type (attestations included, see verify()).
  const critical = o.critical as
    | {
        image?: { "docker-manifest-digest"?: string };
        identity?: { "docker-reference"?: string };
        type?: string;
      }
    | undefined;
  const d = critical?.image?.["docker-manifest-digest"];
  if (typeof d === "string") {
    return {
      _type: "https://sigstore.dev/cosign/simplesigning/v1",
      predicateType:
        typeof critical?.type === "string" && critical.type.startsWith("https://")
          ? critical.type
          : COSIGN_SIGN_PREDICATE_TYPE,
      subject: [
        {
          name: critical?.identity?.["docker-reference"],
          digest: { [d.split(":")[0]]: d.split(":")[1] },
        },
      ],
      predicate: o.optional ?? {},
    };
  }
  throw new Error(
    `cosign printed JSON that is neither an in-toto statement nor a DSSE envelope for ${source}`,
  );
}

/** cosign prints one JSON document per line (verify-attestation) or a JSON array (verify). */
function parseVerifyOutput(stdout: string, source: string): InTotoStatement[] {
  const text = stdout.trim();
  if (text === "") return [];
  if (text.startsWith("[")) {
    return (JSON.parse(text) as unknown[]).map((x) => decodeStatement(JSON.stringify(x), source));
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("{"))
    .map((l) => decodeStatement(l, source));
}

function subjectMatches(st: InTotoStatement, digest: string): boolean {
  const [alg, hex] = digest.split(":");
  return st.subject.some((sub) => sub.digest?.[alg] === hex);
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

async function pushBundle(
  imageRef: string,
  opts: SignOptions,
  predicate: { path: string; type: AttestationType } | undefined,
): Promise<SignResult> {
  const { repository, digest, ref } = parseDigestRef(imageRef);
  const tlog = opts.tlog ?? false;
  const s = openSession(opts, {
    kms: opts.signer.mode === "kms",
    keyless: opts.signer.mode === "keyless",
  });
  const started = Date.now();
  try {
    const signer = await signerFlags(s, opts.signer, tlog);
    const before = new Set((await referrers(s, ref, digest)).map((r) => r.ref));
    const predicateType =
      predicate === undefined ? COSIGN_SIGN_PREDICATE_TYPE : PREDICATE_TYPES[predicate.type];
    const args =
      predicate === undefined
        ? ["sign", "--yes", ...signer.args, ref]
        : [
            "attest",
            "--yes",
            ...signer.args,
            "--type",
            cosignType(predicate.type),
            "--predicate",
            path.resolve(predicate.path),
            ref,
          ];
    if (predicate !== undefined && !fs.existsSync(predicate.path)) {
      throw new Error(`attest: predicate file ${predicate.path} does not exist`);
    }
    const r = await cosignRun(s, args, signer.env);
    const op = predicate === undefined ? "sign" : "attest";
    if (r.code !== 0)
      throw explainFailure(
        op,
        ref,
        digest,
        r.stderr,
        predicate === undefined ? "signature" : predicate.type,
      );
    const added = (await referrers(s, ref, digest)).filter(
      (x) => !before.has(x.ref) && x.predicateType === predicateType,
    );
    if (added.length === 0) {
      throw new Error(
        `cosign ${op} ${ref} succeeded but no new ${predicateType} referrer is listed for ${digest} (cosign tree ${ref})`,
      );
    }
    return {
      imageRef: ref,
      digest,
      signatureRef: added[added.length - 1].ref,
      referrersTag: referrersTagOf(repository, digest),
      predicateType,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    s.dir.close();
  }
}

/** Signs `<repo>@sha256:…` and pushes the signature bundle next to it. */
export async function sign(imageRef: string, opts: SignOptions): Promise<SignResult> {
  return pushBundle(imageRef, opts, undefined);
}

/** Attests a predicate about `<repo>@sha256:…` (in-toto statement, subject = the digest). */
export async function attest(
  imageRef: string,
  input: AttestInput,
  opts: SignOptions,
): Promise<AttestResult> {
  if (!(input.type in PREDICATE_TYPES)) {
    throw new Error(
      `attest: type must be one of ${Object.keys(PREDICATE_TYPES).join(", ")}, got "${input.type}"`,
    );
  }
  return pushBundle(imageRef, opts, { path: input.predicatePath, type: input.type });
}

/** Verifies the signatures on `<repo>@sha256:…`; resolves with the signed statements (each names
 *  the digest), rejects with a message naming what is missing or wrong. */
export async function verify(
  imageRef: string,
  trust: Trust,
  opts: CosignOptions = {},
): Promise<VerifyResult> {
  const { digest, ref } = parseDigestRef(imageRef);
  const s = openSession(opts, { kms: "keyRef" in trust });
  const started = Date.now();
  try {
    const r = await cosignRun(s, [
      "verify",
      ...trustFlags(s, trust, opts.tlog ?? false),
      "--output",
      "json",
      ref,
    ]);
    if (r.code !== 0)
      throw await notFoundOr(
        s,
        ref,
        digest,
        explainFailure("verify", ref, digest, r.stderr, "signature"),
      );
    // cosign v3 `verify` accepts any verified bundle on the image, attestations included: an image
    // that only carries an SBOM attestation "verifies". A signature is a cosign/sign/v1 statement.
    const verified = parseVerifyOutput(r.stdout, ref).filter((st) => subjectMatches(st, digest));
    const statements = verified.filter((st) => st.predicateType === COSIGN_SIGN_PREDICATE_TYPE);
    if (statements.length === 0) {
      const others = [...new Set(verified.map((st) => st.predicateType))].join(", ");
      throw new Error(
        `no signature on ${digest}${others ? ` (only attestations: ${others})` : ""} (cosign verify ${ref})`,
      );
    }
    return { imageRef: ref, digest, statements, seconds: (Date.now() - started) / 1000 };
  } finally {
    s.dir.close();
  }
}

/** Verifies the `type` attestations on `<repo>@sha256:…` and returns their decoded statements. */
export async function verifyAttestation(
  imageRef: string,
  type: AttestationType,
  trust: Trust,
  opts: CosignOptions = {},
): Promise<VerifyResult> {
  const { digest, ref } = parseDigestRef(imageRef);
  if (!(type in PREDICATE_TYPES)) {
    throw new Error(
      `verifyAttestation: type must be one of ${Object.keys(PREDICATE_TYPES).join(", ")}, got "${type}"`,
    );
  }
  const s = openSession(opts, { kms: "keyRef" in trust });
  const started = Date.now();
  try {
    const r = await cosignRun(s, [
      "verify-attestation",
      ...trustFlags(s, trust, opts.tlog ?? false),
      "--type",
      cosignType(type),
      ref,
    ]);
    if (r.code !== 0)
      throw await notFoundOr(
        s,
        ref,
        digest,
        explainFailure("verify-attestation", ref, digest, r.stderr, type),
      );
    const statements = parseVerifyOutput(r.stdout, ref).filter(
      (st) => st.predicateType === PREDICATE_TYPES[type] && subjectMatches(st, digest),
    );
    if (statements.length === 0)
      throw new Error(
        `no ${type} attestation on ${digest} (cosign verify-attestation ${ref} printed none for ${PREDICATE_TYPES[type]})`,
      );
    return { imageRef: ref, digest, statements, seconds: (Date.now() - started) / 1000 };
  } finally {
    s.dir.close();
  }
}
