package file

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// fuzzCSV writes data to a file and reads it in format, checking every event.
func fuzzCSV(t *testing.T, cfg Config, files ...[]byte) {
	dir := t.TempDir()
	cfg.Paths = nil
	names := []string{"AMZN_2012-06-21_34200000_57600000_message_1.csv", "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv"}
	for i, b := range files {
		p := filepath.Join(dir, names[i])
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Paths = append(cfg.Paths, p)
	}
	src, err := Open(cfg, nil)
	if err != nil {
		return // a missing column or header: refused at open
	}
	defer src.Close()
	for {
		b, err := src.Reader().Next()
		if err != nil {
			return
		}
		for _, ev := range b.Events {
			if err := sourcetest.CheckEvent(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func seedFile(f *testing.F, rel ...string) []byte {
	b, err := os.ReadFile(sourcetest.Path(f, rel...))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzTardis fuzzes the four tardis readers with the sample files as seeds.
func FuzzTardis(f *testing.F) {
	for i, name := range []string{"deribit_incremental_book_L2_BTC-PERPETUAL.csv", "binance-futures_book_snapshot_5_BTCUSDT.csv", "bitmex_trades_XBTUSD.csv", "huobi-dm-swap_quotes_BTC-USD.csv"} {
		f.Add(uint8(i), seedFile(f, "tardis-samples", name))
	}
	formats := []Format{FormatTardisBookL2, FormatTardisSnap, FormatTardisTrades, FormatTardisQuotes}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		fuzzCSV(t, Config{Format: formats[int(which)%len(formats)]}, data)
	})
}

// FuzzFXQuotes fuzzes the FX quote reader.
func FuzzFXQuotes(f *testing.F) {
	b := seedFile(f, "truefx-usdjpy-2013", "usdjpy-ticks.csv")
	f.Add(b[:min(len(b), 600)])
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCSV(t, Config{Format: FormatFXQuotes, Instrument: "truefx:USD/JPY"}, data)
	})
}

// FuzzLobster fuzzes the LOBSTER reader (message and orderbook files).
func FuzzLobster(f *testing.F) {
	m := seedFile(f, "lobster-amzn-2012-06-21-level1", "AMZN_2012-06-21_34200000_57600000_message_1.first10000.csv")
	o := seedFile(f, "lobster-amzn-2012-06-21-level1", "AMZN_2012-06-21_34200000_57600000_orderbook_1.first10000.csv")
	f.Add(m[:min(len(m), 800)], o[:min(len(o), 600)])
	f.Fuzz(func(t *testing.T, msg, ob []byte) {
		fuzzCSV(t, Config{Format: FormatLobsterLevel1}, msg, ob)
	})
}
