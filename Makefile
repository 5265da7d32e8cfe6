# The two front-door commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= config/vpcdns.yaml

.PHONY: deps build run test check explain e2e-aws scale-demo bench bench-scale bench-core leak-check fuzz-packet fuzz-config clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

## Runs the resolver on the example config, beside its loopback demo "public" DNS (NSD).
run: build
	scripts/run-demo.sh $(CONFIG)

## Runs every test (unit, decision tables, real sockets with dig/NSD, the CLI).
test: deps
	$(SWIFT) build
	$(SWIFT) build --build-tests
	$(SWIFT) test --no-parallel 2>&1 | tee .build/test-output.txt; exit $${PIPESTATUS[0]}

## An AWS API (moto_server behind TLS) on a test host, reached through vpcdns's private DNS by
## the unchanged awscli; network namespaces play the hosts (root; scripts/e2e-aws.sh).
e2e-aws: build
	scripts/e2e-aws.sh

## Two replicas behind dnsdist, each machine (and a test host of each of two VPCs) in its own
## network namespace: dig transcripts, reload and failover under dnsperf load, merged logs
## (root; scripts/scale-demo.sh; everything is torn down on exit).
scale-demo: build
	scripts/scale-demo.sh

check: build
	$(SWIFT) run vpcdns check --config $(CONFIG)

## vpcdns vs Unbound (1 and 2 threads) vs NSD on loopback, plus the console-streaming row and the
## UDP-echo "physical limit" rows; the whole table BENCH_REPEAT (2) times, then the 1M-record zone
## scale test; prints the tables with ratios, targets and each ratio's range over the repeats,
## also in bench-results/latest.txt (scripts/bench/run.sh).
bench: deps
	$(SWIFT) build -c release --product vpcdns
	$(SWIFT) build -c release --product vpcdns-bench
	scripts/bench/run.sh

## The zone scale test alone (1,000 zones x 1,000 records, 100 VPCs).
bench-scale: deps
	$(SWIFT) build -c release --product vpcdns
	$(SWIFT) build -c release --product vpcdns-bench
	scripts/bench/scale.sh

## Micro-benchmark of the decision engine alone (release build).
bench-core: deps
	$(SWIFT) build -c release --product vpcdns-bench
	.build/release/vpcdns-bench --config $(CONFIG)

## libldns ownership check under LeakSanitizer.
leak-check: deps
	scripts/leak-check.sh

## libFuzzer campaigns (docs/fuzzing.md); FUZZ_SECONDS per run, crashes in fuzz-crashes/.
FUZZ_SECONDS ?= 600
fuzz-packet: deps
	scripts/fuzz.sh packet $(FUZZ_SECONDS)
fuzz-config: deps
	scripts/fuzz.sh config $(FUZZ_SECONDS)

clean:
	rm -rf .build .build-*
