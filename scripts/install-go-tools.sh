#!/usr/bin/env bash
# Builds the Go tools the local stack needs from the Go module proxy, pinned in scripts/versions.env:
# the Pulumi CLI and its Node.js language host, the docker-build provider (installed as a Pulumi
# plugin), buildkitd + buildctl, buildx (as a docker CLI plugin), crane, cosign and the registry.
#
# Each binary is cached under $IF_CACHE/go-tools/<tool>-<version>-<wrapper hash>/ and linked into
# $IF_BIN, so a fresh clone on the same machine reuses it and a second run is a no-op in seconds.
# The Pulumi CLI, the language host and BuildKit carry replace/exclude directives that
# `go install pkg@version` refuses; they are built from the wrapper modules under tools/.
#
# Usage: scripts/install-go-tools.sh [tool...]   (default: all; tools: pulumi language-nodejs
#        docker-build buildkit buildx crane cosign registry)
#
# No `tls` resource plugin: key-mode signing keys would come from @pulumi/tls, but the module proxy
# refuses github.com/pulumi/pulumi-tls/provider/v5 at every version (403 "This module version is not
# available"), so components/signing.ts makes them with a node:crypto dynamic provider instead.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
# Builds only ever read the module proxy; a module it does not serve must fail, not fall back to git.
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOPROXY="${GOPROXY%,direct}"
export GOFLAGS="-buildvcs=false -mod=readonly"
export GOTOOLCHAIN=local

TOOLS_CACHE="$IF_CACHE/go-tools"
LOG_DIR="$IF_CACHE/logs"
mkdir -p "$TOOLS_CACHE" "$LOG_DIR"

command -v go >/dev/null || die "go is not on PATH: the Go toolchain is needed to build the Pulumi CLI, BuildKit and buildx"

# Concurrent callers (npm run local and the e2e tests) would otherwise build the same tool twice.
exec 9>"$TOOLS_CACHE/.lock"
flock 9

wrapper_hash() { # <tools/ subdir>: the wrapper's pins are part of the cache key
  cat "$REPO_ROOT/tools/$1/go.mod" "$REPO_ROOT/tools/$1/go.sum" | sha256sum | cut -c1-12
}

# build_tool <key> <log name> <binaries...> -- <build command...>
# Runs the build command with $OUT set to the cache dir's bin/ unless every binary already exists
# there, then links the binaries into $IF_BIN. The cold build time is kept beside the binaries.
build_tool() {
  local key="$1" name="$2"; shift 2
  local bins=()
  while [[ "$1" != "--" ]]; do bins+=("$1"); shift; done
  shift
  local dir="$TOOLS_CACHE/$key" missing=0 b
  for b in "${bins[@]}"; do [[ -x "$dir/bin/$b" ]] || missing=1; done
  if (( missing )); then
    log "building $name ($key); log: $LOG_DIR/$name.log"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/bin"
    local start end
    start=$(date +%s)
    if ! OUT="$dir.tmp/bin" "$@" >"$LOG_DIR/$name.log" 2>&1; then
      tail -n 30 "$LOG_DIR/$name.log" >&2
      rm -rf "$dir.tmp"
      die "building $name ($key) failed; full log: $LOG_DIR/$name.log"
    fi
    end=$(date +%s)
    echo "$((end - start))" >"$dir.tmp/build-seconds"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    log "built $name in $((end - start)) s"
  fi
  # Hard links, not symlinks: the CLI looks for its language host and the dynamic-provider script
  # beside its own (resolved) path, and otherwise warns "using ... from $PATH" on every run.
  [[ "$key" == docker-build-* ]] && return 0 # a Pulumi plugin, installed into the plugin directory
  for b in "${bins[@]}"; do ln -f "$dir/bin/$b" "$IF_BIN/$b"; done
}

