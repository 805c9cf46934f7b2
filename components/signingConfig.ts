// The `signing` config key, validated beside the SigningKey component it configures
// (components/signing.ts); components/config.ts only calls it.
import { SIGNING_MODES, type SigningMode, validateSigningKey } from "./signing";
import { NAMESPACE, type Shape, checkObject, show } from "./config";

/** `image-factory:signing`, validated, defaults applied. */
export interface SigningConfig {
  /** `key` on local/e2e/test stacks and with buildHosts.localBuilder, else `kms`. */
  mode: SigningMode;
  /** Public transparency log (Rekor). Keyless needs it. @default false */
  tlog: boolean;
  /** keyless: the workflow's certificate identity and its OIDC issuer. */
  identity?: string;
  issuer?: string;
  /** Promoting stacks: the PEM public key signatures must verify with (pinned here instead of read
   *  from the source stack's `signing` export). */
  publicKey?: string;
  /** kms: roles that may sign. Unset = the role `pulumi up` runs as. */
  signerRoleArns?: string[];
  /** kms: roles that may read the public key and verify through KMS. */
  readerRoleArns?: string[];
}

const SIGNING_SHAPE: Shape = {
  mode: "string",
  tlog: "boolean",
  identity: "string",
  issuer: "string",
  publicKey: "string",
  signerRoleArns: "string[]",
  readerRoleArns: "string[]",
};

/** Stands in for "the role `pulumi up` runs as" while the rest of a kms signer is checked. */
const CALLER_ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/caller";

/** Checks `image-factory:signing` (through validateSigningKey from components/signing.ts) and applies
 *  the default mode: `key` where the factory runs on this machine (stacks `local`, `e2e*`, `test*`,
 *  or any stack with buildHosts.localBuilder), `kms` elsewhere (dev, prod). Problems name the key
 *  and the value. */
export function validateSigningConfig(
  value: unknown,
  stack: string,
  localBuilder: string | undefined,
  promoting: boolean,
  problems: string[],
): SigningConfig {
  const key = `${NAMESPACE}:signing`;
  const before = problems.length;
  const obj = checkObject("signing", value, SIGNING_SHAPE, problems);
  const local =
    stack === "local" || /^(e2e|test)([-_.]|$)/.test(stack) || localBuilder !== undefined;
  const mode = (obj.mode ?? (local ? "key" : "kms")) as SigningMode;
  if (!SIGNING_MODES.includes(mode)) {
    problems.push(`${key}.mode must be one of ${SIGNING_MODES.join(", ")}, got ${show(obj.mode)}`);
  }
  const cfg: SigningConfig = {
    mode,
    tlog: typeof obj.tlog === "boolean" ? obj.tlog : false,
    identity: typeof obj.identity === "string" && obj.identity !== "" ? obj.identity : undefined,
    issuer: typeof obj.issuer === "string" && obj.issuer !== "" ? obj.issuer : undefined,
    publicKey:
      typeof obj.publicKey === "string" && obj.publicKey !== "" ? obj.publicKey : undefined,
    signerRoleArns: Array.isArray(obj.signerRoleArns)
      ? (obj.signerRoleArns as string[])
      : undefined,
    readerRoleArns: Array.isArray(obj.readerRoleArns)
      ? (obj.readerRoleArns as string[])
      : undefined,
  };
  if (problems.length > before) return cfg;
  if (mode === "keyless" && !cfg.tlog) {
    problems.push(
      `${key}.tlog must be true in keyless mode (a Fulcio certificate is only provable through the log), got ${show(obj.tlog ?? false)}`,
    );
  }
  if (cfg.publicKey !== undefined) {
    const pem =
      /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/.test(
        cfg.publicKey.trim() + "\n",
      );
    if (!pem)
      problems.push(
        `${key}.publicKey must be a PEM public key (-----BEGIN PUBLIC KEY-----), got ${show(cfg.publicKey.slice(0, 40))}`,
      );
    if (!promoting) {
      problems.push(
        `${key}.publicKey pins the key a promoting stack (promoteFrom) verifies with; this stack signs with its own ${mode} key, got ${show(cfg.publicKey.slice(0, 40))}`,
      );
    }
    if (mode === "keyless")
      problems.push(
        `${key}.publicKey is for key and kms modes; keyless pins identity and issuer, got ${show(cfg.publicKey.slice(0, 40))}`,
      );
  }
  if (mode !== "keyless" && (cfg.identity !== undefined || cfg.issuer !== undefined)) {
    problems.push(
      `${key}.identity and signing.issuer are for keyless mode, got mode ${show(mode)} with identity ${show(cfg.identity)}`,
    );
  }
  // What SigningKey will be given (a promoting stack creates none: only keyless identities matter).
  if (!promoting || mode === "keyless") {
    try {
      validateSigningKey({
        mode,
        signerRoleArns:
          mode === "kms" ? (cfg.signerRoleArns ?? [CALLER_ROLE_PLACEHOLDER]) : undefined,
        readerRoleArns: cfg.readerRoleArns,
        identity:
          mode === "keyless"
            ? { workflowRef: cfg.identity as string, issuer: cfg.issuer as string }
            : undefined,
      });
    } catch (e) {
      problems.push(`${NAMESPACE}:${(e as Error).message}`);
    }
  }
  return cfg;
}
