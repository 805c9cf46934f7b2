#!/usr/bin/env bash
# Runs buildkitd on this machine as a cloud build host runs it: as root with the runc worker, QEMU
# (binfmt, set by scripts/engine.sh) for linux/arm64 and linux/arm/v7, mutual TLS, and the hosts'
# buildkitd.toml — rendered by renderBuildkitdToml (components/buildHosts/userData.ts) through
# scripts/render-buildkitd-toml.ts, with only the documented local differences (listen on
# 127.0.0.1, networkMode "host" instead of a bridge, local paths, the local TLS registry's CA; see
# docs/build-hosts.md). The hosts' entitlements too: none, so a build asking for `network: host`
# is refused; `network: default` runs in the host's loopback-only namespace. Plus a buildx `remote`
# builder pointing at it. Idempotent: on a ready machine it only checks and returns in seconds; a
# changed rendered config (or registry CA) restarts the daemon.
#
# Certificates (CA, server with SAN 127.0.0.1/localhost, client) are made with openssl in
# <dir>/certs (the CA by lib.sh's loopback_ca: pathlen:0, loopback names only) and remade when the
# CA profile changes; keys are mode 600. BuildKit state lives in <dir>/root.
# Usage: scripts/buildkit.sh          bring up (default)
#        scripts/buildkit.sh status   exit 0 when buildkitd answers over mTLS and the builder exists
#        scripts/buildkit.sh stop     stop the buildkitd this script started (pid file)
#        scripts/buildkit.sh env      print BUILDKIT_* variables for buildctl (addresses, cert paths)
# Environment (a test or a benchmark runs a private daemon with the same rendered config):
#   IF_BUILDKIT_PORT       TCP port on 127.0.0.1                    (default: 1234)
#   IF_BUILDKIT_DIR        certs, state root, config, pid and log   (default: $IF_CACHE/buildkit)
#   IF_BUILDKIT_BUILDER    buildx remote builder's name             (default: image-factory-local)
#   IF_BUILDKIT_VOLUME_GB  "cache volume" the GC limits derive from (default: 25, a 20 GiB cap)
# Only the shared daemon (the default directory) manages the imagetools builder below; a private
# daemon's builder stays until `docker buildx rm <IF_BUILDKIT_BUILDER>`. The registry CA it trusts is
# scripts/registry-tls.sh's (IF_REGISTRY_TLS_DIR, default $IF_CACHE/registry-tls).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${IF_BUILDKIT_PORT:-1234}"
check_port IF_BUILDKIT_PORT "$PORT"
VOLUME_GB="${IF_BUILDKIT_VOLUME_GB:-25}"
[[ "$VOLUME_GB" =~ ^[1-9][0-9]{0,4}$ ]] || die "buildkit.sh: IF_BUILDKIT_VOLUME_GB must be a positive integer, got '$VOLUME_GB'"
SHARED_DIR="$IF_CACHE/buildkit"
DIR="${IF_BUILDKIT_DIR:-$SHARED_DIR}"
check_dir IF_BUILDKIT_DIR "$DIR"
ADDR="tcp://127.0.0.1:$PORT"
SERVER_NAME=localhost
BUILDER="${IF_BUILDKIT_BUILDER:-image-factory-local}"
IMAGETOOLS_BUILDER=image-factory-registries
CERTS="$DIR/certs"
CONFIG="$DIR/buildkitd.toml"
PIDFILE="$DIR/buildkitd.pid"
STAMP_FILE="$DIR/buildkitd.stamp"
RUNC=/usr/sbin/runc
mkdir -p "$DIR/root" "$CERTS"
chmod 700 "$DIR" "$CERTS"

buildctl_tls() {
  buildctl --addr "$ADDR" --tlsservername "$SERVER_NAME" --tlscacert "$CERTS/ca.pem" \
    --tlscert "$CERTS/client.pem" --tlskey "$CERTS/client-key.pem" "$@"
}
daemon_up() { [[ -f "$CERTS/client.pem" ]] && buildctl_tls debug workers >/dev/null 2>&1; }
builder_ok() { # the builder exists and points at this daemon with this machine's client certificate
  local info
  info="$(docker buildx inspect "$BUILDER" 2>/dev/null)" || return 1
  grep -q "Endpoint: *$ADDR\$" <<<"$info" && grep -qF "cacert=\"$CERTS/ca.pem\"" <<<"$info" &&
    grep -qF "cert=\"$CERTS/client.pem\"" <<<"$info" && grep -qF "servername=\"$SERVER_NAME\"" <<<"$info"
}
stop_daemon() { stop_pidfile "$PIDFILE" buildkitd "buildkit: buildkitd" 100; }

