package market_test

// Replica test vectors shared with the TypeScript replica of @tickwire/client, which the dashboard
// uses (web/client/test/replica.test.ts reads them from here).
//
// The Go replica (pkg/market.Replica) is the reference: this test drives a pkg/market.State with
// a deterministic event sequence, turns what the state emits into the snapshot and delta
// ServerMessages a client would receive (plus scripted faults: a delta before any snapshot, a
// stale redelivery, a dropped delta, a corrupted checksum on a delta and on a snapshot, an
// unannounced new epoch), feeds each message to a Replica, and records the outcome and the whole
// replica state after it. Vitest replays the same messages and must reach the same outcomes and
// states. One case is a consolidated instrument, whose levels carry their venues. Regenerate with `go test ./pkg/market -update`; without -update the test fails when
// the committed file differs from what the Go code produces now.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/replica_vectors.json")

const vectorsFile = "testdata/replica_vectors.json"

type vectorFile struct {
	Comment string       `json:"comment"`
	Cases   []vectorCase `json:"cases"`
}

type vectorCase struct {
	Name       string `json:"name"`
	Instrument string `json:"instrument"`
	// Info is the instrument's InstrumentInfo in protobuf's JSON mapping, only on the
	// consolidated case (its members name the bits of the levels' venues).
	Info          json.RawMessage `json:"info,omitempty"`
	TradeHistory  int             `json:"trade_history"`
	CandleHistory int             `json:"candle_history"`
	Steps         []vectorStep    `json:"steps"`
}

type vectorStep struct {
	Note string `json:"note,omitempty"`
	// Message is the ServerMessage in protobuf's JSON mapping; Proto is its binary encoding in
	// base64 (the dashboard decodes both and must get the same message).
	Message json.RawMessage `json:"message"`
	Proto   string          `json:"proto"`
	// Outcome is "ok", or the replica error: "stale", "gap", "epoch", "checksum", "not_synced".
	Outcome string `json:"outcome"`
	// Resync is true when a client must send Resync{instrument, [channel]} for this outcome.
	Resync bool        `json:"resync,omitempty"`
	State  replicaJSON `json:"state"`
}

type positionJSON struct {
	Epoch  string `json:"epoch"`
	Seq    string `json:"seq"`
	Synced bool   `json:"synced"`
}

// replicaJSON is the whole replica: positions by channel name, then each channel's data, in
// protobuf's JSON mapping (int64 as decimal strings) or, for the book, as [price, size] decimal
// strings, [price, size, venues] on a level whose venues are not 0 (a consolidated book).
type replicaJSON struct {
	Positions map[string]positionJSON `json:"positions"`
	Quote     json.RawMessage         `json:"quote"`
	Depth     uint32                  `json:"depth"`
	Bids      [][]string              `json:"bids"`
	Asks      [][]string              `json:"asks"`
	Trades    []json.RawMessage       `json:"trades"`
	Candles   []json.RawMessage       `json:"candles"`
	Stats     json.RawMessage         `json:"stats"`
}

var channels = []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES,
	pb.Channel_CHANNEL_CANDLES, pb.Channel_CHANNEL_STATS}

