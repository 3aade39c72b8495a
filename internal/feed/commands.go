package feed

import (
	"slices"
	"strconv"

	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// The commands that change what a connection holds, on its read goroutine (session.onMessage,
// after decoding, the rate limit and sign-in). Their errors go before their replies, which come
// from the instruments' owners. docs/PROTOCOL.md §6.3.

// subscribe handles a Subscribe: entitlements first (auth.go: channels and a depth the token
// does not cover are refused or capped for the whole command, instruments one by one), then
// each instrument is admitted under the cap and posted to its owner, or waits.
func (s *session) subscribe(reqID uint32, sub *pb.Subscribe) {
	s.hub.metrics.commands.WithLabelValues("subscribe").Inc()
	chans, refusedChans := s.entitledChannels(sub.Channels)
	depthIndex, depthOK := s.entitledDepth(sub.Depth)
	if !depthOK && slices.Contains(chans, pb.Channel_CHANNEL_BOOK) {
		chans = slices.DeleteFunc(chans, func(ch pb.Channel) bool { return ch == pb.Channel_CHANNEL_BOOK })
		refusedChans = append(refusedChans, pb.Channel_CHANNEL_BOOK)
	}
	if len(refusedChans) > 0 {
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled to channels: "+channelNames(refusedChans), "")
	}
	if len(chans) == 0 {
		return
	}
	sub.Channels = chans
	resume := map[string]map[pb.Channel]market.Position{}
	for _, p := range sub.Resume {
		if resume[p.Instrument] == nil {
			resume[p.Instrument] = map[pb.Channel]market.Position{}
		}
		resume[p.Instrument][p.Channel] = market.Position{Epoch: p.Epoch, Seq: p.Seq}
	}
	interval := s.entitlements().Interval
	cmd := func(id string) command {
		pos := resume[id]
		if interval > 0 {
			pos = nil // a rate-limited stream starts from a snapshot: it never gets deltas
		}
		return command{kind: cmdSubscribe, sess: s, reqID: reqID, instrument: id,
			channels: sub.Channels, depthIndex: depthIndex, resume: pos,
			compact: sub.CompactQuotes && !s.json, interval: interval}
	}

	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	accepted, waiting := s.admit(reqID, sub, cmd(""))
	for _, id := range sub.Instruments {
		if venue, ok := wire.VenueWildcard(id); ok && s.venues[venue].chans != 0 {
			waiting = append(waiting, id) // standing: told in the same Pending
		}
	}
	if len(waiting) > 0 {
		// Pending first, so that it comes before the Subscribed of any that appears now.
		s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Pending{Pending: &pb.Pending{
			RequestId: reqID, Instruments: waiting}}})
		for _, id := range waiting {
			if _, ok := wire.VenueWildcard(id); !ok {
				s.hub.subscribeOrWait(cmd(id))
			}
		}
	}
	for _, id := range accepted {
		s.hub.ownerOf(id).post(cmd(id))
	}
}

// admit takes a Subscribe's instruments (its venue wildcards expanded, with tmpl for the
// instruments they will cover) under the connection's entitlements and cap, records them in
// subs, and sends one Error per reason for those refused. It returns the instruments to
// subscribe now and those that wait (Subscribe.wait). Called with subsMu held.
func (s *session) admit(reqID uint32, sub *pb.Subscribe, tmpl command) (accepted, waiting []string) {
	ent, maxSubs := s.entitlements(), s.maxSubscriptions()
	var unknown, overCap, notEntitled idErrors
	ids, wildcards, refused := s.expandVenues(sub.Instruments, tmpl)
	for _, id := range refused {
		notEntitled.add(id)
	}
	accepted = make([]string, 0, len(ids))
	for _, id := range ids {
		if !ent.Instrument(id) { // before known: whether it exists is not told either
			if !wildcards[id] { // a venue's instruments the token does not cover are left out
				notEntitled.add(id)
			}
			continue
		}
		known := s.hub.known(id)
		if !known && !sub.Wait {
			unknown.add(id)
			continue
		}
		if _, held := s.subs[id]; !held {
			if len(s.subs) >= maxSubs {
				overCap.add(id)
				continue
			}
			s.hub.metrics.subscriptions.Inc()
		}
		s.subs[id] |= chanSetOf(sub.Channels)
		if known {
			accepted = append(accepted, id)
		} else {
			waiting = append(waiting, id)
		}
	}
	s.sendIDErrors(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, notEntitled, "not entitled", "instruments not entitled")
	s.sendIDErrors(reqID, pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT, unknown, "unknown instrument", "unknown instruments")
	limit := strconv.Itoa(maxSubs)
	s.sendIDErrors(reqID, pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS, overCap,
		"at most "+limit+" instruments per connection", "instruments over the cap of "+limit+" per connection")
	return accepted, waiting
}

// unsubscribe handles an Unsubscribe: each instrument held loses the named channels (all when
// none are named), and its place under the cap with its last channel.
func (s *session) unsubscribe(reqID uint32, u *pb.Unsubscribe) {
	h := s.hub
	h.metrics.commands.WithLabelValues("unsubscribe").Inc()
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	chans := u.Channels
	if len(chans) == 0 {
		chans = wire.AllChannels()
	}
	var notHeld idErrors
	for _, id := range s.unsubscribeVenues(reqID, u.Instruments, chans, &notHeld) {
		if _, held := s.subs[id]; !held {
			notHeld.add(id)
			continue
		}
		if s.subs[id] &^= chanSetOf(chans); s.subs[id] == 0 {
			delete(s.subs, id)
			h.metrics.subscriptions.Dec()
		}
		if h.cancelWait(s, id, chans) {
			// It never existed: no owner holds it, and the answer comes from here.
			s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{
				RequestId: reqID, Channels: chans}}})
			continue
		}
		h.ownerOf(id).post(command{kind: cmdUnsubscribe, sess: s, reqID: reqID, instrument: id, channels: chans})
	}
	s.sendIDErrors(reqID, pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED, notHeld, "not subscribed", "instruments not subscribed")
}

// resync handles a Resync: fresh snapshots of one instrument held.
func (s *session) resync(reqID uint32, r *pb.Resync) {
	s.hub.metrics.commands.WithLabelValues("resync").Inc()
	id := r.Instrument
	if !s.entitlements().Instrument(id) {
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled", id)
		return
	}
	if _, refused := s.entitledChannels(r.Channels); len(refused) > 0 {
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled to channels: "+channelNames(refused), id)
		return
	}
	s.subsMu.Lock()
	_, held := s.subs[id]
	s.subsMu.Unlock()
	if !held {
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED, "not subscribed", id)
		return
	}
	s.hub.ownerOf(id).post(command{kind: cmdResync, sess: s, reqID: reqID, instrument: id, channels: r.Channels})
}

// listInstruments answers ListInstruments with what the token may see; with watch, the
// connection then hears of every listing and change.
func (s *session) listInstruments(reqID uint32, l *pb.ListInstruments) {
	h := s.hub
	h.metrics.commands.WithLabelValues("list_instruments").Inc()
	if l.Watch {
		// Before taking the list, so that no listing falls between the two (one listed right
		// now may come as an update before the list that also has it).
		h.listen(s)
	}
	list := h.Instruments()
	ent := s.entitlements()
	list = slices.DeleteFunc(list, func(info *pb.InstrumentInfo) bool { return !ent.Instrument(info.Id) })
	s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentList{InstrumentList: &pb.InstrumentList{
		RequestId: reqID, Instruments: list}}})
}
