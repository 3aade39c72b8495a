package feed

import (
	"slices"
	"strconv"
	"strings"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Venue wildcards: "venue:*" in Subscribe stands for every instrument of the venue the token
// covers, those that exist now (each subscribed as if named, with its own handle, snapshot and
// seq) and those that appear later (subscribed when their first event arrives, within the
// subscription cap). Unsubscribe "venue:*" ends the wildcard and unsubscribes the venue's
// instruments. docs/PROTOCOL.md §6.3.

// channels lists the set's channels in number order.
func (c chanSet) channels() []pb.Channel {
	var out []pb.Channel
	for _, ch := range wire.AllChannels() {
		if c&(1<<uint(ch)) != 0 {
			out = append(out, ch)
		}
	}
	return out
}

// expandVenues replaces a Subscribe's venue wildcards with the venues' instruments that exist
// now, and records each wildcard (its channels joined to any held before, tmpl's depth and
// options) for the instruments that appear later. ids has every instrument once; fromWildcard
// marks those only a wildcard named; refused has the wildcards of venues the token covers
// nothing of. Instruments of a wildcard's venue that the connection holds already on every
// channel asked are left as they are. Called with subsMu held.
func (s *session) expandVenues(list []string, tmpl command) (ids []string, fromWildcard map[string]bool, refused []string) {
	seen := make(map[string]bool, len(list))
	for _, id := range list {
		venue, ok := wire.VenueWildcard(id)
		if !ok {
			delete(fromWildcard, id) // named: refused like any named instrument
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
			continue
		}
		if !s.entitlements().Venue(venue) {
			refused = append(refused, id)
			continue
		}
		if s.venues == nil {
			s.venues = map[string]venueSub{}
		}
		vs := s.venues[venue]
		vs.chans |= chanSetOf(tmpl.channels)
		vs.cmd = tmpl
		vs.cmd.channels = vs.chans.channels()
		vs.cmd.resume = nil
		s.venues[venue] = vs
		want := chanSetOf(tmpl.channels)
		for _, known := range s.hub.watchVenue(s, venue) {
			// Held already on every channel asked (a reconnecting client names, with their
			// positions, what it held before its wildcard): left as it is.
			if s.subs[known]&want == want {
				continue
			}
			if !seen[known] {
				seen[known] = true
				ids = append(ids, known)
				if fromWildcard == nil {
					fromWildcard = map[string]bool{}
				}
				fromWildcard[known] = true
			}
		}
	}
	return ids, fromWildcard, refused
}

// unsubscribeVenues takes an Unsubscribe's venue wildcards off chans: a wildcard left with no
// channel ends (answered with an Unsubscribed without a handle), and the venue's instruments
// held are returned in its place to be unsubscribed like named ones. A wildcard neither held nor
// holding any instrument is added to notHeld. Called with subsMu held.
func (s *session) unsubscribeVenues(reqID uint32, list []string, chans []pb.Channel, notHeld *idErrors) []string {
	if !slices.ContainsFunc(list, func(id string) bool { _, ok := wire.VenueWildcard(id); return ok }) {
		return list
	}
	var ids []string
	for _, id := range list {
		venue, ok := wire.VenueWildcard(id)
		if !ok {
			ids = append(ids, id)
			continue
		}
		vs, held := s.venues[venue]
		if held {
			if vs.chans &^= chanSetOf(chans); vs.chans == 0 {
				delete(s.venues, venue)
				s.hub.unwatchVenue(s, venue)
			} else {
				vs.cmd.channels = vs.chans.channels()
				s.venues[venue] = vs
			}
			s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{
				RequestId: reqID, Channels: chans}}})
		}
		var instruments []string
		for inst := range s.subs {
			if v, _, _ := strings.Cut(inst, ":"); v == venue && !slices.Contains(list, inst) {
				instruments = append(instruments, inst)
			}
		}
		slices.Sort(instruments)
		if !held && len(instruments) == 0 {
			notHeld.add(id)
		}
		ids = append(ids, instruments...)
	}
	return ids
}

// venueListed subscribes a new instrument for the session's wildcard of its venue, if it holds
// one and its token covers the instrument. Called by the hub (on the instrument's owner) when
// the instrument appears; the subscribe is posted to that owner after the event that made it
// appear, so its snapshot shows that event.
func (s *session) venueListed(id string) {
	venue, _, _ := strings.Cut(id, ":")
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	vs, ok := s.venues[venue]
	cred := s.auth.live.Load()
	if !ok || s.subs == nil || cred == nil || !cred.ent.Instrument(id) {
		return
	}
	if _, held := s.subs[id]; !held {
		if max := maxSubscriptionsOf(s.hub.cfg, cred.ent); len(s.subs) >= max {
			s.sendError(vs.cmd.reqID, pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS,
				"at most "+strconv.Itoa(max)+" instruments per connection", id)
			return
		}
		s.hub.metrics.subscriptions.Inc()
	}
	s.subs[id] |= vs.chans
	c := vs.cmd
	c.instrument = id
	s.hub.ownerOf(id).post(c)
}

// holdsAny reports whether the connection holds a subscription, a wait or a venue wildcard:
// one that does is not idle, even before any of its instruments exists. Any goroutine.
func (s *session) holdsAny() bool {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	return len(s.subs) > 0 || len(s.venues) > 0
}
