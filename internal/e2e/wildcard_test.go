package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// wildcardBot counts, per instrument, the Subscribed messages and the snapshots it was sent.
type wildcardBot struct {
	client.BaseHandler
	mu         sync.Mutex
	subscribed map[string]int
	resumed    map[string]int // Subscribed messages that resumed every channel
	snapshots  map[string]int
}

func (b *wildcardBot) OnSubscribed(_ *client.Client, s *pb.Subscribed) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subscribed[s.Info.GetId()]++
	if len(s.Resumed) == len(s.Channels) {
		b.resumed[s.Info.GetId()]++
	}
}

func (b *wildcardBot) OnSnapshot(_ *client.Client, u client.Update) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.snapshots[u.Instrument]++
}

func (b *wildcardBot) counts() (subscribed, resumed, snapshots map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cp := func(m map[string]int) map[string]int {
		out := make(map[string]int, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return cp(b.subscribed), cp(b.resumed), cp(b.snapshots)
}

// TestVenueWildcardBot: a Go bot subscribes "synthetic:*" before ingest starts; every
// instrument of the venue reaches it as its own replica; after a feed restart it reconnects and
// every instrument resumes from its position, subscribed once (the wildcard, sent after the
// instruments with their positions, does not subscribe them again).
func TestVenueWildcardBot(t *testing.T) {
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	fd, addr := startFeed(t, b, "127.0.0.1:0")
	bot := &wildcardBot{subscribed: map[string]int{}, resumed: map[string]int{}, snapshots: map[string]int{}}
	c, err := client.New(client.Options{URL: "ws://" + addr + "/ws", Handler: bot,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	chans := []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES}
	if err := c.Subscribe(client.Subscription{Instruments: []string{"synthetic:*"}, Channels: chans}); err != nil {
		t.Fatal(err)
	}
	_, stopClient := runClient(t, c)
	defer stopClient()
	testwait.For(t, 10*time.Second, "the wildcard's Pending to be answered by a connection", func() bool { return c.Stats().Connects >= 1 })

	ing := startIngest(t, b)
	defer ing.stop(t)
	inSync := func() bool {
		for _, id := range c.Instruments() {
			v, ok := c.View(id)
			if !ok || len(v.Streams) != len(chans) {
				return false
			}
			for _, s := range v.Streams {
				if !s.Synced {
					return false
				}
			}
		}
		return len(c.Instruments()) == instruments
	}
	testwait.For(t, 20*time.Second, "every instrument of the venue in sync", inSync)
	subscribed, _, _ := bot.counts()
	for id, n := range subscribed {
		if n != 1 {
			t.Fatalf("%s subscribed %d times before the restart", id, n)
		}
	}

	fd.stop(t)
	fd, _ = startFeed(t, b, addr)
	defer fd.stop(t)
	testwait.For(t, 20*time.Second, "reconnect", func() bool { return c.Stats().Connects >= 2 })
	testwait.For(t, 20*time.Second, "every instrument subscribed again", func() bool {
		s, _, _ := bot.counts()
		for _, n := range s {
			if n < 2 {
				return false
			}
		}
		return len(s) == instruments
	})
	testwait.For(t, 20*time.Second, "every instrument in sync after the restart", inSync)
	subscribed, resumed, _ := bot.counts()
	for id, n := range subscribed {
		if n != 2 {
			t.Errorf("%s subscribed %d times, want 2 (once per connection)", id, n)
		}
		if resumed[id] != 1 {
			t.Errorf("%s resumed %d times after the restart, want 1", id, resumed[id])
		}
	}
}
