#!/usr/bin/env bash
# Shared helpers for the project's scripts: pinned versions, the tool cache and logging.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$REPO_ROOT/scripts/versions.env"
IF_CACHE="${IMAGE_FACTORY_CACHE:-$HOME/.cache/image-factory}"
IF_BIN="$IF_CACHE/bin"
mkdir -p "$IF_BIN"
export PATH="$IF_BIN:$PATH"
log() { printf '[image-factory] %s\n' "$*" >&2; }
die() { printf '[image-factory] error: %s\n' "$*" >&2; exit 1; }
# The Pulumi engine must never download a plugin: every plugin comes from install-go-tools.sh.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
# --- the one supervisor of the local services (engine.sh, registry.sh, registry-tls.sh, buildkit.sh) ---
# Messages name the calling script ("registry.sh: ...").
SCRIPT_NAME="${0##*/}"
# The pid a pid file names, only when that process is alive and runs PROGRAM (its /proc comm: the
# first 15 characters of the program's name), since pids get reused. Usage: pidfile_pid FILE PROGRAM
pidfile_pid() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[1-9][0-9]*$ && "$(cat "/proc/$pid/comm" 2>/dev/null)" == "${2:0:15}" ]] || return 1
  echo "$pid"
}
# Starts a service and waits until it answers. COMMAND runs under setsid (the service must outlive
# the shell, and the test run, that started it), stdin from /dev/null, output appended to LOG; its
# pid goes to PIDFILE, unless --own-pidfile says COMMAND writes PIDFILE itself (dockerd --pidfile).
# PROBE (a command, exit 0 when the service answers) is polled every 0.1 s for up to TIMEOUT seconds;
# a service that exits first, or stays silent, fails the script with the tail of LOG and a message
# naming NAME and ADDRESS. A pid file left by a process that is gone is removed first; one naming a
# live process of this program is refused (the caller's probe found it silent: stop it first).
# Usage: supervise_start [--own-pidfile] NAME ADDRESS PIDFILE LOG PROBE TIMEOUT -- COMMAND [ARG...]
# Variables the service needs go in front of the call (VAR=value supervise_start ...), off its argv.
supervise_start() {
  local own=0 name addr pidfile logfile probe timeout pid deadline
  if [[ "$1" == --own-pidfile ]]; then own=1; shift; fi
  [[ $# -ge 8 && "$7" == -- ]] || die "supervise_start: usage: [--own-pidfile] NAME ADDRESS PIDFILE LOG PROBE TIMEOUT -- COMMAND..."
  name=$1 addr=$2 pidfile=$3 logfile=$4 probe=$5 timeout=$6
  shift 7
  if pid="$(pidfile_pid "$pidfile" "${1##*/}")"; then
    die "$SCRIPT_NAME: $name (pid $pid, $pidfile) is running but does not answer on $addr; stop it first ($SCRIPT_NAME stop)"
  fi
  rm -f "$pidfile"
  # Without job control (a script) the background child is no group leader, so setsid execs COMMAND
  # in place and $! is the service's own pid.
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  pid=$!
  if ((own == 0)); then echo "$pid" >"$pidfile"; fi
  deadline=$((SECONDS + timeout))
  until "$probe"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logfile" >&2
      die "$SCRIPT_NAME: $name exited before answering on $addr (log: $logfile)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$logfile" >&2
      die "$SCRIPT_NAME: $name did not answer on $addr within $timeout s (log: $logfile)"
    fi
    sleep 0.1
  done
}
# Stops the process a pid file names (when it is alive and runs PROGRAM) and removes the pid file:
# SIGTERM, up to TENTHS tenths of a second to exit, then SIGKILL (a buildkitd stopping gracefully
# waits for the builds in flight; one left running would hold the port and state lock that the next
# start needs). Only a process that survives SIGKILL too keeps its pid file and fails the caller.
# Usage: stop_pidfile FILE PROGRAM "label" [TENTHS]
stop_pidfile() {
  local file=$1 program=$2 label=$3 tries=${4:-50} pid
  if pid="$(pidfile_pid "$file" "$program")"; then
    kill "$pid"
    if ! pid_gone "$pid" "$tries"; then
      log "$label still runs $((tries / 10)) s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      pid_gone "$pid" 50 || die "$SCRIPT_NAME: $program (pid $pid) still runs after SIGKILL; $file kept"
    fi
    log "$label stopped"
  fi
  rm -f "$file"
}
# stop_pidfile for the two registry scripts. A registry started before DISTRIBUTION_VERSION was pinned
# runs Debian's docker-registry; it is stopped too, so an upgraded machine restarts onto the pin
# instead of finding its port taken. Usage: stop_registry_pidfile PIDFILE LABEL
stop_registry_pidfile() {
  if pidfile_pid "$1" docker-registry >/dev/null; then stop_pidfile "$1" docker-registry "$2"; fi
  stop_pidfile "$1" distribution-registry "$2"
}
# Starts distribution-registry on CONFIG for the two registry scripts (supervise_start, 10 s). The
# http secret signs upload state; it only has to be stable for one process lifetime. No trace
# export: distribution v3 otherwise posts OpenTelemetry spans to localhost:4318 every second.
# Usage: start_registry ADDRESS PIDFILE LOG PROBE CONFIG
start_registry() {
  REGISTRY_HTTP_SECRET="$(openssl rand -hex 16)" OTEL_TRACES_EXPORTER=none \
    supervise_start registry "$1" "$2" "$3" "$4" 10 -- distribution-registry serve "$5"
}
# Waits up to TENTHS tenths of a second for a process to exit. Usage: pid_gone PID TENTHS
pid_gone() {
  for _ in $(seq 1 "$2"); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  ! kill -0 "$1" 2>/dev/null
}
# A port number from the environment, or die naming the variable. Usage: check_port VARIABLE VALUE
check_port() {
  [[ "$2" =~ ^[1-9][0-9]{0,4}$ && "$2" -le 65535 ]] || die "$SCRIPT_NAME: $1 must be a port number, got '$2'"
}
# A state directory from the environment, or die naming the variable. Usage: check_dir VARIABLE VALUE
check_dir() {
  [[ "$2" == /* ]] || die "$SCRIPT_NAME: $1 must be an absolute path, got '$2'"
}

# The local CAs (scripts/registry-tls.sh, scripts/buildkit.sh) exist to sign loopback leaves and
# nothing else: pathlen:0 (no intermediate CA below them) and name constraints for 127.0.0.1 and
# localhost, so a copy of a CA key cannot mint a certificate that a client trusting it would accept
# for any other name. The profile is recorded beside the CA (ca.profile): a CA made under an older
# profile, or in its last 30 days, is replaced, and the caller's leaves then fail to verify against
# the new CA, so it reissues them and restarts its service.
LOOPBACK_CA_EXTENSIONS=(
  "basicConstraints=critical,CA:TRUE,pathlen:0"
  "keyUsage=critical,keyCertSign,cRLSign"
  "nameConstraints=critical,permitted;IP:127.0.0.1/255.255.255.255,permitted;DNS:localhost"
)
LOOPBACK_CA_DAYS=825
# Usage: loopback_ca DIR "COMMON NAME"   (makes or keeps DIR/ca.pem and DIR/ca-key.pem)
loopback_ca() {
  local dir=$1 cn=$2 profile ext args=()
  profile="$(printf '%s\n' "${LOOPBACK_CA_EXTENSIONS[@]}" "days=$LOOPBACK_CA_DAYS" "cn=$cn")"
  if [[ -s "$dir/ca.pem" && -s "$dir/ca-key.pem" && "$(cat "$dir/ca.profile" 2>/dev/null)" == "$profile" ]] &&
    openssl x509 -in "$dir/ca.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
    return 0
  fi
  log "making the CA '$cn' in $dir (pathlen:0, loopback names only)"
  rm -f "$dir/ca.pem" "$dir/ca-key.pem" "$dir/ca.srl" "$dir/ca.profile"
  for ext in "${LOOPBACK_CA_EXTENSIONS[@]}"; do args+=(-addext "$ext"); done
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca-key.pem" 2>/dev/null)
  openssl req -x509 -new -key "$dir/ca-key.pem" -subj "/CN=$cn" -days "$LOOPBACK_CA_DAYS" -sha256 \
    "${args[@]}" -out "$dir/ca.pem" 2>/dev/null || die "loopback_ca: openssl could not make $dir/ca.pem"
  printf '%s\n' "$profile" >"$dir/ca.profile"
}
# Leaf certificates signed by DIR's loopback_ca: DIR/NAME.pem and DIR/NAME-key.pem (P-256, mode 600),
# each EXTENSION one line of the openssl extensions file. A server on loopback takes
# LOOPBACK_SERVER_EXTENSIONS (SAN 127.0.0.1 and localhost).
# shellcheck disable=SC2034 # read by the scripts that source lib.sh
LOOPBACK_SERVER_EXTENSIONS=(
  "basicConstraints=CA:FALSE"
  "keyUsage=critical,digitalSignature,keyEncipherment"
  "extendedKeyUsage=serverAuth"
  "subjectAltName=IP:127.0.0.1,DNS:localhost"
)
LOOPBACK_LEAF_DAYS=825
# Usage: loopback_leaf DIR NAME "COMMON NAME" EXTENSION...
loopback_leaf() {
  local dir=$1 name=$2 cn=$3
  shift 3
  rm -f "$dir/$name.pem" "$dir/$name-key.pem"
  (umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name-key.pem" 2>/dev/null) ||
    die "loopback_leaf: openssl could not make $dir/$name-key.pem"
  openssl req -new -key "$dir/$name-key.pem" -subj "/CN=$cn" -out "$dir/$name.csr" 2>/dev/null ||
    die "loopback_leaf: openssl could not make $dir/$name.csr"
  printf '%s\n' "$@" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -days "$LOOPBACK_LEAF_DAYS" -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.pem" 2>/dev/null ||
    die "loopback_leaf: openssl could not sign $dir/$name.pem with $dir/ca.pem"
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  chmod 600 "$dir/$name-key.pem"
}
