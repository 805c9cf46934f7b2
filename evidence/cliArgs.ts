// Reading a command line: flags by name, a request given as a file or as flags, an image pinned
// by digest, gate limits as JSON. Each throws an error naming the flag and the value; the command
// decides how to report it (evidence/cli.ts prints it with the usage).
import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { type GatesConfig, DEFAULT_GATES, validateGates } from "./gates";
import { splitDigestRef } from "./reference";

/** Values of the flags: strings for `strings`, booleans for `booleans`, unset ones absent. */
export type Flags<S extends string, B extends string = never> = Partial<Record<S, string>> &
  Partial<Record<B, boolean>>;

/** The command line `argv` with the named string and boolean flags (an unknown flag or a stray
 *  argument is an error: a typo never goes unnoticed). */
export function parseFlags<S extends string, B extends string = never>(
  argv: string[],
  strings: readonly S[],
  booleans: readonly B[] = [],
): Flags<S, B> {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const name of strings) options[name] = { type: "string" };
  for (const name of booleans) options[name] = { type: "boolean" };
  return parseArgs({ args: argv, options, strict: true }).values as Flags<S, B>;
}

/** A request from the `--request` file when one is named, else built from the flags; either way
 *  the registry token is `token` (the environment's), never a value from the file or the flags. */
export async function requestOrFlags<R>(
  file: string | undefined,
  token: string | undefined,
  fromFlags: () => R | Promise<R>,
): Promise<R & { registryToken?: string }> {
  const req =
    file !== undefined ? (JSON.parse(fs.readFileSync(file, "utf8")) as R) : await fromFlags();
  return { ...req, registryToken: token };
}

/** `--image <repository>@sha256:<64 hex>` → the repository and the digest. */
export function imageArg(
  image: string | undefined,
  missing: string,
): { image: string; imageName: string; digest: string } {
  const ref = splitDigestRef(required(image, missing));
  if (ref === undefined)
    throw new Error(`--image must be <repository>@sha256:<64 hex>, got ${JSON.stringify(image)}`);
  return { image: required(image, missing), imageName: ref.name, digest: ref.digest };
}

/** `--gates <json>` → validated gate limits; the factory's defaults without the flag. */
export function gatesArg(json: string | undefined): GatesConfig {
  if (json === undefined) return { ...DEFAULT_GATES };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new Error(`--gates must be JSON (${(e as Error).message}); got ${JSON.stringify(json)}`);
  }
  return validateGates(raw, "--gates");
}

/** `value` or, when it is undefined, an error saying what is missing. */
export function required<T>(value: T | undefined, missing: string): T {
  if (value === undefined) throw new Error(missing);
  return value;
}
