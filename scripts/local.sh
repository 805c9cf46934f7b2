#!/usr/bin/env bash
# `npm run local`: the whole factory on this machine with no cloud. Bootstraps the tools and local
# services (scripts/bootstrap.sh: pinned tools, Docker engine, QEMU binfmt, registry on
# 127.0.0.1:5000, offline base images, buildkitd over mTLS), selects or creates the `local` stack on
# a file backend in .local/state with the passphrase secrets provider (scripts/prepare-stack.ts, the
# Automation API), runs the real
# `pulumi up --stack local --yes`, and prints the exports (index digest, digest per platform, tags,
# cache refs).
#
# The stack's registry is https://127.0.0.1:5443, the TLS twin of http://127.0.0.1:5000
# (scripts/registry-tls.sh; same storage and users), because docker-build reads pushed indexes back
# over HTTPS.
#
# Usage: scripts/local.sh [up]            bootstrap + pulumi up + print the exports (default)
#        scripts/local.sh preview [args]  pulumi preview on the stack (e.g. --json, --diff)
#        scripts/local.sh outputs         print the exports as JSON
#        scripts/local.sh destroy         pulumi destroy --yes (images stay in the registry)
#        scripts/local.sh pulumi <cmd> [args]  any pulumi command with the stack's backend, --stack
#                                          and (where pulumi takes it) --config-file
#        scripts/local.sh review [args]   the pull-request review of the working tree against this
#                                          stack (scripts/review.ts, `npm run review`): a real build
#                                          into <imageName>-review on a review stack in
#                                          .local/review/<stack>/, evidence, diff, Markdown
# Environment (the e2e tests use these to run fresh, isolated stacks):
#   IF_LOCAL_DIR     state, passphrase and generated stack config   (default: <repo>/.local)
#   IF_STACK         stack name                                     (default: local)
#   IF_PROJECT_DIR   Pulumi project directory                       (default: <repo>)
#   IF_STACK_CONFIG  committed stack config the run starts from     (default: <project>/Pulumi.local.yaml)
#   IF_SKIP_BOOTSTRAP=1  skip scripts/bootstrap.sh (the caller already ran it)
#
# Secrets: the registry password ($IF_CACHE/registry/password) becomes the Pulumi secret
# image-factory:registryToken in the generated config file .local/stacks/Pulumi.<stack>.yaml (never
# in the committed Pulumi.local.yaml). scripts/prepare-stack.ts creates or selects the stack with the
# Automation API (LocalWorkspace) and reads and encrypts the password in its own process, so it is
# never on a command line or in an environment variable.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROJECT_DIR="$(cd "${IF_PROJECT_DIR:-$REPO_ROOT}" && pwd)"
LOCAL_DIR="${IF_LOCAL_DIR:-$REPO_ROOT/.local}"
STACK="${IF_STACK:-local}"
BASE_CONFIG="${IF_STACK_CONFIG:-$PROJECT_DIR/Pulumi.local.yaml}"
PASSWORD_FILE="$IF_CACHE/registry/password"

mkdir -p "$LOCAL_DIR/state" "$LOCAL_DIR/stacks"
chmod 700 "$LOCAL_DIR"
LOCAL_DIR="$(cd "$LOCAL_DIR" && pwd)"
STACK_CONFIG="$LOCAL_DIR/stacks/Pulumi.$STACK.yaml"

