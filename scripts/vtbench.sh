#!/usr/bin/env bash
# vtbench.sh: benchmark vtprotobuf's generated MarshalVT/UnmarshalVT against the hand codecs
# (pkg/wire/delta.go, internal/bus/decode.go, internal/loadgen/walk.go) on the same messages,
# in a throwaway copy of HEAD: nothing is generated in the work tree, go.mod is not touched.
# Figures and the decision: docs/BENCHMARKS.md, "Hand codecs against vtprotobuf".
#
#   scripts/vtbench.sh              wall clock: 5 interleaved rounds, -benchmem (benchstat medians if on PATH)
#   CALLGRIND=1 scripts/vtbench.sh  instructions per op under callgrind (repeatable on a busy machine)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
VT=${VT:-v0.6.0}
tmp=$(mktemp -d /tmp/vtbench.XXXXXX)
echo "work dir $tmp"
git -C "$root" archive HEAD | tar -x -C "$tmp"
GOBIN=$tmp/bin go install "github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$VT"
buf=$root/bin/tools/buf
[ -x "$buf" ] || make -C "$root" tools >/dev/null
pkg=github.com/tickwire/tickwire/pkg/proto/tickwire/v1
cat > "$tmp/proto/buf.gen.vt.yaml" <<YAML
version: v2
plugins:
  - local: $tmp/bin/protoc-gen-go-vtproto
    out: ../pkg/proto
    opt:
      - paths=source_relative
      - features=marshal+unmarshal+size+pool
      - pool=$pkg.Event
      - pool=$pkg.BookUpdate
      - pool=$pkg.Level
      - pool=$pkg.Trade
      - pool=$pkg.Quote
YAML
(cd "$tmp/proto" && "$buf" generate --template buf.gen.vt.yaml)
(cd "$tmp" && GOFLAGS=-mod=mod go get "github.com/planetscale/vtprotobuf@$VT")
cp "$root/scripts/vtbench/wire_vt_bench_test.go.in" "$tmp/pkg/wire/vt_bench_test.go"
cp "$root/scripts/vtbench/bus_vt_bench_test.go.in" "$tmp/internal/bus/vt_bench_test.go"
cp "$root/scripts/vtbench/loadgen_vt_bench_test.go.in" "$tmp/internal/loadgen/vt_bench_test.go"
cd "$tmp"
# The synthetic market's package, wherever it is now (the sources name internal/synthetic).
syn=$(go list -e ./... | grep '/synthetic$' | head -1)
sed -i "s#\"github.com/tickwire/tickwire/internal/synthetic\"#\"$syn\"#" internal/bus/vt_bench_test.go
go test -count=1 -run TestVTSameBytes ./pkg/wire
for p in pkg/wire internal/bus internal/loadgen; do
  go test -c -o "$tmp/$(basename $p).test" "./$p"
done
run() { # run NAME DIR BENCH: -benchmem, one run of each benchmark per round
  (cd "$tmp/$2" && "$tmp/$1.test" -test.run '^$' -test.bench "$3" -test.benchmem -test.count 1) | tee -a "$tmp/bench.txt"
}
if [ -z "${CALLGRIND:-}" ]; then
  # 5 rounds, interleaved (not -count 5 in a row), so that a busy spell hits every variant alike.
  for _ in 1 2 3 4 5; do run wire pkg/wire VT; run bus internal/bus VT; run loadgen internal/loadgen VT; done
  command -v benchstat >/dev/null && benchstat "$tmp/bench.txt"
  exit 0
fi
# Instructions per op: two runs of N1 and N2 iterations, (I2 - I1) / (N2 - N1), so that start-up
# and set-up cancel. valgrind 3.19 does not decode RDTSCP, which the Go runtime's cputicks uses
# when the CPU has it (cpu.rdtscp=off), and its callgrind has died on the runtime's preemption
# signals (asyncpreemptoff=1); a run counts only if it finished.
cg() { # cg NAME DIR REGEX N1 N2
  count() {
    for _ in 1 2 3 4 5 6; do
      out=$(cd "$tmp/$2" && GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off GOMAXPROCS=1 valgrind --tool=callgrind \
        --callgrind-out-file=/dev/null "$tmp/$1.test" -test.run '^$' -test.bench "$3" -test.benchtime "${6}x" 2>&1)
      if grep -q '^PASS' <<<"$out"; then sed -n 's/.*Collected : //p' <<<"$out"; return; fi
    done
    echo "callgrind failed for $3" >&2; exit 1
  }
  i1=$(count "$@" "$4"); i2=$(count "$@" "$5")
  echo "$3 $(( (i2 - i1) / ($5 - $4) )) instructions/op"
}
for s in quote/hand quote/vtproto quote/vtproto-msg quote/library book3/hand book3/vtproto book3/vtproto-msg book3/library; do
  cg wire pkg/wire "^BenchmarkVTDelta\$/^${s%/*}\$/^${s#*/}\$" 100000 200000
done
for s in hand vtproto vtproto-msg library; do cg wire pkg/wire "^BenchmarkVTCompactQuote\$/^$s\$" 100000 200000; done
for s in direct vtproto vtproto-pool library; do cg bus internal/bus "^BenchmarkVTDecodeEvent\$/^$s\$" 5000 10000; done
for s in walk vtproto library; do cg loadgen internal/loadgen "^BenchmarkVTWalkFrame\$/^$s\$" 10 20; done
