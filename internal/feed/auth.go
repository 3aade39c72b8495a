package feed

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/auth"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Authentication and entitlements at the edge (docs/PROTOCOL.md, "Authentication").
//
// A connection signs in with a JWT in the Authorization header of its upgrade (bots; refused
// with 401 before the upgrade when invalid), or with an Authenticate command within
// AuthConfig.Timeout (browsers, which cannot set headers; else closed with 4501). Without
// either it is anonymous when the operator granted an anonymous policy. Until it signs in it
// may only Ping. Entitlements are checked on the commands that open or renew a stream
// (Subscribe with its resume positions, Resync, ListInstruments, ReplayControl) and on the
// HTTP queries; never per delivered frame: a stream a connection holds was checked when it was
// opened, and is closed when a refresh narrows the grant. At the token's exp the connection is
// closed with 4005 unless an Authenticate with a fresh token extended it; when its token is
// revoked, with 4006 (revoke.go).

// AuthConfig turns authentication on.
type AuthConfig struct {
	// Verifier checks tokens. Nil turns authentication off: every connection may see
	// everything (tests and embedding only; cmd/feed always sets one).
	Verifier *auth.Verifier
	// Anonymous is what a connection without a token may see; nil: a token is required.
	Anonymous *auth.Entitlements
	// Revocations is the list of revoked tokens: the Verifier's Config.Revoked must be its
	// Revoked, so that revoked tokens are refused; EnableRevocations keeps it up to date and
	// closes the connections it revokes. Nil: nothing is revoked.
	Revocations *auth.Revocations
	// Timeout is how long a connection without a token (and without an anonymous policy) may
	// take to send Authenticate (0: 5 s): enough for a browser's first command on a slow link,
	// short enough that unauthenticated sockets do not pile up.
	Timeout time.Duration
}

func (a AuthConfig) timeout() time.Duration {
	if a.Timeout <= 0 {
		return 5 * time.Second
	}
	return a.Timeout
}

// expiryMargin closes a connection this long before its token's exp, so that a late timer or a
// frame being written at that moment does not put data on the wire after exp.
const expiryMargin = 100 * time.Millisecond

// unrestricted is what every connection may see with authentication off.
var unrestricted = func() *auth.Entitlements {
	e, err := auth.Grant{Instruments: []string{"*"}, Replay: true, ReplayControl: true}.Compile()
	if err != nil {
		panic(err)
	}
	return e
}()

// credential is what a connection or an HTTP request signed in with.
type credential struct {
	subject string // "" for anonymous access or with authentication off
	ent     *auth.Entitlements
	exp     time.Time // zero: never (anonymous, authentication off)
	anon    bool      // granted by the anonymous policy, not by a token
	counted bool      // holds a slot in Server.subjects (session only)
	jti     string    // the token's id, "" without one (revocation: revoke.go)
	issued  time.Time // the token's iat, zero without one (revocation)
}

// sessAuth is a connection's sign-in state.
type sessAuth struct {
	// owned by the read goroutine (and serveWS before it starts the read goroutine):
	cred      *credential // nil until signed in
	expTimer  *time.Timer // closes the connection at exp; stopped by endSession
	authTimer *time.Timer // closes a connection that does not sign in in time

	// live is cred for the revocation watcher (revoke.go), set with it; the credential's
	// fields are not changed once it is here. revoked: the watcher closed the connection.
	live    atomic.Pointer[credential]
	revoked atomic.Bool
}

// bearer returns the token of an "Authorization: Bearer" header, whether the header was there,
// and whether it was well formed.
func bearer(r *http.Request) (token string, present, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, false
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true, false
	}
	return strings.TrimSpace(tok), true, true
}

// verify checks a token and returns its credential.
func (s *Server) verify(token string) (*credential, error) {
	v := s.cfg.Auth.Verifier
	c, err := v.Verify(token)
	if err != nil {
		return nil, err
	}
	exp := c.Expires()
	if !exp.After(time.Now().Add(expiryMargin)) {
		// Within the verifier's leeway but past (or at) exp: a connection would be closed at
		// once, and an HTTP answer would be data after exp.
		v.Refused(auth.ReasonExpired)
		return nil, auth.ErrExpired
	}
	cred := &credential{subject: c.Subject, jti: c.ID, ent: c.Entitlements, exp: exp}
	if c.IssuedAt != nil {
		cred.issued = c.IssuedAt.Time
	}
	return cred, nil
}