export PULUMI_BACKEND_URL="file://$LOCAL_DIR/state"
export PULUMI_CONFIG_PASSPHRASE_FILE="$LOCAL_DIR/passphrase"
unset PULUMI_CONFIG_PASSPHRASE
# The engine must never download a plugin: every plugin comes from scripts/install-go-tools.sh.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_SKIP_CONFIRMATIONS=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
# The program is type-checked by `npm test` and CI (tsc --noEmit); `pulumi up` only transpiles it,
# which halves the CPU a run spends before its first resource (npm run bench, README).
export PULUMI_NODEJS_TRANSPILE_ONLY=true
# Go programs (the docker-build provider, buildx, scanners) trust the local registry's CA through
# SSL_CERT_FILE, Node (the program, dynamic providers) through NODE_EXTRA_CA_CERTS: both point at the
# system CAs plus the local CA, plus whatever bundles the environment already named (this machine
# names its TLS proxy's bundle there).
trust_bundle() {
  bash "$REPO_ROOT/scripts/registry-tls.sh" certs >&2
  local out="$LOCAL_DIR/ca-bundle.pem" f
  {
    cat "$IF_CACHE/registry-tls/ca-bundle.pem"
    for f in "${SSL_CERT_FILE:-}" "${NODE_EXTRA_CA_CERTS:-}"; do
      if [[ -n "$f" && -f "$f" && "$f" != /etc/ssl/certs/ca-certificates.crt && "$f" != "$out" ]]; then cat "$f"; fi
    done
  } >"$out.new"
  mv "$out.new" "$out"
  export SSL_CERT_FILE="$out" NODE_EXTRA_CA_CERTS="$out"
}
# docker-build's Index runs `buildx imagetools` on this builder, which only holds the registry
# settings (TLS for 127.0.0.1:5443; see scripts/buildkit.sh). Images name their builder explicitly.
export BUILDX_BUILDER=image-factory-registries

# pulumi_stack <command...>: a pulumi command on this stack; --config-file where pulumi accepts it.
pulumi_stack() {
  local sub="$1"; shift
  local extra=()
  case "$sub" in
    up | preview | refresh | destroy | config) extra=(--config-file "$STACK_CONFIG") ;;
  esac
  pulumi --cwd "$PROJECT_DIR" "$sub" --stack "$STACK" "${extra[@]}" "$@"
}

prepare_stack() {
  # The stack's registry is the TLS twin of the local registry (see scripts/registry-tls.sh).
  bash "$REPO_ROOT/scripts/registry-tls.sh" >&2 || die "local.sh: scripts/registry-tls.sh failed"
  trust_bundle
  command -v pulumi >/dev/null || die "local.sh: pulumi is not on PATH: run scripts/install-go-tools.sh"
  command -v pulumi-language-nodejs >/dev/null || die "local.sh: pulumi-language-nodejs is not on PATH: run scripts/install-go-tools.sh"
  [[ -f "$BASE_CONFIG" ]] || die "local.sh: stack config $BASE_CONFIG does not exist"
  grep -q '^encryptionsalt:' "$BASE_CONFIG" && die "local.sh: $BASE_CONFIG must not carry an encryptionsalt (it is generated per machine)"
  [[ -s "$PASSWORD_FILE" ]] || die "local.sh: registry password $PASSWORD_FILE missing: run scripts/registry.sh"

  if [[ ! -s "$PULUMI_CONFIG_PASSPHRASE_FILE" ]]; then
    (umask 077; openssl rand -hex 32 >"$PULUMI_CONFIG_PASSPHRASE_FILE")
    log "local: generated the secrets passphrase in $PULUMI_CONFIG_PASSPHRASE_FILE"
  fi
  chmod 600 "$PULUMI_CONFIG_PASSPHRASE_FILE"

  # A warm command skips the Automation API (about 2 s of its start, npm run bench): the generated
  # config stays while its inputs and the backend's stack are what they were when it was written.
  local stamp_file="$LOCAL_DIR/stacks/.prepared-$STACK" stamp
  if stamp="$(prepared_stamp)" && [[ -f "$stamp_file" && "$(<"$stamp_file")" == "$stamp" ]]; then
    return 0
  fi
  # The stack and its generated config (salt + committed settings + the token secret) through the
  # Automation API (LocalWorkspace): scripts/prepare-stack.ts reads the password itself.
  (cd "$REPO_ROOT" && node -r ts-node/register/transpile-only scripts/prepare-stack.ts --project-dir "$PROJECT_DIR" \
    --stack "$STACK" --base-config "$BASE_CONFIG" --stacks-dir "$LOCAL_DIR/stacks" --password-file "$PASSWORD_FILE" >&2) ||
    die "local.sh: scripts/prepare-stack.ts could not prepare stack $STACK (backend $PULUMI_BACKEND_URL)"
  if stamp="$(prepared_stamp)"; then printf '%s\n' "$stamp" >"$stamp_file"; fi
}

