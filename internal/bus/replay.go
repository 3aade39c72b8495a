package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Replay sessions travel on core NATS (not JetStream: nothing of a replay is stored, and live
// subjects are never touched):
//
//	tickwire.replay.<session>.events.<venue>.<escaped symbol>   replayed events (EventSubject's escaping)
//	tickwire.replay.<session>.status                            ReplayStatus, every second and on change
//	tickwire.replay.<session>.control                           ReplayControl requests
//	tickwire.replay.<session>.reply.<token>                     the ReplayStatus answering one request
//
// A control request's reply subject is one of its session's, not the requester's inbox: the
// replayer may publish there like on the session's status, so no user needs nats-server's
// response permission (allow_responses). nats-server checks the reply subject of every message
// it delivers to a user that has it, each stream event the feed consumes included: 5 % of the
// server's CPU at S1 (docs/BENCHMARKS.md).

// Replay errors. (Kept with the replay plumbing; the package's other sentinels are in errors.go.)
var (
	// ErrSessionID: a replay session id that is not [a-z0-9][a-z0-9-]{0,63}.
	ErrSessionID = errors.New("bus: invalid replay session id")
	// ErrNoReplay: no replayer serves the session's control subject.
	ErrNoReplay = errors.New("bus: no such replay session")
	// ErrReplayControl: the replayer refused a control request (its reason follows).
	ErrReplayControl = errors.New("bus: replay control refused")
)

const (
	replayPrefix = "tickwire.replay."
	// MaxSessionIDLen bounds a session id, and with it the replay subjects' length.
	MaxSessionIDLen = 64
	// replayErrorHeader carries a control failure in a reply (the body is then empty).
	replayErrorHeader = "Tickwire-Error"
)

// ReplayPendingMsgs bounds the messages a replay subscription holds for its callbacks. A replay
// at full speed can outrun its subscriber; NATS then drops messages for it (a slow consumer,
// counted in tickwire_bus_async_errors_total) and the subscriber sees a gap in the session's
// chains and must resync. 64k messages (a fraction of a second of a full-speed replay, at most
// a few tens of MB of events) absorb bursts without letting a stuck subscriber grow memory
// without bound.
const ReplayPendingMsgs = 64 << 10

// flushTimeout bounds FlushReplay when its context has no deadline: a round trip that takes
// this long means the connection is down.
const flushTimeout = 10 * time.Second

// controlPendingMsgs bounds control requests queued for a replayer: they are rare and answered
// within milliseconds, so a queue this long means the replayer is stuck.
const controlPendingMsgs = 256

// ValidSessionID reports whether id is a valid replay session id: 1 to 64 bytes of lowercase
// letters, digits and '-', not starting with '-'. It returns an error wrapping ErrSessionID
// otherwise.
func ValidSessionID(id string) error {
	if id == "" || len(id) > MaxSessionIDLen {
		return fmt.Errorf("%w: %q: length must be 1..%d", ErrSessionID, id, MaxSessionIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (c == '-' && i > 0) {
			continue
		}
		return fmt.Errorf("%w: %q: byte %d (%q) not allowed (want [a-z0-9][a-z0-9-]{0,63})", ErrSessionID, id, i, c)
	}
	return nil
}

// ReplayEventSubject returns the subject of instrument's events in a replay session:
// "tickwire.replay.<session>.events.<venue>.<symbol>", the symbol escaped as by EventSubject.
func ReplayEventSubject(session, instrument string) (string, error) {
	if err := ValidSessionID(session); err != nil {
		return "", err
	}
	live, err := EventSubject(instrument)
	if err != nil {
		return "", err
	}
	return replayPrefix + session + ".events." + live[len(subjectPrefix):], nil
}

// ReplayStatusSubject returns "tickwire.replay.<session>.status". session must be valid.
func ReplayStatusSubject(session string) string { return replayPrefix + session + ".status" }

// ReplayControlSubject returns "tickwire.replay.<session>.control". session must be valid.
func ReplayControlSubject(session string) string { return replayPrefix + session + ".control" }

// replayReplyPrefix returns "tickwire.replay.<session>.reply.", the prefix of the reply
// subjects of the session's control requests.
func replayReplyPrefix(session string) string { return replayPrefix + session + ".reply." }

// ReplayInstrumentFromSubject returns the instrument of a replay event subject of session.
func ReplayInstrumentFromSubject(session, subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, replayPrefix+session+".events.")
	if !ok {
		return "", fmt.Errorf("%w: %q is not a replay event subject of %q", ErrSubject, subject, session)
	}
	return InstrumentFromSubject(subjectPrefix + rest)
}

// PublishReplayEvent publishes ev (already re-stamped with the session's epoch and seq) on its
// instrument's subject of the session, on core NATS: fire and forget, in call order. Use
// FlushReplay to wait until the server has everything published so far.
func (b *Bus) PublishReplayEvent(session string, ev *tickwirev1.Event) error {
	subj, err := ReplayEventSubject(session, ev.GetInstrument())
	if err != nil {
		return err
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("bus: encode replay event of %s: %w", ev.GetInstrument(), err)
	}
	if err := b.nc.Publish(subj, data); err != nil {
		return fmt.Errorf("bus: publish replay event %s: %w", ev.GetInstrument(), closedErr(err))
	}
	return nil
}

// PublishReplayStatus publishes st on the session's status subject.
func (b *Bus) PublishReplayStatus(session string, st *tickwirev1.ReplayStatus) error {
	if err := ValidSessionID(session); err != nil {
		return err
	}
	data, err := proto.Marshal(st)
	if err != nil {
		return fmt.Errorf("bus: encode replay status: %w", err)
	}
	if err := b.nc.Publish(ReplayStatusSubject(session), data); err != nil {
		return fmt.Errorf("bus: publish replay status of %s: %w", session, closedErr(err))
	}
	return nil
}

// FlushReplay waits until the server has received everything published on core NATS so far (a
// round trip), or ctx ends (without a deadline on ctx, at most flushTimeout). A replayer at full
// speed calls it every so often so that it cannot run further ahead of the server than that.
func (b *Bus) FlushReplay(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("bus: flush: %w", closedErr(err))
	}
	return nil
}

