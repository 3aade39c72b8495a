package wire

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ErrUndecodable is a client frame that is not a ClientMessage at all. The server closes the
// connection with CloseProtocolError: a client that sends it is broken, not unlucky.
var ErrUndecodable = errors.New("wire: undecodable client message")

// CommandError is a decodable command that is not valid. The server answers it with an Error
// message carrying Code and keeps the connection.
type CommandError struct {
	ID      uint32
	Code    pb.ErrorCode
	Message string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("wire: command %d: %s: %s", e.ID, e.Code, e.Message)
}

// Limits bound what one command may ask for.
type Limits struct {
	// MaxInstruments per Subscribe or Unsubscribe. Default 1000.
	MaxInstruments int
	// MaxDepth is the deepest book a client may ask for. Default 1000.
	MaxDepth uint32
}

func (l Limits) withDefaults() Limits {
	if l.MaxInstruments <= 0 {
		l.MaxInstruments = 1000
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = 1000
	}
	return l
}

// DecodeClientMessage decodes and validates one client frame. It returns ErrUndecodable
// (wrapped) for bytes that are not a ClientMessage and a *CommandError for a command that breaks
// the rules of docs/PROTOCOL.md. Channels are de-duplicated; an empty channel list in Subscribe
// means every channel.
func DecodeClientMessage(data []byte, subprotocol string, lim Limits) (*pb.ClientMessage, error) {
	lim = lim.withDefaults()
	m := &pb.ClientMessage{}
	var err error
	if subprotocol == SubprotocolJSON {
		// Unknown fields and enum names are ignored, as in binary, so that a client written for a
		// later minor version still talks to this server.
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
	} else {
		err = proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	bad := func(code pb.ErrorCode, format string, args ...any) (*pb.ClientMessage, error) {
		return nil, &CommandError{ID: m.Id, Code: code, Message: fmt.Sprintf(format, args...)}
	}
	switch c := m.Command.(type) {
	case *pb.ClientMessage_Subscribe:
		s := c.Subscribe
		if err := checkInstruments(s.GetInstruments(), lim, true); err != nil {
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "subscribe: %v", err)
		}
		chans, err := checkChannels(s.GetChannels())
		if err != nil {
			return bad(pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL, "subscribe: %v", err)
		}
		if len(chans) == 0 {
			chans = AllChannels()
		}
		s.Channels = chans
		if s.Depth > lim.MaxDepth {
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "subscribe: depth %d above %d", s.Depth, lim.MaxDepth)
		}
		// A venue wildcard stands for up to MaxInstruments instruments, each with its positions.
		var wildcards map[string]bool
		for _, id := range s.Instruments {
			if venue, ok := VenueWildcard(id); ok {
				if wildcards == nil {
					wildcards = map[string]bool{}
				}
				wildcards[venue] = true
			}
		}
		streams := len(s.Instruments) * len(chans)
		if wildcards != nil {
			streams = lim.MaxInstruments * len(chans)
		}
		if len(s.Resume) > streams {
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "subscribe: %d resume positions for %d streams", len(s.Resume), streams)
		}
		for _, p := range s.Resume {
			venue, _, _ := strings.Cut(p.GetInstrument(), ":")
			if !slices.Contains(s.Instruments, p.GetInstrument()) && !wildcards[venue] {
				return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "subscribe: resume position for %q, which is not subscribed", p.GetInstrument())
			}
			if !slices.Contains(chans, p.GetChannel()) {
				return bad(pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL, "subscribe: resume position on channel %d, which is not subscribed", int32(p.GetChannel()))
			}
		}
	case *pb.ClientMessage_Unsubscribe:
		u := c.Unsubscribe
		if err := checkInstruments(u.GetInstruments(), lim, true); err != nil {
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "unsubscribe: %v", err)
		}
		chans, err := checkChannels(u.GetChannels())
		if err != nil {
			return bad(pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL, "unsubscribe: %v", err)
		}
		u.Channels = chans
	case *pb.ClientMessage_Resync:
		r := c.Resync
		if err := CheckInstrumentID(r.GetInstrument()); err != nil {
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "resync: %v", err)
		}
		chans, err := checkChannels(r.GetChannels())
		if err != nil {
			return bad(pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL, "resync: %v", err)
		}
		r.Channels = chans
	case *pb.ClientMessage_ListInstruments, *pb.ClientMessage_Ping:
		// nothing to check
	case *pb.ClientMessage_Authenticate:
		if c.Authenticate.GetToken() == "" {
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "authenticate without a token")
		}
	case *pb.ClientMessage_ReplayControl:
		switch a := c.ReplayControl.GetAction().(type) {
		case *pb.ReplayControl_Pause, *pb.ReplayControl_Resume:
		case *pb.ReplayControl_SeekTimeNs:
			if a.SeekTimeNs <= 0 {
				return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "replay control: seek to %d", a.SeekTimeNs)
			}
		case *pb.ReplayControl_Rebase:
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "replay control: rebase is sent by feeds, not clients")
		case *pb.ReplayControl_Speed:
			if !(a.Speed >= 0 && a.Speed <= MaxReplaySpeed) { // also refuses NaN
				return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "replay control: speed %v outside 0..%v", a.Speed, MaxReplaySpeed)
			}
		default:
			return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "replay control without action")
		}
	default:
		return bad(pb.ErrorCode_ERROR_CODE_MALFORMED, "no command set")
	}
	return m, nil
}

