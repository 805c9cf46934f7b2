// The stack half of scripts/local.sh's prepare_stack, on the Pulumi Automation API (LocalWorkspace):
// creates the stack on the file backend (PULUMI_BACKEND_URL) with the passphrase secrets provider
// (PULUMI_CONFIG_PASSPHRASE_FILE) when the backend does not hold it yet, and writes the generated
// stack config <stacks-dir>/Pulumi.<stack>.yaml that every pulumi command of local.sh gets as
// --config-file: the stack's encryption salt, the committed settings of the base config file, and
// image-factory:registryToken as a secret.
//
// The workspace's workDir is <stacks-dir> itself, holding a copy of the project's Pulumi.yaml: the
// generated file IS the workspace's stack settings file, so `stack init` writes the new stack's salt
// straight into it, ws.stackSettings() reads it back and ws.saveStackSettings() writes the result.
// The committed Pulumi.<stack>.yaml files beside the project's Pulumi.yaml are never touched.
//
// The registry password is read from --password-file inside this process and encrypted here, with
// the stack's own passphrase crypter (PBKDF2-SHA256, 1,000,000 rounds, over the salt → AES-256-GCM,
// `v1:<nonce>:<ciphertext>`: pulumi/pkg/secrets/passphrase), after proving the derived key opens the
// check value the salt carries. It is never on a command line or in a child's environment: the
// Automation API's ws.setConfig(…, { secret: true }) would run `pulumi config set … -- <value>`,
// which puts the value on the pulumi child's command line (readable in /proc/<pid>/cmdline).
// An existing ciphertext that still opens to the current password is kept, so a warm run writes
// nothing (concurrent readers of the shared `local` stack never see a half-written file).
//
// Usage (scripts/local.sh, which exports the backend and passphrase variables):
//   node -r ts-node/register/transpile-only scripts/prepare-stack.ts --project-dir DIR --stack NAME \
//     --base-config FILE --stacks-dir DIR --password-file FILE
// Prints nothing on stdout (local.sh's `preview --json` output must stay pure JSON); logs go to stderr.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { isDeepStrictEqual } from "util";
import { parse } from "yaml";
import { LocalWorkspace, StackSettings } from "@pulumi/pulumi/automation";
import { parseFlags } from "../evidence/cliArgs";

export const TOKEN_KEY = "image-factory:registryToken";
const PBKDF2_ROUNDS = 1_000_000;

export class PrepareError extends Error {}

function log(message: string): void {
  process.stderr.write(`[image-factory] ${message}\n`);
}

/** The passphrase exactly as the pulumi CLI reads it: PULUMI_CONFIG_PASSPHRASE when set, else the
 *  trimmed content of PULUMI_CONFIG_PASSPHRASE_FILE (pulumi/pkg/secrets/passphrase readPassphrase). */
export function readPassphrase(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) return env.PULUMI_CONFIG_PASSPHRASE;
  const file = env.PULUMI_CONFIG_PASSPHRASE_FILE;
  if (!file) throw new PrepareError("PULUMI_CONFIG_PASSPHRASE_FILE is not set");
  return fs.readFileSync(path.resolve(file), "utf8").trim();
}

/** A passphrase crypter for one stack: the key derived from the passphrase and the salt of the
 *  stack's `encryptionsalt` (`v1:<base64 salt>:<check ciphertext of "pulumi">`). */
export class PassphraseCrypter {
  private constructor(private readonly key: Buffer) {}

  static async open(passphrase: string, encryptionSalt: string): Promise<PassphraseCrypter> {
    const parts = encryptionSalt.split(":");
    if (parts.length !== 5 || parts[0] !== "v1")
      throw new PrepareError(
        `malformed encryptionsalt '${encryptionSalt}' (expected v1:<salt>:v1:<nonce>:<ciphertext>)`,
      );
    const salt = Buffer.from(parts[1], "base64");
    const key = await new Promise<Buffer>((resolve, reject) =>
      crypto.pbkdf2(passphrase, salt, PBKDF2_ROUNDS, 32, "sha256", (err, k) =>
        err ? reject(err) : resolve(k),
      ),
    );
    const crypter = new PassphraseCrypter(key);
    if (crypter.tryDecrypt(parts.slice(2).join(":")) !== "pulumi")
      throw new PrepareError(
        "the passphrase does not open the stack's encryptionsalt (incorrect passphrase)",
      );
    return crypter;
  }

