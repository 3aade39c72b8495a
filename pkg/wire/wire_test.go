package wire

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func sampleMessages() []*pb.ServerMessage {
	return []*pb.ServerMessage{
		{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Handle: 3, Epoch: 1700000000, Seq: 42, PrevSeq: 40,
			IngestTimeNs: 1700000000123456789, Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 9999, BidSize: 5, AskPrice: 10001, AskSize: 7}}}}},
		{Kind: &pb.ServerMessage_Snapshot{Snapshot: &pb.Snapshot{Handle: 1, Channel: pb.Channel_CHANNEL_BOOK, Epoch: 9, Seq: 10, Checksum: 0xdeadbeef,
			Body: &pb.Snapshot_Book{Book: &pb.BookLevels{Depth: 10, Bids: []*pb.Level{{Price: 1, Size: 2}}}}}}},
		{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: 5}}},
	}
}

// TestFrameConcatenation checks the promise of the package doc: messages encoded once and
// joined decode as one ServerFrame holding all of them, in order, with the send time.
func TestFrameConcatenation(t *testing.T) {
	msgs := sampleMessages()
	var frame []byte
	var err error
	for _, m := range msgs {
		if frame, err = AppendMessage(frame, m); err != nil {
			t.Fatal(err)
		}
	}
	frame = AppendSendTime(frame, 1234567890123)
	var got pb.ServerFrame
	if err := DecodeFrame(frame, SubprotocolProto, &got); err != nil {
		t.Fatal(err)
	}
	want := &pb.ServerFrame{Messages: msgs, SendTimeNs: 1234567890123}
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded %v\nwant %v", &got, want)
	}
	direct, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(direct) != string(frame) {
		t.Fatalf("joined frame differs from one marshalled whole:\n%x\n%x", frame, direct)
	}
}

func TestJSONFrame(t *testing.T) {
	msgs := sampleMessages()
	var parts [][]byte
	for _, m := range msgs {
		b, err := MarshalJSONMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, b)
	}
	frame := JSONFrame(nil, parts, -77)
	var got pb.ServerFrame
	if err := DecodeFrame(frame, SubprotocolJSON, &got); err != nil {
		t.Fatalf("%v in %s", err, frame)
	}
	if want := (&pb.ServerFrame{Messages: msgs, SendTimeNs: -77}); !proto.Equal(&got, want) {
		t.Fatalf("decoded %v want %v", &got, want)
	}
	if err := DecodeFrame(JSONFrame(nil, nil, 1), SubprotocolJSON, &got); err != nil || len(got.Messages) != 0 {
		t.Fatalf("empty JSON frame: %v %v", err, &got)
	}
}

func TestFieldNumbers(t *testing.T) {
	fields := (&pb.ServerFrame{}).ProtoReflect().Descriptor().Fields()
	if f := fields.ByName("messages"); f == nil || int(f.Number()) != frameMessagesField || !f.IsList() {
		t.Fatalf("ServerFrame.messages is %v", f)
	}
	if f := fields.ByName("send_time_ns"); f == nil || int(f.Number()) != frameSendTimeField {
		t.Fatalf("ServerFrame.send_time_ns is %v", f)
	}
}

