#!/usr/bin/env bash
# Installs the pinned Debian packages listed in scripts/apt-packages.txt. Idempotent: when every
# pinned version is already installed it returns at once without touching apt; `apt-get update`
# runs only when a pinned version is not known to apt yet.
# Usage: scripts/install-apt.sh [list-file]   (default: scripts/apt-packages.txt)
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LIST="${1:-$REPO_ROOT/scripts/apt-packages.txt}"
[[ -f "$LIST" ]] || die "install-apt.sh: package list '$LIST' does not exist"
export DEBIAN_FRONTEND=noninteractive CI=true
# Other helpers and scripts may run apt at the same time: wait for the locks instead of failing.
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef)

pinned=()
while IFS= read -r line || [[ -n "$line" ]]; do
  line="${line%%#*}"; line="${line//[[:space:]]/}"
  [[ -z "$line" ]] && continue
  [[ "$line" == *=* ]] || die "install-apt.sh: '$line' in $LIST is not pinned (expected pkg=version)"
  pinned+=("$line")
done <"$LIST"

installed_version() { dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null | awk '$1=="installed"{print $2}'; }

missing=()
for entry in "${pinned[@]}"; do
  pkg="${entry%%=*}"; want="${entry#*=}"
  [[ "$(installed_version "$pkg")" == "$want" ]] || missing+=("$entry")
done
if ((${#missing[@]} == 0)); then
  log "apt: all ${#pinned[@]} pinned packages installed"
  exit 0
fi

known() { # pkg=version is downloadable with the current lists
  local pkg="${1%%=*}" want="${1#*=}"
  apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$want"
}
need_update=false
for entry in "${missing[@]}"; do known "$entry" || { need_update=true; break; }; done
if $need_update; then
  log "apt: updating package lists"
  # An unreachable third-party source makes apt-get update exit non-zero although Debian's lists
  # were refreshed; whether the pinned versions became known is checked right after.
  apt-get "${APT_OPTS[@]}" update -qq </dev/null || log "apt: apt-get update reported errors (checked below)"
  for entry in "${missing[@]}"; do
    known "$entry" || die "install-apt.sh: pinned package '$entry' is not available from apt (apt-cache madison ${entry%%=*})"
  done
fi

log "apt: installing ${missing[*]}"
apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
log "apt: done"
