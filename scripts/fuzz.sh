#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 30s), one at
# a time: `go test -fuzz` accepts one target per package per run.
# A failing input is written by Go under the package's testdata/fuzz/FuzzX/,
# where it stays as a seed that every `make test` replays; commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

found=0
for pkg in $($GO list ./...); do
  targets=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for target in $targets; do
    found=$((found + 1))
    echo "== $target ($pkg, $FUZZTIME)"
    # One worker: targets that run a whole instance per worker stall when
    # two workers share this machine's two cores with it (seen with the
    # Lambda handler's); one worker keeps every target moving.
    $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel 1 "$pkg"
  done
done
if [ "$found" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $found targets ran for $FUZZTIME each without a failure"