// pjson is protojson with its deliberately unstable whitespace removed, so the file is stable.
func pjson(t *testing.T, m proto.Message) json.RawMessage {
	t.Helper()
	if m == nil {
		return json.RawMessage("null")
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func levelsJSON(levels []book.Level) [][]string {
	out := make([][]string, 0, len(levels))
	for _, l := range levels {
		level := []string{strconv.FormatInt(l.Price, 10), strconv.FormatInt(l.Size, 10)}
		if l.Venues != 0 {
			level = append(level, strconv.FormatUint(uint64(l.Venues), 10))
		}
		out = append(out, level)
	}
	return out
}

func stateOf(t *testing.T, r *market.Replica) replicaJSON {
	t.Helper()
	s := replicaJSON{Positions: map[string]positionJSON{}, Depth: r.Depth(),
		Bids: levelsJSON(r.Book().Bids()), Asks: levelsJSON(r.Book().Asks()),
		Trades: []json.RawMessage{}, Candles: []json.RawMessage{}}
	for _, ch := range channels {
		p := r.Position(ch)
		s.Positions[ch.String()] = positionJSON{Epoch: strconv.FormatUint(p.Epoch, 10),
			Seq: strconv.FormatUint(p.Seq, 10), Synced: r.Synced(ch)}
	}
	s.Quote = pjson(t, r.Quote())
	for _, tr := range r.Trades() {
		s.Trades = append(s.Trades, pjson(t, tr))
	}
	for _, c := range r.Candles() {
		s.Candles = append(s.Candles, pjson(t, c))
	}
	if st := r.Stats(); st != nil {
		s.Stats = pjson(t, st)
	} else {
		s.Stats = json.RawMessage("null")
	}
	return s
}

func outcomeOf(err error) (string, bool) {
	switch {
	case err == nil:
		return "ok", false
	case errors.Is(err, market.ErrStale):
		return "stale", false
	case errors.Is(err, market.ErrNotSynced):
		return "not_synced", false
	case errors.Is(err, market.ErrGap):
		return "gap", true
	case errors.Is(err, market.ErrEpoch):
		return "epoch", true
	case errors.Is(err, market.ErrChecksum):
		return "checksum", true
	}
	return "error: " + err.Error(), false
}

// recorder feeds messages to a replica and records each step.
type recorder struct {
	t       *testing.T
	replica market.Replica
	c       vectorCase
}

func (r *recorder) send(note string, m *pb.ServerMessage) {
	t := r.t
	t.Helper()
	var err error
	switch k := m.Kind.(type) {
	case *pb.ServerMessage_Snapshot:
		err = r.replica.ApplySnapshot(k.Snapshot)
	case *pb.ServerMessage_Delta:
		err = r.replica.ApplyDelta(k.Delta)
	}
	bin, merr := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if merr != nil {
		t.Fatal(merr)
	}
	outcome, resync := outcomeOf(err)
	r.c.Steps = append(r.c.Steps, vectorStep{Note: note, Message: pjson(t, m),
		Proto: base64.StdEncoding.EncodeToString(bin), Outcome: outcome, Resync: resync,
		State: stateOf(t, &r.replica)})
}

func (r *recorder) delta(note string, d *pb.Delta) {
	r.send(note, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}})
}

func (r *recorder) snapshot(note string, s *pb.Snapshot) {
	if s == nil {
		r.t.Fatalf("%s: no snapshot to send", note)
	}
	r.send(note, &pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: s}})
}

// feed is a market.State with a deterministic event generator, on one book depth.
type feed struct {
	t      *testing.T
	id     string
	state  *market.State
	rng    *rand.Rand
	epoch  uint64
	seq    uint64
	ts     int64
	mid    int64
	levels int64 // levels per side in a book snapshot event
	// members is the number of member venues of a consolidated instrument (0: not consolidated):
	// then every level the feed sets carries venues, a non-empty subset of them.
	members int
}

const handle = 7

func newFeed(t *testing.T, id string, cfg market.Config, seed uint64, levels int64) *feed {
	return &feed{t: t, id: id, state: market.NewState(id, cfg), rng: rand.New(rand.NewPCG(seed, 11)),
		epoch: 1, ts: 1_767_225_590e9, mid: 250_000, levels: levels}
}

func (f *feed) apply(body any) *market.Result {
	f.t.Helper()
	f.seq++
	ev := &pb.Event{Instrument: f.id, Epoch: f.epoch, Seq: f.seq, VenueTimeNs: f.ts, IngestTimeNs: f.ts + 250_000}
	switch b := body.(type) {
	case *pb.InstrumentInfo:
		ev.Body = &pb.Event_Info{Info: b}
	case *pb.BookUpdate:
		ev.Body = &pb.Event_Book{Book: b}
	case *pb.Trade:
		ev.Body = &pb.Event_Trade{Trade: b}
	case *pb.Quote:
		ev.Body = &pb.Event_Quote{Quote: b}
	}
	res, err := f.state.Apply(ev)
	if err != nil {
		f.t.Fatalf("apply %d/%d: %v", f.epoch, f.seq, err)
	}
	return res
}

func (f *feed) info() *market.Result {
	return f.apply(&pb.InstrumentInfo{Id: f.id, Venue: "synthetic", Symbol: f.id[len("synthetic:"):],
		Base: "VEC", Quote: "USD", PriceScale: 2, SizeScale: 3, TickSize: 1, LotSize: 1,
		Status: pb.InstrumentStatus_INSTRUMENT_STATUS_TRADING})
}

