#!/usr/bin/env bash
# Brings up the local container engine: Debian's dockerd without any bridge (the network rule: no
# docker0, no private-range address; builds and containers use --network host) and QEMU binfmt so
# linux/arm64 and linux/arm/v7 binaries run under emulation. Idempotent: on a ready machine it only
# checks and returns in well under a second.
# Usage: scripts/engine.sh          bring up (default)
#        scripts/engine.sh status   exit 0 when dockerd answers and binfmt is enabled, else 1
#        scripts/engine.sh stop     stop the dockerd this script started (pid file; waits up to 30 s)
# Use the Debian client /usr/bin/docker with DOCKER_BUILDKIT=1: /usr/local/bin/docker (28.x) refuses
# BuildKit builds without a buildx plugin.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd
SOCK=/var/run/docker.sock
STATE="$IF_CACHE/engine"
mkdir -p "$STATE"

engine_up() { [[ -S "$SOCK" ]] && "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
binfmt_ok() {
  local f
  for f in qemu-aarch64 qemu-arm; do
    [[ -r /proc/sys/fs/binfmt_misc/$f ]] && head -n1 "/proc/sys/fs/binfmt_misc/$f" | grep -qx enabled || return 1
  done
}
# Addresses in 10/8, 172.16/12, 192.168/16 (the network rule forbids creating any).
private_addrs() { ip -o -4 addr show | awk '{print $4}' | grep -E '^(10\.|172\.(1[6-9]|2[0-9]|3[01])\.|192\.168\.)' || true; }

case "${1:-up}" in
  status) engine_up && binfmt_ok; exit ;;
  stop) stop_pidfile "$STATE/dockerd.pid" dockerd "engine: dockerd" 300; exit 0 ;;
  up) ;;
  *) die "engine.sh: unknown command '$1' (expected up, status or stop)" ;;
esac

[[ -x "$DOCKERD" && -x "$DOCKER" ]] || die "engine.sh: $DOCKERD or $DOCKER missing: run scripts/install-apt.sh first"
command -v update-binfmts >/dev/null || die "engine.sh: update-binfmts missing: run scripts/install-apt.sh first"

if engine_up; then
  log "engine: dockerd already running"
else
  before="$(private_addrs)"
  log "engine: starting dockerd (no bridge, no iptables)"
  # dockerd writes its own pid file (and refuses one naming a live process, a reused pid included):
  # supervise_start (lib.sh) removes one left over from a dockerd that is gone (a new session or CI run).
  supervise_start --own-pidfile dockerd "$SOCK" "$STATE/dockerd.pid" "$STATE/dockerd.log" engine_up 60 -- \
    "$DOCKERD" --bridge=none --iptables=false --ip6tables=false --host="unix://$SOCK" --pidfile="$STATE/dockerd.pid"
  after="$(private_addrs)"
  if [[ "$after" != "$before" ]]; then
    die "engine.sh: a private-range address appeared after starting dockerd: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
  fi
  log "engine: dockerd $("$DOCKER" version --format '{{.Server.Version}}') ready on $SOCK"
fi
# A bridge network named 'bridge' must never exist: it would mean docker0 was created.
if "$DOCKER" network ls --format '{{.Driver}}' | grep -qx bridge; then
  die "engine.sh: dockerd has a bridge network; it must run with --bridge=none"
fi

if ! binfmt_ok; then
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "engine.sh: cannot mount binfmt_misc"
  fi
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
  update-binfmts --enable qemu-arm >/dev/null 2>&1 || update-binfmts --import qemu-arm
  binfmt_ok || die "engine.sh: binfmt for qemu-aarch64/qemu-arm is not enabled after update-binfmts"
  log "engine: binfmt enabled for arm64 and arm (qemu-user-static, fix-binary)"
else
  log "engine: binfmt already enabled for arm64 and arm"
fi