# What the generated config was made from: Pulumi.yaml and the base config (content), the registry
# password, the passphrase and the generated file itself (inode, size, mtime: no secret is hashed),
# and the backend's stack file. Fails when the stack or its config does not exist.
prepared_stamp() {
  local project state
  project="$(sed -n 's/^name:[[:space:]]*//p' "$PROJECT_DIR/Pulumi.yaml" | head -n 1)"
  state="$LOCAL_DIR/state/.pulumi/stacks/$project/$STACK.json"
  [[ -n "$project" && -f "$state" && -f "$STACK_CONFIG" ]] || return 1
  {
    sha256sum "$PROJECT_DIR/Pulumi.yaml" "$BASE_CONFIG" | cut -d' ' -f1
    stat -c '%i %s %Y' "$PASSWORD_FILE" "$PULUMI_CONFIG_PASSPHRASE_FILE" "$STACK_CONFIG"
  } | sha256sum | cut -d' ' -f1
}

print_outputs() {
  local out
  out="$(pulumi --cwd "$PROJECT_DIR" stack output --stack "$STACK" --json)" || die "local.sh: pulumi stack output failed"
  jq -r '
    "image      \(.imageName // "-")",
    "digest     \(.digest // "-")",
    "imageRef   \(.imageRef // "-")",
    "platforms",
    ((.platformDigests // {}) | to_entries[] | "  \(.key)\t\(.value)"),
    "tags",
    ((.tags // [])[] | "  \(.)"),
    "cacheRefs",
    ((.cacheRefs // {}) | to_entries[] | "  \(.key)\t\(.value)"),
    "gateResults  passed=\(.gateResults.passed | tostring)  digest=\(.gateResults.digest // "-")  notRun=\(.gateResults.notRun // [] | tostring)  waived=\(.gateResults.waived // {} | keys | tostring)",
    ((.gateResults.platformDigests // {}) | to_entries[] | "  judged \(.key)\t\(.value)"),
    ((.gateResults.checks // [])[] | "  \(.status)\t\(.gate)\t\(.measured // "-")\(if .unit != "" then " " + .unit else "" end) (limit \(.limit))")
  ' <<<"$out"
}

cmd="${1:-up}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  up)
    if [[ "${IF_SKIP_BOOTSTRAP:-0}" != 1 ]]; then bash "$REPO_ROOT/scripts/bootstrap.sh"; fi
    prepare_stack
    log "local: pulumi up --stack $STACK"
    # No separate preview pass: docker-build builds during previews too, so it would build twice.
    pulumi_stack up --yes --skip-preview --non-interactive "$@"
    print_outputs
    ;;
  preview)
    prepare_stack
    pulumi_stack preview --non-interactive "$@"
    ;;
  outputs)
    pulumi --cwd "$PROJECT_DIR" stack output --stack "$STACK" --json
    ;;
  destroy)
    prepare_stack
    pulumi_stack destroy --yes --non-interactive "$@"
    ;;
  pulumi)
    [[ $# -gt 0 ]] || die "local.sh pulumi: name a pulumi command"
    prepare_stack
    pulumi_stack "$@"
    ;;
  review)
    # Node reads NODE_EXTRA_CA_CERTS only at start: the review runs with the local registry's CA
    # trusted and the pinned tools on PATH. It drives this script again for the target stack
    # (outputs, preview) and for its own review stack (IF_LOCAL_DIR=.local/review/<stack>/local).
    bash "$REPO_ROOT/scripts/registry-tls.sh" >&2 || die "local.sh: scripts/registry-tls.sh failed"
    trust_bundle
    export IF_REVIEW_LOCAL=1 IF_STACK="$STACK" IF_LOCAL_DIR="$LOCAL_DIR" IF_STACK_CONFIG="$BASE_CONFIG"
    exec "$REPO_ROOT/node_modules/.bin/ts-node" --transpile-only "$REPO_ROOT/scripts/review.ts" "$@"
    ;;
  *) die "local.sh: unknown command '$cmd' (expected up, preview, outputs, destroy, pulumi or review)" ;;
esac