// consolidatedInfo is the InstrumentInfo of a consolidated instrument of the given members.
func (f *feed) consolidatedInfo(members []string) *pb.InstrumentInfo {
	return &pb.InstrumentInfo{Id: f.id, Venue: "consolidated", Symbol: f.id[len("consolidated:"):],
		Base: "VEC", Quote: "USD", PriceScale: 2, SizeScale: 3, TickSize: 1, LotSize: 1,
		Status: pb.InstrumentStatus_INSTRUMENT_STATUS_TRADING, Members: members}
}

// venues returns the venues of a level of size size: 0 off a consolidated book and on a
// removal, else a random non-empty subset of the members.
func (f *feed) venues(size int64) uint32 {
	if f.members == 0 || size == 0 {
		return 0
	}
	return uint32(1 + f.rng.IntN(1<<f.members-1))
}

func (f *feed) bookSnapshot() *market.Result {
	u := &pb.BookUpdate{Snapshot: true}
	for i := range f.levels {
		bid, ask := 1000+37*i, 900+41*i
		u.Bids = append(u.Bids, &pb.Level{Price: f.mid - 1 - 2*i, Size: bid, Venues: f.venues(bid)})
		u.Asks = append(u.Asks, &pb.Level{Price: f.mid + 1 + 2*i, Size: ask, Venues: f.venues(ask)})
	}
	return f.apply(u)
}

// next applies one random event: a trade (one in three) or a book change near the mid. Time
// moves on by up to 25 s, so 1 s and 60 s bars both roll over and get trimmed.
func (f *feed) next() *market.Result {
	f.ts += int64(f.rng.IntN(25_000)) * 1e6
	if f.rng.IntN(3) == 0 {
		side := pb.Side(1 + f.rng.IntN(2))
		return f.apply(&pb.Trade{Price: f.mid + int64(f.rng.IntN(7)) - 3, Size: int64(1 + f.rng.IntN(5000)),
			Side: side, TradeId: "t" + strconv.FormatUint(f.seq+1, 10)})
	}
	f.mid += int64(f.rng.IntN(5)) - 2
	u := &pb.BookUpdate{}
	for range 1 + f.rng.IntN(3) {
		off := int64(1 + f.rng.IntN(int(2*f.levels)))
		size := int64(f.rng.IntN(3)) * int64(1+f.rng.IntN(3000)) // a third are removals
		if f.rng.IntN(2) == 0 {
			u.Bids = append(u.Bids, &pb.Level{Price: f.mid - off, Size: size, Venues: f.venues(size)})
		} else {
			u.Asks = append(u.Asks, &pb.Level{Price: f.mid + off, Size: size, Venues: f.venues(size)})
		}
	}
	return f.apply(u)
}

// deltas returns what a subscriber to every channel gets for one result, in the feed's order.
func deltas(res *market.Result) []*pb.Delta {
	var out []*pb.Delta
	add := func(d *pb.Delta) {
		if d != nil {
			d = proto.Clone(d).(*pb.Delta)
			d.Handle = handle
			out = append(out, d)
		}
	}
	add(res.Quote)
	if len(res.Book) > 0 {
		add(res.Book[0])
	}
	add(res.Trades)
	add(res.Candles)
	add(res.Stats)
	return out
}

func (f *feed) snapshot(ch pb.Channel, reason pb.SnapshotReason) *pb.Snapshot {
	s := f.state.Snapshot(ch, 0, reason)
	if s != nil {
		s = proto.Clone(s).(*pb.Snapshot)
		s.Handle = handle
	}
	return s
}

func channelOf(d *pb.Delta) pb.Channel { return market.ChannelOf(d) }

