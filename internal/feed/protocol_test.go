package feed

import (
	"testing"
	"time"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestProtocolAnswers pins what docs/PROTOCOL.md says where a bot author had to guess (issue 16):
// depth 0 is the smallest depth offered; a Subscribe refused for every instrument used its rate
// limit token like any command; after re-subscribing at another depth, no delta of the old depth
// follows the new Subscribed.
func TestProtocolAnswers(t *testing.T) {
	e := startEnv(t, Config{CommandRate: 0.01, CommandBurst: 3}) // a token per 100 s: none refills during the test
	p := newPublisher(t, e.bus, 1)
	p.publish(300)
	e.waitApplied(p)
	id := p.instruments()[0]
	c := mustDial(t, e.url, wire.SubprotocolProto)

	// §6.3: depth 0 is the smallest offered (10), not the deepest.
	c.send(subscribe(1, []string{id}, 0, pb.Channel_CHANNEL_BOOK))
	if sub := waitMsg(t, c, "Subscribed", func(m *pb.ServerMessage) bool { return m.GetSubscribed() != nil }).GetSubscribed(); sub.Depth != 10 {
		t.Fatalf("depth 0 granted %d, want 10 (the smallest offered)", sub.Depth)
	}

	// §7.2: re-subscribed at 50, the stream is depth 50's from the new Subscribed on.
	c.send(subscribe(2, []string{id}, 50, pb.Channel_CHANNEL_BOOK))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				p.publish(1)
				time.Sleep(2 * time.Millisecond)
			}
		}
	}()
	resubscribed := false
	deltas := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && deltas < 50; {
		for _, m := range c.within(100 * time.Millisecond) {
			if s := m.GetSubscribed(); s != nil && s.RequestId == 2 {
				if s.Depth != 50 {
					t.Fatalf("re-subscribed at depth %d, want 50", s.Depth)
				}
				resubscribed = true
			}
			if d := m.GetDelta(); d != nil && d.GetBook() != nil && resubscribed {
				deltas++
				if got := d.GetBook().Depth; got != 50 {
					t.Fatalf("a depth-%d delta after the depth-50 Subscribed", got)
				}
			}
		}
	}
	close(stop)
	<-done
	if !resubscribed || deltas == 0 {
		t.Fatalf("re-subscribed %v, %d depth-50 deltas", resubscribed, deltas)
	}

	// §6.2: the bucket held 3 tokens; two commands used two. A Subscribe of unknown instruments
	// uses the last one, so the Ping after it is rate limited.
	c.send(subscribe(3, []string{"nowhere:A", "nowhere:B"}, 0))
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT {
		t.Fatalf("unknown instruments: %v", err)
	}
	c.send(&pb.ClientMessage{Id: 4, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 1}}})
	if err := c.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_RATE_LIMITED || err.RequestId != 4 {
		t.Fatalf("the Ping after a refused Subscribe took the last token: %v, want RATE_LIMITED", err)
	}
}
