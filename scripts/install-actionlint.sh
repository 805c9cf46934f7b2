#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow checker) at the version pinned in
# scripts/versions.env. GitHub releases are unreachable here, so it is built from the Go module
# proxy. The binary lives under $IF_CACHE keyed by version, so a fresh clone reuses it and a second
# run is a no-op; $IF_BIN/actionlint is a symlink to the pinned build.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${ACTIONLINT_VERSION:?ACTIONLINT_VERSION missing from scripts/versions.env}"
dest="$IF_CACHE/actionlint/$ACTIONLINT_VERSION"
bin="$dest/actionlint"

if [[ -x "$bin" ]] && "$bin" -version 2>/dev/null | head -n1 | grep -qx "${ACTIONLINT_VERSION#v}"; then
  ln -sfn "$bin" "$IF_BIN/actionlint"
  log "actionlint $ACTIONLINT_VERSION already installed"
  exit 0
fi

command -v go >/dev/null || die "go is required to build actionlint $ACTIONLINT_VERSION (GitHub releases are unreachable)"
mkdir -p "$dest"
log "building actionlint $ACTIONLINT_VERSION from the Go module proxy"
# GOBIN lands the binary straight in the versioned cache folder; -ldflags stamps the version the
# way upstream releases do, so `actionlint -version` reports the pin (used by the check above).
GOBIN="$dest" GOFLAGS="-mod=mod" go install \
  -ldflags "-s -w -X github.com/rhysd/actionlint.version=${ACTIONLINT_VERSION#v}" \
  "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
  || die "go install github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION failed"
ln -sfn "$bin" "$IF_BIN/actionlint"
log "actionlint $("$bin" -version | head -n1) installed at $bin"