func closedErr(err error) error {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// guardedSub is a subscription whose callback can be stopped and waited for: stop unsubscribes,
// then takes mu, which the callback holds while it runs, so no callback runs after stop returns.
type guardedSub struct {
	sub     *nats.Subscription
	mu      sync.Mutex
	stopped bool // guarded by mu
	once    sync.Once
}

// run calls f unless stopped, holding mu.
func (g *guardedSub) run(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped {
		f()
	}
}

func (g *guardedSub) stop() {
	g.once.Do(func() {
		_ = g.sub.Unsubscribe() // fails only if already closed: then nothing is delivered anyway
		g.mu.Lock()
		g.stopped = true
		g.mu.Unlock()
	})
}

// SubscribeReplay delivers a replay session's events to onEvent and its status messages to
// onStatus (either may be nil), in the order the replayer published them, one at a time from
// one goroutine. A message that does not decode is counted and skipped. At most
// ReplayPendingMsgs messages wait for the callbacks; NATS drops what arrives beyond that (a
// slow consumer, counted in tickwire_bus_async_errors_total), and the subscriber then sees a gap
// in a chain. stop unsubscribes and waits until no callback runs; it is safe to call more than
// once.
func (b *Bus) SubscribeReplay(session string, onEvent func(*tickwirev1.Event), onStatus func(*tickwirev1.ReplayStatus)) (stop func(), err error) {
	if err := ValidSessionID(session); err != nil {
		return nil, err
	}
	// Two subscriptions (the control subject must not have a responder other than the
	// replayer) into one channel: the connection's reader pushes in arrival order, so one
	// goroutine sees events and status in publish order.
	ch := make(chan *nats.Msg, ReplayPendingMsgs)
	statusSubj := ReplayStatusSubject(session)
	evSub, err := b.nc.ChanSubscribe(replayPrefix+session+".events.>", ch)
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe replay %s: %w", session, closedErr(err))
	}
	stSub, err := b.nc.ChanSubscribe(statusSubj, ch)
	if err != nil {
		_ = evSub.Unsubscribe()
		return nil, fmt.Errorf("bus: subscribe replay %s: %w", session, closedErr(err))
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var dec eventDecoder
		for {
			var msg *nats.Msg
			select {
			case msg = <-ch:
			case <-quit:
				return
			}
			select {
			case <-quit: // stopped meanwhile: deliver nothing more
				return
			default:
			}
			if msg.Subject == statusSubj {
				if onStatus == nil {
					continue
				}
				st := new(tickwirev1.ReplayStatus)
				if err := proto.Unmarshal(msg.Data, st); err != nil {
					b.m.decodeErrors.Inc()
					b.logger.Error("undecodable replay status skipped", "subject", msg.Subject, "err", err)
					continue
				}
				onStatus(st)
				continue
			}
			if onEvent == nil {
				continue
			}
			ev := new(tickwirev1.Event)
			if err := dec.decode(msg.Data, ev); err != nil {
				b.m.decodeErrors.Inc()
				b.logger.Error("undecodable replay event skipped", "subject", msg.Subject, "err", err)
				continue
			}
			onEvent(ev)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = evSub.Unsubscribe() // fails only if already closed: nothing is delivered then
			_ = stSub.Unsubscribe()
			close(quit)
			<-done
		})
	}, nil
}