  encrypt(plaintext: string): string {
    const nonce = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv("aes-256-gcm", this.key, nonce);
    const body = Buffer.concat([
      cipher.update(plaintext, "utf8"),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    return `v1:${nonce.toString("base64")}:${body.toString("base64")}`;
  }

  /** The plaintext, or undefined when `value` is not a ciphertext of this key. */
  tryDecrypt(value: string): string | undefined {
    const parts = value.split(":");
    if (parts.length !== 3 || parts[0] !== "v1") return undefined;
    try {
      const nonce = Buffer.from(parts[1], "base64");
      const body = Buffer.from(parts[2], "base64");
      if (nonce.length !== 12 || body.length < 16) return undefined;
      const decipher = crypto.createDecipheriv("aes-256-gcm", this.key, nonce);
      decipher.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([
        decipher.update(body.subarray(0, body.length - 16)),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      return undefined;
    }
  }
}

/** The committed base config: a mapping with a `config` mapping and no machine-specific salt. */
export function readBaseConfig(
  file: string,
): Record<string, unknown> & { config: Record<string, unknown> } {
  const doc: unknown = parse(fs.readFileSync(file, "utf8")) ?? {};
  if (typeof doc !== "object" || Array.isArray(doc))
    throw new PrepareError(`${file} is not a YAML mapping`);
  const base = { ...(doc as Record<string, unknown>) };
  for (const key of ["encryptionsalt", "encryptedkey", "secretsprovider"]) {
    if (key in base)
      throw new PrepareError(`${file} must not carry ${key} (it is generated per machine)`);
  }
  const config = base.config ?? {};
  if (typeof config !== "object" || Array.isArray(config))
    throw new PrepareError(`${file}: 'config' is not a mapping`);
  return { ...base, config: { ...(config as Record<string, unknown>) } };
}

/** The registry password as `pulumi config set --secret KEY <FILE` stored it: one trailing newline dropped. */
export function readToken(file: string): string {
  const token = fs.readFileSync(file, "utf8").replace(/\n$/, "");
  if (token === "") throw new PrepareError(`registry password ${file} is empty`);
  return token;
}

/** Writes `content` to `file` only when it differs, atomically (rename), so a concurrent reader
 *  never sees a partial file. */
function writeIfChanged(file: string, content: string): void {
  if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === content) return;
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

export interface PrepareOptions {
  projectDir: string;
  stack: string;
  baseConfig: string;
  stacksDir: string;
  passwordFile: string;
}

export interface PrepareResult {
  created: boolean;
  /** The generated config file was (re)written; false on a warm run that changed nothing. */
  written: boolean;
  configFile: string;
}

export async function prepareStack(o: PrepareOptions): Promise<PrepareResult> {
  if (!process.env.PULUMI_BACKEND_URL) throw new PrepareError("PULUMI_BACKEND_URL is not set");
  const base = readBaseConfig(o.baseConfig);
  const token = readToken(o.passwordFile);
  const passphrase = readPassphrase();

  fs.mkdirSync(o.stacksDir, { recursive: true });
  writeIfChanged(
    path.join(o.stacksDir, "Pulumi.yaml"),
    fs.readFileSync(path.join(o.projectDir, "Pulumi.yaml"), "utf8"),
  );
  const configFile = path.join(o.stacksDir, `Pulumi.${o.stack}.yaml`);

  const ws = await LocalWorkspace.create({
    workDir: o.stacksDir,
    secretsProvider: "passphrase",
    // The engine must never download a plugin (scripts/install-go-tools.sh provides them all).
    envVars: {
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_SKIP_UPDATE_CHECK: "true",
    },
  });
  const settings = async (): Promise<StackSettings> =>
    fs.existsSync(configFile) ? ws.stackSettings(o.stack) : {};
  let current = await settings();
  // The key derivation (PBKDF2, ~0.2 s) runs on the thread pool while the CLI lists the stacks.
  const earlySalt = current.encryptionSalt;
  const early = earlySalt ? PassphraseCrypter.open(passphrase, earlySalt) : undefined;
  early?.catch(() => undefined);
  const exists = (await ws.listStacks()).some(
    (s) => s.name === o.stack || s.name.endsWith(`/${o.stack}`),
  );
  if (!exists) {
    // `stack init` adopts the salt of a settings file already in the workDir when the passphrase
    // opens it (a file left from an earlier backend, or one a concurrent first run just wrote),
    // and fails when it does not: only a salt of another passphrase is removed first.
    if (
      early &&
      !(await early.then(
        () => true,
        () => false,
      ))
    )
      fs.rmSync(configFile, { force: true });
    await ws.createStack(o.stack);
    current = await settings();
  }

  const encryptionSalt = current.encryptionSalt ?? (await recoverSalt(ws, o));
  if (!encryptionSalt) {
    throw new PrepareError(
      `the encryption salt of stack ${o.stack} is in neither ${configFile} nor the backend's checkpoint, so its secrets cannot be decrypted; remove ${path.dirname(o.stacksDir)}/state and rerun`,
    );
  }
  const crypter =
    early && encryptionSalt === earlySalt
      ? await early
      : await PassphraseCrypter.open(passphrase, encryptionSalt);

  // Keep the existing ciphertext when it still opens to the current password.
  const old = (current.config?.[TOKEN_KEY] as { secure?: unknown } | undefined)?.secure;
  const secure =
    typeof old === "string" && crypter.tryDecrypt(old) === token ? old : crypter.encrypt(token);
  const { config, ...rest } = base;
  const desired: StackSettings = {
    ...rest,
    encryptionSalt,
    config: { ...config, [TOKEN_KEY]: { secure } },
  };

  const written = !isDeepStrictEqual(current, desired);
  if (written) {
    await ws.saveStackSettings(o.stack, desired);
    fs.chmodSync(configFile, 0o600);
    // Read back what the workspace wrote: the salt, and a ciphertext that opens to the password.
    const back = await ws.stackSettings(o.stack);
    const backSecure = (back.config?.[TOKEN_KEY] as { secure?: unknown } | undefined)?.secure;
    if (
      back.encryptionSalt !== encryptionSalt ||
      typeof backSecure !== "string" ||
      crypter.tryDecrypt(backSecure) !== token
    ) {
      throw new PrepareError(
        `${configFile} does not read back with the stack's salt and the ${TOKEN_KEY} secret`,
      );
    }
  }
  return { created: !exists, written, configFile };
}

/** The salt from the `encryptionsalt` file an older scripts/local.sh kept beside the generated
 *  config, else from the stack's checkpoint (the passphrase provider's state, which `stack init`
 *  already records on the file backend). */
async function recoverSalt(ws: LocalWorkspace, o: PrepareOptions): Promise<string | undefined> {
  const legacy = path.join(o.stacksDir, `${o.stack}.encryptionsalt`);
  if (fs.existsSync(legacy)) {
    const m = /^encryptionsalt:\s*(\S+)\s*$/m.exec(fs.readFileSync(legacy, "utf8"));
    if (m) return m[1];
  }
  const exported = (await ws.exportStack(o.stack)) as {
    deployment?: { secrets_providers?: { type?: string; state?: { salt?: unknown } } };
  };
  const sp = exported.deployment?.secrets_providers;
  return sp?.type === "passphrase" && typeof sp.state?.salt === "string"
    ? sp.state.salt
    : undefined;
}

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), [
    "project-dir",
    "stack",
    "base-config",
    "stacks-dir",
    "password-file",
  ] as const);
  const need = (k: keyof typeof values): string => {
    const v = values[k];
    if (!v) throw new PrepareError(`--${k} is required`);
    return v;
  };
  const o: PrepareOptions = {
    projectDir: path.resolve(need("project-dir")),
    stack: need("stack"),
    baseConfig: path.resolve(need("base-config")),
    stacksDir: path.resolve(need("stacks-dir")),
    passwordFile: path.resolve(need("password-file")),
  };
  const r = await prepareStack(o);
  if (r.created)
    log(
      `local: created stack ${o.stack} (file backend ${(process.env.PULUMI_BACKEND_URL ?? "").replace(/^file:\/\//, "")}, passphrase secrets)`,
    );
}

if (require.main === module) {
  main().catch((e: unknown) => {
    // A CommandError's message is the pulumi CLI's stderr; never anything holding the password.
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`[image-factory] error: prepare-stack: ${message.trim()}\n`);
    process.exit(1);
  });
}
