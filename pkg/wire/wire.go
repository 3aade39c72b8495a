// Package wire is the frame codec of the Tickwire WebSocket protocol (docs/PROTOCOL.md): the
// subprotocol names, close codes, instrument ids, the encoding of server frames from messages
// encoded once, and the validating decoder of client commands.
//
// A server frame is a ServerFrame: repeated ServerMessage messages = 1; int64 send_time_ns = 2.
// Because concatenated encodings of a repeated field's entries form a valid message, a server
// encodes each message once with AppendMessage (tag and length included) and joins the bytes of
// every message pending for a connection, then AppendSendTime, into one frame without
// re-encoding anything. The JSON subprotocol does the same with JSONFrame.
package wire

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Subprotocols. A client names one in Sec-WebSocket-Protocol; with none, the server speaks
// SubprotocolProto.
const (
	// SubprotocolProto carries binary frames: protobuf ClientMessage up, ServerFrame down.
	SubprotocolProto = "tickwire.v1.proto"
	// SubprotocolJSON carries text frames: the same messages in protobuf's JSON mapping.
	SubprotocolJSON = "tickwire.v1.json"
)

// Field numbers of ServerFrame, checked against the generated descriptor in tests.
const (
	frameMessagesField = 1
	frameSendTimeField = 2
)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// AppendMessage appends m as one entry of ServerFrame.messages: its tag, its length and its
// encoding. The result may be shared by every connection the message goes to.
func AppendMessage(dst []byte, m *pb.ServerMessage) ([]byte, error) {
	size := marshalOpts.Size(m)
	dst = protowire.AppendTag(dst, frameMessagesField, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	out, err := marshalOpts.MarshalAppend(dst, m)
	if err != nil {
		return dst, fmt.Errorf("wire: encode server message: %w", err)
	}
	return out, nil
}

// AppendSendTime appends ServerFrame.send_time_ns; it ends a binary frame.
func AppendSendTime(dst []byte, unixNano int64) []byte {
	dst = protowire.AppendTag(dst, frameSendTimeField, protowire.VarintType)
	return protowire.AppendVarint(dst, uint64(unixNano))
}

// MarshalJSONMessage returns m in protobuf's JSON mapping, as JSONFrame joins it.
func MarshalJSONMessage(m *pb.ServerMessage) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("wire: encode server message as JSON: %w", err)
	}
	return b, nil
}

// EncodeMessage encodes m once for connections of one subprotocol: for JSON, as JSONFrame joins
// it; for binary, as one entry of ServerFrame.messages.
func EncodeMessage(m *pb.ServerMessage, json bool) ([]byte, error) {
	if json {
		return MarshalJSONMessage(m)
	}
	return AppendMessage(nil, m)
}

// JSONFrame appends to dst the JSON form of a ServerFrame holding msgs (each from
// MarshalJSONMessage) and the send time.
func JSONFrame(dst []byte, msgs [][]byte, unixNano int64) []byte {
	dst = append(dst, `{"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m...)
	}
	dst = append(dst, `],"sendTimeNs":"`...)
	dst = strconv.AppendInt(dst, unixNano, 10)
	return append(dst, `"}`...)
}

// DecodeFrame decodes a server frame in the given subprotocol into f.
func DecodeFrame(data []byte, subprotocol string, f *pb.ServerFrame) error {
	var err error
	// Unknown fields and enum values are skipped so that a client keeps working when the server
	// adds them (docs/PROTOCOL.md, Versioning).
	if subprotocol == SubprotocolJSON {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, f)
	} else {
		err = proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, f)
	}
	if err != nil {
		return fmt.Errorf("wire: decode server frame: %w", err)
	}
	return nil
}

// EncodeClientMessage encodes a command in the given subprotocol.
func EncodeClientMessage(m *pb.ClientMessage, subprotocol string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if subprotocol == SubprotocolJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		return nil, fmt.Errorf("wire: encode client message: %w", err)
	}
	return b, nil
}
