package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func item(t *testing.T, inst string, epoch, seq uint64) pubItem {
	t.Helper()
	ev := &tickwirev1.Event{Instrument: inst, Epoch: epoch, Seq: seq,
		Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: int64(100 + seq), Size: 1, TradeId: fmt.Sprint(seq)}}}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := EventSubject(inst)
	if err != nil {
		t.Fatal(err)
	}
	return pubItem{inst: inst, subj: subj, epoch: epoch, seq: seq, data: data}
}

// runs names a list of runs as "inst epoch/first-last" strings.
func runName(run []pubItem) string {
	return fmt.Sprintf("%s %d/%d-%d", run[0].inst, run[0].epoch, run[0].seq, run[len(run)-1].seq)
}

// at sets an item's ingest time and event time, in microseconds after a fixed instant.
func at(it pubItem, us int64) pubItem {
	it.ingestNs = 1_700_000_000_000_000_000 + us*1000
	it.eventNs = it.ingestNs
	return it
}

// venueAt sets an item's event (venue) time apart from its ingest time.
func venueAt(it pubItem, us int64) pubItem {
	it.eventNs = 1_600_000_000_000_000_000 + us*1000
	return it
}

func TestGrouperRuns(t *testing.T) {
	a := func(epoch, seq uint64) pubItem { return item(t, "x:A", epoch, seq) }
	b := func(epoch, seq uint64) pubItem { return item(t, "x:B", epoch, seq) }
	c := func(epoch, seq uint64) pubItem { return item(t, "x:C", epoch, seq) }
	size := len(a(1, 1).data) + 8 // what one event counts towards maxBytes
	for _, tc := range []struct {
		name                string
		maxEvents, maxBytes int
		window              time.Duration
		items               []pubItem
		want                []string
	}{
		{name: "one event", maxEvents: 256, maxBytes: 1 << 16, items: []pubItem{a(1, 1)}, want: []string{"x:A 1/1-1"}},
		{name: "interleaved instruments without ingest times are never reordered", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{a(1, 1), b(1, 7), a(1, 2), b(1, 8), a(1, 3)},
			want:  []string{"x:A 1/1-1", "x:B 1/7-7", "x:A 1/2-2", "x:B 1/8-8", "x:A 1/3-3"}},
		{name: "stretches of one instrument", maxEvents: 256, maxBytes: 1 << 16,
			items: []pubItem{a(1, 1), a(1, 2), b(1, 7), b(1, 8), b(1, 9), a(1, 3)},
			want:  []string{"x:A 1/1-2", "x:B 1/7-9", "x:A 1/3-3"}},
		{name: "new epoch starts a run", maxEvents: 256, maxBytes: 1 << 16,
			items: []pubItem{a(1, 1), a(1, 2), a(2, 1), a(2, 2)},
			want:  []string{"x:A 1/1-2", "x:A 2/1-2"}},
		{name: "a seq that does not follow on starts a run", maxEvents: 256, maxBytes: 1 << 16,
			items: []pubItem{a(1, 1), a(1, 2), a(1, 4), a(1, 5)},
			want:  []string{"x:A 1/1-2", "x:A 1/4-5"}},
		{name: "at the event limit", maxEvents: 3, maxBytes: 1 << 16,
			items: []pubItem{a(1, 1), a(1, 2), a(1, 3)},
			want:  []string{"x:A 1/1-3"}},
		{name: "past the event limit", maxEvents: 3, maxBytes: 1 << 16,
			items: []pubItem{a(1, 1), a(1, 2), a(1, 3), a(1, 4)},
			want:  []string{"x:A 1/1-3", "x:A 1/4-4"}},
		{name: "at the byte limit", maxEvents: 256, maxBytes: 2 * size,
			items: []pubItem{a(1, 1), a(1, 2)},
			want:  []string{"x:A 1/1-2"}},
		{name: "past the byte limit", maxEvents: 256, maxBytes: 2*size - 1,
			items: []pubItem{a(1, 1), a(1, 2)},
			want:  []string{"x:A 1/1-1", "x:A 1/2-2"}},
		{name: "one event per message", maxEvents: 1, maxBytes: 1 << 16,
			items: []pubItem{a(1, 1), a(1, 2)},
			want:  []string{"x:A 1/1-1", "x:A 1/2-2"}},
		{name: "interleaved within the window: grouped by instrument", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{at(a(1, 1), 0), at(b(1, 7), 100), at(a(1, 2), 200), at(c(1, 1), 300), at(b(1, 8), 999)},
			want:  []string{"x:A 1/1-2", "x:B 1/7-8", "x:C 1/1-1"}},
		{name: "at the window's end: not reordered across it", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{at(a(1, 1), 0), at(b(1, 7), 500), at(a(1, 2), 1000), at(b(1, 8), 1100)},
			want:  []string{"x:A 1/1-1", "x:B 1/7-7", "x:A 1/2-2", "x:B 1/8-8"}},
		{name: "an event ingested earlier than the window: not reordered", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{at(a(1, 1), 5000), at(b(1, 7), 5100), at(a(1, 2), 3000)},
			want:  []string{"x:A 1/1-1", "x:B 1/7-7", "x:A 1/2-2"}},
		{name: "venue times apart (a source publishing a stretch of market time at once): not reordered", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{venueAt(at(a(1, 1), 0), 0), venueAt(at(b(1, 7), 10), 10_000), venueAt(at(a(1, 2), 20), 20_000)},
			want:  []string{"x:A 1/1-1", "x:B 1/7-7", "x:A 1/2-2"}},
		{name: "venue times close: grouped", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{venueAt(at(a(1, 1), 0), 0), venueAt(at(b(1, 7), 10), 300), venueAt(at(a(1, 2), 20), 600)},
			want:  []string{"x:A 1/1-2", "x:B 1/7-7"}},
		{name: "an event without ingest time closes the window", maxEvents: 256, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{at(a(1, 1), 0), at(b(1, 7), 100), b(1, 8), at(a(1, 2), 200)},
			want:  []string{"x:A 1/1-1", "x:B 1/7-7", "x:B 1/8-8", "x:A 1/2-2"}},
		{name: "reordering off", maxEvents: 256, maxBytes: 1 << 16, window: -1,
			items: []pubItem{at(a(1, 1), 0), at(b(1, 7), 100), at(a(1, 2), 200)},
			want:  []string{"x:A 1/1-1", "x:B 1/7-7", "x:A 1/2-2"}},
		{name: "grouped, then cut at the event limit", maxEvents: 2, maxBytes: 1 << 16, window: time.Millisecond,
			items: []pubItem{at(a(1, 1), 0), at(b(1, 7), 1), at(a(1, 2), 2), at(a(1, 3), 3)},
			want:  []string{"x:A 1/1-2", "x:A 1/3-3", "x:B 1/7-7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			g := grouper{maxEvents: tc.maxEvents, maxBytes: tc.maxBytes, window: int64(tc.window),
				emit: func(run []pubItem) { got = append(got, runName(run)) }}
			g.send(tc.items)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("runs %q, want %q", got, tc.want)
			}
			// A second pass starts from nothing.
			got = nil
			g.send([]pubItem{b(1, 1), a(5, 1)})
			if strings.Join(got, ",") != "x:B 1/1-1,x:A 5/1-1" {
				t.Fatalf("second pass: runs %q", got)
			}
		})
	}
}