// requestCredential authenticates an HTTP request (an upgrade or an /api query) from its
// Authorization header, or the anonymous policy. It returns nil and no error for a request
// without a header and without an anonymous policy: an upgrade may still sign in in band.
func (s *Server) requestCredential(r *http.Request) (*credential, error) {
	if s.cfg.Auth.Verifier == nil {
		return &credential{ent: unrestricted}, nil
	}
	if q := r.URL.Query(); q.Has("token") || q.Has("access_token") {
		// A token in a URL lands in access logs and browser history.
		return nil, errTokenInURL
	}
	tok, present, ok := bearer(r)
	switch {
	case present && !ok:
		s.cfg.Auth.Verifier.Refused(auth.ReasonMalformed)
		return nil, &auth.Error{Reason: auth.ReasonMalformed}
	case present:
		return s.verify(tok)
	case s.cfg.Auth.Anonymous != nil:
		return &credential{ent: s.cfg.Auth.Anonymous, anon: true}, nil
	}
	return nil, nil
}

var errTokenInURL = errors.New("a token goes in the Authorization header or the Authenticate command, never in the URL")

// refuseHTTP answers a request whose credentials were refused: 400 for a token in the URL, 401
// with the reason otherwise (RFC 6750's WWW-Authenticate). The token is never echoed or logged.
func refuseHTTP(w http.ResponseWriter, err error) {
	if errors.Is(err, errTokenInURL) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	reason := string(auth.ReasonOf(err))
	if reason == "" {
		reason = string(auth.ReasonMissing)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tickwire", error="invalid_token", error_description="`+reason+`"`)
	http.Error(w, "unauthorized: "+reason, http.StatusUnauthorized)
}

// httpEntitlements authenticates an /api request: its entitlements, or false after answering.
func (s *Server) httpEntitlements(w http.ResponseWriter, r *http.Request) (*auth.Entitlements, bool) {
	cred, ok := s.httpCredentialOf(w, r)
	if !ok {
		return nil, false
	}
	return cred.ent, true
}

// httpCredentialOf is httpEntitlements with the caller's subject: it answers the refusal itself
// and reports false when the request has no valid credential.
func (s *Server) httpCredentialOf(w http.ResponseWriter, r *http.Request) (*credential, bool) {
	if _, token, _ := bearer(r); token && !s.revocationsReady() {
		// Fail closed until the revocation list is read (revoke.go): a token may be on it.
		s.httpRefused.WithLabelValues("revocations_not_loaded").Inc()
		http.Error(w, "revocation list not loaded yet; retry shortly", http.StatusServiceUnavailable)
		return nil, false
	}
	cred, err := s.requestCredential(r)
	if err == nil && cred == nil {
		if s.cfg.Auth.Verifier != nil {
			s.cfg.Auth.Verifier.Refused(auth.ReasonMissing)
		}
		err = auth.ErrMissing
	}
	if err != nil {
		s.httpRefused.WithLabelValues(refusalLabel(err)).Inc()
		refuseHTTP(w, err)
		return nil, false
	}
	return cred, true
}

func refusalLabel(err error) string {
	if r := auth.ReasonOf(err); r != "" {
		return "unauthorized"
	}
	return "token_in_url"
}

// serveInstruments answers GET /api/instruments with the instruments the caller may see.
func (s *Server) serveInstruments(w http.ResponseWriter, r *http.Request) {
	ent, ok := s.httpEntitlements(w, r)
	if !ok {
		return
	}
	all := s.hub.Instruments()
	list := all[:0]
	for _, info := range all {
		if ent.Instrument(info.Id) {
			list = append(list, info)
		}
	}
	b, err := protojson.Marshal(&pb.InstrumentList{Instruments: list})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// entitledCandles wraps GET /api/candles: 401 without valid credentials, 403 for an
// instrument (or the candles channel) outside the caller's entitlements.
func (s *Server) entitledCandles(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ent, ok := s.httpEntitlements(w, r)
		if !ok {
			return
		}
		id := r.URL.Query().Get("instrument")
		if ent.Delay > 0 {
			// The candle store and the stream are real time; a delayed token gets its candles
			// on the WebSocket candles channel, from its delay tier.
			s.httpRefused.WithLabelValues("not_entitled").Inc()
			writeAPIError(w, &apiError{status: http.StatusForbidden, code: "not_entitled",
				msg: "delayed entitlement: /api/candles is real time; use the candles channel"})
			return
		}
		if id != "" && (!ent.Instrument(id) || !ent.Channel(pb.Channel_CHANNEL_CANDLES)) {
			s.httpRefused.WithLabelValues("not_entitled").Inc()
			writeAPIError(w, &apiError{status: http.StatusForbidden, code: "not_entitled",
				msg: "not entitled to the candles of " + id})
			return
		}
		next(w, r)
	}
}

// claimSubject counts a connection of subject against max (0: no cap). It reports false when
// the subject is at its cap.
func (s *Server) claimSubject(subject string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && s.subjects[subject] >= max {
		return false
	}
	s.subjects[subject]++
	return true
}

func (s *Server) releaseSubject(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subjects[subject]--; s.subjects[subject] <= 0 {
		delete(s.subjects, subject)
	}
}

// startAuthTimer closes the connection unless it signs in within the timeout. Called before
// the read goroutine starts.
func (s *session) startAuthTimer(d time.Duration) {
	s.auth.authTimer = time.AfterFunc(d, func() {
		s.out.Close(wire.CloseUnauthorized, "not authenticated within "+d.String()+": send Authenticate first")
	})
}

// signIn makes cred the connection's credential: at sign-in (the upgrade's header, the
// anonymous policy, or a first Authenticate) and on a refresh. answer sends Authenticated (the
// reply to Authenticate). It returns a close code and reason when the connection must close,
// or 0.
func (s *session) signIn(cred *credential, reqID uint32, answer bool) (int, string) {
	srv := s.server
	prev := s.auth.cred
	if s.replay != nil && !cred.ent.Replay {
		if prev == nil {
			return wire.CloseUnauthorized, "not entitled to replay sessions"
		}
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "refresh refused: the new token does not grant replay", "")
		return 0, ""
	}
	if prev != nil && (cred.ent.Interval != prev.ent.Interval || cred.ent.Delay != prev.ent.Delay) {
		// The streams held were opened at the old tier; a new tier is a new connection.
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "refresh refused: the new token has another rate or delay tier; reconnect with it", "")
		return 0, ""
	}
	if prev != nil && prev.subject != "" && cred.subject != prev.subject {
		srv.cfg.Auth.Verifier.Refused(auth.ReasonSubjectMismatch)
		s.sendError(reqID, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "refresh refused: "+string(auth.ReasonSubjectMismatch), "")
		return 0, ""
	}
	if prev == nil {
		if code, reason := s.enterDelayTier(cred); code != 0 {
			return code, reason
		}
	}
	if cred.subject != "" {
		if prev != nil && prev.counted {
			cred.counted = true // the same subject: its slot carries over
		} else if !srv.claimSubject(cred.subject, cred.ent.MaxConnections) {
			if prev == nil {
				return wire.CloseUnauthorized, "connection limit of this subject reached"
			}
			s.sendError(reqID, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "sign-in refused: connection limit of this subject reached", "")
			return 0, ""
		} else {
			cred.counted = true
		}
	}
	s.auth.cred = cred
	s.showCredential(cred) // closes the connection if a revocation came after verify
	if t := s.auth.authTimer; t != nil {
		t.Stop()
	}
	if cred.exp.IsZero() {
		if s.auth.expTimer != nil {
			s.auth.expTimer.Stop()
		}
	} else {
		d := time.Until(cred.exp) - expiryMargin
		if s.auth.expTimer == nil {
			s.auth.expTimer = time.AfterFunc(d, func() { s.out.Close(wire.CloseTokenExpired, "token expired") })
		} else {
			// A refresh. If the old expiry is firing right now, the old token has lapsed (less
			// the margin) and the connection closes: a refresh must come before exp.
			s.auth.expTimer.Stop()
			s.auth.expTimer.Reset(d)
		}
	}
	if prev != nil {
		s.narrow(reqID)
	} else if s.replay != nil && !s.server.addToReplay(s) {
		return wire.CloseGoingAway, "replay session ended"
	}
	if answer {
		var expNs int64
		if !cred.exp.IsZero() {
			expNs = cred.exp.UnixNano()
		}
		s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Authenticated{Authenticated: &pb.Authenticated{
			RequestId: reqID, Subject: cred.subject, ExpiresAtNs: expNs}}})
	}
	return 0, ""
}

