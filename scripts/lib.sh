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
