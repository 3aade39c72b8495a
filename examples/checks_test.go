package examples_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f) // as FailNow ends the goroutine
}

// failure runs check on out and returns the failure it reported ("" for none).
func failure(t *testing.T, check func(testing.TB, *System, Output), s *System, out Output) string {
	ft := &fakeT{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != ft {
				panic(v)
			}
		}()
		check(ft, s, out)
	}()
	return ft.failed
}

// TestChecks: the output checks accept what the examples print and refuse each kind of wrong
// output, so that TestExamples passing means something.
func TestChecks(t *testing.T) {
	info := func(id string) *pb.InstrumentInfo { return &pb.InstrumentInfo{Id: id, PriceScale: 2, SizeScale: 4} }
	s := &System{IDs: []string{"synthetic:ACME", "synthetic:BOLT"},
		Instruments: map[string]*pb.InstrumentInfo{"synthetic:ACME": info("synthetic:ACME"), "synthetic:BOLT": info("synthetic:BOLT")},
		Started:     time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)}

	quotes := "16:03:45.140 synthetic:ACME           bid 9.18 x 0.0269  ask 9.21 x 0.9289  snapshot\n" +
		"16:03:45.141 synthetic:BOLT           bid 17.09 x 0.3973  ask -  snapshot\n"
	for range 10 {
		quotes += "16:03:45.145 synthetic:ACME           bid 9.19 x 1.4341  ask 9.21 x 0.9289  latency 1.04ms\n"
	}
	book := "book synthetic:ACME depth 10 at 1796227417/10363 synced\n" +
		"  1  bid 9.17 x 0.4302  ask 9.19 x 0.5521\n" +
		"  2  bid 9.11 x 1.5623  ask 9.20 x 0.4688\n" +
		"  3  bid 9.10 x 1.7541  ask -\n" +
		"book synthetic:BOLT depth 10 at 1796227417/10264 synced\n" +
		"  1  bid 18.21 x 0.2402  ask 18.22 x 0.1546\n"
	integrity := "integrity snapshots=2 deltas=116 checksum_ok=118 hash_ok=118 recheck_failures=0 checksum_failures=0 gaps=0 epoch_changes=0 resyncs=0\n"
	final := strings.Replace(integrity, "integrity ", "integrity final ", 1)
	books := book + integrity + book + integrity + book + final
	tape := "time,instrument,side,price,size,trade_id\n" + strings.Repeat("2026-12-02T16:06:56.474795957Z,synthetic:ACME,sell,225.42,0.1193,1387\n", 3)

	for _, tc := range []struct {
		name  string
		check func(testing.TB, *System, Output)
		out   string
		want  string // in the failure; "" for none
	}{
		{"quotes ok", checkQuotes, quotes, ""},
		{"quotes price not at scale", checkQuotes, strings.Replace(quotes, "bid 9.19 x", "bid 9.190 x", 1), "not an exact price"},
		{"quotes size not at scale", checkQuotes, strings.Replace(quotes, "x 1.4341", "x 1.434", 1), "not an exact price"},
		{"quotes float", checkQuotes, strings.Replace(quotes, "bid 9.19 x", "bid 9.19e0 x", 1), "not an exact price"},
		{"quotes crossed", checkQuotes, strings.Replace(quotes, "bid 9.19 x", "bid 9.21 x", 1), "bid not below ask"},
		{"quotes unknown instrument", checkQuotes, strings.Replace(quotes, "synthetic:BOLT", "synthetic:NOPE", 1), "unknown instrument"},
		{"quotes no snapshot of one", checkQuotes, strings.Replace(quotes, "synthetic:BOLT", "synthetic:ACME", 1), "want one of each"},
		{"quotes garbage", checkQuotes, quotes + "hello\n", "not a quote line"},
		{"book ok", checkBook, books, ""},
		{"book bids unsorted", checkBook, strings.Replace(books, "bid 9.11", "bid 9.18", 1), "bids not sorted"},
		{"book asks unsorted", checkBook, strings.Replace(books, "ask 9.20", "ask 9.18", 1), "asks not sorted"},
		{"book crossed", checkBook, strings.Replace(books, "bid 18.21", "bid 18.22", 1), "best bid not below best ask"},
		{"book checksum failure", checkBook, strings.Replace(books, "checksum_failures=0", "checksum_failures=1", 1), "checksum_failures"},
		{"book recheck failure", checkBook, strings.Replace(books, "recheck_failures=0", "recheck_failures=2", 1), "recheck_failures"},
		{"book gap", checkBook, strings.Replace(books, "gaps=0", "gaps=1", 1), "gaps"},
		{"book no final", checkBook, book + integrity + book + integrity + book + integrity, "final"},
		{"book an update unverified", checkBook, book + integrity + book + integrity + book + strings.Replace(final, "checksum_ok=118", "checksum_ok=117", 1), "final counters"},
		{"book never synced", checkBook, strings.ReplaceAll(books, "10264 synced", "10264 stale"), "no synced book"},
		{"tape ok", checkTape, tape, ""},
		{"tape no header", checkTape, strings.SplitN(tape, "\n", 2)[1], "no header"},
		{"tape short row", checkTape, tape + "2026-12-02T16:06:56Z,synthetic:ACME,sell,225.42,0.1193\n", "not CSV"},
		{"tape side", checkTape, strings.Replace(tape, ",sell,", ",ask,", 1), "side"},
		{"tape price", checkTape, strings.Replace(tape, ",225.42,", ",225.4,", 1), "not an exact price"},
		{"tape time", checkTape, strings.Replace(tape, "2026-12-02T16:06:56.474795957Z", "16:06:56", 1), "time"},
		{"tape no trade id", checkTape, strings.Replace(tape, ",1387\n", ",\n", 1), "no trade id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := failure(t, tc.check, s, Output{Stdout: tc.out})
			t.Log(got)
			switch {
			case tc.want == "" && got != "":
				t.Fatalf("refused good output: %s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Fatalf("failure %q, want one about %q", got, tc.want)
			}
		})
	}
}
