#!/usr/bin/env bash
# The local registry over TLS: a second distribution process on 127.0.0.1:5443 serving the same
# storage and htpasswd as scripts/registry.sh's plain-HTTP 127.0.0.1:5000, with a certificate from a
# local CA. Why: the docker-build provider reads back every Index it pushes with regclient, which
# speaks HTTPS to any registry but localhost-by-name and offers no insecure option, so `pulumi up`
# against http://127.0.0.1:5000 fails after the push ("server gave HTTP response to HTTPS client").
# A TLS registry is also the shape GHCR has. The two ports show the same repositories and tags.
#
# Go programs (the Pulumi engine and providers, buildx, Syft, Trivy, crane) trust the CA through
# SSL_CERT_FILE=$IF_CACHE/registry-tls/ca-bundle.pem (the system bundle plus the local CA);
# buildkitd through its registry config (scripts/buildkit.sh); Node through NODE_EXTRA_CA_CERTS.
# Idempotent: on a ready machine it only checks and returns in well under a second.
# Usage: scripts/registry-tls.sh          bring up (default; needs scripts/registry.sh first)
#        scripts/registry-tls.sh certs    only make the CA, certificate and bundle
#        scripts/registry-tls.sh status   exit 0 when 127.0.0.1:5443 answers over TLS with auth
#        scripts/registry-tls.sh stop     stop the instance this script started (pid file)
#        scripts/registry-tls.sh env      print SSL_CERT_FILE for the bundle
# Environment (a private instance for a test):
#   IF_REGISTRY_TLS_PORT  TCP port on 127.0.0.1                                   (default: 5443)
#   IF_REGISTRY_TLS_DIR   CA, certificate, bundle, config, pid file and log        (default: $IF_CACHE/registry-tls)
#   IF_REGISTRY_DIR       scripts/registry.sh's directory: storage and users       (default: $IF_CACHE/registry)
#   IF_REGISTRY_PORT      scripts/registry.sh's port, named in the log line        (default: 5000)
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${IF_REGISTRY_TLS_PORT:-5443}"
check_port IF_REGISTRY_TLS_PORT "$PORT"
ADDR="127.0.0.1:$PORT"
PLAIN="${IF_REGISTRY_DIR:-$IF_CACHE/registry}"
check_dir IF_REGISTRY_DIR "$PLAIN"
PLAIN_ADDR="127.0.0.1:${IF_REGISTRY_PORT:-5000}"
DIR="${IF_REGISTRY_TLS_DIR:-$IF_CACHE/registry-tls}"
check_dir IF_REGISTRY_TLS_DIR "$DIR"
CONFIG="$DIR/config.yml"
PIDFILE="$DIR/registry.pid"
SYSTEM_BUNDLE=/etc/ssl/certs/ca-certificates.crt
mkdir -p "$DIR"
chmod 700 "$DIR"

code() { # HTTP status of GET /v2/ over TLS with the local CA; extra curl args (e.g. --config -) allowed
  curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$DIR/ca.pem" "$@" "https://$ADDR/v2/" || true
}
authed_code() { printf 'user = "factory:%s"\n' "$(cat "$PLAIN/password")" | code --config -; }
tls_up() { [[ -f "$DIR/ca.pem" && -f "$PLAIN/password" ]] && [[ "$(authed_code)" == 200 ]]; }
stop_tls() { stop_registry_pidfile "$PIDFILE" "registry-tls:"; }

# The CA comes from lib.sh's loopback_ca (pathlen:0, names limited to 127.0.0.1 and localhost); a CA
# of an older profile is replaced there, and the server certificate below then no longer verifies, so
# it is reissued and the running registry restarted.
certs_ok() {
  [[ -s "$DIR/server.pem" && -s "$DIR/server-key.pem" && -s "$DIR/ca-bundle.pem" ]] &&
    openssl verify -CAfile "$DIR/ca.pem" "$DIR/server.pem" >/dev/null 2>&1 &&
    openssl x509 -in "$DIR/server.pem" -noout -checkend 86400 >/dev/null &&
    cat "$SYSTEM_BUNDLE" "$DIR/ca.pem" | cmp -s - "$DIR/ca-bundle.pem"
}
make_certs() {
  loopback_ca "$DIR" "image-factory local registry CA"
  certs_ok && return 0
  log "registry-tls: making a server certificate (SAN 127.0.0.1, localhost)"
  rm -f "$DIR/ca-bundle.pem"
  loopback_leaf "$DIR" server 127.0.0.1 "${LOOPBACK_SERVER_EXTENSIONS[@]}"
  cat "$SYSTEM_BUNDLE" "$DIR/ca.pem" >"$DIR/ca-bundle.pem"
  certs_ok || die "registry-tls.sh: the certificates made in $DIR do not verify"
  stop_tls
}

case "${1:-up}" in
  certs) make_certs; exit 0 ;;
  status) tls_up; exit ;;
  stop) stop_tls; exit 0 ;;
  env) printf 'SSL_CERT_FILE=%s\n' "$DIR/ca-bundle.pem"; exit 0 ;;
  up) ;;
  *) die "registry-tls.sh: unknown command '$1' (expected up, certs, status, stop or env)" ;;
esac

command -v distribution-registry >/dev/null || die "registry-tls.sh: distribution-registry missing: run scripts/install-go-tools.sh registry first"
[[ -s "$PLAIN/htpasswd" && -s "$PLAIN/password" ]] || die "registry-tls.sh: $PLAIN/htpasswd missing: run scripts/registry.sh first"
make_certs

cat >"$CONFIG.new" <<YAML
# Written by scripts/registry-tls.sh: the storage and users of scripts/registry.sh, served over TLS by
# distribution $DISTRIBUTION_VERSION (a new pin restarts the registry).
version: 0.1
log:
  level: warn
  fields:
    service: image-factory-registry-tls
storage:
  filesystem:
    rootdirectory: $PLAIN/data
  delete:
    enabled: true
http:
  addr: $ADDR
  tls:
    certificate: $DIR/server.pem
    key: $DIR/server-key.pem
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: image-factory
    path: $PLAIN/htpasswd
YAML
if ! cmp -s "$CONFIG.new" "$CONFIG"; then mv "$CONFIG.new" "$CONFIG"; stop_tls; else rm -f "$CONFIG.new"; fi
# The registry reads htpasswd once at start: a password change by registry.sh needs a restart.
if [[ -f "$PIDFILE" && "$PLAIN/htpasswd" -nt "$PIDFILE" ]]; then stop_tls; fi

if tls_up; then
  log "registry-tls: already serving on https://$ADDR"
else
  [[ "$(code)" == 000 ]] || { stop_tls; [[ "$(code)" == 000 ]] || die "registry-tls.sh: something else answers on $ADDR; stop it first"; }
  start_registry "https://$ADDR" "$PIDFILE" "$DIR/registry.log" tls_up "$CONFIG"
  [[ "$(code)" == 401 ]] || die "registry-tls.sh: https://$ADDR answers without credentials; auth is not active"
  log "registry-tls: serving https://$ADDR (same storage and users as http://$PLAIN_ADDR)"
fi
