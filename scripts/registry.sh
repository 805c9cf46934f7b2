#!/usr/bin/env bash
# Runs a local distribution registry (Debian docker-registry 2.8) on 127.0.0.1:5000 with htpasswd
# (bcrypt) auth for user `factory`, and logs the Debian docker client in to it. The password is
# generated once and kept in $IF_CACHE/registry/password (mode 600); nothing secret is printed.
# Storage: $IF_CACHE/registry/data, deletes enabled. Idempotent: on a ready machine it returns in
# well under a second.
# Usage: scripts/registry.sh          bring up (default)
#        scripts/registry.sh status   exit 0 when the registry answers with auth
#        scripts/registry.sh stop     stop the registry this script started (pid file)
# Tests read the address from IF_REGISTRY (127.0.0.1:5000), the user `factory` and the password file.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ADDR=127.0.0.1:5000
USER_NAME=factory
DIR="$IF_CACHE/registry"
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
# The pid in our pid file, only when that process really is the registry (pids get reused).
our_registry_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == docker-registry ]] || return 1
  echo "$pid"
}
# Only a pid that really is our registry is signalled (pids get reused).
stop_registry() {
  if our_registry_pid >/dev/null; then stop_pidfile "$PIDFILE" "registry:"; else rm -f "$PIDFILE"; fi
}

case "${1:-up}" in
  status) registry_up; exit ;;
  stop) stop_registry; exit 0 ;;
  up) ;;
  *) die "registry.sh: unknown command '$1' (expected up, status or stop)" ;;
esac

command -v docker-registry >/dev/null || die "registry.sh: docker-registry missing: run scripts/install-apt.sh first"
command -v htpasswd >/dev/null || die "registry.sh: htpasswd missing (apache2-utils): run scripts/install-apt.sh first"

if [[ ! -s "$PASSWORD_FILE" ]]; then
  (umask 077; openssl rand -hex 24 >"$PASSWORD_FILE")
  log "registry: generated a password for user '$USER_NAME' in $PASSWORD_FILE"
fi
chmod 600 "$PASSWORD_FILE"

# htpasswd -v checks the stored bcrypt hash against the password without printing either.
if [[ ! -s "$HTPASSWD" ]] || ! htpasswd -v -i "$HTPASSWD" "$USER_NAME" <"$PASSWORD_FILE" >/dev/null 2>&1; then
  (umask 077; htpasswd -B -C 10 -i -c "$HTPASSWD" "$USER_NAME" <"$PASSWORD_FILE" 2>/dev/null)
  stop_registry # the registry reads htpasswd at start
fi

cat >"$CONFIG.new" <<YAML
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
  # The http secret signs upload state; it only has to be stable for one process lifetime.
  REGISTRY_HTTP_SECRET="$(openssl rand -hex 16)" setsid docker-registry serve "$CONFIG" \
    </dev/null >>"$DIR/registry.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do registry_up && break; sleep 0.1; done
  registry_up || { tail -n 20 "$DIR/registry.log" >&2; die "registry.sh: registry did not answer on $ADDR within 10 s (log: $DIR/registry.log)"; }
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
