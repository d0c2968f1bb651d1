# shellcheck shell=bash
# Shared helpers for scripts/deploy-*.sh and scripts/destroy-*.sh. Source it;
# do not run it.
#
# DRY_RUN=1 prints every command (prefixed with "+ ") instead of running it,
# skips the "logged in" checks and prints placeholders where a real run would
# read a value from the cloud. The output depends only on the environment
# given, never on the time or the machine, so testdata/deploy/*.golden can pin
# it (infra/infra_test.go).

DRY_RUN="${DRY_RUN:-0}"
FORCE="${FORCE:-0}"

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

say() { printf '%s\n' "$*"; }

step() { printf '\n== %s\n' "$*"; }

dry_run() { [[ "$DRY_RUN" == 1 ]]; }

# quote ARG...: the arguments as one line a shell would split back into them.
quote() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      out+="$a "
    elif [[ "$a" == *\'* && "$a" != *[\"\$\`\\!]* ]]; then
      out+="\"$a\" "
    else
      out+="'${a//\'/\'\\\'\'}' "
    fi
  done
  printf '%s' "${out% }"
}

# run CMD ARG...: print the command, then run it unless DRY_RUN=1.
run() {
  printf '+ %s\n' "$(quote "$@")"
  dry_run || "$@"
}

# run_sh 'SHELL TEXT': the same for a pipeline or a compound command.
run_sh() {
  printf '+ %s\n' "$1"
  dry_run || bash -euo pipefail -c "$1"
}

# capture VAR PLACEHOLDER CMD ARG...: print the command; store its output in
# VAR, or PLACEHOLDER under DRY_RUN=1.
capture() {
  local __var="$1" placeholder="$2"
  shift 2
  printf '+ %s\n' "$(quote "$@")"
  local __out
  if dry_run; then
    __out="$placeholder"
  else
    __out="$("$@")"
  fi
  printf -v "$__var" '%s' "$__out"
}

# need CMD...: fail with an install hint when a command is missing.
need() {
  local c missing=()
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  ((${#missing[@]} == 0)) && return 0
  local hint=""
  for c in "${missing[@]}"; do
    case "$c" in
      gcloud) hint+=$'\n  gcloud: https://cloud.google.com/sdk/docs/install (or apt-get install google-cloud-cli)' ;;
      terraform) hint+=$'\n  terraform: https://developer.hashicorp.com/terraform/install (1.5 or newer)' ;;
      aws) hint+=$'\n  aws: the AWS CLI (pip install awscli, or https://aws.amazon.com/cli/)' ;;
      zip) hint+=$'\n  zip: apt-get install zip' ;;
      go) hint+=$'\n  go: https://go.dev/dl/ (the version in go.mod)' ;;
      *) hint+=$'\n  '"$c" ;;
    esac
  done
  die "missing command(s): ${missing[*]}; install:${hint}"
}

# repo_root: cd to the repository root (the parent of scripts/).
repo_root() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." || die "cannot cd to the repository root"
}

# policy_file: the onboard.yaml to ship, from ONBOARD_CONFIG (a path relative
# to the repository root) or onboard.yaml. It is copied into the artifact as
# onboard.yaml and the function is pointed at it, so what `make run` uses is
# what gets deployed.
policy_file() {
  local p="${ONBOARD_CONFIG:-onboard.yaml}"
  [[ -f "$p" ]] || die "policy file $p not found: copy testdata/onboard.yaml to onboard.yaml and edit it (profiles, allowed domains), or set ONBOARD_CONFIG=path/to/policy.yaml"
  printf '%s' "$p"
}

# confirm WHAT: ask the operator to type WHAT back, unless FORCE=1. Without a
# terminal and without FORCE=1 it refuses.
confirm() {
  local want="$1" got=""
  if [[ "$FORCE" == 1 ]]; then
    say "FORCE=1: not asking for confirmation."
    return 0
  fi
  if dry_run; then
    say "dry run: a real run asks you to type \"$want\" to confirm (FORCE=1 skips the question)."
    return 0
  fi
  [[ -t 0 ]] || die "refusing to destroy without confirmation: run it in a terminal, or set FORCE=1"
  read -r -p "Type \"$want\" to confirm: " got
  [[ "$got" == "$want" ]] || die "not confirmed; nothing was removed"
}

# finish MESSAGE: the closing line; a dry run says that nothing changed.
finish() {
  if dry_run; then
    say "DRY_RUN=1: nothing was changed."
  else
    say "$*"
  fi
}

# check_name NAME: a short lower-case resource prefix, valid on both clouds.
check_name() {
  [[ "$1" =~ ^[a-z][a-z0-9-]{2,19}$ ]] || die "ONBOARD_NAME=$1: use 3-20 characters, lower-case letters, digits and '-', starting with a letter"
}

# onboard_cli: the CLI, which knows from the target registry what a policy
# needs (bin/onboard or an onboard on PATH, else go run).
onboard_cli() {
  if command -v onboard >/dev/null 2>&1; then
    onboard "$@"
  elif [[ -x bin/onboard ]]; then
    bin/onboard "$@"
  else
    go run ./cmd/onboard "$@"
  fi
}

# check_settings POLICY: refuses, naming each, a required plain setting of a
# target the policy uses that is not set (a Periscope-only policy needs no
# LOOKERSDK_*), and a base URL that is not https. A read, so DRY_RUN runs it.
check_settings() {
  onboard_cli settings --check --config "$1" || die "the policy $1 uses targets whose settings are missing (above); set them (docs/deploy.md)"
  local v
  for v in LOOKERSDK_BASE_URL AAC_BASE_URL PERISCOPE_BASE_URL; do
    [[ -z "${!v:-}" || "${!v}" == https://* ]] || die "$v must start with https://"
  done
}

# needed_secrets POLICY: the secrets the policy's deployment needs, space-separated.
needed_secrets() {
  onboard_cli settings --secrets --config "$1" | tr '\n' ' ' | sed 's/ $//'
}

# policy_schedules POLICY: the jobs the policy schedules, a poll per Google
# Sheet, one "TASK every INTERVAL" line each (the targets' own tasks, which
# the infrastructure schedules itself, have no interval). A read, so DRY_RUN
# runs it.
policy_schedules() {
  ONBOARD_CONFIG="$1" onboard_cli task list | sed -n 's/^\(.*[^ ]\)  *every \([0-9hms]*\)$/\1 every \2/p'
}

# polled_sheets POLICY: the address of each spreadsheet the policy polls,
# once each however many of its tabs are polled.
polled_sheets() {
  policy_schedules "$1" | sed -n 's|^sheets-poll:\([A-Za-z0-9_-]*\).*|https://docs.google.com/spreadsheets/d/\1/edit|p' | sort -u
}

# task_list_json POLICY: the shell text writing `onboard task list --json`
# for POLICY with the CLI make build made, for run_sh.
task_list_json() {
  printf 'ONBOARD_CONFIG=%s bin/onboard task list --json' "$(quote "$1")"
}