case "${1:-up}" in
  status) daemon_up && builder_ok; exit ;;
  stop) stop_daemon; exit 0 ;;
  env)
    printf 'BUILDKIT_HOST=%s\nBUILDKIT_TLS_SERVER_NAME=%s\nBUILDKIT_TLS_CA=%s\nBUILDKIT_TLS_CERT=%s\nBUILDKIT_TLS_KEY=%s\nBUILDKIT_BUILDER=%s\nBUILDX_BUILDER=%s\n' \
      "$ADDR" "$SERVER_NAME" "$CERTS/ca.pem" "$CERTS/client.pem" "$CERTS/client-key.pem" "$BUILDER" "$IMAGETOOLS_BUILDER"
    exit 0 ;;
  up) ;;
  *) die "buildkit.sh: unknown command '$1' (expected up, status, stop or env)" ;;
esac

if ! command -v buildkitd >/dev/null || ! command -v buildctl >/dev/null; then
  die "buildkit.sh: buildkitd/buildctl missing: run scripts/install-go-tools.sh buildkit first"
fi
docker buildx version >/dev/null 2>&1 || die "buildkit.sh: docker buildx missing: run scripts/install-go-tools.sh buildx first"
[[ -x "$RUNC" ]] || die "buildkit.sh: $RUNC missing: run scripts/install-apt.sh first (package runc)"
[[ "$(id -u)" == 0 ]] || die "buildkit.sh: buildkitd runs as root with the runc worker; run as root"

# --- mutual TLS material ----------------------------------------------------------------------
certs_ok() {
  local f
  for f in client server; do [[ -s "$CERTS/$f.pem" && -s "$CERTS/$f-key.pem" ]] || return 1; done
  openssl verify -CAfile "$CERTS/ca.pem" "$CERTS/server.pem" "$CERTS/client.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$CERTS/server.pem" -noout -checkend 86400 >/dev/null &&
    openssl x509 -in "$CERTS/client.pem" -noout -checkend 86400 >/dev/null
}
# lib.sh's loopback_ca: pathlen:0 and names limited to 127.0.0.1/localhost, replaced when its profile
# changes; leaves from a replaced CA no longer verify, so they are reissued and the daemon restarted.
loopback_ca "$CERTS" "image-factory local BuildKit CA"
if ! certs_ok; then
  log "buildkit: making a server certificate (SAN 127.0.0.1, localhost) and a client certificate"
  rm -f "$CERTS"/server*.pem "$CERTS"/client*.pem
  loopback_leaf "$CERTS" server buildkitd "${LOOPBACK_SERVER_EXTENSIONS[@]}"
  loopback_leaf "$CERTS" client image-factory-client "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth"
  certs_ok || die "buildkit.sh: the certificates made in $CERTS do not verify"
  stop_daemon # a running daemon still holds the old server certificate
fi

# --- daemon ---------------------------------------------------------------------------------
# The hosts' buildkitd.toml with the local differences (scripts/render-buildkitd-toml.ts); the TLS
# twin of the local registry (scripts/registry-tls.sh) is trusted through its CA.
bash "$REPO_ROOT/scripts/registry-tls.sh" certs
REGISTRY_CA="${IF_REGISTRY_TLS_DIR:-$IF_CACHE/registry-tls}/ca.pem"
TS_NODE="$REPO_ROOT/node_modules/.bin/ts-node"
[[ -x "$TS_NODE" ]] || die "buildkit.sh: $TS_NODE missing: run npm ci first"
"$TS_NODE" --transpile-only "$REPO_ROOT/scripts/render-buildkitd-toml.ts" --dir "$DIR" --port "$PORT" \
  --volume-gb "$VOLUME_GB" --registry-ca "$REGISTRY_CA" >"$CONFIG.new" ||
  die "buildkit.sh: scripts/render-buildkitd-toml.ts failed"
# The daemon restarts when the rendered file changes, the registry CA it read at start does (the
# file names the CA by path only, so its bytes are in the stamp), or the pinned buildkitd binary
# does (a version bump in scripts/versions.env); otherwise it keeps running.
stamp="$(cat "$CONFIG.new" "$REGISTRY_CA" "$(command -v buildkitd)" | sha256sum | cut -d" " -f1)"
if ! cmp -s "$CONFIG.new" "$CONFIG" || [[ "$(cat "$STAMP_FILE" 2>/dev/null)" != "$stamp" ]]; then
  mv "$CONFIG.new" "$CONFIG"
  [[ -f "$PIDFILE" ]] && log "buildkit: $CONFIG, the registry CA or the buildkitd binary changed: restarting buildkitd"
  stop_daemon
  echo "$stamp" >"$STAMP_FILE"
