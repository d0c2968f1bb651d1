#!/usr/bin/env bash
# Runs every fuzz target in the module for FUZZTIME each (default 30s), one at
# a time: `go test -fuzz` accepts one target per package per run.
# A failing input is written by Go under the package's testdata/fuzz/FuzzX/,
# where it stays as a seed that every `make test` replays; commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

# Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
# failure ("context deadline exceeded", no failing input written): a race
# fixed only in Go 1.27 (https://go.dev/issue/75804). Such a run found
# nothing, so it is run again; any run that writes a failing input fails.
attempts=3

corpus_files() { if [ -d "$1" ]; then find "$1" -type f | sort; fi; }

fuzz_one() {
  local pkg=$1 target=$2 dir log before attempt
  dir="$($GO list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$target"
  log=$(mktemp)
  for attempt in $(seq 1 "$attempts"); do
    before=$(corpus_files "$dir")
    # One worker: targets that run a whole instance per worker stall when
    # two workers share this machine's two cores with it (seen with the
    # Lambda handler's); one worker keeps every target moving.
    if $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -parallel 1 "$pkg" 2>&1 | tee "$log"; then
      rm -f "$log"
      return 0
    fi
    if [ "$(corpus_files "$dir")" != "$before" ] || ! grep -q '^    context deadline exceeded$' "$log"; then
      rm -f "$log"
      return 1
    fi
    echo "fuzz: $target stopped on Go's fuzztime deadline race (go.dev/issue/75804) with no failing input; run $attempt of $attempts"
  done
  rm -f "$log"
  return 1
}

found=0
for pkg in $($GO list ./...); do
  targets=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for target in $targets; do
    found=$((found + 1))
    echo "== $target ($pkg, $FUZZTIME)"
    fuzz_one "$pkg" "$target"
  done
done
if [ "$found" -eq 0 ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $found targets ran for $FUZZTIME each without a failure"
