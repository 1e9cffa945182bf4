#!/usr/bin/env bash
# make bench: every benchmark in the module, then the comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp)"
# PKGS narrows the run; make passes BENCH_PKGS, e.g. make bench BENCH_PKGS=./hal/mem
go test -run='^$' -bench=. -benchmem -timeout 60m ${PKGS:-./...} | tee "$out"
echo
echo "== ratios (see docs/PERFORMANCE.md for how each pair is measured) =="
go run ./internal/benchtable < "$out"
