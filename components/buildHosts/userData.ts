// Pure rendering of what a native BuildKit host boots with: the cloud-init `#cloud-config` user
// data, the buildkitd.toml it writes, the systemd unit and the one-shot setup script. No Pulumi
// here: BuildHosts resolves its Outputs and hands plain strings to these functions, so the tests
// can feed the exact same text to the real `cloud-init schema` and the real buildkitd.
import * as fs from "node:fs";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import * as dotenv from "dotenv";
import { parse, stringify } from "yaml";
import type { HostArch } from "../types";

/** Where BuildKit comes from on a host. The release tarball carries buildkitd, buildctl,
 *  buildkit-runc, the buildkit-cni-* bridge plugins and buildkit-qemu-* emulators, so one verified
 *  download is the whole install. The checksum is checked before anything is unpacked: a
 *  mismatch stops the setup and buildkitd never starts (fail closed). */
export interface BuildkitRelease {
  /** Release tag, e.g. `v0.32.2`. */
  version: string;
  /** sha256 of `buildkit-<version>.linux-<arch>.tar.gz` per host architecture. */
  sha256: Record<HostArch, string>;
  /** Override the download location per architecture (a mirror or an S3 HTTPS URL); the sha256
   *  is still enforced. @default the GitHub release asset */
  url?: Partial<Record<HostArch, string>>;
}

/** Pinned BuildKit for the hosts: the same pin as the local daemon, read from scripts/versions.env
 *  (the one place versions live). The sha256 values are the GitHub release assets' digests as
 *  pinned independently by several public projects (they agree); re-check with
 *  `curl -fsSL <url> | sha256sum` when bumping. */
const PINS = dotenv.parse(
  fs.readFileSync(path.join(__dirname, "..", "..", "scripts", "versions.env")),
);
export const DEFAULT_BUILDKIT_RELEASE: BuildkitRelease = {
  version: PINS.BUILDKIT_VERSION,
  sha256: { amd64: PINS.BUILDKIT_SHA256_AMD64, arm64: PINS.BUILDKIT_SHA256_ARM64 },
};

export function buildkitReleaseUrl(release: BuildkitRelease, arch: HostArch): string {
  return (
    release.url?.[arch] ??
    `https://github.com/moby/buildkit/releases/download/${release.version}/buildkit-${release.version}.linux-${arch}.tar.gz`
  );
}

/** EC2 refuses user data above 16 KB (before base64). */
export const USER_DATA_LIMIT_BYTES = 16384;

/** Fixed paths on the host; CI never sees them. */
export const HOST_PATHS = {
  configDir: "/etc/buildkit",
  config: "/etc/buildkit/buildkitd.toml",
  tlsDir: "/etc/buildkit/tls",
  root: "/var/lib/buildkit",
  unit: "/etc/systemd/system/buildkitd.service",
  setup: "/usr/local/sbin/image-factory-buildhost-setup",
  binDir: "/usr/local/bin",
  /** Local admin socket (root only, no TLS): `sudo buildctl debug workers` in an SSM session. */
  socket: "/run/buildkit/buildkitd.sock",
} as const;

const GIB = 1024 ** 3;

/** Garbage-collection limits derived from the cache volume size. buildkitd ≥ 0.17 names them
 *  reservedSpace / maxUsedSpace / minFreeSpace (the older `keepBytes` is an alias of
 *  reservedSpace); `keepBytes` here is the cap the cache may grow to before GC reclaims it. */
export interface GcLimits {
  volumeBytes: number;
  /** Upper bound of cache usage: 80 % of the volume, leaving room for running builds' snapshots. */
  keepBytes: number;
  /** Never collected below this: 10 %. */
  reservedBytes: number;
  /** GC also runs when free space drops under this: 10 %. */
  minFreeBytes: number;
  /** Local contexts, cache mounts and git checkouts are cheap to recreate: 5 %, 48 h. */
  transientBytes: number;
}

export function gcLimits(volumeGb: number): GcLimits {
  if (!Number.isInteger(volumeGb) || volumeGb <= 0) {
    throw new Error(`gcLimits: volumeGb must be a positive integer, got ${String(volumeGb)}`);
  }
  const volumeBytes = volumeGb * GIB;
  const pct = (p: number): number => Math.floor((volumeBytes * p) / 100);
  return {
    volumeBytes,
    keepBytes: pct(80),
    reservedBytes: pct(10),
    minFreeBytes: pct(10),
    transientBytes: pct(5),
  };
}

