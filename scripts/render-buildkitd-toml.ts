// The local buildkitd.toml (scripts/buildkit.sh) is the build hosts' buildkitd.toml: the same
// renderBuildkitdToml (components/buildHosts/userData.ts) with only these local differences, fixed
// here and nowhere else (docs/build-hosts.md, "The local daemon is a host"):
//   - the TCP listener binds 127.0.0.1 instead of 0.0.0.0 (servers listen only on loopback);
//   - networkMode = "host" instead of "bridge" (no bridge may exist on this machine); a build's
//     `network: default` then runs in the host's loopback-only namespace;
//   - local paths for the TLS files, the state root and the admin socket;
//   - a [registry."127.0.0.1:5443"] section trusting the local TLS registry's CA.
// Port and volume size are parameters of the hosts' rendering too. Entitlements are the hosts'
// (none): a build asking for `network: host` or `security.insecure` is refused.
//
// Usage: ts-node --transpile-only scripts/render-buildkitd-toml.ts --dir DIR --registry-ca FILE
//          [--port 1234] [--volume-gb 25] [--tls-dir DIR/certs] [--root DIR/root]
//          [--socket DIR/buildkitd.sock]
// prints the file on stdout. A benchmark or test daemon of its own renders with its own --dir/--port
// (and --tls-dir to share scripts/buildkit.sh's certificates).
import * as path from "node:path";
import { parseArgs } from "node:util";
import { type BuildkitdTomlOptions, renderBuildkitdToml } from "../components/buildHosts/userData";

/** The local daemon's defaults (scripts/buildkit.sh: IF_BUILDKIT_PORT, IF_BUILDKIT_VOLUME_GB).
 *  25 GiB of "volume" caps the cache at 20 GiB (gcLimits: 80 %), the old local gckeepstorage. */
export const LOCAL_BUILDKITD = {
  port: 1234,
  volumeGb: 25,
  listen: "127.0.0.1",
  registry: "127.0.0.1:5443",
} as const;

export interface LocalBuildkitdSettings {
  /** The daemon's directory ($IF_CACHE/buildkit for the shared one). */
  dir: string;
  /** The local TLS registry's CA ($IF_CACHE/registry-tls/ca.pem). */
  registryCa: string;
  port?: number;
  volumeGb?: number;
  /** @default <dir>/certs */
  tlsDir?: string;
  /** @default <dir>/root */
  root?: string;
  /** @default <dir>/buildkitd.sock */
  socket?: string;
}

export function localBuildkitdOptions(s: LocalBuildkitdSettings): BuildkitdTomlOptions {
  return {
    port: s.port ?? LOCAL_BUILDKITD.port,
    volumeGb: s.volumeGb ?? LOCAL_BUILDKITD.volumeGb,
    tlsDir: s.tlsDir ?? path.join(s.dir, "certs"),
    root: s.root ?? path.join(s.dir, "root"),
    socket: s.socket ?? path.join(s.dir, "buildkitd.sock"),
    listen: LOCAL_BUILDKITD.listen,
    networkMode: "host",
    registries: { [LOCAL_BUILDKITD.registry]: { ca: [s.registryCa] } },
  };
}

export function renderLocalBuildkitdToml(s: LocalBuildkitdSettings): string {
  return renderBuildkitdToml(localBuildkitdOptions(s));
}

function main(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: "string" },
      "registry-ca": { type: "string" },
      port: { type: "string" },
      "volume-gb": { type: "string" },
      "tls-dir": { type: "string" },
      root: { type: "string" },
      socket: { type: "string" },
    },
    strict: true,
  });
  if (values.dir === undefined || values["registry-ca"] === undefined) {
    throw new Error("render-buildkitd-toml: --dir and --registry-ca are required");
  }
  const int = (flag: string, v: string | undefined, max: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > max)
      throw new Error(
        `render-buildkitd-toml: --${flag} must be an integer from 1 to ${max}, got '${v}'`,
      );
    return n;
  };
  const abs = (flag: string, v: string | undefined): string | undefined => {
    if (v !== undefined && !path.isAbsolute(v))
      throw new Error(`render-buildkitd-toml: --${flag} must be an absolute path, got '${v}'`);
    return v;
  };
  process.stdout.write(
    renderLocalBuildkitdToml({
      dir: abs("dir", values.dir) as string,
      registryCa: abs("registry-ca", values["registry-ca"]) as string,
      port: int("port", values.port, 65535),
      volumeGb: int("volume-gb", values["volume-gb"], 16384),
      tlsDir: abs("tls-dir", values["tls-dir"]),
      root: abs("root", values.root),
      socket: abs("socket", values.socket),
    }),
  );
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
}