// A run's message decodes back to its events, and its headers name their positions.
func TestRunMessageRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var run []pubItem
			for seq := uint64(10); seq < 10+uint64(n); seq++ {
				run = append(run, item(t, "kraken:BTC/USD", 3, seq))
			}
			msg := runMsg(run)
			inst, epoch, first, last, ok := msgPositions(msg.Header)
			if !ok || inst != "kraken:BTC/USD" || epoch != 3 || first != 10 || last != 9+uint64(n) {
				t.Fatalf("positions %q %d %d-%d %t", inst, epoch, first, last, ok)
			}
			if c, err := batchCount(msg.Header); err != nil || c != n {
				t.Fatalf("count %d %v, want %d", c, err, n)
			}
			var dec eventDecoder
			var got []*tickwirev1.Event
			err := dec.decodeMessage(msg.Header, msg.Data, func(ev *tickwirev1.Event) error {
				got = append(got, ev)
				return nil
			}, func(err error) { t.Fatalf("bad: %v", err) })
			if err != nil || len(got) != n {
				t.Fatalf("decoded %d events, %v; want %d", len(got), err, n)
			}
			for i, ev := range got {
				want := new(tickwirev1.Event)
				if err := proto.Unmarshal(run[i].data, want); err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(ev, want) {
					t.Fatalf("event %d: %v, want %v", i, ev, want)
				}
			}
		})
	}
}

