#!/usr/bin/env bash
# Publishes the offline Trivy vulnerability DB to the local TLS registry as the OCI artifact Trivy
# downloads with `--db-repository $TRIVY_DB_REPOSITORY` (scripts/versions.env). The DB is built from
# the real GitHub Security Advisories in tools/trivy-db/advisories/ by the Go program in
# tools/trivy-db (trivy-db's own GHSA importer at the version Trivy v0.74.0 pins); see
# docs/supply-chain.md "The offline vulnerability DB".
#
# Cache and idempotence: the program and the DB it built live in
# $IF_CACHE/go-tools/trivy-db-<hash>/ (bin/, db/), the hash covering tools/trivy-db's go.mod, go.sum,
# *.go and advisories. The pushed manifest carries that hash in the annotation
# org.image-factory.trivy-db.source-hash; when the registry already serves it, nothing is built or
# pushed (one HTTPS request to 127.0.0.1). Only logs are written, to stderr.
#
# Needs: go on PATH (build, and the importer runs `go list std`), the registries up
# (scripts/registry.sh, scripts/registry-tls.sh), curl and jq.
# Usage: scripts/trivy-db.sh          publish unless already published (default)
#        scripts/trivy-db.sh status   exit 0 when the registry serves the DB for the current inputs
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC="$REPO_ROOT/tools/trivy-db"
REF="${TRIVY_DB_REPOSITORY:?TRIVY_DB_REPOSITORY missing from scripts/versions.env}"
REGISTRY="${REF%%/*}"
REPO_TAG="${REF#*/}"
REPOSITORY="${REPO_TAG%:*}"
TAG="${REPO_TAG##*:}"
USER_NAME=factory
PASSWORD_FILE="$IF_CACHE/registry/password"
TLS_DIR="$IF_CACHE/registry-tls"
ANNOTATION=org.image-factory.trivy-db.source-hash
LOG_DIR="$IF_CACHE/logs"
mkdir -p "$LOG_DIR" "$IF_CACHE/locks" "$IF_CACHE/go-tools"

# The inputs, in a fixed order, each preceded by its path: a renamed or added advisory changes it.
source_hash() {
  (cd "$SRC" && { printf '%s\n' go.mod go.sum; find . -maxdepth 1 -name '*.go' -printf '%P\n'; find advisories -type f -name '*.json'; } |
    LC_ALL=C sort | while IFS= read -r f; do printf '%s\0' "$f"; cat "$f"; done) | sha256sum | cut -c1-16
}

# The source hash annotation of the manifest the registry serves for $REF, or nothing.
published_hash() {
  printf 'user = "%s:%s"\n' "$USER_NAME" "$(cat "$PASSWORD_FILE")" |
    curl -sf --max-time 10 --config - --cacert "$TLS_DIR/ca.pem" \
      -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
      "https://$REGISTRY/v2/$REPOSITORY/manifests/$TAG" 2>/dev/null |
    jq -r --arg a "$ANNOTATION" '.annotations[$a] // empty' 2>/dev/null || true
}

[[ "$REGISTRY" == 127.0.0.1:* || "$REGISTRY" == localhost:* ]] ||
  die "trivy-db.sh: TRIVY_DB_REPOSITORY=$REF is not on the local registry"
[[ -s "$PASSWORD_FILE" && -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/ca-bundle.pem" ]] ||
  die "trivy-db.sh: registry password or CA missing: run scripts/registry.sh and scripts/registry-tls.sh first"
bash "$REPO_ROOT/scripts/registry-tls.sh" status ||
  die "trivy-db.sh: https://$REGISTRY does not answer: run scripts/registry.sh and scripts/registry-tls.sh first"

HASH="$(source_hash)"
case "${1:-up}" in
  status) [[ "$(published_hash)" == "$HASH" ]]; exit ;;
  up) ;;
  *) die "trivy-db.sh: unknown command '$1' (expected up or status)" ;;
esac

if [[ "$(published_hash)" == "$HASH" ]]; then
  log "trivy-db: $REF already holds the DB for inputs $HASH"
  exit 0
fi

# One build and push at a time (bootstrap and tests may call this together).
exec 9>"$IF_CACHE/locks/trivy-db.lock"
flock 9
if [[ "$(published_hash)" == "$HASH" ]]; then
  log "trivy-db: $REF already holds the DB for inputs $HASH"
  exit 0
fi

command -v go >/dev/null || die "trivy-db.sh: go is not on PATH (needed to build tools/trivy-db and by its GHSA importer)"
DIR="$IF_CACHE/go-tools/trivy-db-$HASH"
BIN="$DIR/bin/trivy-db"
if [[ ! -x "$BIN" ]]; then
  log "trivy-db: building tools/trivy-db ($HASH); log: $LOG_DIR/trivy-db-build.log"
  rm -rf "$DIR.tmp" && mkdir -p "$DIR.tmp/bin"
  start=$(date +%s)
  # Only the module proxy, only go.sum's pins, only the installed toolchain.
  if ! (cd "$SRC" && GOPROXY="${GOPROXY:-https://proxy.golang.org}" GOFLAGS="-mod=readonly -buildvcs=false" \
    GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$DIR.tmp/bin/trivy-db" .) \
    >"$LOG_DIR/trivy-db-build.log" 2>&1; then
    tail -n 30 "$LOG_DIR/trivy-db-build.log" >&2
    rm -rf "$DIR.tmp"
    die "trivy-db.sh: building tools/trivy-db failed (log: $LOG_DIR/trivy-db-build.log)"
  fi
  echo "$(($(date +%s) - start))" >"$DIR.tmp/build-seconds"
  rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
  log "trivy-db: built tools/trivy-db in $(cat "$DIR/build-seconds") s"
fi

log "trivy-db: building the DB from $(find "$SRC/advisories" -type f -name '*.json' | wc -l) advisories and pushing it to $REF"
start=$(date +%s)
# SSL_CERT_FILE: the system roots plus the local CA. The password is read from its file by the
# program, never passed on a command line.
if ! pushed="$(cd "$DIR" && SSL_CERT_FILE="$TLS_DIR/ca-bundle.pem" "$BIN" -advisories "$SRC/advisories" -output "$DIR/db" \
  -ref "$REF" -source-hash "$HASH" -username "$USER_NAME" -password-file "$PASSWORD_FILE" 2>"$LOG_DIR/trivy-db.log")"; then
  tail -n 30 "$LOG_DIR/trivy-db.log" >&2
  die "trivy-db.sh: building or pushing the DB failed (log: $LOG_DIR/trivy-db.log)"
fi
[[ "$(published_hash)" == "$HASH" ]] || die "trivy-db.sh: $REF does not carry $ANNOTATION=$HASH after the push"
log "trivy-db: published $pushed (tag $TAG, inputs $HASH) in $(($(date +%s) - start)) s; log: $LOG_DIR/trivy-db.log"
