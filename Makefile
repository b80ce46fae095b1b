# ecache developer targets. `make test` is the suite CI runs.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= 2025.1.1

.PHONY: all build test test-long lint bench fuzz clean

all: build test

build:
	$(GO) build $(PKGS)

# The whole suite with the race detector, after vet.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 15m $(PKGS)

# Soak, chaos and long fuzz-derived runs.
test-long:
	$(GO) test -race -tags long -timeout 60m $(PKGS)

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# Runs every native fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin ecache

# ecache against Redis on loopback, side by side (bench/compare.sh; issue 7).
.PHONY: bench-compare
bench-compare:
	bench/compare.sh
