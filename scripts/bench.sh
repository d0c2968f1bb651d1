#!/usr/bin/env bash
# make bench: every benchmark once, side by side in one run, then the table
# of the figures they report written into docs/benchmarks.md (between its
# bench markers). BENCH_PEOPLE sizes the bulk rows (default 1,000).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
$GO test -run '^$' -bench . -benchtime 1x -timeout 60m ./... | tee "$out"
$GO run ./internal/benchtable -update docs/benchmarks.md < "$out"
echo "bench: table written to docs/benchmarks.md"
