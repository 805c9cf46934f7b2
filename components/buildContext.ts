// Checks of the build context before anything is built: the app path stays inside the repository,
// the npm CA bundle is a PEM bundle, the Dockerfile exists and is readable.
import * as fs from "node:fs";
import * as path from "node:path";
import { NAMESPACE, show } from "./config";

const within = (p: string, base: string): boolean => {
  const rel = path.relative(base, p);
  return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
};

/** appPath is the build context sent to the builders: it must stay inside the repository (`cwd`).
 *  `..` escapes and absolute paths elsewhere are refused, and so is a symlink out of it. */
export function appPathProblems(appPathRaw: string, cwd: string): string[] {
  const key = `${NAMESPACE}:appPath`;
  const root = path.resolve(cwd);
  const resolved = path.resolve(root, appPathRaw);
  if (!within(resolved, root)) {
    return [
      `${key} must stay inside the repository ${show(root)}, got ${show(appPathRaw)} (resolves to ${show(resolved)})`,
    ];
  }
  let real: string;
  try {
    real = fs.realpathSync(resolved);
  } catch {
    return []; // missing: readDockerfileProblems names it
  }
  const realRoot = fs.realpathSync(root);
  if (!within(real, realRoot)) {
    return [
      `${key} leaves the repository through a symlink: ${show(appPathRaw)} resolves to ${show(real)}, outside ${show(realRoot)}`,
    ];
  }
  return [];
}

const PEM_CERTIFICATE =
  /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/;

/** npmCaFile becomes the build's `npm_ca` secret: a readable PEM bundle with a certificate in it. */
export function npmCaFileProblems(file: string): string[] {
  const key = `${NAMESPACE}:npmCaFile`;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return [
      code === "ENOENT"
        ? `${key} does not exist, got ${show(file)}`
        : `${key} is not a readable file (${code ?? String(e)}), got ${show(file)}`,
    ];
  }
  if (!PEM_CERTIFICATE.test(text)) {
    return [
      `${key} must be a PEM bundle with at least one -----BEGIN CERTIFICATE----- block, got ${show(file)}`,
    ];
  }
  return [];
}

/** Problems that make a Dockerfile unbuildable, found without a build: missing file, no FROM. */
export function readDockerfileProblems(appPath: string): string[] {
  const key = `${NAMESPACE}:appPath`;
  const file = path.join(appPath, "Dockerfile");
  if (!fs.existsSync(appPath) || !fs.statSync(appPath).isDirectory())
    return [`${key} is not a directory, got "${appPath}"`];
  if (!fs.existsSync(file)) return [`${key} has no Dockerfile: "${file}" does not exist`];
  const lines = fs
    .readFileSync(file, "utf8")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const first = lines[0] ?? "";
  if (!/^(FROM|ARG)\s/i.test(first)) {
    return [
      `${key}: "${file}" must start with FROM (or ARG before FROM), got "${first.slice(0, 60)}"`,
    ];
  }
  if (!lines.some((l) => /^FROM\s/i.test(l))) return [`${key}: "${file}" has no FROM instruction`];
  return [];
}