export interface BuildkitdTomlOptions {
  port: number;
  volumeGb: number;
  /** Directory holding ca.pem, server.pem and server-key.pem. @default HOST_PATHS.tlsDir */
  tlsDir?: string;
  /** @default HOST_PATHS.root */
  root?: string;
  /** `bridge` puts RUN steps one network hop away from the host, so the IMDSv2 hop limit of 1
   *  keeps build steps from reading the instance role's credentials. `host` only for the local
   *  daemon (scripts/buildkit.sh), where no bridge may exist; either way a build's `network:
   *  default` gets this mode, and `network: host` is refused (no `insecure-entitlements`).
   *  @default "bridge" */
  networkMode?: "bridge" | "host";
  /** @default HOST_PATHS.socket */
  socket?: string;
  /** Address the TCP listener binds. A host serves its security group's CIDRs; the local daemon
   *  (scripts/buildkit.sh) binds loopback only. @default "0.0.0.0" */
  listen?: string;
  /** Registries buildkitd reaches over TLS with extra CA certificates, rendered as
   *  `[registry."<host>"]` sections after everything else (`http = false`: BuildKit would otherwise
   *  try plain HTTP first on a loopback address). The hosts need none: their registries (GHCR, ECR)
   *  chain to public CAs; the local daemon trusts its TLS registry's CA. @default none */
  registries?: Record<string, { ca: string[] }>;
}

/** TOML basic strings accept JSON's escapes for everything these values can hold. */
const tomlString = (s: string): string => JSON.stringify(s);

export function renderBuildkitdToml(opts: BuildkitdTomlOptions): string {
  const tlsDir = opts.tlsDir ?? HOST_PATHS.tlsDir;
  const root = opts.root ?? HOST_PATHS.root;
  const socket = opts.socket ?? HOST_PATHS.socket;
  const gc = gcLimits(opts.volumeGb);
  const limits = [
    `reservedSpace = ${gc.reservedBytes}`,
    `maxUsedSpace = ${gc.keepBytes}`,
    `minFreeSpace = ${gc.minFreeBytes}`,
  ];
  const rule = (lines: string[]): string =>
    ["  [[worker.oci.gcpolicy]]", ...lines.map((l) => `    ${l}`)].join("\n");
  return [
    `# Written by image-factory (components/buildHosts/userData.ts). Volume ${opts.volumeGb} GiB.`,
    `root = ${tomlString(root)}`,
    "",
    "[log]",
    `  format = "text"`,
    "",
    "[grpc]",
    `  address = [${tomlString(`tcp://${opts.listen ?? "0.0.0.0"}:${opts.port}`)}, ${tomlString(`unix://${socket}`)}]`,
    "  [grpc.tls]",
    `    cert = ${tomlString(`${tlsDir}/server.pem`)}`,
    `    key = ${tomlString(`${tlsDir}/server-key.pem`)}`,
    // A CA makes buildkitd require and verify a client certificate: mutual TLS.
    `    ca = ${tomlString(`${tlsDir}/ca.pem`)}`,
    "",
    "[worker.oci]",
    "  enabled = true",
    `  networkMode = ${tomlString(opts.networkMode ?? "bridge")}`,
    "  gc = true",
    ...limits.map((l) => `  ${l}`),
    "",
    rule([
      `filters = ["type==source.local", "type==exec.cachemount", "type==source.git.checkout"]`,
      `keepDuration = "48h"`,
      `maxUsedSpace = ${gc.transientBytes}`,
    ]),
    rule([`keepDuration = "1440h"`, ...limits]),
    rule(limits),
    rule(["all = true", ...limits]),
    "",
    // The release tarball has no containerd; without this buildkitd probes for a socket.
    "[worker.containerd]",
    "  enabled = false",
    "",
    ...Object.entries(opts.registries ?? {}).flatMap(([host, r]) => [
      `[registry.${tomlString(host)}]`,
      "  http = false",
      `  ca = [${r.ca.map(tomlString).join(", ")}]`,
      "",
    ]),
  ].join("\n");
}

