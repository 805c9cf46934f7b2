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