# --- Pulumi CLI -------------------------------------------------------------------------------
build_pulumi() {
  (cd "$REPO_ROOT/tools/pulumi" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    -o "$OUT/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

# --- Node.js language host --------------------------------------------------------------------
# The proxy refuses the host module matching v3.259.0 (see tools/pulumi-language-nodejs/go.mod), so
# the newest upstream host it serves (inside sdk/v3 v3.68.0) runs programs, fronted by the small
# host in tools/pulumi/cmd/pulumi-language-nodejs that adds RunPlugin (policy packs) and forwards
# everything else to it.
build_language_nodejs() {
  (cd "$REPO_ROOT/tools/pulumi-language-nodejs" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_LANGUAGE_NODEJS_VERSION" \
    -o "$OUT/pulumi-language-nodejs-upstream" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs)
  (cd "$REPO_ROOT/tools/pulumi" && go build -trimpath -ldflags "-s -w" \
    -o "$OUT/pulumi-language-nodejs" ./cmd/pulumi-language-nodejs)
  # Dynamic providers (pulumi.dynamic) run through this script, which the CLI's release archive
  # ships beside the CLI; it is the same file the pinned SDK module carries.
  local sdk
  sdk="$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" | jq -r .Dir)"
  install -m 755 "$sdk/nodejs/dist/pulumi-resource-pulumi-nodejs" "$OUT/pulumi-resource-pulumi-nodejs"
}
language_nodejs_key() {
  cat "$REPO_ROOT/tools/pulumi-language-nodejs/go.mod" "$REPO_ROOT/tools/pulumi-language-nodejs/go.sum" \
    "$REPO_ROOT/tools/pulumi/go.mod" "$REPO_ROOT/tools/pulumi/go.sum" \
    "$REPO_ROOT/tools/pulumi/cmd/pulumi-language-nodejs/main.go" | sha256sum | cut -c1-12
}

# --- docker-build provider --------------------------------------------------------------------
build_docker_build() {
  # Built from tools/docker-build: `go install ...@version` is refused here (see its go.mod), and two
  # codegen-only dependencies are replaced by stand-ins there.
  (cd "$REPO_ROOT/tools/docker-build" && go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-docker-build/provider.Version=${DOCKER_BUILD_PROVIDER_VERSION#v}" \
    -o "$OUT/pulumi-resource-docker-build" github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build)
}
docker_build_key() {
  cat "$REPO_ROOT/tools/docker-build/go.mod" "$REPO_ROOT/tools/docker-build/go.sum" \
    "$REPO_ROOT"/tools/docker-build/stubs/*/go.mod "$REPO_ROOT"/tools/docker-build/stubs/*/*/*.go \
    "$REPO_ROOT"/tools/docker-build/stubs/*/*/*/*/*.go 2>/dev/null | sha256sum | cut -c1-12
}

install_docker_build_plugin() {
  local version="${DOCKER_BUILD_PROVIDER_VERSION#v}"
  local plugin_dir="${PULUMI_HOME:-$HOME/.pulumi}/plugins/resource-docker-build-v$version"
  local src
  src="$TOOLS_CACHE/docker-build-$DOCKER_BUILD_PROVIDER_VERSION-$(docker_build_key)/bin/pulumi-resource-docker-build"
  if [[ -x "$plugin_dir/pulumi-resource-docker-build" ]] && cmp -s "$src" "$plugin_dir/pulumi-resource-docker-build"; then
    return 0
  fi
  log "installing $src as Pulumi plugin resource docker-build $version"
  pulumi plugin install resource docker-build "$version" --file "$src" --reinstall >"$LOG_DIR/docker-build-plugin.log" 2>&1 ||
    { cat "$LOG_DIR/docker-build-plugin.log" >&2; die "pulumi plugin install resource docker-build $version failed"; }
}

# --- BuildKit ---------------------------------------------------------------------------------
build_buildkit() {
  local ld="-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
  (cd "$REPO_ROOT/tools/buildkit" &&
    go build -trimpath -ldflags "$ld" -o "$OUT/buildkitd" github.com/moby/buildkit/cmd/buildkitd &&
    go build -trimpath -ldflags "$ld" -o "$OUT/buildctl" github.com/moby/buildkit/cmd/buildctl)
}

# --- buildx -----------------------------------------------------------------------------------
build_buildx() {
  GOBIN="$OUT" go install -trimpath \
    -ldflags "-s -w -X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx" \
    "github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION"
  mv "$OUT/buildx" "$OUT/docker-buildx"
}

install_buildx_plugin() {
  # Both docker clients (Debian's 20.10 and the preinstalled 28.x) look here for CLI plugins.
  local plugins="$HOME/.docker/cli-plugins"
  mkdir -p "$plugins"
  ln -sfn "$TOOLS_CACHE/buildx-$BUILDX_VERSION/bin/docker-buildx" "$plugins/docker-buildx"
}

# --- crane ------------------------------------------------------------------------------------
build_crane() {
  GOBIN="$OUT" go install -trimpath -ldflags "-s -w" \
    "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
}

# --- cosign -----------------------------------------------------------------------------------
# Signs and attests the published images (evidence/signing). The version is stamped where
# `cosign version` reads it (its release builds do the same).
build_cosign() {
  GOBIN="$OUT" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION" \
    "github.com/sigstore/cosign/v3/cmd/cosign@$COSIGN_VERSION"
}

# --- registry ---------------------------------------------------------------------------------
# The local registry (scripts/registry.sh). Installed as distribution-registry: `registry` alone is
# too generic a name for a directory on PATH.
build_registry() {
  GOBIN="$OUT" go install -trimpath \
    -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION" \
    "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
  mv "$OUT/registry" "$OUT/distribution-registry"
}

want() { # tool selected on the command line (or no selection = all)
  (( ${#SELECTED[@]} == 0 )) && return 0
  local t; for t in "${SELECTED[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  return 1
}
SELECTED=("$@")

if want pulumi; then
  build_tool "pulumi-$PULUMI_VERSION-$(wrapper_hash pulumi)" pulumi pulumi -- build_pulumi
fi
if want language-nodejs; then
  build_tool "pulumi-language-nodejs-$PULUMI_LANGUAGE_NODEJS_VERSION-$(language_nodejs_key)" pulumi-language-nodejs \
    pulumi-language-nodejs pulumi-language-nodejs-upstream pulumi-resource-pulumi-nodejs -- build_language_nodejs
fi
if want docker-build; then
  build_tool "docker-build-$DOCKER_BUILD_PROVIDER_VERSION-$(docker_build_key)" docker-build pulumi-resource-docker-build -- build_docker_build
  command -v pulumi >/dev/null || die "the Pulumi CLI is needed to install the docker-build plugin: run $0 pulumi first"
  install_docker_build_plugin
fi
if want buildkit; then
  build_tool "buildkit-$BUILDKIT_VERSION-$(wrapper_hash buildkit)" buildkit buildkitd buildctl -- build_buildkit
fi
if want buildx; then
  build_tool "buildx-$BUILDX_VERSION" buildx docker-buildx -- build_buildx
  install_buildx_plugin
fi
if want crane; then
  build_tool "crane-$CRANE_VERSION" crane crane -- build_crane
fi
if want cosign; then
  build_tool "cosign-$COSIGN_VERSION" cosign cosign -- build_cosign
fi
if want registry; then
  build_tool "registry-$DISTRIBUTION_VERSION" registry distribution-registry -- build_registry
fi
