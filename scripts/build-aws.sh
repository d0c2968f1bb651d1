#!/usr/bin/env bash
# Builds the AWS Lambda functions: each one `bootstrap` executable for the
# provided.al2023 runtime on arm64 (Graviton: cheaper per GB-second, and the
# binary has no cgo to care about the CPU), zipped with `bootstrap` at the
# root of the archive, which is where Lambda looks for it.
#
#   onboard-lambda.zip         ./functions/aws: webhooks, SQS, the targets' tasks
#   onboard-sheets-lambda.zip  ./functions/aws/sheets: Google Sheets polls, the
#                              only build that links Google's Sheets client
#
# Usage: scripts/build-aws.sh [DIR]     (default dist)
#
#   -tags lambda.norpc  leaves out aws-lambda-go's legacy net/rpc mode, which
#                       only the retired go1.x runtime used
#   onboard_nofakes     leaves out the sandbox's in-memory fakes, which a
#                       deployed function never starts
#   CGO_ENABLED=0       a static binary: provided.al2023 promises no libc version
#   -trimpath, -s -w    no local paths or debug tables: smaller, reproducible
#
# The archives' timestamps are pinned, so the same source gives the same zip
# and CloudFormation does not redeploy an unchanged function.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/dist}
command -v zip >/dev/null || { echo "build-aws: zip is required (apt-get install zip)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/onboard-aws-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

cd "$root"
build() { # build ZIP PACKAGE
  local zipfile="$dir/$1"
  mkdir -p "$work/$1"
  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 "${GO:-go}" build -tags lambda.norpc,onboard_nofakes -trimpath -ldflags='-s -w' \
    -o "$work/$1/bootstrap" "$2"
  touch -t 198001010000 "$work/$1/bootstrap"
  rm -f "$zipfile"
  (cd "$work/$1" && TZ=UTC zip -X -q "$zipfile.tmp" bootstrap)
  mv "$zipfile.tmp" "$zipfile"
  echo "build-aws: $zipfile ($(du -h "$zipfile" | cut -f1))"
}
build onboard-lambda.zip ./functions/aws
build onboard-sheets-lambda.zip ./functions/aws/sheets
