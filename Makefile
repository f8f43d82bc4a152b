GO ?= go
BIN := bin/ldirectord

.PHONY: all build deps test unit e2e bench fuzz demo check clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ldirectord

deps:
	./scripts/install-deps.sh

# Every test: formatting, vet, unit tests with the race detector, and the real-kernel tests
# (TestKernel* boot a user-mode Linux kernel with IPVS; they fail, never skip, when it cannot boot).
test: deps check
	$(GO) test -race -count=1 ./...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Only the real-kernel tests.
e2e: deps
	$(GO) test -count=1 -run 'TestKernel' -v ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

demo: build
	$(GO) run ./examples/demo -bin $(BIN)

clean:
	rm -rf bin