export function renderSystemdUnit(): string {
  return [
    "[Unit]",
    "Description=BuildKit daemon (image-factory build host)",
    "Documentation=https://github.com/moby/buildkit",
    "Wants=network-online.target",
    "After=network-online.target",
    // The cache lives on the EBS volume: never start on the root disk by accident.
    `RequiresMountsFor=${HOST_PATHS.root}`,
    "",
    "[Service]",
    `ExecStart=${HOST_PATHS.binDir}/buildkitd --config ${HOST_PATHS.config}`,
    "Restart=always",
    "RestartSec=5",
    "LimitNOFILE=1048576",
    "Delegate=yes",
    "KillMode=process",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export interface SetupScriptOptions {
  arch: HostArch;
  release: BuildkitRelease;
  /** The EBS cache volume's id; NVMe exposes it as the disk serial. */
  volumeId: string;
  /** SSM SecureString parameter holding the server's private key. */
  serverKeyParameter: string;
}

const SHA256 = /^[0-9a-f]{64}$/;
const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;
const PARAMETER_NAME = /^\/[A-Za-z0-9_.\-/]+$/;
const URL_SAFE = /^https:\/\/[A-Za-z0-9._~:/?#[\]@!$&'()*+,;=%-]+$/;

/** Values end up inside a shell script: anything outside these shapes is refused, not quoted. */
function checkSetupInputs(o: SetupScriptOptions): void {
  const sha = o.release.sha256[o.arch];
  if (!SHA256.test(sha))
    throw new Error(`buildkit.sha256.${o.arch}: expected 64 lowercase hex digits, got '${sha}'`);
  if (!/^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$/.test(o.release.version)) {
    throw new Error(
      `buildkit.version: expected a release tag like v0.32.2, got '${o.release.version}'`,
    );
  }
  const url = buildkitReleaseUrl(o.release, o.arch);
  if (!URL_SAFE.test(url))
    throw new Error(`buildkit.url.${o.arch}: expected an https URL, got '${url}'`);
  if (!VOLUME_ID.test(o.volumeId))
    throw new Error(`volumeId: expected vol-<hex>, got '${o.volumeId}'`);
  if (!PARAMETER_NAME.test(o.serverKeyParameter)) {
    throw new Error(
      `serverKeyParameter: expected an SSM parameter path, got '${o.serverKeyParameter}'`,
    );
  }
}

export function renderSetupScript(o: SetupScriptOptions): string {
  checkSetupInputs(o);
  const url = buildkitReleaseUrl(o.release, o.arch);
  return `#!/bin/bash
# Written by image-factory (components/buildHosts/userData.ts); cloud-init runs it once on first boot.
# Log: /var/log/cloud-init-output.log
set -euo pipefail
BUILDKIT_URL='${url}'
BUILDKIT_SHA256='${o.release.sha256[o.arch]}'
VOLUME_ID='${o.volumeId}'
KEY_PARAMETER='${o.serverKeyParameter}'
MOUNT='${HOST_PATHS.root}'
TLS_DIR='${HOST_PATHS.tlsDir}'

imds() {
  local token
  token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token)
  curl -fsS -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}

# 1. BuildKit, verified before unpacking.
work=$(mktemp -d)
curl -fsSL --proto '=https' --tlsv1.2 --retry 10 --retry-all-errors --retry-delay 6 \\
  -o "$work/buildkit.tar.gz" "$BUILDKIT_URL"
echo "$BUILDKIT_SHA256  $work/buildkit.tar.gz" | sha256sum -c -
tar -xzf "$work/buildkit.tar.gz" -C /usr/local bin/
rm -rf "$work"
command -v buildkit-runc >/dev/null || command -v runc >/dev/null || { echo "no runc in the BuildKit release" >&2; exit 1; }

# 2. The persistent cache volume. Nitro exposes EBS as NVMe with the volume id (no dash) as serial;
#    the attachment may land after boot, so wait for it. Format only a blank volume: a replaced
#    instance keeps the previous host's cache.
dev="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_\${VOLUME_ID//-/}"
for _ in $(seq 1 120); do [ -e "$dev" ] && break; sleep 5; done
[ -e "$dev" ] || { echo "cache volume $VOLUME_ID not attached after 600 s" >&2; exit 1; }
if ! blkid "$dev" >/dev/null 2>&1; then mkfs.xfs -q -L buildkit "$dev"; fi
uuid=$(blkid -s UUID -o value "$dev")
mkdir -p "$MOUNT"
grep -q "UUID=$uuid" /etc/fstab || echo "UUID=$uuid $MOUNT xfs defaults,noatime,nofail 0 2" >>/etc/fstab
systemctl daemon-reload
mountpoint -q "$MOUNT" || mount "$MOUNT"

# 3. The server key: a SecureString only this host's role may read, never part of user data.
region=$(imds placement/region)
install -d -m 0700 "$TLS_DIR"
umask 077
aws ssm get-parameter --region "$region" --with-decryption --name "$KEY_PARAMETER" \\
  --query Parameter.Value --output text >"$TLS_DIR/server-key.pem.tmp"
mv "$TLS_DIR/server-key.pem.tmp" "$TLS_DIR/server-key.pem"

# 4. Start BuildKit and keep it enabled across reboots; ready once it answers on its root-only
#    unix socket (the same socket an operator uses through an SSM session).
systemctl enable --now buildkitd.service
for _ in $(seq 1 30); do
  buildctl --addr "unix://${HOST_PATHS.socket}" debug workers >/dev/null 2>&1 && { echo "buildkitd ready"; exit 0; }
  sleep 2
done
echo "buildkitd did not come up: journalctl -u buildkitd" >&2
exit 1
`;
}

export interface CloudConfigOptions extends SetupScriptOptions {
  port: number;
  volumeGb: number;
  caCertPem: string;
  serverCertPem: string;
}

/** Packages from the Amazon Linux 2023 repositories. iptables-nft: the bridge network masquerades
 *  build traffic; git: BuildKit clones git contexts itself. awscli-2, tar and xfsprogs ship in
 *  the AMI already; listing them makes the dependency explicit and costs nothing. */
export const HOST_PACKAGES = ["awscli-2", "git", "iptables-nft", "tar", "xfsprogs"] as const;

export function cloudConfig(o: CloudConfigOptions): Record<string, unknown> {
  const file = (path: string, content: string, permissions: string): Record<string, string> => ({
    path,
    owner: "root:root",
    permissions,
    content,
  });
  return {
    package_update: false,
    package_upgrade: false,
    packages: [...HOST_PACKAGES],
    write_files: [
      file(HOST_PATHS.config, renderBuildkitdToml({ port: o.port, volumeGb: o.volumeGb }), "0644"),
      file(`${HOST_PATHS.tlsDir}/ca.pem`, o.caCertPem, "0644"),
      file(`${HOST_PATHS.tlsDir}/server.pem`, o.serverCertPem, "0644"),
      file(HOST_PATHS.unit, renderSystemdUnit(), "0644"),
      file(HOST_PATHS.setup, renderSetupScript(o), "0755"),
    ],
    runcmd: [HOST_PATHS.setup],
  };
}

/** The user data: `#cloud-config` plus YAML from the `yaml` package, checked against EC2's size
 *  limit. YAML 1.1 because cloud-init reads it with PyYAML: a 1.2 emitter would leave strings such
 *  as `yes` or `0644` unquoted, which 1.1 reads as a boolean and an octal number. Multi-line
 *  strings become literal blocks, so `cloud-init query userdata` stays readable. */
export function renderCloudConfig(o: CloudConfigOptions): string {
  const config = cloudConfig(o);
  let yaml = stringify(config, { version: "1.1", lineWidth: 0, blockQuote: "literal" });
  // yaml 2.9 writes a whitespace-only string (" \n") as a literal block without an indentation
  // indicator, which reads back as another string (found by the round-trip property). Such input
  // is never a real certificate, but the user data must say exactly what it was given: fall back
  // to quoted scalars whenever the literal form does not read back the same.
  if (!isDeepStrictEqual(parse(yaml, { version: "1.1" }), config)) {
    yaml = stringify(config, { version: "1.1", lineWidth: 0, blockQuote: false });
  }
  const text = `#cloud-config\n# image-factory build host (${o.arch}); generated, do not edit.\n${yaml}`;
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > USER_DATA_LIMIT_BYTES) {
    throw new Error(
      `user data for the ${o.arch} host is ${bytes} bytes, over EC2's ${USER_DATA_LIMIT_BYTES}`,
    );
  }
  return text;
}
