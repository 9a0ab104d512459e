# Tributary — build, test, bench, release.
#
#   make demo    run the system on embedded defaults (see README.md)
#   make check   install what the tests need (apt-get), then run every test
#   make test    fast inner loop: go vet + go test -race, no outside services
#
# Every install step a test needs lives here: CI starts on a fresh machine.

SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CMDS    := $(wildcard */cmd/*)
BINS    := $(notdir $(CMDS))
FUZZTIME ?= 30s

.PHONY: all build test check deps deps-mosquitto deps-qemu deps-kinesalite deps-chromium deps-systemd deps-kcat bench bench-nab bench-alerts bench-load bench-go bench-sim chaos-kafka fuzz fuzz-smoke release demo clean

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./,$(CMDS))

test:
	$(GO) vet ./...
	GOARCH=arm GOARM=7 $(GO) vet ./...   # gateways run 32-bit ARM: catch int overflows
	$(GO) test -race -count=1 -short ./...

# deps installs the outside programs the interop tests run, if missing.
deps: deps-mosquitto deps-qemu deps-kinesalite deps-chromium deps-systemd deps-kcat

APT_UPDATED := .tools/.apt-updated
$(APT_UPDATED):
	@mkdir -p .tools
	apt-get update -qq
	@touch $@

deps-mosquitto:
	@if ! command -v mosquitto >/dev/null || ! command -v mosquitto_pub >/dev/null; then \
		$(MAKE) --no-print-directory $(APT_UPDATED) && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto mosquitto-clients; \
	fi
	@mosquitto -h 2>&1 | head -1

deps-qemu:
	@if ! command -v qemu-aarch64-static >/dev/null; then \
		$(MAKE) --no-print-directory $(APT_UPDATED) && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static; \
	fi

# systemd-analyze checks the units in deploy/systemd (deploy's tests).
deps-systemd:
	@if ! command -v systemd-analyze >/dev/null; then \
		$(MAKE) --no-print-directory $(APT_UPDATED) && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; \
	fi

# kcat (librdkafka), an independent Kafka client for the Kafka interop
# tests; the broker itself is franz-go's kfake, built from the module
# (internal/testenv/cmd/kafkabroker).
deps-kcat:
	@if ! command -v kcat >/dev/null; then \
		$(MAKE) --no-print-directory $(APT_UPDATED) && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; \
	fi

# Debian's Chromium for the dashboard's browser test (cloud/dashboard).
deps-chromium:
	@if ! test -x /usr/bin/chromium; then \
		$(MAKE) --no-print-directory $(APT_UPDATED) && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi
	@/usr/bin/chromium --version

# kinesalite (npm), a second, independent Kinesis implementation for the
# cloud interop tests; tests find it at .tools/kinesalite/node_modules/.bin.
KINESALITE := .tools/kinesalite/node_modules/.bin/kinesalite
deps-kinesalite: $(KINESALITE)
$(KINESALITE):
	@command -v npm >/dev/null || { $(MAKE) --no-print-directory $(APT_UPDATED) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	mkdir -p .tools/kinesalite
	cd .tools/kinesalite && npm install --silent --no-audit --no-fund kinesalite@3.3.3

# check runs every test, interop included; TRIBUTARY_INTEROP=1 turns a
# missing outside program into a failure instead of a skip. skipguard
# prints each package's result and the output of failed tests, and fails
# on a test that skipped unless SKIP_ALLOWLIST lists it (hardware only).
# TestNAB (cloud/anomaly) scores the detector on NAB_DIR's NAB files.
SKIP_ALLOWLIST := internal/testenv/cmd/skipguard/allowed-skips.txt
# When NAB_DIR holds no NAB data (a machine without ../shared), TestNAB
# is let skip for this run only, with a warning.
NAB_DIR ?= ../shared
NAB_DATA := $(wildcard $(NAB_DIR)/data/nab/data)
check: export TRIBUTARY_NAB_DIR = $(if $(NAB_DATA),$(abspath $(NAB_DIR)))
check: deps fuzz-smoke
	$(GO) vet ./...
	GOARCH=arm GOARM=7 $(GO) vet ./...
	@$(if $(NAB_DATA),,echo "WARNING: no NAB data in $(NAB_DIR)/data/nab: TestNAB will skip (set NAB_DIR)")
	set -o pipefail; TRIBUTARY_INTEROP=1 $(GO) test -json -race -count=1 -timeout 20m ./... \
		| $(GO) run ./internal/testenv/cmd/skipguard -allow $(SKIP_ALLOWLIST) $(if $(NAB_DATA),,-also cloud/anomaly/TestNAB)

bench: bench-go bench-sim

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench-sim: the simulator at fleet scale against a real mosquitto
# (SIM_DEVICES devices at 1 reading/s for SIM_DURATION).
SIM_DEVICES  ?= 10000
SIM_DURATION ?= 60s
bench-sim: build deps
	./simulator/bench/scale.sh bin/tributary-sim $(SIM_DEVICES) $(SIM_DURATION)

# bench-load: the whole system (sim → agent → cloud) at LOAD_DEVICES
# devices x 1 reading/s for LOAD_DURATION; see BENCHMARKS.md.
LOAD_DEVICES  ?= 10000
LOAD_DURATION ?= 10m
bench-load: build
	./simulator/bench/load.sh bin $(LOAD_DEVICES) $(LOAD_DURATION)

# chaos-kafka: the end-to-end chaos run on the kafka backend (cloud killed
# twice, the broker killed once and down 12 s), alone. It is also part of
# `make check` (simulator/e2e/chaos_kafka_test.go).
chaos-kafka: deps-kcat
	$(GO) test -race -count=1 -run TestChaosKafka -v ./simulator/e2e/

# bench-nab: the anomaly detectors on the Numenta Anomaly Benchmark: TestNAB
# runs cmd/nabrun over NAB_DIR's NAB subset, scores it with NAB_DIR's
# tools/nabscore, prints the three profiles' scores and checks the floor
# stated in BENCHMARKS.md; then cross-validates the constants (nabrun -cv,
# leaving one category out) and checks the cross-validated floor.
bench-nab:
	TRIBUTARY_NAB_DIR=$(abspath $(NAB_DIR)) $(GO) test -count=1 -run '^TestNAB$$' -v ./cloud/anomaly

# bench-alerts: alert precision and recall of the anomaly detectors against
# the simulator's truth, on three fixed-seed fleets in simulated time
# (simulator/bench/alerts; see BENCHMARKS.md).
bench-alerts:
	$(GO) run ./simulator/bench/alerts

fuzz:
	@for pkg in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | cut -d' ' -f2); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# fuzz-smoke runs every fuzz target briefly (part of make check): it
# replays the seed corpus and testdata/fuzz regressions, then mutates
# FUZZ_SMOKE_TIME inputs each, so a decoder that panics on garbage fails
# CI. A count, not a duration: Go 1.26's fuzz coordinator can fail a
# duration-bounded run with a spurious "context deadline exceeded" on a
# loaded machine (go.dev/issue/75804, fixed in Go 1.27).
FUZZ_SMOKE_TIME ?= 500x
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SMOKE_TIME)

# release: static binaries for the gateway and cloud targets.
release:
	@mkdir -p dist
	@for target in linux/arm64 linux/arm/7 linux/amd64; do \
		os=$$(echo $$target | cut -d/ -f1); arch=$$(echo $$target | cut -d/ -f2); arm=$$(echo $$target | cut -d/ -f3); \
		suffix=$$arch$${arm:+v$$arm}; \
		for cmd in $(CMDS); do \
			out=dist/$$(basename $$cmd)-$$os-$$suffix; \
			echo "build $$out"; \
			CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOARM=$$arm $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$out ./$$cmd || exit 1; \
		done; \
	done
	@cd dist && sha256sum * > SHA256SUMS && file * | grep -v SHA256SUMS || true

demo: build
	./deploy/demo.sh

clean:
	rm -rf bin dist
