package feed

import (
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// session is one client connection: the commands it sent (handled on its gws read goroutine,
// one at a time, in order) and its outbound queue.
type session struct {
	id     uint64
	hub    *Hub
	replay *replaySession // nil on a live connection
	server *Server
	out    *fanout.Conn
	json   bool
	ip     string
	log    *slog.Logger
	limits wire.Limits

	// snaps is the budget for the snapshots the client asks for; the owners charge it, under its
	// own lock (see owner.request).
	snaps snapBudget

	// auth is the connection's credential and its timers (auth.go).
	auth sessAuth

	// owned by the read goroutine:
	limiter *rate.Limiter
	strikes int // commands refused by the rate limiter in a row

	// subsMu guards subs and venues: the read goroutine changes them on commands, and an owner
	// adds an instrument of a wildcard venue when it appears (venueListed). Taken before the
	// hub's mu, never while waiting for anything.
	subsMu sync.Mutex
	subs   map[string]chanSet  // subscribed instruments and their channels; nil once closed
	venues map[string]venueSub // venue wildcards ("venue:*") by venue
}

// venueSub is a venue wildcard subscription: what to subscribe for each instrument of the venue
// that appears.
type venueSub struct {
	chans chanSet
	cmd   command // a cmdSubscribe without its instrument
}

// chanSet is a set of channels, one bit per channel number.
type chanSet uint8

func chanSetOf(chans []pb.Channel) chanSet {
	var set chanSet
	for _, ch := range chans {
		set |= 1 << uint(ch)
	}
	return set
}

// maxStrikes is how many rate-limited commands in a row close the connection: a client that
// ignores RATE_LIMITED errors that long is not going to slow down.
const maxStrikes = 100

func (s *session) encode(m *pb.ServerMessage) []byte { return encode(s.log, m, s.json) }

func (s *session) sendControl(m *pb.ServerMessage) {
	if b := s.encode(m); b != nil {
		s.out.Enqueue(b, fanout.Control, 0)
	}
}

func (s *session) sendError(reqID uint32, code pb.ErrorCode, msg, instrument string) {
	s.hub.metrics.commandErrors.WithLabelValues(code.String()).Inc()
	s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{
		RequestId: reqID, Code: code, Message: msg, Instrument: instrument}}})
}

// idErrors gathers the instruments of one command refused for the same reason. The command gets
// one Error for them all, naming the first and the count, never one per instrument: replies stay
// smaller than the command however many ids it names.
type idErrors struct {
	first string
	n     int
}

func (e *idErrors) add(id string) {
	if e.n == 0 {
		e.first = id
	}
	e.n++
}

// sendIDErrors sends e's Error, if e holds any instrument: one is the message for a single
// instrument; for several it is many after their count, then the first ("1000 unknown
// instruments, first x:Y").
func (s *session) sendIDErrors(reqID uint32, code pb.ErrorCode, e idErrors, one, many string) {
	switch e.n {
	case 0:
	case 1:
		s.sendError(reqID, code, one, e.first)
	default:
		s.sendError(reqID, code, strconv.Itoa(e.n)+" "+many+", first "+e.first, e.first)
	}
}

