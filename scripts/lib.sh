#!/usr/bin/env bash
# Shared helpers for the project's scripts: pinned versions, the tool cache and logging.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$REPO_ROOT/scripts/versions.env"
IF_CACHE="${IMAGE_FACTORY_CACHE:-$HOME/.cache/image-factory}"
IF_BIN="$IF_CACHE/bin"
mkdir -p "$IF_BIN"
export PATH="$IF_BIN:$PATH"
log() { printf '[image-factory] %s\n' "$*" >&2; }
die() { printf '[image-factory] error: %s\n' "$*" >&2; exit 1; }
# The Pulumi engine must never download a plugin: every plugin comes from install-go-tools.sh.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# Stops the process a pid file names (when it is alive), waits up to $3 tenths of a second for it to
# exit, and removes the pid file. Usage: stop_pidfile FILE "label:" [TENTHS]
stop_pidfile() {
  local file=$1 label=$2 tries=${3:-50} pid
  pid="$(cat "$file" 2>/dev/null)" || true
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    log "$label stopped"
  fi
  rm -f "$file"
}
# The local CAs (scripts/registry-tls.sh, scripts/buildkit.sh) exist to sign loopback leaves and
# nothing else: pathlen:0 (no intermediate CA below them) and name constraints for 127.0.0.1 and
# localhost, so a copy of a CA key cannot mint a certificate that a client trusting it would accept
# for any other name. The profile is recorded beside the CA (ca.profile): a CA made under an older
# profile, or in its last 30 days, is replaced, and the caller's leaves then fail to verify against
# the new CA, so it reissues them and restarts its service.
LOOPBACK_CA_EXTENSIONS=(
  "basicConstraints=critical,CA:TRUE,pathlen:0"
  "keyUsage=critical,keyCertSign,cRLSign"
  "nameConstraints=critical,permitted;IP:127.0.0.1/255.255.255.255,permitted;DNS:localhost"
)
LOOPBACK_CA_DAYS=825
# Usage: loopback_ca DIR "COMMON NAME"   (makes or keeps DIR/ca.pem and DIR/ca-key.pem)
loopback_ca() {
  local dir=$1 cn=$2 profile ext args=()
  profile="$(printf '%s\n' "${LOOPBACK_CA_EXTENSIONS[@]}" "days=$LOOPBACK_CA_DAYS" "cn=$cn")"
  if [[ -s "$dir/ca.pem" && -s "$dir/ca-key.pem" && "$(cat "$dir/ca.profile" 2>/dev/null)" == "$profile" ]] &&
    openssl x509 -in "$dir/ca.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
    return 0
  fi
  log "making the CA '$cn' in $dir (pathlen:0, loopback names only)"
  rm -f "$dir/ca.pem" "$dir/ca-key.pem" "$dir/ca.srl" "$dir/ca.profile"
  for ext in "${LOOPBACK_CA_EXTENSIONS[@]}"; do args+=(-addext "$ext"); done
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca-key.pem" 2>/dev/null)
  openssl req -x509 -new -key "$dir/ca-key.pem" -subj "/CN=$cn" -days "$LOOPBACK_CA_DAYS" -sha256 \
    "${args[@]}" -out "$dir/ca.pem" 2>/dev/null || die "loopback_ca: openssl could not make $dir/ca.pem"
  printf '%s\n' "$profile" >"$dir/ca.profile"
}
