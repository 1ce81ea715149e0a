# quancun — the load (圈存) front-end processor.
# make demo   run the switch with its peers on loopback and print the money check
# make test   install and start what the tests need (pcscd+vpcd, ...), then run every test
# make fuzz   run every fuzz target for FUZZTIME each (default 30s)
# make bench  the performance run (see docs/performance.md)

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
FUZZTIME ?= 30s
BIN := bin/quancun

.PHONY: all build test unit fuzz demo bench vet clean deps

all: build

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/quancun

vet:
	$(GO) vet ./...

# The README's test command. scripts/test.sh installs Debian packages that are missing,
# starts pcscd (and later vsftpd/etcd), and runs the whole suite with QUANCUN_SERVICES=1 so
# a missing service fails a test instead of skipping it.
test:
	@scripts/test.sh

# Tests without starting services (service tests skip).
unit:
	$(GO) test -count=1 ./...

fuzz: deps
	@scripts/fuzz.sh $(FUZZTIME)

demo: build
	$(BIN) demo

# The performance run of docs/performance.md (about 3 minutes): max rate through the FEP and the
# relay baseline, 2,000 loads/s with the latency split, then 10,000 idle kiosks.
BENCHFLAGS ?= --suite --kiosks 64 --warmup 5s --duration 15s --idle 10000 --idle-hold 15s
bench: build
	$(BIN) bench $(BENCHFLAGS) --json bench.json

clean:
	rm -rf bin
