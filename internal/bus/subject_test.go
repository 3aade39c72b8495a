package bus

import (
	"errors"
	"strings"
	"testing"
)

func TestEventSubject(t *testing.T) {
	tests := []struct {
		instrument, subject string
	}{
		{"kraken:XBT/USD", "tickwire.events.kraken.XBT%2FUSD"},
		{"coinbase:BTC-USD", "tickwire.events.coinbase.BTC-USD"},
		{"binance:BTCUSDT", "tickwire.events.binance.BTCUSDT"},
		{"synthetic:ACME", "tickwire.events.synthetic.ACME"},
		{"x:a.b*c>d%e", "tickwire.events.x.a%2Eb%2Ac%3Ed%25e"},
		{"deribit:BTC_USD-PERP", "tickwire.events.deribit.BTC_USD-PERP"},
		{"x:a:b", "tickwire.events.x.a%3Ab"},
	}
	for _, tt := range tests {
		got, err := EventSubject(tt.instrument)
		if err != nil || got != tt.subject {
			t.Errorf("EventSubject(%q) = %q, %v; want %q", tt.instrument, got, err, tt.subject)
			continue
		}
		back, err := InstrumentFromSubject(got)
		if err != nil || back != tt.instrument {
			t.Errorf("InstrumentFromSubject(%q) = %q, %v", got, back, err)
		}
	}
}

func TestEventSubjectRejects(t *testing.T) {
	for _, id := range []string{"", "nocolon", "Kraken:XBT", "kraken:", ":XBT", "kraken:XBT USD", "kraken:\x01", "kra.ken:X", "x:" + strings.Repeat("A", 65)} {
		if s, err := EventSubject(id); !errors.Is(err, ErrInstrument) {
			t.Errorf("EventSubject(%q) = %q, %v; want ErrInstrument", id, s, err)
		}
	}
	for _, s := range []string{"", "tickwire.events.x", "tickwire.events.x.A.B", "other.events.x.A", "tickwire.events.x.A%2f", "tickwire.events.x.A%41",
		"tickwire.events.x.A%2", "tickwire.events.x.A B", "tickwire.events.X.A", "tickwire.events.x.", "tickwire.events.x.%20"} {
		if id, err := InstrumentFromSubject(s); !errors.Is(err, ErrSubject) {
			t.Errorf("InstrumentFromSubject(%q) = %q, %v; want ErrSubject", s, id, err)
		}
	}
}

// FuzzEventSubject checks that every valid instrument maps to a subject of exactly four
// tokens of allowed bytes, and back to itself.
func FuzzEventSubject(f *testing.F) {
	for _, s := range []string{"kraken:XBT/USD", "coinbase:BTC-USD", "x:a.b*c>d", "x:%41", "x:é", "x:a:b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		subj, err := EventSubject(id)
		if err != nil {
			return
		}
		if toks := strings.Split(subj, "."); len(toks) != 4 {
			t.Fatalf("EventSubject(%q) = %q: %d tokens", id, subj, len(toks))
		}
		for i := 0; i < len(subj); i++ {
			c := subj[i]
			if c <= ' ' || c == '*' || c == '>' || c >= 0x7f {
				t.Fatalf("EventSubject(%q) = %q: byte %q", id, subj, c)
			}
		}
		back, err := InstrumentFromSubject(subj)
		if err != nil || back != id {
			t.Fatalf("round trip %q -> %q -> %q, %v", id, subj, back, err)
		}
	})
}

func TestMsgID(t *testing.T) {
	id := MsgID("x:A|B", 17, 42)
	inst, e, s, ok := parseMsgID(id)
	if !ok || inst != "x:A|B" || e != 17 || s != 42 {
		t.Fatalf("parseMsgID(%q) = %q %d %d %t", id, inst, e, s, ok)
	}
}
