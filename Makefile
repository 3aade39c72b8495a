# Tickwire. `make run` starts the whole system; `make test` runs every test.
GO ?= go
BIN := bin
TOOLS := $(CURDIR)/$(BIN)/tools

.PHONY: all build run cluster chaos test fuzz proto proto-check tools clean bench bench-peers client client-deps test-client node-examples dashboard dashboard-deps feed-ui test-dashboard e2e deploy-check

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Build everything, then run feed (with embedded NATS) and ingest (synthetic market).
run: build feed-ui
	./scripts/run.sh

# The production shape on one machine: 3 nats-server nodes (JetStream, the event stream at R3),
# ingest (active and standby on a lease), 3 feeds and HAProxy in front (Debian: apt-get install
# haproxy). Prints the dashboard URL through HAProxy; Ctrl-C stops all (scripts/cluster.sh).
cluster: build feed-ui $(BIN)/nats-server
	./scripts/cluster.sh

# Chaos, measured (cmd/chaos, internal/chaos): the cluster above under load (SDK clients through
# HAProxy, each book checked against the stored events at every position, an audit of
# acknowledged writes) while NATS nodes, the stream leader, a feed and the active ingest are
# killed and restarted and the leader's node is cut off and healed; prints the table
# docs/OPERATIONS.md keeps, exits 1 if a check fails. CHAOS_FLAGS=--short: the run CI makes.
chaos: build $(BIN)/nats-server
	$(BIN)/chaos $(CHAOS_FLAGS)

# nats-server at the version pinned in tools/go.mod (built from the Go module proxy).
$(BIN)/nats-server: tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(BIN)/nats-server github.com/nats-io/nats-server/v2

# The TypeScript client (web/client, @tickwire/client): npm ci when its package-lock.json
# changes; `make client` compiles it (tsc) into web/client/dist/ for Node.js bots.
CLIENT := web/client
$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package-lock.json
	cd $(CLIENT) && npm ci --no-audit --no-fund
client-deps: $(CLIENT)/node_modules/.package-lock.json

client: client-deps
	cd $(CLIENT) && npm run build

# The Node.js examples (examples/node-*): they import @tickwire/client's build (dist/) through
# a file: link, so the client is built first; then npm ci in each.
NODE_EXAMPLES := examples/node-quotes examples/node-book examples/node-tape examples/node-replay examples/node-resume
$(addsuffix /node_modules/.package-lock.json,$(NODE_EXAMPLES)): %/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --no-audit --no-fund
node-examples: client $(addsuffix /node_modules/.package-lock.json,$(NODE_EXAMPLES))

# Client unit tests (Vitest: connection, replica, book checksum and hash, decimals, the shared
# disconnect table and test vectors).
test-client: client-deps
	cd $(CLIENT) && npm test

# The dashboard (web/dashboard): npm ci when package-lock.json changes, then the Vite build. It
# compiles @tickwire/client from its sources (web/client/src, an alias), whose imports resolve
# from web/client/node_modules: hence client-deps.
DASHBOARD := web/dashboard
$(DASHBOARD)/node_modules/.package-lock.json: $(DASHBOARD)/package-lock.json
	cd $(DASHBOARD) && npm ci --no-audit --no-fund
dashboard-deps: client-deps $(DASHBOARD)/node_modules/.package-lock.json

dashboard: dashboard-deps
	cd $(DASHBOARD) && npm run build

# feed with the dashboard embedded (build tag "dashboard"); plain `go build` serves a how-to page.
feed-ui: build dashboard
	$(GO) build -tags dashboard -o $(BIN)/ ./cmd/feed

# Dashboard unit tests (Vitest: decoding, state, formatting, shared test vectors).
test-dashboard: dashboard-deps
	cd $(DASHBOARD) && npm test

# Browser test: feed + ingest on loopback, the dashboard in headless Chromium (/usr/bin/chromium).
e2e: build feed-ui
	cd $(DASHBOARD) && node e2e/run.mjs

