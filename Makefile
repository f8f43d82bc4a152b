GO ?= go
BIN := bin/ldirectord
# This tree's version (a Debian version made from git describe), printed by ldirectord -v.
VERSION ?= $(shell scripts/version.sh)

.PHONY: all build deps test unit e2e bench fuzz demo check clean deb compare

all: build

# Static, as scripts/build-deb.sh builds the package (no cgo: the pure Go resolver, no libc mapped).
build:
	CGO_ENABLED=0 $(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o $(BIN) ./cmd/ldirectord

# The Debian package bin/ldirectord_<version>_<arch>.deb (dpkg-deb only; see scripts/build-deb.sh).
deb:
	VERSION=$(VERSION) GO=$(GO) OUT=bin ./scripts/build-deb.sh

deps:
	./scripts/install-deps.sh

# Every test: formatting, vet, unit tests with the race detector, and the real-kernel tests
# (TestKernel* boot a user-mode Linux kernel with IPVS; they fail, never skip, when it cannot boot).
# -timeout 30m: e2e's kernel tests take 8-13 minutes in all, and each gives its guest what is left of the
# package's timeout, so go test's default of 10 minutes left the last ones too little on a slower machine.
# e2e runs after the other packages, alone: its failover and ECMP tests time a client through three
# kernels, and on 2 cores the kernels that ipvsctl, packaging and internal/uml boot at the same time
# starved them (curl timeouts, a client that had not started after 8 s).
test: deps check
	$(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v '/e2e$$')
	$(GO) test -race -count=1 -timeout 30m ./e2e/

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Only the real-kernel tests.
e2e: deps
	$(GO) test -count=1 -timeout 30m -run 'TestKernel' -v ./...

# Every benchmark of docs/benchmarks.md, each with the settings its section gives (about 13 minutes).
# LDIRECTORD=/path/to/ldirectord makes ./bench/ measure that binary instead of this tree's.
bench:
	$(GO) test -run '^$$' -bench . ./checker/
	$(GO) test -run '^$$' -bench . ./config/ ./internal/logging/
	$(GO) test -run '^$$' -bench 'DiffNoChange10k' ./ipvsctl/
	$(GO) test -timeout 30m -run '^$$' -bench 'KernelApply' -benchtime=1x ./ipvsctl/
	$(GO) test -run '^$$' -bench 'Start200|10kHTTP' -benchtime=1x ./supervisor/
	$(GO) test -run '^$$' -bench 'Scale/reals=1000$$' -benchtime=1x ./supervisor/
	$(GO) test -run '^$$' -bench 'Scale/reals=10000$$' -benchtime=1x ./supervisor/
	$(GO) test -run '^$$' -bench 'Scale/reals=30000' -benchtime=1x ./supervisor/
	$(GO) test -run '^$$' -bench 'Reload10k' -benchtime=30x ./supervisor/
	$(GO) test -timeout 20m -run '^$$' -bench . -benchtime=1x ./bench/

# Side by side with keepalived in user-mode Linux: 1,000 HTTP reals, a quarter hanging (docs/benchmarks.md,
# "Side by side with keepalived"). LDIRECTORD=/path/to/ldirectord compares another build than this tree's.
compare: deps
	COMPARE_LDIRECTORD=$(LDIRECTORD) $(GO) test -tags compare -count=1 -timeout 15m -run TestKernelCompare -v ./e2e/compare/

demo: build
	$(GO) run ./examples/demo -bin $(BIN)

clean:
	rm -rf bin
