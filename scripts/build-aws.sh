#!/usr/bin/env bash
# Builds the AWS Lambda function: one `bootstrap` executable for the
# provided.al2023 runtime on arm64 (Graviton: cheaper per GB-second, and the
# binary has no cgo to care about the CPU), zipped with `bootstrap` at the
# root of the archive, which is where Lambda looks for it.
#
# Usage: scripts/build-aws.sh [ZIP]     (default dist/onboard-lambda.zip)
#
#   -tags lambda.norpc  leaves out aws-lambda-go's legacy net/rpc mode, which
#                       only the retired go1.x runtime used
#   onboard_nofakes     leaves out the sandbox's in-memory fakes, which a
#                       deployed function never starts
#   CGO_ENABLED=0       a static binary: provided.al2023 promises no libc version
#   -trimpath, -s -w    no local paths or debug tables: smaller, reproducible
#
# The archive's timestamps are pinned, so the same source gives the same zip
# and CloudFormation does not redeploy an unchanged function.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
zipfile=${1:-$root/dist/onboard-lambda.zip}
command -v zip >/dev/null || { echo "build-aws: zip is required (apt-get install zip)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/onboard-aws-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

cd "$root"
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 "${GO:-go}" build -tags lambda.norpc,onboard_nofakes -trimpath -ldflags='-s -w' \
  -o "$work/bootstrap" ./functions/aws
touch -t 198001010000 "$work/bootstrap"

mkdir -p "$(dirname "$zipfile")"
rm -f "$zipfile"
(cd "$work" && TZ=UTC zip -X -q "$zipfile.tmp" bootstrap)
mv "$zipfile.tmp" "$zipfile"
echo "build-aws: $zipfile ($(du -h "$zipfile" | cut -f1))"