func encode(t *testing.T, m *pb.ClientMessage) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeClientMessage(t *testing.T) {
	sub := func(ids []string, chans []pb.Channel, depth uint32) *pb.ClientMessage {
		return &pb.ClientMessage{Id: 7, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Instruments: ids, Channels: chans, Depth: depth}}}
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = "synthetic:X"
	}
	tests := []struct {
		name     string
		data     []byte
		json     bool
		wantErr  error
		wantCode pb.ErrorCode
	}{
		{name: "subscribe", data: encode(t, sub([]string{"synthetic:ACME"}, []pb.Channel{pb.Channel_CHANNEL_QUOTE}, 10))},
		{name: "subscribe json", json: true, data: []byte(`{"id":3,"subscribe":{"instruments":["coinbase:BTC-USD"],"channels":["CHANNEL_BOOK"],"depth":25}}`)},
		{name: "ping", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 1}}})},
		{name: "list", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})},
		{name: "authenticate", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Authenticate{Authenticate: &pb.Authenticate{Token: "a.b.c"}}})},
		{name: "authenticate without token", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Authenticate{Authenticate: &pb.Authenticate{}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "garbage", data: []byte{0xff, 0xff, 0xff, 0xff}, wantErr: ErrUndecodable},
		{name: "garbage json", json: true, data: []byte(`{"subscribe":`), wantErr: ErrUndecodable},
		{name: "unknown json field is ignored", json: true, data: []byte(`{"id":1,"ping":{"nonce":"2"},"future":1}`)},
		{name: "empty", data: nil, wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "no instruments", data: encode(t, sub(nil, nil, 0)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "bad id", data: encode(t, sub([]string{"ACME"}, nil, 0)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "upper venue", data: encode(t, sub([]string{"Coinbase:BTC-USD"}, nil, 0)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "space in symbol", data: encode(t, sub([]string{"x:A B"}, nil, 0)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "too many", data: encode(t, sub(many, nil, 0)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "unknown channel", data: encode(t, sub([]string{"x:A"}, []pb.Channel{99}, 0)), wantCode: pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL},
		{name: "too deep", data: encode(t, sub([]string{"x:A"}, nil, 5000)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "resume", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Instruments: []string{"x:A"},
			Resume: []*pb.StreamPosition{{Instrument: "x:A", Channel: pb.Channel_CHANNEL_BOOK, Epoch: 1, Seq: 5}}}}})},
		{name: "resume unsubscribed instrument", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Instruments: []string{"x:A"},
			Resume: []*pb.StreamPosition{{Instrument: "x:B", Channel: pb.Channel_CHANNEL_BOOK}}}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "resume unsubscribed channel", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Instruments: []string{"x:A"},
			Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE}, Resume: []*pb.StreamPosition{{Instrument: "x:A", Channel: pb.Channel_CHANNEL_BOOK}}}}}), wantCode: pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL},
		{name: "replay pause", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{Action: &pb.ReplayControl_Pause{Pause: true}}}})},
		{name: "replay speed NaN", json: true, data: []byte(`{"replayControl":{"speed":"NaN"}}`), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "replay no action", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "replay seek negative", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{Action: &pb.ReplayControl_SeekTimeNs{SeekTimeNs: -5}}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "resync bad id", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: ":"}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "venue wildcard", data: encode(t, sub([]string{"coinbase:*", "kraken:XBT/USD"}, nil, 0))},
		{name: "venue wildcard with resume positions of its instruments", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
			Instruments: []string{"x:*"}, Resume: []*pb.StreamPosition{{Instrument: "x:A", Channel: pb.Channel_CHANNEL_BOOK}, {Instrument: "x:B", Channel: pb.Channel_CHANNEL_BOOK}}}}})},
		{name: "resume of another venue than the wildcard's", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
			Instruments: []string{"x:*"}, Resume: []*pb.StreamPosition{{Instrument: "y:A", Channel: pb.Channel_CHANNEL_BOOK}}}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "wildcard of a bad venue", data: encode(t, sub([]string{"X:*"}, nil, 0)), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "partial wildcard is a plain symbol", data: encode(t, sub([]string{"x:BTC*"}, nil, 0))},
		{name: "no venue wildcard in resync", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: "x:*"}}}), wantCode: pb.ErrorCode_ERROR_CODE_MALFORMED},
		{name: "unsubscribe venue wildcard", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: []string{"x:*"}}}})},
		{name: "unsubscribe unknown channel", data: encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: []string{"x:A"}, Channels: []pb.Channel{-1}}}}), wantCode: pb.ErrorCode_ERROR_CODE_UNKNOWN_CHANNEL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proto := SubprotocolProto
			if tt.json {
				proto = SubprotocolJSON
			}
			m, err := DecodeClientMessage(tt.data, proto, Limits{})
			var ce *CommandError
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantCode != 0:
				if !errors.As(err, &ce) || ce.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %v", err, tt.wantCode)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			case m.Command == nil:
				t.Fatal("no command")
			}
		})
	}
}

func TestSubscribeDefaultsAndDedup(t *testing.T) {
	m, err := DecodeClientMessage(encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: []string{"x:A"}}}}), SubprotocolProto, Limits{})
	if err != nil || len(m.GetSubscribe().Channels) != 5 {
		t.Fatalf("empty channels -> %v, %v", m, err)
	}
	m, err = DecodeClientMessage(encode(t, &pb.ClientMessage{Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: []string{"x:A"}, Channels: []pb.Channel{2, 1, 2}}}}), SubprotocolProto, Limits{})
	if err != nil || len(m.GetSubscribe().Channels) != 2 {
		t.Fatalf("dedup -> %v, %v", m, err)
	}
}

func TestReconnectable(t *testing.T) {
	for code, want := range map[int]bool{CloseNormal: false, CloseGoingAway: true, 1006: true, CloseSlowConsumer: true,
		CloseWriteTimeout: true, CloseRateLimited: true, CloseProtocolError: false, CloseUnauthorized: false, CloseMessageTooBig: false,
		CloseBadFrame: false, CloseInvalidUTF8: false, CloseInternalError: true, CloseIdle: true, ClosePingTimeout: true,
		CloseTokenExpired: true, CloseTokenRevoked: true} {
		if got := Reconnectable(code); got != want {
			t.Errorf("Reconnectable(%d) = %v", code, got)
		}
	}
}