// caseFaults is the main case: book depth 4 (the checksum covers 4 levels), short histories so
// that trimming happens, and every fault the client must handle.
func caseFaults(t *testing.T) vectorCase {
	cfg := market.Config{Depths: []uint32{4}, TradeHistory: 5, CandleIntervals: []uint32{1, 60}, CandleHistory: 3}
	f := newFeed(t, "synthetic:VEC", cfg, 1, 8)
	r := &recorder{t: t, c: vectorCase{Name: "faults", Instrument: f.id, TradeHistory: 5, CandleHistory: 3}}
	r.replica.TradeHistory, r.replica.CandleHistory = 5, 3

	f.info()
	f.bookSnapshot()
	var early []*pb.Delta
	for range 6 {
		early = append(early, deltas(f.next())...)
	}
	r.delta("a delta before any snapshot is not applied", early[len(early)-1])
	for _, ch := range channels {
		r.snapshot("subscribe snapshot", f.snapshot(ch, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE))
	}
	var last *pb.Delta
	for range 30 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
			last = d
		}
	}
	r.delta("redelivered delta: stale, ignored", last)

	// A dropped book delta: the next book delta's prev_seq is past the replica's position.
	dropped := false
	for !dropped {
		for _, d := range deltas(f.next()) {
			if channelOf(d) == pb.Channel_CHANNEL_BOOK && !dropped {
				dropped = true
				continue
			}
			r.delta("", d)
		}
	}
	gapSent, afterGap := false, 0
	for afterGap < 2 {
		for _, d := range deltas(f.next()) {
			switch {
			case channelOf(d) != pb.Channel_CHANNEL_BOOK:
				r.delta("", d)
			case !gapSent:
				r.delta("book delta after a dropped one: gap, resync", d)
				gapSent = true
				afterGap++
			default:
				r.delta("book delta while waiting for the resync snapshot: ignored", d)
				afterGap++
			}
		}
	}
	r.snapshot("resync snapshot after the gap", f.snapshot(pb.Channel_CHANNEL_BOOK, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC))

	// A book delta whose checksum does not match (as if a level had been corrupted in transit).
	corrupted := false
	for !corrupted {
		for _, d := range deltas(f.next()) {
			if channelOf(d) == pb.Channel_CHANNEL_BOOK && !corrupted {
				d.Checksum ^= 0x00010000
				r.delta("book delta with a corrupted checksum: resync", d)
				corrupted = true
				continue
			}
			r.delta("", d)
		}
	}
	bad := f.snapshot(pb.Channel_CHANNEL_BOOK, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC)
	bad.Checksum++
	r.snapshot("resync snapshot contradicting its own checksum: resync again", bad)
	r.snapshot("good resync snapshot", f.snapshot(pb.Channel_CHANNEL_BOOK, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC))
	for range 8 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
		}
	}

	// A new epoch: ingest lost continuity. The first deltas of epoch 2 reach the client before
	// the feed's NEW_EPOCH snapshots (an unannounced change); then the snapshots, then deltas.
	f.epoch, f.seq = 2, 0
	f.mid += 40
	f.bookSnapshot()
	for _, d := range deltas(f.next()) {
		r.delta("delta from a new epoch: resync", d)
	}
	for _, ch := range channels {
		r.snapshot("new epoch snapshot", f.snapshot(ch, pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH))
	}
	for range 15 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
		}
	}
	return r.c
}

// caseDeep is a book deeper than the checksum: depth 12, of which the checksum covers 10.
func caseDeep(t *testing.T) vectorCase {
	cfg := market.Config{Depths: []uint32{12}, TradeHistory: 3, CandleIntervals: []uint32{1, 60}, CandleHistory: 2}
	f := newFeed(t, "synthetic:DEEP", cfg, 2, 16)
	r := &recorder{t: t, c: vectorCase{Name: "deep book", Instrument: f.id, TradeHistory: 3, CandleHistory: 2}}
	r.replica.TradeHistory, r.replica.CandleHistory = 3, 2
	f.info()
	f.bookSnapshot()
	for _, ch := range channels {
		r.snapshot("subscribe snapshot", f.snapshot(ch, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE))
	}
	for range 40 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
		}
	}
	return r.c
}

