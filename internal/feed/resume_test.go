package feed

import (
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// positions returns the follower's position on every stream it holds, to resume from.
func (f *follower) positions() []*pb.StreamPosition {
	var out []*pb.StreamPosition
	for id, r := range f.replicas {
		for _, ch := range wire.AllChannels() {
			if r.Synced(ch) {
				p := r.Position(ch)
				out = append(out, &pb.StreamPosition{Instrument: id, Channel: ch, Epoch: p.Epoch, Seq: p.Seq})
			}
		}
	}
	return out
}

// TestResume: a client that reconnects with its positions gets exactly the deltas it missed
// (no snapshot) when the feed still holds them, and a HISTORY_GONE or NEW_EPOCH snapshot when
// it does not; its state equals the reference either way.
func TestResume(t *testing.T) {
	tests := []struct {
		name       string
		history    int
		bytes      int // ResumeHistoryBytes
		missed     int // events published while away
		tamper     func(*pb.StreamPosition)
		json       bool // resume over the JSON subprotocol (history keeps binary encodings)
		compact    bool // compact quotes before and after (history keeps Deltas)
		otherBase  bool // the client's quotes differ from this feed's (as if from a diverged replica)
		wantResume bool
		wantReason pb.SnapshotReason
	}{
		{name: "within history", history: 100000, missed: 2000, wantResume: true},
		{name: "within history, JSON", history: 100000, missed: 2000, json: true, wantResume: true},
		{name: "within history, compact quotes", history: 100000, missed: 2000, compact: true, wantResume: true},
		{name: "nothing missed, compact quotes, other base", history: 100000, missed: 0, compact: true, otherBase: true, wantResume: true},
		{name: "beyond history", history: 50, missed: 2000, wantReason: pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE},
		{name: "within the byte bound", history: 100000, bytes: 64 << 20, missed: 2000, wantResume: true},
		{name: "beyond the byte bound", history: 100000, bytes: 8 << 10, missed: 2000, wantReason: pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE},
		{name: "other epoch", history: 100000, missed: 10, tamper: func(p *pb.StreamPosition) { p.Epoch++ },
			wantReason: pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH},
		{name: "position from the future", history: 100000, missed: 10, tamper: func(p *pb.StreamPosition) { p.Seq += 1_000_000 },
			wantReason: pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{ResumeHistory: tt.history, ResumeHistoryBytes: tt.bytes}
			e := startEnv(t, cfg)
			p := newPublisher(t, e.bus, 5)
			p.publish(500)
			testwait.For(t, 10*time.Second, "instruments", func() bool { return len(e.srv.Instruments()) == 5 })
			ids := p.instruments()

			c1 := mustDial(t, e.url, wire.SubprotocolProto)
			msg := subscribe(1, ids, 10)
			msg.GetSubscribe().CompactQuotes = tt.compact
			c1.send(msg)
			f := newFollower(c1, p, market.Config{}, 10)
			p.publish(500)
			if err := f.follow(t, p.finish(), 20*time.Second); err != nil {
				t.Fatal(err)
			}
			_ = c1.conn.WriteClose(1000, nil)

			p.publish(tt.missed)
			last := p.finish()
			e.waitApplied(p)
			// The gauge counts what the histories hold: with a byte
			// bound, each history is between half full and full (3,000 events of 5
			// instruments are far more than 8 KiB each), evictions subtracted.
			testwait.For(t, 5*time.Second, "the resume-history gauge within the bound", func() bool {
				held := int(e.srv.hub.resumeHistoryBytes())
				if tt.bytes == 0 || tt.bytes > 1<<20 {
					return held > 0
				}
				return held >= len(ids)*tt.bytes/2 && held <= len(ids)*tt.bytes
			})
			sub := wire.SubprotocolProto
			if tt.json {
				sub = wire.SubprotocolJSON
			}
			c2 := mustDial(t, e.url, sub)
			f.c, f.handles, f.reasons, f.resumed = c2, map[uint32]string{}, map[pb.SnapshotReason]int{}, nil
			resume := f.positions()
			if tt.tamper != nil {
				for _, rp := range resume {
					tt.tamper(rp)
				}
			}
			if tt.otherBase {
				// Same positions, other quotes and times: a CompactQuote relative to this feed's
				// would leave the client wrong, so the feed must send a Delta first.
				for _, r := range f.replicas {
					pos := r.Position(pb.Channel_CHANNEL_QUOTE)
					if err := r.ApplySnapshot(&pb.Snapshot{Channel: pb.Channel_CHANNEL_QUOTE, Epoch: pos.Epoch, Seq: pos.Seq, LastIngestTimeNs: 1,
						Body: &pb.Snapshot_Quote{Quote: &pb.Quote{BidPrice: 1, BidSize: 1, AskPrice: 2, AskSize: 1}}}); err != nil {
						t.Fatal(err)
					}
				}
			}
			snapsBefore, compactBefore := f.snapshots, f.compact
			if tt.compact && f.compact == 0 {
				t.Fatal("no compact quotes before the reconnect")
			}
			msg = subscribe(2, ids, 10)
			msg.GetSubscribe().Resume = resume
			msg.GetSubscribe().CompactQuotes = tt.compact
			c2.send(msg)
			if tt.compact {
				// Resumed quote streams go on as Delta until this feed sent one, then compact.
				p.publish(500)
				last = p.finish()
			}
			if err := f.follow(t, last, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			if tt.compact && f.compact == compactBefore {
				t.Fatal("no compact quotes after the resume")
			}
			if tt.wantResume {
				if f.snapshots != snapsBefore || len(f.resumed) != len(resume) {
					t.Fatalf("resumed %d of %d streams, %d snapshots sent", len(f.resumed), len(resume), f.snapshots-snapsBefore)
				}
				return
			}
			if f.reasons[tt.wantReason] == 0 || len(f.resumed) != 0 {
				t.Fatalf("snapshot reasons %v, resumed %v; want %v snapshots", f.reasons, f.resumed, tt.wantReason)
			}
		})
	}
}
