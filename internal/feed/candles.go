package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Limits of a candle history request: enough for a chart, small enough to answer in a second.
const (
	maxHistoryBars  = 10_000
	historyTimeout  = 20 * time.Second
	stopAfterWindow = time.Minute // events arrive out of time order by up to this much
)

// errStopScan ends a history scan early; it is not a failure.
var errStopScan = errors.New("feed: stop scan")

// CandleHistory builds the candles of one instrument at interval from its stored trades in
// [from, to), oldest first, reading the event store (not the feed's memory), so any window the
// store keeps can be charted.
func CandleHistory(ctx context.Context, src EventSource, instrument string, interval uint32, from, to time.Time) ([]*pb.Candle, error) {
	if interval == 0 || 86400%interval != 0 {
		return nil, fmt.Errorf("feed: candle interval %ds must divide a day", interval)
	}
	if !to.After(from) {
		return nil, fmt.Errorf("feed: empty candle window %v .. %v", from, to)
	}
	if bars := to.Sub(from) / (time.Duration(interval) * time.Second); bars > maxHistoryBars {
		return nil, fmt.Errorf("feed: %d bars asked, at most %d", bars, maxHistoryBars)
	}
	subject, err := bus.EventSubject(instrument)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	var (
		bars     []*pb.Candle
		fromNs   = from.UnixNano()
		toNs     = to.UnixNano()
		stopNs   = toNs + int64(stopAfterWindow)
		iv       = int64(interval)
		finished = make(chan struct{})
	)
	cons, err := src.ConsumeEvents(ctx, bus.ConsumeOptions{Subjects: []string{subject}, StartTime: from.Add(-stopAfterWindow)},
		func(ev *pb.Event) error {
			ts := ev.VenueTimeNs
			if ts <= 0 {
				ts = ev.IngestTimeNs
			}
			if ts > stopNs { // well past the window in event time: later events are later still
				close(finished)
				return errStopScan
			}
			t := ev.GetTrade()
			if t == nil || ts < fromNs || ts >= toNs {
				return nil
			}
			start := (ts / 1e9) / iv * iv
			if n := len(bars); n > 0 && bars[n-1].StartS == start {
				c := bars[n-1]
				c.High, c.Low, c.Close = max(c.High, t.Price), min(c.Low, t.Price), t.Price
				c.Volume += t.Size
				c.TradeCount++
				return nil
			}
			if n := len(bars); n > 0 && bars[n-1].StartS > start {
				return nil // a late trade for a closed bar: bars stay in order
			}
			bars = append(bars, &pb.Candle{IntervalS: interval, StartS: start, Open: t.Price, High: t.Price,
				Low: t.Price, Close: t.Price, Volume: t.Size, TradeCount: 1})
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("feed: read history of %s: %w", instrument, err)
	}
	select {
	case <-cons.CaughtUp():
	case <-finished:
	case <-ctx.Done():
	}
	cons.Stop()
	if err := cons.Err(); err != nil && !errors.Is(err, errStopScan) {
		return nil, fmt.Errorf("feed: read history of %s: %w", instrument, err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("feed: candle history of %s: %w", instrument, ctx.Err())
	}
	return bars, nil
}

// serveCandles answers GET /api/candles?instrument=ID&interval=SECONDS&from=T&to=T with a
// protojson CandleList. T is RFC 3339 or Unix seconds; to defaults to now, from to 300 bars
// before to.
func (s *Server) serveCandles(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	src := s.history
	s.mu.Unlock()
	if src == nil {
		http.Error(w, "candle history not enabled", http.StatusNotImplemented)
		return
	}
	q := r.URL.Query()
	id := q.Get("instrument")
	if err := wire.CheckInstrumentID(id); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	iv, err := strconv.ParseUint(q.Get("interval"), 10, 32)
	if err != nil {
		http.Error(w, "interval: seconds per bar, e.g. 60", http.StatusBadRequest)
		return
	}
	to := time.Now()
	if v := q.Get("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			http.Error(w, "to: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	from := to.Add(-300 * time.Duration(iv) * time.Second)
	if v := q.Get("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			http.Error(w, "from: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	bars, err := CandleHistory(r.Context(), src, id, uint32(iv), from, to)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, err := protojson.Marshal(&pb.CandleList{Candles: bars})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func parseTime(v string) (time.Time, error) {
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(sec, 0), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

// EnableHistory serves GET /api/candles from the event store.
func (s *Server) EnableHistory(src EventSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = src
}
