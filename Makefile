# casetrail: `make run` starts a server on a local PostgreSQL; `make test`
# runs every check against a throw-away PostgreSQL. Both install the
# PostgreSQL server binaries with apt when they are missing.

GO        ?= go
# A count, not a duration: with a duration, Go 1.26's fuzzing coordinator
# can report "context deadline exceeded" at the deadline on a busy machine
# (golang/go#75804) without having found anything.
FUZZTIME  ?= 100000x
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test check generate postgres fuzz clean bench-read bench bench-report chaos

all: build

build:
	$(GO) build -o bin/casetrail ./cmd/casetrail

# The server binaries (initdb, pg_ctl, postgres), from Debian's packages when
# neither PATH nor /usr/lib/postgresql/*/bin has them.
postgres:
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; else \
	  echo "PostgreSQL server binaries not found: installing the postgresql package with apt-get"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql; \
	fi

# With DATABASE_URL the server uses that database and starts none of its
# own: the binaries are then not needed.
run: build
	$(if $(DATABASE_URL),,@$(MAKE) --no-print-directory postgres)
	./bin/casetrail serve

generate:
	$(GO) tool sqlc generate

# Static checks: formatting, vet, and generated code fresh against
# migrations/ and queries/.
check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool sqlc diff
	$(GO) tool sqlc vet

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCaseUpdates$$' -fuzztime $(FUZZTIME) ./internal/normalize/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeServiceActions$$' -fuzztime $(FUZZTIME) ./internal/normalize/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeServiceHooks$$' -fuzztime $(FUZZTIME) ./internal/normalize/

# withpg starts one throw-away PostgreSQL for the whole run and always stops
# it; every test clones its own database from a migrated template. Data race
# reports go to files and are printed after the run's summary, where a log
# cut to its last lines still shows them.
test: postgres check
	@races=$$(mktemp -d); \
	  if GORACE="log_path=$$races/race" $(GO) run ./cmd/withpg -- $(GO) test -race -count=1 ./...; then rm -rf $$races; else \
	    for f in $$races/race.*; do [ -e "$$f" ] && { echo "== data race report ($$f):"; head -n 80 "$$f"; }; done; \
	    rm -rf $$races; exit 1; fi
	$(MAKE) fuzz
	$(MAKE) chaos CHAOS_ARGS="-kills 3 -pgstops 1 -cuts 20 -sigterms 1 -senders 16 -outage 3s"

clean:
	rm -rf bin

# Read latency at scale: the same 100-event timeline page on stores of 10,000
# and 1,000,000 events, and on stores of 200,000 received over 1, 12 and 60
# months (a partition each), medians side by side; pages of the timelines of
# a number with 20,000 events and of a case correlated with it.
bench-read: postgres
	$(GO) run ./cmd/withpg -- $(GO) test -run '^$$' -bench '^BenchmarkTimeline(Scale|Partitions|BusyContact)$$' -benchtime 1x ./internal/httpapi/

# Ingest throughput: COPY limit vs casetrail's own write statement without
# HTTP vs casetrail over HTTP (group commit on and off) at 1/16/64/256
# senders, on a PostgreSQL with durable settings; five rounds, each
# measuring everything once; medians (docs/benchmarks.md).
BENCH_EVENTS ?= 10000
BENCH_ROUNDS ?= 5
bench: postgres build
	$(GO) run ./cmd/bench -events $(BENCH_EVENTS) -rounds $(BENCH_ROUNDS) -cpuprofile bench-cpu.prof

# The abandonment report over 30 days of 1,000,000 abandons and 1,000,000
# outbound calls.
bench-report: postgres
	$(GO) run ./cmd/withpg -- $(GO) test -run '^$$' -bench '^BenchmarkAbandonmentReport$$' -benchtime 1x -timeout 30m ./internal/httpapi/

# Crash and outage campaign: kill -9, immediate PostgreSQL stops, connection
# cuts and SIGTERMs under load; fails on any acknowledged event missing,
# stored twice, or stored without being sent.
CHAOS_ARGS ?= -kills 20 -pgstops 5 -cuts 200 -sigterms 3
chaos: postgres build
	$(GO) run ./cmd/chaos $(CHAOS_ARGS)
