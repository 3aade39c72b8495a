# Tickwire. `make run` starts the whole system; `make test` runs every test.
GO ?= go
BIN := bin
TOOLS := $(CURDIR)/$(BIN)/tools

.PHONY: all build run test proto proto-check tools clean bench

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Build everything, then run feed (with embedded NATS) and ingest (synthetic market).
run: build
	./scripts/run.sh

$(TOOLS)/buf:
	cd tools && GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go

# Regenerate the committed Go code from proto/.
proto: tools
	cd proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

# Fail when the committed generated code differs from what proto/ generates.
proto-check: proto
	git diff --exit-code -- pkg/proto

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

clean:
	rm -rf $(BIN) data

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/... ./internal/...
