# anykernel — see README.md.
#   make test   install missing test dependencies, check formatting, vet, run all tests with -race
#   make run    run the example web server (examples/httpd) on a TAP device (needs root)
#   make bench  run the benchmarks, each beside its reference, and print the ratio table

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
GO ?= go
# Packages under test; override to narrow: make test PKGS=./hal/...
PKGS ?= ./...
TEST_TIMEOUT ?= 30m
# Packages to benchmark; override to narrow: make bench BENCH_PKGS=./hal/mem
BENCH_PKGS ?= ./...

.PHONY: all test deps fmt-check vet unit run bench clean

all: test

test: deps fmt-check vet unit

deps:
	@scripts/install-deps.sh

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(PKGS)

run:
	@scripts/run.sh

bench:
	@PKGS="$(BENCH_PKGS)" scripts/bench.sh

clean:
	rm -rf bin
