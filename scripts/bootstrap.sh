#!/usr/bin/env bash
# Brings a fresh Debian machine to what the factory and its tests need, idempotently: pinned
# packages and tools (cached under ~/.cache/image-factory), then the local services on loopback
# (Docker engine without a bridge, QEMU binfmt, registry, offline base images, BuildKit over mTLS).
# A second run on a ready machine takes seconds.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
t0=$(date +%s)
step() {
  local s; s=$(date +%s)
  log "bootstrap: $1"
  bash "scripts/$1"
  log "bootstrap: $1 done in $(( $(date +%s) - s ))s"
}
step install-apt.sh
step install-node.sh
step install-go-tools.sh
step install-scanners.sh
step install-actionlint.sh
step engine.sh
step registry.sh
step registry-tls.sh
step trivy-db.sh
step base-images.sh
step buildkit.sh
log "bootstrap: ready in $(( $(date +%s) - t0 ))s"
