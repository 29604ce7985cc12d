# topolane: `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# go-nvml's cgo bindings warn about NVML's own deprecations on every build.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
export CGO_ENABLED := 1

TOOLS := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
# helm is not in Debian; `go install` builds it (about 3 minutes on 2 cores, once).
HELM_VERSION := v3.22.0
HELM := $(TOOLS)/helm-$(HELM_VERSION)
BIN := $(CURDIR)/bin
FIXTURES := nodeagent/testdata/sysfs

.PHONY: help build test unit e2e chart-test bench-test lint bench bench-placement bench-throughput bench-bandwidth bench-cni bench-wire fuzz demo discover fixtures images clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

build: ## build the binaries into bin/
	go build -o $(BIN)/ ./nodeagent/cmd/... ./extender/cmd/...

# The real kube-scheduler and API server tests, and the bench, live in modules of their own
# (k8s.io/kubernetes is heavy); a cold build of it takes ~6 minutes on 2 cores, once for both.
E2E := extender/e2e
BENCH := bench
CHART_TEST := charts/test

test: lint unit chart-test e2e bench-test ## everything CI runs: lint, then every test (race detector on)

unit: ## the tests of the main module
	go test -race -count=1 ./...

e2e: $(HELM) ## the extender under the real kube-scheduler, and the chart installed into a real API server
	cd $(E2E) && HELM=$(HELM) go test -count=1 -timeout 15m ./...

# The chart's schemas come from the k8s.io/kubernetes module of every supported minor, downloaded
# once into the Go module cache.
chart-test: $(HELM) ## helm lint, helm template for Kubernetes 1.33-1.37, every object checked against that version's OpenAPI schema
	cd $(CHART_TEST) && HELM=$(HELM) go test -count=1 -timeout 10m ./...

bench-test: ## the bench's tests, with a short run of each measurement
	cd $(BENCH) && go test -count=1 -timeout 15m ./...
	go test -count=1 -run '^$$' -bench WirePath -benchtime 3x ./extender/internal/server
	go test -count=1 -run '^$$' -bench AddDel -benchtime 3x ./nodeagent/internal/attach

# extender/e2e is vetted by `go test` as it compiles (a separate go vet there would compile
# k8s.io/kubernetes a second time on a fresh machine).
lint: $(STATICCHECK) ## go vet and staticcheck (pinned, installed into .tools/)
	go vet ./...
	$(STATICCHECK) ./...
	cd $(BENCH) && go list ./... >/dev/null && $(STATICCHECK) ./...
	cd $(CHART_TEST) && go vet ./... && $(STATICCHECK) ./...
	cd $(E2E) && go vet ./... && $(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck $@

$(HELM):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(TOOLS)/helm $@

# The images. This machine has no container engine: CI cannot build them.
REGISTRY ?= ghcr.io/topolane
VERSION ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/topolane/Chart.yaml)
images: ## build the extender and agent images with docker (REGISTRY, VERSION = the chart's appVersion)
	docker build -f extender/cmd/topolane-extender/Dockerfile -t $(REGISTRY)/topolane-extender:$(VERSION) .
	docker build -f nodeagent/cmd/topolane-agent/Dockerfile -t $(REGISTRY)/topolane-agent:$(VERSION) .

bench: ## benchmarks, 5 runs each (compare runs with benchstat)
	go test -run '^$$' -bench . -benchmem -count 5 ./...

fuzz: ## fuzz the sysfs reader for 60s
	go test ./nodeagent/internal/discovery -run '^$$' -fuzz FuzzSysfsAttributes -fuzztime 60s

bench-placement: ## placement quality: topolane against one NIC per pod and two baselines on bench/scenarios/default.yaml; writes bench/placement.svg
	cd $(BENCH) && go run ./cmd/topolane-bench placement --plot placement.svg

bench-throughput: ## on a real kube-apiserver: the real kube-scheduler on 5,000 nodes with and without the extender (pods/s, ratio), and topolane-extender's memory with 40,000 pods
	cd $(BENCH) && go run ./cmd/topolane-bench throughput

bench-bandwidth: ## as root: topolane's shaping and the CNI bandwidth plugin, TCP each way through a device in a pod namespace; writes bench/bandwidth.svg
	go run ./nodeagent/internal/shaping/bandwidthbench --plot $(CURDIR)/bench/bandwidth.svg

bench-cni: ## as root: the agent's ADD/DEL against the reference host-device plugin, one PF, one VF, and a full-node pod's 8 PFs
	go test ./nodeagent/internal/attach -run '^$$' -bench AddDel -benchtime 40x -count 3

bench-wire: ## the extender's HTTP wire path against a trivial encoding/json extender: 5,000 names, 500 full Nodes
	go test ./extender/internal/server -run '^$$' -bench WirePath -benchtime 10s -count 5

demo: ## a small cluster through the real kube-scheduler, with topolane's extender and without
	cd $(BENCH) && go run ./cmd/topolane-bench demo

discover: ## discover the fixture machines (a DGX H100 and a two-socket PCIe server) and print their topology
	@for m in dgx-h100 pcie-server; do \
		echo "== topolane-agent discover --sysfs-root $(FIXTURES)/$$m"; \
		go run ./nodeagent/cmd/topolane-agent discover --sysfs-root $(FIXTURES)/$$m --node-name $$m || exit 1; \
		echo; \
	done

fixtures: ## rewrite the fixture trees and golden tables under nodeagent/testdata after changing topologytest
	go test ./nodeagent/internal/discovery -run 'TestTables|TestFixtureTreesCurrent' -update

clean: ## remove built binaries and installed tools
	rm -rf $(BIN) $(TOOLS)