// checkInstruments checks a command's instrument list; wildcards allows venue wildcards in it
// (Subscribe and Unsubscribe).
func checkInstruments(ids []string, lim Limits, wildcards bool) error {
	if len(ids) == 0 {
		return errors.New("no instruments")
	}
	if len(ids) > lim.MaxInstruments {
		return fmt.Errorf("%d instruments, at most %d per command", len(ids), lim.MaxInstruments)
	}
	for _, id := range ids {
		if _, ok := VenueWildcard(id); ok && wildcards {
			continue
		}
		if err := CheckInstrumentID(id); err != nil {
			return err
		}
	}
	return nil
}

// checkChannels returns chans de-duplicated in their first order, or an error for an unknown one.
func checkChannels(chans []pb.Channel) ([]pb.Channel, error) {
	var seen [8]bool
	out := chans[:0]
	for _, ch := range chans {
		if ch < pb.Channel_CHANNEL_QUOTE || ch > pb.Channel_CHANNEL_STATS {
			return nil, fmt.Errorf("unknown channel %d", int32(ch))
		}
		if !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out, nil
}

// AllChannels returns every channel, in number order.
func AllChannels() []pb.Channel {
	return []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES,
		pb.Channel_CHANNEL_CANDLES, pb.Channel_CHANNEL_STATS}
}

// MaxReplaySpeed bounds a replay's speed factor (0 means as fast as possible).
const MaxReplaySpeed = 10000

// Instrument id limits: one rule for every part of the system (ingest validates what it
// publishes, feed what clients ask for, clients what they send). The symbol bound keeps NATS
// subjects short.
const (
	MaxVenueLen  = 32
	MaxSymbolLen = 64
	// MaxInstrumentIDLen bounds a whole id: the longest venue, the colon, the longest symbol.
	MaxInstrumentIDLen = MaxVenueLen + 1 + MaxSymbolLen
)

// VenueWildcardSymbol is the symbol of a venue wildcard, "venue:*": in Subscribe and
// Unsubscribe it stands for every instrument of the venue, those listed now and those listed
// later (docs/PROTOCOL.md §6.3). No instrument has it as its symbol.
const VenueWildcardSymbol = "*"

// VenueWildcard returns the venue of a venue wildcard "venue:*", and whether id is one (with a
// valid venue).
func VenueWildcard(id string) (venue string, ok bool) {
	venue, symbol, found := strings.Cut(id, ":")
	if !found || symbol != VenueWildcardSymbol || CheckVenue(venue) != nil {
		return "", false
	}
	return venue, true
}

// CheckInstrumentID reports whether id is a canonical instrument id "venue:SYMBOL", split at
// the first colon (a symbol may contain more): CheckVenue and CheckSymbol.
func CheckInstrumentID(id string) error {
	if len(id) > MaxInstrumentIDLen {
		return fmt.Errorf("instrument id longer than %d bytes", MaxInstrumentIDLen)
	}
	venue, symbol, ok := strings.Cut(id, ":")
	if !ok || venue == "" || symbol == "" {
		return fmt.Errorf("instrument id %q is not venue:SYMBOL", id)
	}
	if err := CheckVenue(venue); err != nil {
		return fmt.Errorf("instrument id %q: %w", id, err)
	}
	if err := CheckSymbol(symbol); err != nil {
		return fmt.Errorf("instrument id %q: %w", id, err)
	}
	return nil
}

// CheckVenue reports whether venue is 1..MaxVenueLen bytes of [a-z0-9_-].
func CheckVenue(venue string) error {
	if venue == "" || len(venue) > MaxVenueLen {
		return fmt.Errorf("venue must be 1..%d bytes", MaxVenueLen)
	}
	for i := 0; i < len(venue); i++ {
		c := venue[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("venue must be [a-z0-9_-], not byte %q", c)
		}
	}
	return nil
}

// CheckSymbol reports whether symbol is 1..MaxSymbolLen bytes of printable ASCII without
// spaces, and not "*" (VenueWildcardSymbol, reserved for venue wildcards).
func CheckSymbol(symbol string) error {
	if symbol == "" || len(symbol) > MaxSymbolLen {
		return fmt.Errorf("symbol must be 1..%d bytes", MaxSymbolLen)
	}
	if symbol == VenueWildcardSymbol {
		return errors.New(`symbol "*" is reserved for venue wildcards`)
	}
	for i := 0; i < len(symbol); i++ {
		if c := symbol[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("symbol must be printable ASCII without spaces, not byte %q", c)
		}
	}
	return nil
}
