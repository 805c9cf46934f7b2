// What each scenario changes in a path's copy of app/ before its run: nothing for cold (the daemon
// is restarted empty instead) and no-op, one line of app/src for source, a pino patch bump in
// package.json and the lock for deps. The changes accumulate over a round, as commits would.
import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT, runOk, touchAppSource } from "../../test/e2e/lib";
import type { Scenario } from "./model";

export const BASE_PINO = "10.3.0";
export const BUMPED_PINO = "10.3.1";

export interface Manifests {
  packageJson: string;
  packageLock: string;
}

/** package.json + package-lock.json of app/ with pino pinned to `version`, resolved by npm itself
 *  (`npm install --package-lock-only`: real published versions and integrity hashes). */
export async function manifestsWithPino(version: string, work: string): Promise<Manifests> {
  const dir = path.join(work, `pino-${version}`);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of ["package.json", "package-lock.json"])
    fs.copyFileSync(path.join(REPO_ROOT, "app", f), path.join(dir, f));
  await runOk(
    "npm",
    [
      "install",
      "--package-lock-only",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--save-exact",
      `pino@${version}`,
    ],
    { what: `npm install --package-lock-only pino@${version}`, cwd: dir, timeoutMs: 300_000 },
  );
  const m = {
    packageJson: fs.readFileSync(path.join(dir, "package.json"), "utf8"),
    packageLock: fs.readFileSync(path.join(dir, "package-lock.json"), "utf8"),
  };
  const locked = (JSON.parse(m.packageLock) as { packages?: Record<string, { version?: string }> })
    .packages?.["node_modules/pino"]?.version;
  if (locked !== version)
    throw new Error(`npm locked pino ${locked ?? "(none)"} instead of ${version}`);
  return m;
}

export function writeManifests(appDir: string, m: Manifests): void {
  fs.writeFileSync(path.join(appDir, "package.json"), m.packageJson);
  fs.writeFileSync(path.join(appDir, "package-lock.json"), m.packageLock);
}

/** Prepares `appDir` for `scenario`; `marker` makes the source change (one exported constant
 *  appended to app/src, a real change rather than a comment) unique to the run. */
export function applyScenario(
  scenario: Scenario,
  appDir: string,
  bumped: Manifests,
  marker: string,
): void {
  if (scenario === "source") touchAppSource(appDir, marker);
  if (scenario === "deps") writeManifests(appDir, bumped);
}
