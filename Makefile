# trialsd: `make run` starts a development daemon, `make test` runs every test.
GO        ?= go
BIN       ?= bin/trialsd
# The release is the VERSION file, embedded in the binary; the build adds
# the commit (short hash, -dirty with uncommitted changes; tags ignored), so
# `trialsd version` says e.g. "trialsd 0.9.0 (commit abc1234)".
COMMIT    ?= $(shell git describe --always --dirty --abbrev=7 --exclude='*' 2>/dev/null)
LDFLAGS   := -s -w -X main.commit=$(COMMIT)
# Throw-away secrets for development only; production supplies its own.
DEV_SECRET := $(shell head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

SQLC_VERSION := v1.31.1
SQLC         := bin/sqlc-$(SQLC_VERSION)

.PHONY: generate generate-check build run test test-compat test-docs chaos fuzz fuzz-smoke vulncheck lint lint-openapi migrate clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/trialsd

## run: the daemon on http://127.0.0.1:4800 with config.yaml + config.dev.yaml,
## creating and migrating the database on the way up.
run: build
	TRIALSD_AUTH_JWT_SECRET=$${TRIALSD_AUTH_JWT_SECRET:-$(DEV_SECRET)} \
	TRIALSD_BILLING_CALLBACK_SECRET=$${TRIALSD_BILLING_CALLBACK_SECRET:-$(DEV_SECRET)} \
	$(BIN) serve --migrate --config config.yaml --config config.dev.yaml

## test: every test against the Postgres on 127.0.0.1:5432, with the race
## detector except for the fault tests, whose daemons run as separate
## processes. Each package runs under a timeout of its own (tools/testrun);
## the run ends with the slowest packages and tests. TESTFLAGS adds go test
## flags (make test TESTFLAGS='-run TestLogin').
test:
	$(GO) run ./tools/testrun $(TESTFLAGS)

## test-compat: drive a live trialsd with the published Edge Impulse npm client.
test-compat:
	bash compat/run.sh

## test-docs: every sh block of the README, docs/test-clocks.md, docs/webhooks.md
## and docs/operations.md, run as written against a fresh make run (needs curl,
## jq, Node.js and npm); tools/docwalk/run.sh says which blocks run.
test-docs:
	bash tools/docwalk/run.sh

## chaos: the fault tests with larger numbers (20k trials through a SIGKILL).
chaos:
	TRIALSD_CHAOS_TRIALS=20000 $(GO) test -count=1 -v -timeout 15m ./internal/chaos/

# Every fuzz target: package:Target.
FUZZ_TARGETS := internal/httpapi:FuzzDecodeStartTrial internal/wire:FuzzParseDate \
	internal/httpapi:FuzzClientAddr internal/signup:FuzzFormValidate internal/accounts:FuzzValidUsername \
	internal/accounts:FuzzAuthenticateJWT internal/enterprise:FuzzRequestValidate \
	internal/signature:FuzzVerify
FUZZTIME ?= 60s

## fuzz: run each fuzz target for FUZZTIME (default 60s); findings land in testdata/fuzz.
fuzz:
	@for pt in $(FUZZ_TARGETS); do p=$${pt%%:*}; t=$${pt##*:}; \
	  echo "== $$t ($(FUZZTIME))"; \
	  $(GO) test ./$$p -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) || exit 1; done

## fuzz-smoke: every fuzz target for a fixed number of inputs (CI). A count,
## not a duration: with -fuzztime=Ns the go command can fail a clean run with
## "context deadline exceeded" when the deadline lands mid-exchange with a worker.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

## vulncheck: govulncheck against Go's vulnerability database, when it can be reached.
vulncheck:
	@if $(GO) run golang.org/x/vuln/cmd/govulncheck@v1.1.4 ./... ; then :; \
	else echo "vulncheck: govulncheck failed or could not reach vuln.go.dev (no network here?); nothing was checked"; exit 1; fi

## generate: the store's query code from internal/store/queries/*.sql and the
## migrations, with the sqlc version pinned here (built into bin/ on first use;
## it needs cgo and takes about two minutes).
generate: $(SQLC)
	$(SQLC) generate

## generate-check: fail when the checked-in generated code is not what
## `make generate` writes (CI runs it).
generate-check: $(SQLC)
	@$(SQLC) diff || { echo "internal/store/internal/dbsqlc is stale: run make generate and commit the result"; exit 1; }

$(SQLC):
	GOBIN=$(CURDIR)/bin CGO_ENABLED=1 $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)
	mv bin/sqlc $@

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd examples/go && $(GO) vet ./...

## lint-openapi: Redocly's recommended ruleset over internal/httpapi/openapi.yaml,
## with the CLI version pinned in tools/redocly (needs Node.js and npm; CI runs it).
lint-openapi:
	npm ci --prefix tools/redocly --no-audit --no-fund --silent
	tools/redocly/node_modules/.bin/redocly lint --config redocly.yaml

## migrate: apply pending migrations to the database of config.yaml (+ env).
migrate: build
	$(BIN) migrate up --config config.yaml --config config.dev.yaml

clean:
	rm -rf bin

.PHONY: bench bench-scale bench-smoke
SCALE_TRIALS ?= 10000000

## bench: the benchmark scenarios side by side on one Postgres (expiry storm,
## River baseline, cron-sweep peer, intake vs pgbench, footprint) at default
## sizes; reports, tables and charts in bench/out. BENCH_FLAGS adds flags
## (go run ./cmd/trialsbench -h). See docs/performance.md.
bench:
	$(GO) run ./cmd/trialsbench $(BENCH_FLAGS)

## bench-scale: trialsd on SCALE_TRIALS trials (default 10M; try 1000000 first).
## Takes long and needs disk; not part of CI.
bench-scale:
	$(GO) run ./cmd/trialsbench -scenarios scale -scale-trials $(SCALE_TRIALS) $(BENCH_FLAGS)

## bench-smoke: every scenario at tiny sizes, concurrently, in seconds (CI):
## proves the harness works; its figures mean nothing.
bench-smoke:
	$(GO) run ./cmd/trialsbench -smoke -out bench/out/smoke $(BENCH_FLAGS)