else
  rm -f "$CONFIG.new"
fi

if daemon_up; then
  log "buildkit: buildkitd already serving on $ADDR"
else
  stop_daemon # one that still runs but does not answer is restarted
  # Not answering over mTLS but the port is taken: something else is listening there.
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "buildkit.sh: something else listens on 127.0.0.1:$PORT; stop it first"
  fi
  log "buildkit: starting buildkitd $(buildkitd --version | awk '{print $3}') on $ADDR (the hosts' config: runc, mTLS, no entitlements; host network)"
  supervise_start buildkitd "$ADDR" "$PIDFILE" "$DIR/buildkitd.log" daemon_up 60 -- buildkitd --config "$CONFIG"
  # Without a client certificate the daemon must refuse: that is what mutual TLS means here.
  if buildctl --addr "$ADDR" --tlsservername "$SERVER_NAME" --tlscacert "$CERTS/ca.pem" debug workers >/dev/null 2>&1; then
    die "buildkit.sh: buildkitd on $ADDR accepted a client without a certificate"
  fi
  log "buildkit: buildkitd ready ($(buildctl_tls debug workers --format '{{range .}}{{range .Platforms}}{{.OS}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}} {{end}}{{end}}'))"
fi

# --- buildx remote builder --------------------------------------------------------------------
if builder_ok; then
  log "buildkit: buildx builder $BUILDER already points at $ADDR"
else
  docker buildx rm "$BUILDER" >/dev/null 2>&1 || true
  docker buildx create --name "$BUILDER" --driver remote \
    --driver-opt "cacert=$CERTS/ca.pem,cert=$CERTS/client.pem,key=$CERTS/client-key.pem,servername=$SERVER_NAME" \
    "$ADDR" >/dev/null || die "buildkit.sh: docker buildx create $BUILDER failed"
  log "buildkit: buildx builder $BUILDER created (remote driver, mTLS)"
fi
docker buildx inspect --bootstrap "$BUILDER" >/dev/null 2>&1 ||
  die "buildkit.sh: buildx builder $BUILDER cannot reach $ADDR (docker buildx inspect --bootstrap $BUILDER)"

# --- registry settings for `buildx imagetools` ------------------------------------------------
[[ "$DIR" == "$SHARED_DIR" ]] || exit 0 # a private daemon leaves the shared imagetools builder alone
# docker-build's Index runs `buildx imagetools create` on the default builder (BUILDX_BUILDER), and
# imagetools speaks plain HTTP to every loopback registry unless that builder's buildkitd config
# says otherwise; a remote builder cannot carry such a config. This docker-container builder is never
# started: it only holds the registry settings (TLS for 127.0.0.1:5443) that scripts/local.sh points
# BUILDX_BUILDER at.
IMAGETOOLS_TOML="$DIR/imagetools.toml"
printf '# Registry settings for buildx imagetools (scripts/buildkit.sh).\n[registry."127.0.0.1:5443"]\n  http = false\n  ca = ["%s"]\n' \
  "$REGISTRY_CA" >"$IMAGETOOLS_TOML.new"
stamp="$(cat "$IMAGETOOLS_TOML.new" "$REGISTRY_CA" | sha256sum | cut -c1-16)"
if [[ "$(cat "$DIR/imagetools.stamp" 2>/dev/null)" != "$stamp" ]] || ! docker buildx inspect "$IMAGETOOLS_BUILDER" >/dev/null 2>&1; then
  mv "$IMAGETOOLS_TOML.new" "$IMAGETOOLS_TOML"
  docker buildx rm "$IMAGETOOLS_BUILDER" >/dev/null 2>&1 || true
  docker buildx create --name "$IMAGETOOLS_BUILDER" --driver docker-container --buildkitd-config "$IMAGETOOLS_TOML" >/dev/null ||
    die "buildkit.sh: docker buildx create $IMAGETOOLS_BUILDER failed"
  echo "$stamp" >"$DIR/imagetools.stamp"
  log "buildkit: buildx builder $IMAGETOOLS_BUILDER holds the registry settings for imagetools (never started)"
else
  rm -f "$IMAGETOOLS_TOML.new"
fi
