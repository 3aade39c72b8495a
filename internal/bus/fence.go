package bus

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fencing: dropping what a publisher that lost its lease has not delivered yet.
//
// An ingest that holds a lease (internal/lease) publishes; when it loses the lease (cut off
// from NATS longer than the lease lets it act) another process takes over and continues the
// same instruments. What the old holder published meanwhile must never be stored after that:
// it would land behind the new holder's events of the same positions. Those publishes wait in
// three places: the Bus's queue (the batcher has not sent them), nats.go's buffer (while
// disconnected nats.go keeps up to 64 MB and sends it when it reconnects, however late) and
// the socket's send buffer (a link that drops packets without resetting the connection). The
// de-duplication window catches a late copy of a position the new holder stored only within
// the window (DefaultDuplicates). Fence empties all three:
//
//   - queued events carry the fence generation they were queued in, and the batcher drops
//     those of an older one;
//   - with Config.FencedPublishing, events are published on a connection of their own
//     (pubConn), which Fence closes: nats.go drops its buffer on Close, and the socket is
//     reset (SO_LINGER 0), which drops the kernel's send buffer; the next publish opens a
//     new connection.
//
// Messages already delivered to the server may still be stored; that happens before the
// lease lets anyone else take over (a holder stops acting at two thirds of the lease's TTL,
// a standby takes over after the TTL).

// ErrNotFenceable: Fence on a Bus without Config.FencedPublishing.
var ErrNotFenceable = errors.New("bus: fence needs Config.FencedPublishing")

// pubConn is the connection event messages are published on (batch.go): the Bus's own, or
// with Config.FencedPublishing one of their own that Fence cuts.
type pubConn struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	own bool // a connection of its own: Fence and Close close it

	// inFlight is the messages sent on this connection that await the store's answer
	// (awaitAcks); a cut connection's never come.
	inFlight atomic.Int64
	sock     atomic.Pointer[net.TCPConn] // the socket last dialed (own only): reset by cut
	fenced   atomic.Bool                 // cut by Fence: its failures are not the store's
	cutCh    chan struct{}               // closed by cut: Flush stops waiting for its acks
}

// answer records the store's answer (ack or failure) to one message sent on p.
func (p *pubConn) answer(b *Bus) {
	if p.inFlight.Add(-1) < maxInFlight {
		b.pokeAnswered()
	}
}

func (b *Bus) pokeAnswered() {
	select {
	case b.answered <- struct{}{}:
	default:
	}
}

// newPubJetStream returns a JetStream context on p's connection whose async publish answers
// are accounted to p.
func (b *Bus) newPubJetStream(p *pubConn) (jetstream.JetStream, error) {
	return jetstream.New(p.nc,
		jetstream.WithPublishAsyncMaxPending(b.cfg.MaxPendingPublishes),
		jetstream.WithPublishAsyncTimeout(b.cfg.PublishAckTimeout),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, msg *nats.Msg, err error) {
			b.onPublishError(p, msg, err)
		}),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
			p.answer(b)
			n, _ := batchCount(msg.Header)
			b.m.published.Add(float64(max(n, 1)))
			b.m.publishedMsgs.Inc()
			b.health.publishAcked()
		}),
	)
}

// socketDialer dials TCP for nats.go and remembers the last socket in p, so that cut can
// reset it.
type socketDialer struct {
	d net.Dialer
	p *pubConn
}

func (s *socketDialer) Dial(network, address string) (net.Conn, error) {
	c, err := s.d.Dial(network, address)
	if tc, ok := c.(*net.TCPConn); ok {
		s.p.sock.Store(tc)
	}
	return c, err
}

// pubDialTimeout bounds a dial of the publish connection (nats.go's default).
const pubDialTimeout = 2 * time.Second

// publisher returns the connection to publish on, opening one of its own when fenced
// publishing has none (the first publish, or the first after a Fence). Batcher only.
func (b *Bus) publisher() (*pubConn, error) {
	if p := b.pub.Load(); p != nil {
		return p, nil
	}
	p := &pubConn{own: true, cutCh: make(chan struct{})}
	nc, err := nats.Connect(b.cfg.URL, append(b.connOptions(b.cfg.Name+"-publish"),
		nats.SetCustomDialer(&socketDialer{d: net.Dialer{Timeout: pubDialTimeout}, p: p}))...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect for publishing %s: %w", b.cfg.URL, err)
	}
	p.nc = nc
	if p.js, err = b.newPubJetStream(p); err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: jetstream for publishing: %w", err)
	}
	if b.cfg.afterPublishDial != nil {
		b.cfg.afterPublishDial()
	}
	if !b.pub.CompareAndSwap(nil, p) {
		nc.Close() // cannot happen: only the batcher opens one
		return b.pub.Load(), nil
	}
	return p, nil
}

// Fence discards every event publish that has not reached the server yet: the events queued
// (Publish returned, the batcher has not sent them) and what the publish connection holds
// (nats.go's reconnect buffer, the socket's send buffer), which would otherwise be sent
// whenever the connection comes back. A process calls it when it loses the lease that let it
// publish (see the top of this file). The events it drops are neither stored nor reported
// as publish errors (the caller gave them up); they are counted in
// tickwire_bus_fenced_total. Publishes after Fence go out on a new connection. It returns
// ErrNotFenceable without Config.FencedPublishing. Safe for concurrent use; it does not
// block on the network.
func (b *Bus) Fence() error {
	if !b.cfg.FencedPublishing {
		return ErrNotFenceable
	}
	b.fenceGen.Add(1)
	if p := b.pub.Swap(nil); p != nil {
		p.cut(b)
	}
	b.pokeAnswered() // awaitAcks must not wait for a cut connection's acks
	return nil
}

// cut closes p, first resetting its socket so that the kernel drops what it has not sent.
func (p *pubConn) cut(b *Bus) {
	p.fenced.Store(true)
	n := p.js.PublishAsyncPending()
	if s := p.sock.Load(); s != nil {
		_ = s.SetLinger(0)
	}
	p.nc.Close()
	close(p.cutCh)
	b.m.fenced.Add(float64(n))
	if n > 0 {
		b.logger.Warn("publishes fenced: the publish connection was closed with what it held", "awaiting_ack", n)
	}
}
