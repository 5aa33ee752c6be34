# rowfence — `make help` lists the targets.
GO ?= go
export GOFLAGS := -buildvcs=false

.PHONY: help run test test-deps test/clients test/race fuzz build image generate docs verify vet lint fmt bench loadtest clean-data

help: ## list the targets
	@grep -hE '^[a-zA-Z/_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# The dev build (-tags dev) adds `rowfence dev`, the PostgreSQL starter and the
# demo seed with its public keys; `build` makes the serving binary without them.
run: ## start PostgreSQL (Docker, or a local cluster in .pgdata), migrate, seed acme and globex, serve on :8080 (dev build)
	$(GO) run -tags dev ./cmd/rowfence dev $(RUN_ARGS)

test: verify vet lint test-deps ## run every test against a real PostgreSQL (TEST_DATABASE_URL, Docker, or a private local cluster)
	$(GO) test -count=1 -timeout 10m ./...
	$(GO) test -count=1 -timeout 10m -tags dev -run '^TestDev' ./cmd/rowfence

# Debian packages the tests need: the PostgreSQL server binaries (for the
# private cluster), pgbouncer (the transaction-pooling property test), pgTAP
# for that server (sql/pgtap), and Node.js with npm (clients/: the
# TypeScript client generator and the contract's lint; Debian 12's Node.js
# 18 will do).
# Installed when missing and running as root; otherwise a message says how.
APT_INSTALL = (apt-get install -y -qq $(1) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $(1) >/dev/null))
test-deps: ## install the Debian packages the tests need when they are missing (as root)
	@if ! command -v pg_config >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "$$TEST_DATABASE_URL" ]; then \
	  if [ "$$(id -u)" = 0 ]; then $(call APT_INSTALL,postgresql); else echo "install the PostgreSQL server: apt-get install -y postgresql"; fi; fi
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
	  if [ "$$(id -u)" = 0 ]; then $(call APT_INSTALL,pgbouncer); else echo "install pgbouncer: apt-get install -y pgbouncer"; fi; fi
	@major=$$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1); \
	if [ -n "$$major" ] && [ ! -f /usr/share/postgresql/$$major/extension/pgtap.control ]; then \
	  if [ "$$(id -u)" = 0 ]; then $(call APT_INSTALL,postgresql-$$major-pgtap); else echo "install pgTAP: apt-get install -y postgresql-$$major-pgtap"; fi; fi
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then $(call APT_INSTALL,nodejs npm); else echo "install Node.js and npm: apt-get install -y nodejs npm"; fi; fi

# The generators come from npm (clients/ts/package-lock.json, installed once
# into clients/ts/node_modules) and the Go module proxy (clients/go/go.mod).
test/clients: test-deps ## generate TypeScript and Go clients from the served contract, run each against a real server, lint the contract
	$(GO) test -count=1 -v -run 'TestGeneratedClientsRunTheFlow|TestContractLintsClean' ./clients

test/race: test-deps ## the tests with the race detector
	$(GO) test -count=1 -race -timeout 15m ./...
	$(GO) test -count=1 -race -timeout 15m -tags dev -run '^TestDev' ./cmd/rowfence

FUZZTIME ?= 10s
fuzz: ## run every fuzz target for FUZZTIME each (default 10s; CI runs 20000x: see .ci/run)
	$(GO) test -run '^$$' -fuzz '^FuzzParseKey$$' -fuzztime $(FUZZTIME) ./tenancy
	$(GO) test -run '^$$' -fuzz '^FuzzCursorDecode$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBody$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzTextFieldRoundTrip$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzRules$$' -fuzztime $(FUZZTIME) ./textrule
	$(GO) test -run '^$$' -fuzz '^FuzzAppendJSONMatchesEncodingJSON$$' -fuzztime $(FUZZTIME) ./httpapi
	$(GO) test -run '^$$' -fuzz '^FuzzParseAPIKey$$' -fuzztime $(FUZZTIME) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzBearerCredential$$' -fuzztime $(FUZZTIME) ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzJWTVerify$$' -fuzztime $(FUZZTIME) ./auth

# The serving binary records the Git revision it was built from (rowfence
# version, /readyz, rowfence_build_info) when git can read the checkout;
# elsewhere (a source archive, a checkout git refuses as another user's) it
# builds without, and says "unknown". The command line's -buildvcs overrides
# the exported GOFLAGS, which keeps VCS stamping out of the tests' builds.
BUILDVCS = $(shell git rev-parse --is-inside-work-tree >/dev/null 2>&1 && echo auto || echo false)
build: ## build bin/rowfence, the serving binary (no dev command, no demo seed), stamped with the Git revision
	$(GO) build -buildvcs=$(BUILDVCS) -o bin/rowfence ./cmd/rowfence

# The image builds offline: the local Go toolchain makes the static binary
# as Dockerfile's build stage would, and Containerfile.local (Dockerfile's
# runtime stage) puts it and the host's root certificates on scratch. The
# engine is podman or docker, whichever is installed; neither is installed
# for you (apt-get install -y podman). The test: TestImage in cmd/rowfence.
IMAGE ?= rowfence:dev
IMAGE_CONTEXT ?= bin/image
CA_CERTS ?= /etc/ssl/certs/ca-certificates.crt
CONTAINER_ENGINE ?= $(shell command -v podman || command -v docker)
image: ## build the container image IMAGE (default rowfence:dev): a static bin/rowfence on scratch, user 65532, offline
	@test -n "$(CONTAINER_ENGINE)" || { echo "no container engine: install podman (apt-get install -y podman) or docker"; exit 1; }
	rm -rf $(IMAGE_CONTEXT) && mkdir -p $(IMAGE_CONTEXT)
	CGO_ENABLED=0 $(GO) build -buildvcs=$(BUILDVCS) -trimpath -ldflags='-s -w' -o $(IMAGE_CONTEXT)/rowfence ./cmd/rowfence
	cp $(CA_CERTS) $(IMAGE_CONTEXT)/ca-certificates.crt
	$(CONTAINER_ENGINE) build -f Containerfile.local -t $(IMAGE) $(IMAGE_CONTEXT)

generate: ## regenerate db/dbsqlc from queries/ and sql/migrations/ with sqlc
	$(GO) tool sqlc generate

docs: ## rewrite the README's configuration table from config/vars.go (go test ./config checks it)
	$(GO) test -count=1 -run '^TestREADMEMatchesTheTable$$' ./config -update

verify: ## fail when db/ differs from what sqlc generates
	$(GO) tool sqlc diff

vet: ## gofmt and go vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags dev ./cmd/rowfence ./sql/seed

# staticcheck is a Go tool dependency (go.mod), so its version is pinned
# with the module's and nothing needs installing. Test files are checked too;
# the dev build's files only with -tags dev.
lint: ## staticcheck, on the serving build and on the dev build
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags dev ./...

LOADTEST_DURATION ?= 30s
loadtest: ## mixed reads and writes of many tenants against a fresh serve for LOADTEST_DURATION (default 30s); exit 1 on any error or foreign row
	$(GO) run ./bench/loadtest -duration $(LOADTEST_DURATION) $(LOADTEST_ARGS)

bench: ## measure every level (sql, exec, http, scale, fair, large, export, cells, move; BENCH_ARGS="-only http" for some); writes bench/RESULTS.md and bench/plot.svg
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)) ; } || echo "wrk not installed: the HTTP level uses the Go load generator"
	$(GO) run ./bench $(BENCH_ARGS)

clean-data: ## delete the local clusters kept by make run and make bench
	rm -rf .pgdata .benchdata