// caseConsolidated is a consolidated instrument of three member venues: every level carries
// venues, a change of venues alone at the same size is a delta, and a delta whose venues were
// altered in transit fails the checksum.
func caseConsolidated(t *testing.T) vectorCase {
	cfg := market.Config{Depths: []uint32{6}, TradeHistory: 3, CandleIntervals: []uint32{60}, CandleHistory: 2}
	f := newFeed(t, "consolidated:VEC", cfg, 3, 8)
	f.members = 3
	info := f.consolidatedInfo([]string{"synthetic:VEC", "synthetic-b:VEC", "synthetic-c:VEC"})
	r := &recorder{t: t, c: vectorCase{Name: "consolidated", Instrument: f.id, Info: pjson(t, info),
		TradeHistory: 3, CandleHistory: 2}}
	r.replica.TradeHistory, r.replica.CandleHistory = 3, 2
	f.apply(info)
	f.bookSnapshot()
	for _, ch := range channels {
		r.snapshot("subscribe snapshot", f.snapshot(ch, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE))
	}
	for range 10 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
		}
	}

	// The best bid's venues change, its size does not: a delta of that one level.
	best, ok := f.state.Book().Best(book.Bid)
	if !ok || best.Venues == 0 {
		t.Fatalf("consolidated: best bid %+v has no venues", best)
	}
	venues := best.Venues ^ 0b101
	if venues == 0 {
		venues = 0b010
	}
	onlyVenues := false
	for _, d := range deltas(f.apply(&pb.BookUpdate{Bids: []*pb.Level{{Price: best.Price, Size: best.Size, Venues: venues}}})) {
		note := ""
		if b := d.GetBook(); b != nil {
			if len(b.Bids) != 1 || len(b.Asks) != 0 || b.Bids[0].Venues != venues || b.Bids[0].Size != best.Size {
				t.Fatalf("consolidated: a venues-only change gave the book delta %v", b)
			}
			note, onlyVenues = "the best bid's venues change, its size does not", true
		}
		r.delta(note, d)
	}
	if !onlyVenues {
		t.Fatal("consolidated: a venues-only change gave no book delta")
	}
	for range 10 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
		}
	}

	// A book delta whose venues were altered in transit (sizes intact): the checksum catches it.
	altered := false
	for !altered {
		for _, d := range deltas(f.next()) {
			if b := d.GetBook(); b != nil && !altered && alterVenues(b) {
				r.delta("book delta with a level's venues altered in transit: checksum, resync", d)
				altered = true
				continue
			}
			r.delta("", d)
		}
	}
	r.snapshot("resync snapshot", f.snapshot(pb.Channel_CHANNEL_BOOK, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC))
	for range 10 {
		for _, d := range deltas(f.next()) {
			r.delta("", d)
		}
	}
	return r.c
}

// alterVenues changes the venues of the first level of b that has some (to other, non-zero
// venues) and reports whether there was one.
func alterVenues(b *pb.BookLevels) bool {
	for _, side := range [][]*pb.Level{b.Bids, b.Asks} {
		for _, l := range side {
			if l.Venues != 0 {
				l.Venues ^= 0b100
				if l.Venues == 0 {
					l.Venues = 0b001
				}
				return true
			}
		}
	}
	return false
}

func TestReplicaVectors(t *testing.T) {
	vf := vectorFile{
		Comment: "Replica test vectors: ServerMessages (protobuf JSON and base64 binary) fed in order to one " +
			"client replica per case, with the outcome and the replica's whole state after each. Made by " +
			"pkg/market/vectors_test.go from pkg/market; regenerate with `go test ./pkg/market -update`.",
		Cases: []vectorCase{caseFaults(t), caseDeep(t), caseConsolidated(t)},
	}
	for _, c := range vf.Cases {
		seen := map[string]int{}
		for _, s := range c.Steps {
			seen[s.Outcome]++
		}
		t.Logf("case %q: %d steps, outcomes %v", c.Name, len(c.Steps), seen)
		for _, want := range []string{"ok", "stale", "gap", "epoch", "checksum", "not_synced"} {
			if c.Name == "faults" && seen[want] == 0 {
				t.Errorf("case %q has no %q step", c.Name, want)
			}
		}
		if c.Name == "consolidated" && (seen["checksum"] != 1 || seen["ok"] != len(c.Steps)-1) {
			t.Errorf("case %q: want one checksum step and the rest ok, have %v", c.Name, seen)
		}
	}
	got := encodeVectors(t, vf)
	if *update {
		if err := os.MkdirAll(filepath.Dir(vectorsFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (generate it with go test ./pkg/market -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what pkg/market produces now; if the change is intended, run "+
			"go test ./pkg/market -update and commit it (web/client's Vitest replays the file)", vectorsFile)
	}
}

// encodeVectors writes one step per line: diffs of the file stay readable and it stays small.
func encodeVectors(t *testing.T, vf vectorFile) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := func(v any) []byte {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	b.WriteString("{\n\"comment\": ")
	b.Write(enc(vf.Comment))
	b.WriteString(",\n\"cases\": [\n")
	for i, c := range vf.Cases {
		b.WriteString(fmt.Sprintf(`{"name": %s, "instrument": %s, `, enc(c.Name), enc(c.Instrument)))
		if c.Info != nil {
			b.WriteString(fmt.Sprintf(`"info": %s, `, c.Info))
		}
		format := `"trade_history": %d, "candle_history": %d, "steps": [` + "\n"
		b.WriteString(fmt.Sprintf(format, c.TradeHistory, c.CandleHistory))
		for j, s := range c.Steps {
			b.Write(enc(s))
			if j < len(c.Steps)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("]}")
		if i < len(vf.Cases)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n}\n")
	return b.Bytes()
}