// narrow ends the streams a refreshed grant no longer covers: the client gets an Unsubscribed
// for each and one NOT_ENTITLED error.
func (s *session) narrow(reqID uint32) {
	ent := s.auth.cred.ent
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for venue, vs := range s.venues {
		var keep chanSet
		for _, ch := range vs.chans.channels() {
			if ent.Channel(ch) {
				keep |= chanSetOf([]pb.Channel{ch})
			}
		}
		if keep == 0 || !ent.Venue(venue) {
			delete(s.venues, venue)
			s.hub.unwatchVenue(s, venue)
			continue
		}
		vs.chans, vs.cmd.channels = keep, keep.channels()
		s.venues[venue] = vs
	}
	var dropped idErrors
	for id, held := range s.subs {
		var drop []pb.Channel
		for _, ch := range wire.AllChannels() {
			if held&chanSetOf([]pb.Channel{ch}) != 0 && (!ent.Instrument(id) || !ent.Channel(ch)) {
				drop = append(drop, ch)
			}
		}
		if len(drop) == 0 {
			continue
		}
		dropped.add(id)
		if s.subs[id] &^= chanSetOf(drop); s.subs[id] == 0 {
			delete(s.subs, id)
			s.hub.metrics.subscriptions.Dec()
		}
		if s.hub.cancelWait(s, id, drop) {
			continue // a Subscribe.wait that no owner holds yet: it just stops waiting
		}
		s.hub.ownerOf(id).post(command{kind: cmdUnsubscribe, sess: s, reqID: reqID, instrument: id, channels: drop})
	}
	s.sendIDErrors(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, dropped,
		"no longer entitled after the refresh", "instruments no longer entitled after the refresh")
}

