#!/usr/bin/env bash
# Runs a local distribution registry (distribution-registry, DISTRIBUTION_VERSION in
# scripts/versions.env) on 127.0.0.1:5000 with htpasswd (bcrypt) auth for user `factory`, and logs
# the Debian docker client in to it. The password is generated once and kept in
# $IF_CACHE/registry/password (mode 600); nothing secret is printed.
# Storage: $IF_CACHE/registry/data, deletes enabled. Idempotent: on a ready machine it returns in
# well under a second.
# Usage: scripts/registry.sh          bring up (default)
#        scripts/registry.sh status   exit 0 when the registry answers with auth
#        scripts/registry.sh stop     stop the registry this script started (pid file)
# Tests read the address from IF_REGISTRY (127.0.0.1:5000), the user `factory` and the password file.
# Environment (a private instance for a test; scripts/registry-tls.sh reads IF_REGISTRY_DIR too):
#   IF_REGISTRY_PORT   TCP port on 127.0.0.1                              (default: 5000)
#   IF_REGISTRY_DIR    password, htpasswd, config, data, pid file and log (default: $IF_CACHE/registry)
# A private instance logs the docker client in too: give it its own DOCKER_CONFIG.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${IF_REGISTRY_PORT:-5000}"
check_port IF_REGISTRY_PORT "$PORT"
ADDR="127.0.0.1:$PORT"
USER_NAME=factory
DIR="${IF_REGISTRY_DIR:-$IF_CACHE/registry}"
check_dir IF_REGISTRY_DIR "$DIR"
PASSWORD_FILE="$DIR/password"
HTPASSWD="$DIR/htpasswd"
CONFIG="$DIR/config.yml"
PIDFILE="$DIR/registry.pid"
DOCKER=/usr/bin/docker
mkdir -p "$DIR/data"
chmod 700 "$DIR"

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" "http://$ADDR/v2/" || true; }
# `curl --config -` keeps the password off the command line (ps shows arguments).
authed_code() { printf 'user = "%s:%s"\n' "$USER_NAME" "$(cat "$PASSWORD_FILE")" | http_code --config -; }
registry_up() { [[ -f "$PASSWORD_FILE" ]] && [[ "$(authed_code)" == 200 ]]; }
stop_registry() { stop_registry_pidfile "$PIDFILE" "registry:"; }

case "${1:-up}" in
  status) registry_up; exit ;;
  stop) stop_registry; exit 0 ;;
  up) ;;
  *) die "registry.sh: unknown command '$1' (expected up, status or stop)" ;;
esac

command -v distribution-registry >/dev/null || die "registry.sh: distribution-registry missing: run scripts/install-go-tools.sh registry first"
command -v htpasswd >/dev/null || die "registry.sh: htpasswd missing (apache2-utils): run scripts/install-apt.sh first"

if [[ ! -s "$PASSWORD_FILE" ]]; then
  (umask 077; openssl rand -hex 24 >"$PASSWORD_FILE")
  log "registry: generated a password for user '$USER_NAME' in $PASSWORD_FILE"
fi
chmod 600 "$PASSWORD_FILE"

# htpasswd -v checks the stored bcrypt hash against the password without printing either.
# bcrypt cost 5, not htpasswd's 10: the registry checks the hash on every request (basic auth, no
# token), and at cost 10 that is about 55 ms of registry CPU per request on this machine; a
# signing-heavy `pulumi up` makes hundreds. The cost only slows guessing a weak password from a
# stolen htpasswd, and this one is 24 random bytes, served on loopback only.
BCRYPT_COST=05
if [[ ! -s "$HTPASSWD" ]] || ! grep -q "^$USER_NAME:\\\$2y\\\$$BCRYPT_COST\\\$" "$HTPASSWD" ||
  ! htpasswd -v -i "$HTPASSWD" "$USER_NAME" <"$PASSWORD_FILE" >/dev/null 2>&1; then
  (umask 077; htpasswd -B -C "${BCRYPT_COST#0}" -i -c "$HTPASSWD" "$USER_NAME" <"$PASSWORD_FILE" 2>/dev/null)
  stop_registry # the registry reads htpasswd at start
fi

cat >"$CONFIG.new" <<YAML
# Written by scripts/registry.sh for distribution $DISTRIBUTION_VERSION (a new pin restarts the registry).
version: 0.1
log:
  level: warn
  fields:
    service: image-factory-registry
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $ADDR
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: image-factory
    path: $HTPASSWD
YAML
if ! cmp -s "$CONFIG.new" "$CONFIG"; then mv "$CONFIG.new" "$CONFIG"; stop_registry; else rm -f "$CONFIG.new"; fi

if registry_up; then
  log "registry: already serving on $ADDR"
else
  code="$(http_code)"
  [[ "$code" == 000 ]] || die "registry.sh: something else answers on $ADDR (HTTP $code without credentials); stop it first"
  start_registry "$ADDR" "$PIDFILE" "$DIR/registry.log" registry_up "$CONFIG"
  [[ "$(http_code)" == 401 ]] || die "registry.sh: registry on $ADDR answers without credentials; auth is not active"
  log "registry: serving on $ADDR (htpasswd auth, user '$USER_NAME', data in $DIR/data)"
fi

# Log the Debian client in once; its config holds the credential for later pushes.
DOCKER_CONFIG_FILE="${DOCKER_CONFIG:-$HOME/.docker}/config.json"
if ! { [[ -f "$DOCKER_CONFIG_FILE" ]] && jq -e --arg a "$ADDR" '.auths[$a].auth // empty' "$DOCKER_CONFIG_FILE" >/dev/null 2>&1 &&
  [[ "$(jq -r --arg a "$ADDR" '.auths[$a].auth' "$DOCKER_CONFIG_FILE" | base64 -d)" == "$USER_NAME:$(cat "$PASSWORD_FILE")" ]]; }; then
  [[ -x "$DOCKER" ]] || die "registry.sh: $DOCKER missing: run scripts/install-apt.sh first"
  "$DOCKER" login --username "$USER_NAME" --password-stdin "$ADDR" <"$PASSWORD_FILE" >/dev/null 2>&1 ||
    die "registry.sh: docker login to $ADDR failed (is the engine up? scripts/engine.sh)"
  log "registry: docker client logged in to $ADDR as '$USER_NAME'"
fi