// A batch that is not what its header says is reported, never a crash, and the events before
// the break are still delivered.
func TestMalformedBatches(t *testing.T) {
	run := []pubItem{item(t, "x:A", 1, 1), item(t, "x:A", 1, 2), item(t, "x:A", 1, 3)}
	good := runMsg(run)
	hdr := func(count string) nats.Header {
		return nats.Header{jetstream.MsgIDHeader: []string{"x:A|1|1-3"}, BatchHeader: []string{count}}
	}
	one := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), run[0].data)
	for _, tc := range []struct {
		name      string
		h         nats.Header
		body      []byte
		delivered int
		bad       int
	}{
		{name: "well formed", h: good.Header, body: good.Data, delivered: 3},
		{name: "count not a number", h: hdr("three"), body: good.Data, bad: 1},
		{name: "count of one", h: hdr("1"), body: good.Data, bad: 1},
		{name: "count above the events", h: hdr("4"), body: good.Data, delivered: 3, bad: 1},
		{name: "count below the events", h: hdr("2"), body: good.Data, delivered: 2, bad: 1},
		{name: "truncated", h: hdr("3"), body: good.Data[:len(good.Data)-3], delivered: 2, bad: 1},
		{name: "wrong field", h: hdr("2"), body: append(protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), run[0].data), one...), bad: 1},
		{name: "an event that does not decode", h: hdr("2"), body: append(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff, 0xff}), one...), delivered: 1, bad: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dec eventDecoder
			delivered, bad := 0, 0
			err := dec.decodeMessage(tc.h, tc.body, func(*tickwirev1.Event) error { delivered++; return nil }, func(error) { bad++ })
			if err != nil || delivered != tc.delivered || bad != tc.bad {
				t.Fatalf("delivered %d, bad %d, err %v; want %d, %d", delivered, bad, err, tc.delivered, tc.bad)
			}
		})
	}
	// The handler's error stops the batch and is returned as it is.
	stop := errors.New("stop")
	var dec eventDecoder
	calls := 0
	err := dec.decodeMessage(good.Header, good.Data, func(*tickwirev1.Event) error { calls++; return stop }, func(error) {})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("err %v after %d calls, want stop after 1", err, calls)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add("3", []byte{0x0a, 0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, count string, body []byte) {
		var dec eventDecoder
		h := nats.Header{BatchHeader: []string{count}}
		_ = dec.decodeMessage(h, body, func(*tickwirev1.Event) error { return nil }, func(error) {})
	})
}

// The batcher's wait for acks: none below maxInFlight, until an answer brings it below, and
// never longer than maxAckWait.
func TestAwaitAcks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Bus{answered: make(chan struct{}, 1), closing: make(chan struct{})}
		p := &pubConn{}
		b.pub.Store(p)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		wait := func() time.Duration {
			start := time.Now()
			b.awaitAcks(timer)
			return time.Since(start)
		}

		p.inFlight.Store(maxInFlight - 1)
		if d := wait(); d != 0 {
			t.Fatalf("below the limit: waited %s", d)
		}

		p.inFlight.Store(maxInFlight)
		go func() {
			time.Sleep(300 * time.Microsecond)
			p.answer(b)
		}()
		if d := wait(); d != 300*time.Microsecond {
			t.Fatalf("at the limit: waited %s, want until the answer (300µs)", d)
		}

		p.inFlight.Store(maxInFlight + 5) // answers that never come
		if d := wait(); d != maxAckWait {
			t.Fatalf("no answer: waited %s, want %s", d, maxAckWait)
		}

		// A Fence takes the connection away: its answers will not come.
		go func() {
			time.Sleep(100 * time.Microsecond)
			b.pub.Store(nil)
			b.pokeAnswered()
		}()
		if d := wait(); d != 100*time.Microsecond {
			t.Fatalf("fenced: waited %s, want until the fence (100µs)", d)
		}
		b.pub.Store(p)

		close(b.closing)
		if d := wait(); d != 0 {
			t.Fatalf("closing: waited %s", d)
		}
	})
}
