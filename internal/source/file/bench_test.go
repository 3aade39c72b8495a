package file

import (
	"path/filepath"
	"testing"

	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

func benchFile(b *testing.B, cfg Config) {
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		src, err := Open(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ReadAll(src.Reader()); err != nil {
			b.Fatal(err)
		}
		rows += int(src.Stats().Snapshot().Frames)
		_ = src.Close()
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkLobster reads the 10,000-row LOBSTER sample (message + orderbook), pre-scan included.
func BenchmarkLobster(b *testing.B) {
	dir := sourcetest.Path(b, "lobster-amzn-2012-06-21-level1")
	benchFile(b, Config{Format: FormatLobsterLevel1, Paths: []string{
		filepath.Join(dir, "AMZN_2012-06-21_34200000_57600000_message_1.first10000.csv"),
		filepath.Join(dir, "AMZN_2012-06-21_34200000_57600000_orderbook_1.first10000.csv")}})
}

// BenchmarkFXQuotes reads the 1,000-row TrueFX sample, pre-scan included.
func BenchmarkFXQuotes(b *testing.B) {
	benchFile(b, Config{Format: FormatFXQuotes, Instrument: "truefx:USD/JPY", Paths: []string{sourcetest.Path(b, "truefx-usdjpy-2013", "usdjpy-ticks.csv")}})
}
