// How cosign runs here: which binary, which environment, a per-run 0700 directory (keys, registry
// credentials, the no-transparency-log configs), and the flags each key mode needs.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type ExecResult, execTool, lastLines } from "../exec";
import type { CosignOptions, Signer, Trust } from "./types";

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

/** cosign through the engine's one process runner, with the environment built above (not the
 *  allow-list of other tools: cosign's own, see cosignEnv). */
export function run(
  file: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
  timeoutMs: number,
  redact: string[],
): Promise<ExecResult> {
  return execTool(file, args, { fullEnv: env, cwd, timeoutMs, redact });
}

/** The last lines that say something: cosign's warnings and deprecation notices left out. */
export function cosignTail(s: string, n = 6): string {
  return lastLines(
    s
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => !l.startsWith("WARNING") && !/deprecated/i.test(l))
      .join("\n"),
    n,
  );
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
export interface Session {
  dir: RunDir;
  cosign: string;
  env: Record<string, string>;
  timeoutMs: number;
  redact: string[];
}

export function openSession(
  opts: CosignOptions,
  purpose: { kms?: boolean; keyless?: boolean },
): Session {
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

export async function cosignRun(
  s: Session,
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<ExecResult> {
  return run(s.cosign, args, { ...s.env, ...extraEnv }, s.dir.dir, s.timeoutMs, s.redact);
}

/** Flags for the signing side: where the key is, and whether a transparency log is used. */
export async function signerFlags(
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
        `cosign import-key-pair refused the private key: ${cosignTail(imported.stderr)}`,
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
export function trustFlags(s: Session, trust: Trust, tlog: boolean): string[] {
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