$(TOOLS)/buf:
	cd tools && GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go

# Regenerate the committed Go and TypeScript code from proto/ (protoc-gen-es from web/client's
# npm ci).
proto: tools client-deps
	cd proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

# Fail when the committed generated code differs from what proto/ generates.
proto-check: proto
	git diff --exit-code -- pkg/proto web/client/src/gen
	@test -z "$$(git status --porcelain -- pkg/proto web/client/src/gen)" || \
		{ echo "untracked generated files:"; git status --porcelain -- pkg/proto web/client/src/gen; exit 1; }

# Every Go test (race detector on), the client's and the dashboard's unit tests, the client's
# build (dist/, for Node.js bots) and the Node examples' modules (examples/examples_test.go runs
# them), and a bounded run of the fuzz targets that face peers; the browser test is `make e2e`.
test: test-client node-examples test-dashboard
	$(GO) vet ./...
	$(MAKE) deploy-check
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# deploy/ without a container engine or a cluster: helm lint and helm template of the charts
# (helm from tools/go.mod, built into Go's cache the first time: about 2 minutes on 2 cores), what
# of the umbrella chart can be checked without downloading the official NATS chart (it says what
# it could not), systemd-analyze on the units where systemd is installed. go test ./deploy (in
# test) checks the manifests' flags and the dashboard's and alerts' metrics against the binaries.
deploy-check:
	GO=$(GO) ./deploy/check.sh

# The fuzz targets that face hostile peers, each for a number of executions (their seed corpora
# also run in every `go test`): the frame reader and guard, raw bytes to a live feed, raw bytes to
# the Go client, the entitlement claim of a token. Counts, not durations: with a -fuzztime
# duration, Go 1.26's fuzz coordinator can report a bare "context deadline exceeded" failure at
# the deadline with no input found (golang/go#75804; a clean-clone CI run hit it on FuzzGuard).
# Each count takes 3-6 s on a quiet 2-core machine, longer on a loaded one. FUZZTIME=30s (or 1000x)
# overrides them all.
FUZZ_TARGETS := ./internal/wsframe:FuzzReader:200000x ./internal/wsframe:FuzzGuard:200000x \
	./internal/feed:FuzzServerFrames:3000x ./pkg/client:FuzzClientFrames:100x ./internal/auth:FuzzParseGrant:30000x
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${FUZZTIME:-$${rest#*:}}; \
		echo "== fuzz $$name ($$n)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime "$$n" "$$pkg" || exit 1; \
	done

clean:
	rm -rf $(BIN) data

# Micro benchmarks, then the standard load scenarios of docs/BENCHMARKS.md, Load through cmd/loadgen, each against
# its own spawned NATS and feed processes on loopback (about 6 minutes; reports in $(BIN)/load/).
# Pick scenarios with LOAD_SCENARIOS="fanout-1k firehose"; skip them with LOAD_SCENARIOS=.
LOAD_SCENARIOS ?= fanout-1k latency-100k fanout-5k idle-10k firehose snapshot-latency stalled
bench: build
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./internal/...
	@mkdir -p $(BIN)/load
	@for s in $(LOAD_SCENARIOS); do \
		echo "== loadgen --scenario $$s"; \
		./$(BIN)/loadgen --spawn --feed-bin ./$(BIN)/feed --scenario $$s --json $(BIN)/load/$$s.json || exit 1; \
	done

# Tickwire side by side with Centrifugo v6.9.1 (issue 13): the same load tool drives both, S1
# (1,000 clients x 100 instruments, 10 subscribers each) and S2 (5,000 clients, 50 each),
# alternating, RUNS=2 each, after waiting for a quiet machine; prints the ratio table
# (docs/BENCHMARKS.md, "Side by side with Centrifugo"). Centrifugo is built once into
# ~/.cache/tickwire-peers/bin (about 20 minutes), reports go to ~/.cache/tickwire-peers/results.
# SHORT=1: one quick S1 pair. Not part of `make test`.
bench-peers:
	./scripts/bench-peers.sh