// authGate runs before every command: it handles Authenticate, and refuses every command but
// Ping before the connection signed in. handled says the command needs nothing more.
func (s *session) authGate(m *pb.ClientMessage) (code int, reason string, handled bool) {
	if a, ok := m.Command.(*pb.ClientMessage_Authenticate); ok {
		s.hub.metrics.commands.WithLabelValues("authenticate").Inc()
		if s.server.cfg.Auth.Verifier == nil {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "authentication is off on this feed", "")
			return 0, "", true
		}
		cred, err := s.server.verify(a.Authenticate.GetToken())
		if err != nil {
			why := string(auth.ReasonOf(err))
			if s.auth.cred == nil {
				return wire.CloseUnauthorized, "unauthorized: " + why, true
			}
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "refresh refused: "+why, "")
			return 0, "", true
		}
		code, reason := s.signIn(cred, m.Id, true)
		return code, reason, true
	}
	if s.auth.cred == nil {
		if _, ping := m.Command.(*pb.ClientMessage_Ping); !ping {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED, "send Authenticate first", "")
			return 0, "", true
		}
	}
	return 0, "", false
}

// entitlements returns what the connection may see (after authGate: never nil).
func (s *session) entitlements() *auth.Entitlements { return s.auth.cred.ent }

// entitledChannels splits chans into those the connection may subscribe and the refused ones.
func (s *session) entitledChannels(chans []pb.Channel) (ok, refused []pb.Channel) {
	ent := s.entitlements()
	for _, ch := range chans {
		if ent.Channel(ch) {
			ok = append(ok, ch)
		} else {
			refused = append(refused, ch)
		}
	}
	return ok, refused
}

// channelNames lists channels for an error message ("book, trades").
func channelNames(chans []pb.Channel) string {
	names := make([]string, len(chans))
	for i, ch := range chans {
		names[i] = strings.ToLower(strings.TrimPrefix(ch.String(), "CHANNEL_"))
	}
	return strings.Join(names, ", ")
}

// entitledDepth returns the depth index for a requested book depth under the entitlement's cap:
// the offered depth the request rounds up to, or the deepest offered depth within the cap when
// that is deeper (capped, not refused: Subscribed.depth says what was granted). ok is false when
// even the shallowest offered depth is above the cap.
func (s *session) entitledDepth(requested uint32) (idx int, ok bool) {
	depths := s.hub.cfg.Market.Depths
	idx = s.hub.cfg.Market.DepthIndex(requested)
	max := s.entitlements().MaxDepth
	if max == 0 || depths[idx] <= max {
		return idx, true
	}
	for i := len(depths) - 1; i >= 0; i-- {
		if depths[i] <= max {
			return i, true
		}
	}
	return 0, false
}

// maxSubscriptions is the connection's cap: the server's, or the token's when lower.
func (s *session) maxSubscriptions() int { return maxSubscriptionsOf(s.hub.cfg, s.entitlements()) }

// maxSubscriptionsOf is the cap of a connection with the entitlements ent.
func maxSubscriptionsOf(cfg Config, ent *auth.Entitlements) int {
	n := cfg.MaxSubscriptions
	if m := ent.MaxSubscriptions; m > 0 && m < n {
		n = m
	}
	return n
}

// endAuth stops the timers and frees the subject's slot (endSession).
func (s *session) endAuth() {
	if t := s.auth.authTimer; t != nil {
		t.Stop()
	}
	if t := s.auth.expTimer; t != nil {
		t.Stop()
	}
	if c := s.auth.cred; c != nil && c.counted {
		s.server.releaseSubject(c.subject)
	}
}
