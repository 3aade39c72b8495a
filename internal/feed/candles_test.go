package feed

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestCandleHistory: /api/candles builds bars from the stored trades of the window, equal to
// bars computed directly from the published events.
func TestCandleHistory(t *testing.T) {
	e := startEnv(t, Config{})
	e.srv.EnableHistory(e.bus)
	p := newPublisher(t, e.bus, 3)
	p.publish(6000) // 60 s of market time, 10 ms apart
	e.waitApplied(p)
	id := p.instruments()[1]
	from := time.Unix(1_700_000_010, 0)
	to := time.Unix(1_700_000_050, 0)

	type bar struct{ open, high, low, close, volume, n int64 }
	want := map[int64]*bar{}
	p.mu.Lock()
	for _, ev := range p.events[id] {
		tr := ev.GetTrade()
		if tr == nil || ev.VenueTimeNs < from.UnixNano() || ev.VenueTimeNs >= to.UnixNano() {
			continue
		}
		start := ev.VenueTimeNs / 1e9 / 10 * 10
		b := want[start]
		if b == nil {
			b = &bar{open: tr.Price, high: tr.Price, low: tr.Price}
			want[start] = b
		}
		b.high, b.low, b.close = max(b.high, tr.Price), min(b.low, tr.Price), tr.Price
		b.volume += tr.Size
		b.n++
	}
	p.mu.Unlock()
	if len(want) < 3 {
		t.Fatalf("only %d bars of trades in the window", len(want))
	}

	url := fmt.Sprintf("%s/api/candles?instrument=%s&interval=10&from=%d&to=%s", e.http, id, from.Unix(), to.UTC().Format(time.RFC3339))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var got pb.CandleList
	if err := protojson.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Candles) != len(want) {
		t.Fatalf("%d bars, want %d", len(got.Candles), len(want))
	}
	for i, c := range got.Candles {
		w := want[c.StartS]
		if w == nil || c.Open != w.open || c.High != w.high || c.Low != w.low || c.Close != w.close ||
			c.Volume != w.volume || int64(c.TradeCount) != w.n || c.IntervalS != 10 {
			t.Fatalf("bar %d %v, want %+v", i, c, w)
		}
		if i > 0 && c.StartS <= got.Candles[i-1].StartS {
			t.Fatal("bars out of order")
		}
	}

	for _, bad := range []string{
		"instrument=nope&interval=10",
		"instrument=" + id + "&interval=7",
		"instrument=" + id + "&interval=1&from=0&to=1000000",
		"instrument=" + id + "&interval=x",
	} {
		resp, err := http.Get(e.http + "/api/candles?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		var sink json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&sink)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, resp.StatusCode)
		}
	}
}
