#!/usr/bin/env bash
# make bench: every benchmark in the module, then the comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp)"
go test -run='^$' -bench=. -benchmem -timeout 60m ./... | tee "$out"
echo
echo "== ratios (see docs/PERFORMANCE.md for how each pair is measured) =="
go run ./internal/benchtable < "$out"