// RequestReplayControl sends c to the session's replayer and returns the status after it. It
// fails with ErrNoReplay when no replayer serves the session, ErrReplayControl when the
// replayer refused c, or ctx's error (bound the wait with a deadline).
func (b *Bus) RequestReplayControl(ctx context.Context, session string, c *tickwirev1.ReplayControl) (*tickwirev1.ReplayStatus, error) {
	if err := ValidSessionID(session); err != nil {
		return nil, err
	}
	data, err := proto.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("bus: encode replay control: %w", err)
	}
	// One subscription per request: control requests are rare (a person or a bot steering a
	// session), so the SUB and UNSUB they cost do not matter.
	sub, err := b.nc.SubscribeSync(replayReplyPrefix(session) + nuid.Next())
	if err != nil {
		return nil, fmt.Errorf("bus: replay control of %s: %w", session, closedErr(err))
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.nc.PublishMsg(&nats.Msg{Subject: ReplayControlSubject(session), Reply: sub.Subject, Data: data}); err != nil {
		return nil, fmt.Errorf("bus: replay control of %s: %w", session, closedErr(err))
	}
	msg, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("%w: %s", ErrNoReplay, session)
		}
		return nil, fmt.Errorf("bus: replay control of %s: %w", session, closedErr(err))
	}
	if reason := msg.Header.Get(replayErrorHeader); reason != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrReplayControl, session, reason)
	}
	st := new(tickwirev1.ReplayStatus)
	if err := proto.Unmarshal(msg.Data, st); err != nil {
		return nil, fmt.Errorf("bus: decode replay status of %s: %w", session, err)
	}
	return st, nil
}

// ServeReplayControl answers the session's control requests with handle's status, calling
// handle one request at a time from one goroutine. A ReplayControl without an action asks for
// the status only. A request that does not decode, or for which handle returns nil, is answered
// with an error (RequestReplayControl returns ErrReplayControl). stop unsubscribes and waits
// until handle is not running; it is safe to call more than once.
//
// Two replayers serving one session would both answer; the replay runner asks first
// (RequestReplayControl with an empty control) and refuses to start a session that answers.
func (b *Bus) ServeReplayControl(session string, handle func(*tickwirev1.ReplayControl) *tickwirev1.ReplayStatus) (stop func(), err error) {
	if err := ValidSessionID(session); err != nil {
		return nil, err
	}
	g := &guardedSub{}
	g.mu.Lock()
	defer g.mu.Unlock()
	replies := replayReplyPrefix(session)
	g.sub, err = b.nc.Subscribe(ReplayControlSubject(session), func(msg *nats.Msg) {
		if token, ok := strings.CutPrefix(msg.Reply, replies); !ok || token == "" || strings.ContainsAny(token, ".*>") {
			// Not answerable: this user may publish only on the session's subjects (a
			// requester of a version that asked on its inbox gets no answer).
			b.m.replayControlErrors.Inc()
			b.logger.Warn("replay control request without a reply subject of its session: not answered",
				"session", session, "reply", msg.Reply)
			return
		}
		g.run(func() {
			reply := &nats.Msg{Header: nats.Header{}}
			c := new(tickwirev1.ReplayControl)
			if err := proto.Unmarshal(msg.Data, c); err != nil {
				reply.Header.Set(replayErrorHeader, "undecodable ReplayControl: "+err.Error())
			} else if st := handle(c); st == nil {
				reply.Header.Set(replayErrorHeader, "replayer did not answer")
			} else if reply.Data, err = proto.Marshal(st); err != nil {
				reply.Header.Set(replayErrorHeader, "encode status: "+err.Error())
				reply.Data = nil
			}
			if err := msg.RespondMsg(reply); err != nil {
				b.logger.Warn("replay control reply failed", "session", session, "err", err)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bus: serve replay control %s: %w", session, closedErr(err))
	}
	if err := g.sub.SetPendingLimits(controlPendingMsgs, 1<<20); err != nil {
		_ = g.sub.Unsubscribe()
		return nil, fmt.Errorf("bus: replay control pending limits: %w", err)
	}
	// Served means the server holds the subscription: a control request sent once this returns
	// must find it, not get "no responders" (read as no such session).
	if err := b.nc.FlushTimeout(flushTimeout); err != nil {
		_ = g.sub.Unsubscribe()
		return nil, fmt.Errorf("bus: serve replay control %s: %w", session, closedErr(err))
	}
	return g.stop, nil
}