// onMessage handles one client frame. It returns a close code and reason when the connection
// must close, or 0.
func (s *session) onMessage(data []byte) (int, string) {
	// Every frame counts against the rate limit, valid or not.
	limited := !s.limiter.Allow()
	if limited {
		s.strikes++
		if s.strikes >= maxStrikes {
			return wire.CloseRateLimited, "command rate limit"
		}
	} else {
		s.strikes = 0
	}
	m, err := wire.DecodeClientMessage(data, s.subprotocol(), s.limits)
	var ce *wire.CommandError
	switch {
	case err != nil && !errors.As(err, &ce):
		s.hub.metrics.commandErrors.WithLabelValues("undecodable").Inc()
		return wire.CloseProtocolError, "undecodable command"
	case limited:
		id := uint32(0)
		if m != nil {
			id = m.Id
		} else {
			id = ce.ID
		}
		s.sendError(id, pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "too many commands", "")
		return 0, ""
	case ce != nil:
		s.sendError(ce.ID, ce.Code, ce.Message, "")
		return 0, ""
	}
	if code, reason, handled := s.authGate(m); handled {
		return code, reason
	}
	h := s.hub
	switch c := m.Command.(type) {
	case *pb.ClientMessage_Subscribe:
		h.metrics.commands.WithLabelValues("subscribe").Inc()
		// Entitlements first (auth.go): channels and a depth the token does not cover are
		// refused or capped for the whole command, instruments one by one below.
		chans, refusedChans := s.entitledChannels(c.Subscribe.Channels)
		depthIndex, depthOK := s.entitledDepth(c.Subscribe.Depth)
		if !depthOK && slices.Contains(chans, pb.Channel_CHANNEL_BOOK) {
			chans = slices.DeleteFunc(chans, func(ch pb.Channel) bool { return ch == pb.Channel_CHANNEL_BOOK })
			refusedChans = append(refusedChans, pb.Channel_CHANNEL_BOOK)
		}
		if len(refusedChans) > 0 {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled to channels: "+channelNames(refusedChans), "")
		}
		if len(chans) == 0 {
			return 0, ""
		}
		c.Subscribe.Channels = chans
		ent, maxSubs := s.entitlements(), s.maxSubscriptions()
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		resume := map[string]map[pb.Channel]market.Position{}
		for _, p := range c.Subscribe.Resume {
			if resume[p.Instrument] == nil {
				resume[p.Instrument] = map[pb.Channel]market.Position{}
			}
			resume[p.Instrument][p.Channel] = market.Position{Epoch: p.Epoch, Seq: p.Seq}
		}
		interval := ent.Interval
		cmd := func(id string) command {
			pos := resume[id]
			if interval > 0 {
				pos = nil // a rate-limited stream starts from a snapshot: it never gets deltas
			}
			return command{kind: cmdSubscribe, sess: s, reqID: m.Id, instrument: id,
				channels: c.Subscribe.Channels, depthIndex: depthIndex, resume: pos,
				compact: c.Subscribe.CompactQuotes && !s.json, interval: interval}
		}
		// The command's errors go before its replies, which come from the owners.
		var unknown, overCap, notEntitled idErrors
		accepted := make([]string, 0, len(c.Subscribe.Instruments))
		var waiting []string // Subscribe.wait: not known yet, subscribed when they appear
		ids, wildcards, refused := s.expandVenues(c.Subscribe.Instruments, cmd(""))
		for _, id := range refused {
			notEntitled.add(id)
		}
		for _, id := range ids {
			if !ent.Instrument(id) { // before known: whether it exists is not told either
				if !wildcards[id] { // a venue's instruments the token does not cover are left out
					notEntitled.add(id)
				}
				continue
			}
			known := h.known(id)
			if !known && !c.Subscribe.Wait {
				unknown.add(id)
				continue
			}
			if _, held := s.subs[id]; !held {
				if len(s.subs) >= maxSubs {
					overCap.add(id)
					continue
				}
				h.metrics.subscriptions.Inc()
			}
			s.subs[id] |= chanSetOf(c.Subscribe.Channels)
			if known {
				accepted = append(accepted, id)
			} else {
				waiting = append(waiting, id)
			}
		}
		s.sendIDErrors(m.Id, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, notEntitled, "not entitled", "instruments not entitled")
		s.sendIDErrors(m.Id, pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT, unknown, "unknown instrument", "unknown instruments")
		limit := strconv.Itoa(maxSubs)
		s.sendIDErrors(m.Id, pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS, overCap,
			"at most "+limit+" instruments per connection", "instruments over the cap of "+limit+" per connection")
		for _, id := range c.Subscribe.Instruments {
			if venue, ok := wire.VenueWildcard(id); ok && s.venues[venue].chans != 0 {
				waiting = append(waiting, id) // standing: told in the same Pending
			}
		}
		if len(waiting) > 0 {
			// Pending first, so that it comes before the Subscribed of any that appears now.
			s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Pending{Pending: &pb.Pending{
				RequestId: m.Id, Instruments: waiting}}})
			for _, id := range waiting {
				if _, ok := wire.VenueWildcard(id); !ok {
					h.subscribeOrWait(cmd(id))
				}
			}
		}
		for _, id := range accepted {
			h.ownerOf(id).post(cmd(id))
		}
	case *pb.ClientMessage_Unsubscribe:
		h.metrics.commands.WithLabelValues("unsubscribe").Inc()
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		chans := c.Unsubscribe.Channels
		if len(chans) == 0 {
			chans = wire.AllChannels()
		}
		var notHeld idErrors
		for _, id := range s.unsubscribeVenues(m.Id, c.Unsubscribe.Instruments, chans, &notHeld) {
			if _, held := s.subs[id]; !held {
				notHeld.add(id)
				continue
			}
			// The instrument's slot under the subscription cap is freed with its last channel.
			if s.subs[id] &^= chanSetOf(chans); s.subs[id] == 0 {
				delete(s.subs, id)
				h.metrics.subscriptions.Dec()
			}
			if h.cancelWait(s, id, chans) {
				// It never existed: no owner holds it, and the answer comes from here.
				s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{
					RequestId: m.Id, Channels: chans}}})
				continue
			}
			h.ownerOf(id).post(command{kind: cmdUnsubscribe, sess: s, reqID: m.Id, instrument: id, channels: chans})
		}
		s.sendIDErrors(m.Id, pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED, notHeld, "not subscribed", "instruments not subscribed")
	case *pb.ClientMessage_Resync:
		h.metrics.commands.WithLabelValues("resync").Inc()
		id := c.Resync.Instrument
		if !s.entitlements().Instrument(id) {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled", id)
			return 0, ""
		}
		if _, refused := s.entitledChannels(c.Resync.Channels); len(refused) > 0 {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled to channels: "+channelNames(refused), id)
			return 0, ""
		}
		s.subsMu.Lock()
		_, held := s.subs[id]
		s.subsMu.Unlock()
		if !held {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED, "not subscribed", id)
			return 0, ""
		}
		h.ownerOf(id).post(command{kind: cmdResync, sess: s, reqID: m.Id, instrument: id, channels: c.Resync.Channels})
	case *pb.ClientMessage_ListInstruments:
		h.metrics.commands.WithLabelValues("list_instruments").Inc()
		if c.ListInstruments.Watch {
			// Before taking the list, so that no listing falls between the two (one listed right
			// now may come as an update before the list that also has it).
			h.listen(s)
		}
		list := h.Instruments()
		ent := s.entitlements()
		list = slices.DeleteFunc(list, func(info *pb.InstrumentInfo) bool { return !ent.Instrument(info.Id) })
		s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentList{InstrumentList: &pb.InstrumentList{
			RequestId: m.Id, Instruments: list}}})
	case *pb.ClientMessage_ReplayControl:
		h.metrics.commands.WithLabelValues("replay_control").Inc()
		if !s.entitlements().Replay {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled to replay sessions", "")
			return 0, ""
		}
		s.server.replayControl(s, m.Id, c.ReplayControl)
	case *pb.ClientMessage_Ping:
		h.metrics.commands.WithLabelValues("ping").Inc()
		s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Pong{Pong: &pb.Pong{RequestId: m.Id, Nonce: c.Ping.Nonce}}})
	}
	return 0, ""
}

func (s *session) subprotocol() string {
	if s.json {
		return wire.SubprotocolJSON
	}
	return wire.SubprotocolProto
}

// closed tells every owner to drop the session's subscriptions.
func (s *session) closed() {
	s.hub.unlisten(s)
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for venue := range s.venues {
		s.hub.unwatchVenue(s, venue)
	}
	s.venues = nil
	for id := range s.subs {
		s.hub.cancelWait(s, id, nil) // waits of Subscribe.wait end with the connection
	}
	s.hub.metrics.subscriptions.Sub(float64(len(s.subs)))
	s.subs = nil
	// Under subsMu: a venueListed subscribe is posted before this, or not at all.
	s.hub.postAll(command{kind: cmdClosed, sess: s})
}

// heartbeat returns an encoded Heartbeat for now.
func heartbeat(json bool) []byte {
	b, _ := wire.EncodeMessage(&pb.ServerMessage{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: time.Now().UnixNano()}}}, json)
	return b
}