// FuzzDecodeClientMessage: no input may panic, and an accepted command re-encodes and decodes
// to the same command.
func FuzzDecodeClientMessage(f *testing.F) {
	for _, m := range []*pb.ClientMessage{
		{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Instruments: []string{"synthetic:ACME", "coinbase:BTC-USD"}, Channels: []pb.Channel{1, 2}, Depth: 10}}},
		{Id: 2, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: []string{"kraken:XBT/USD"}}}},
		{Id: 3, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: "binance:BTCUSDT", Channels: []pb.Channel{2}}}},
		{Id: 4, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 99}}},
		{Id: 5, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}},
	} {
		b, _ := proto.Marshal(m)
		f.Add(b, false)
		j, _ := protojson.Marshal(m)
		f.Add(j, true)
	}
	f.Add([]byte{0x52, 0x02, 0x0a}, false)
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		sp := SubprotocolProto
		if isJSON {
			sp = SubprotocolJSON
		}
		m, err := DecodeClientMessage(data, sp, Limits{})
		if err != nil {
			var ce *CommandError
			if !errors.Is(err, ErrUndecodable) && !errors.As(err, &ce) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		b, err := EncodeClientMessage(m, sp)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeClientMessage(b, sp, Limits{})
		if err != nil || !proto.Equal(m, m2) {
			t.Fatalf("re-decode: %v %v vs %v", err, m, m2)
		}
	})
}

func BenchmarkAppendQuoteDelta(b *testing.B) {
	m := &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Handle: 17, Epoch: 1763790000, Seq: 1234567, PrevSeq: 1234560,
		VenueTimeNs: 1763790000123456789, IngestTimeNs: 1763790000123556789,
		Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 150000, AskPrice: 1234600, AskSize: 90000}}}}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/msg")
}

func BenchmarkAppendBookDelta(b *testing.B) {
	m := &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: &pb.Delta{Handle: 17, Epoch: 1763790000, Seq: 1234567, PrevSeq: 1234560,
		Checksum: 0xdeadbeef, VenueTimeNs: 1763790000123456789, IngestTimeNs: 1763790000123556789,
		Body: &pb.Delta_Book{Book: &pb.BookLevels{Depth: 50, Bids: []*pb.Level{{Price: 1234500, Size: 150000}, {Price: 1234400, Size: 0}}}}}}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/msg")
}

func BenchmarkDecodeClientMessage(b *testing.B) {
	data, _ := proto.Marshal(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{
		Instruments: []string{"synthetic:ACME", "coinbase:BTC-USD"}, Channels: []pb.Channel{1, 2}, Depth: 10}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeClientMessage(data, SubprotocolProto, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestInstrumentIDLimits: the one instrument id rule, at each limit and past it.
func TestVenueWildcard(t *testing.T) {
	for id, want := range map[string]string{"coinbase:*": "coinbase", "x_1-y:*": "x_1-y", "coinbase:BTC": "",
		"coinbase:**": "", "Coinbase:*": "", ":*": "", "*": "", "coinbase*": "", strings.Repeat("v", MaxVenueLen+1) + ":*": ""} {
		venue, ok := VenueWildcard(id)
		if venue != want || ok != (want != "") {
			t.Errorf("VenueWildcard(%q) = %q, %v; want %q", id, venue, ok, want)
		}
	}
}

func TestInstrumentIDLimits(t *testing.T) {
	venue32, symbol64 := strings.Repeat("v", MaxVenueLen), strings.Repeat("S", MaxSymbolLen)
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"coinbase:BTC-USD", true},
		{"kraken:XBT/USD", true},
		{"x:A:B", true},                         // a symbol may contain ':'
		{venue32 + ":" + symbol64, true},        // every limit at once: MaxInstrumentIDLen bytes
		{venue32 + "v:A", false},                // venue past its limit
		{"x:" + symbol64 + "S", false},          // symbol past its limit
		{venue32 + ":" + symbol64 + "S", false}, // whole id past its limit
		{"Coinbase:BTC", false},                 // upper-case venue
		{"x:BTC USD", false},                    // a space
		{"x:BTC\x7f", false},                    // DEL
		{"x:é", false},                          // non-ASCII
		{":A", false}, {"x:", false}, {"nocolon", false}, {"", false},
		{"x:*", false}, // the venue wildcard, never an instrument
		{"x:**", true}, // only "*" alone is reserved
		{"x:A*", true}, // a '*' inside a symbol is a byte like any other
	} {
		if err := CheckInstrumentID(tc.id); (err == nil) != tc.ok {
			t.Errorf("CheckInstrumentID(%q) = %v, want ok %v", tc.id, err, tc.ok)
		}
	}
	if MaxInstrumentIDLen != len(venue32)+1+len(symbol64) {
		t.Fatalf("MaxInstrumentIDLen %d", MaxInstrumentIDLen)
	}
}
