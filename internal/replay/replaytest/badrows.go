package replaytest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tickwire/tickwire/pkg/history"
)

// NDJSONLines returns the history file of Events(t, cfg) in NDJSON, one string per line
// (without "\n"), so a test can spoil one line.
func NDJSONLines(t testing.TB, cfg Config) []string {
	t.Helper()
	var buf bytes.Buffer
	w := history.NewNDJSONWriter(&buf)
	for _, ev := range Events(t, cfg) {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
}

const tradeKey = `"trade":{"price":"`

// TradeLine returns the index of the first line at or after i that holds a trade.
func TradeLine(t testing.TB, lines []string, i int) int {
	t.Helper()
	for ; i < len(lines); i++ {
		if strings.Contains(lines[i], tradeKey) {
			return i
		}
	}
	t.Fatalf("replaytest: no trade line at or after %d", i)
	return -1
}

// OverPrecise gives the trade of line (a TradeLine) a price with 18 decimals ("4482" becomes
// "4482.123456789012345678"), which no int64 mantissa holds: the line is not an Event.
func OverPrecise(line string) string {
	i := strings.Index(line, tradeKey) + len(tradeKey)
	j := i + strings.IndexByte(line[i:], '"')
	return line[:j] + ".123456789012345678" + line[j:]
}

// HugeTradeID gives the trade of line (a TradeLine) a 5 MB trade id: a valid Event, and a
// history line within history.MaxRecordSize, that no NATS server with the default 1 MiB
// max_payload stores.
func HugeTradeID(line string) string {
	const key = `"tradeId":"`
	i := strings.Index(line, key) + len(key)
	j := i + strings.IndexByte(line[i:], '"')
	return line[:i] + strings.Repeat("x", 5<<20) + line[j:]
}
