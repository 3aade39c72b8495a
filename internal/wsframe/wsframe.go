// Package wsframe reads WebSocket frames (RFC 6455 section 5) from a peer that may be hostile.
//
// Every header is validated before its length is used: a 64-bit length with the top bit set,
// a length past the configured bound, a control frame over 125 bytes or fragmented, reserved
// bits (no extension is ever negotiated: compression is off), an unknown opcode, the wrong
// masking for the side, a continuation without a start, invalid UTF-8 in a text message or a
// close reason, and a malformed close payload are each refused with an *Error that carries the
// close code to answer with. Nothing here writes to the connection: the caller owns its socket's
// only writer (DESIGN.md decision 12) and sends pongs and close frames through it.
//
// Reader is the server's read path (it replaces gws's read loop, whose frame parser sliced with a
// negative length and panicked). Guard protects a library's own parser (gws on the client side)
// by checking the headers in the byte stream before the library sees them.
package wsframe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// Close codes this package answers with (RFC 6455 section 7.4.1).
const (
	CloseProtocolError = 1002
	CloseInvalidData   = 1007 // a text message or close reason that is not UTF-8
	CloseTooLarge      = 1009
)

// MaxControlPayload is RFC 6455's bound on a control frame's payload.
const MaxControlPayload = 125

// MaxHeader is the longest frame header: 2 bytes, an 8-byte length and a 4-byte mask key.
const MaxHeader = 14

// Error is a protocol violation by the peer: the connection must be closed with Code.
type Error struct {
	Code   int
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code) }

func protocolError(format string, args ...any) *Error {
	return &Error{Code: CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// Role says which side reads: a server reads masked frames, a client unmasked ones.
type Role uint8

const (
	// ServerSide reads a client's frames: every frame must be masked.
	ServerSide Role = iota
	// ClientSide reads a server's frames: no frame may be masked.
	ClientSide
)

// Header is one parsed and validated frame header.
type Header struct {
	Fin     bool
	Opcode  byte
	Masked  bool
	MaskKey [4]byte
	// Length of the payload, at most the bound given to ParseHeader (so it fits an int).
	Length int
}

// headerSize returns the size of the header starting with b0, b1 (the first two bytes).
func headerSize(b1 byte) int {
	n := 2
	switch b1 & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// checkStart validates what the first two bytes of a header say.
func checkStart(b0, b1 byte, role Role) error {
	if b0&0x70 != 0 {
		return protocolError("reserved bits set (no extension was negotiated)")
	}
	op := b0 & 0x0F
	switch op {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		if b0&0x80 == 0 {
			return protocolError("fragmented control frame")
		}
		if b1&0x7F > MaxControlPayload {
			return protocolError("control frame payload over %d bytes", MaxControlPayload)
		}
	default:
		return protocolError("unknown opcode %#x", op)
	}
	masked := b1&0x80 != 0
	if role == ServerSide && !masked {
		return protocolError("unmasked frame from a client")
	}
	if role == ClientSide && masked {
		return protocolError("masked frame from a server")
	}
	return nil
}

// checkLength validates an extended length field (ext holds the 2 or 8 bytes after the first
// two) and returns the payload length. A length not in its shortest form is taken: it is
// harmless, and refusing it would only break odd clients.
func checkLength(b1 byte, ext []byte, maxPayload int) (int, error) {
	var n uint64
	switch b1 & 0x7F {
	case 126:
		n = uint64(binary.BigEndian.Uint16(ext))
	case 127:
		n = binary.BigEndian.Uint64(ext)
		if n>>63 != 0 {
			return 0, protocolError("64-bit length with the most significant bit set")
		}
	default:
		n = uint64(b1 & 0x7F)
	}
	if n > uint64(maxPayload) {
		return 0, &Error{Code: CloseTooLarge, Reason: fmt.Sprintf("frame of %d bytes over the limit of %d", n, maxPayload)}
	}
	return int(n), nil
}

// ParseHeader parses the header at the start of b, validated for role with payloads of at most
// maxPayload bytes. It returns the header and its size; size 0 with a nil error means b does not
// hold the whole header yet.
func ParseHeader(b []byte, role Role, maxPayload int) (Header, int, error) {
	if len(b) < 2 {
		return Header{}, 0, nil
	}
	if err := checkStart(b[0], b[1], role); err != nil {
		return Header{}, 0, err
	}
	size := headerSize(b[1])
	if len(b) < size {
		return Header{}, 0, nil
	}
	n, err := checkLength(b[1], b[2:], maxPayload)
	if err != nil {
		return Header{}, 0, err
	}
	h := Header{Fin: b[0]&0x80 != 0, Opcode: b[0] & 0x0F, Masked: b[1]&0x80 != 0, Length: n}
	if h.Masked {
		copy(h.MaskKey[:], b[size-4:size])
	}
	return h, size, nil
}

// Mask applies (or removes) the masking key to p, which starts at payload offset pos.
func Mask(p []byte, key [4]byte, pos int) {
	for i := range p {
		p[i] ^= key[(pos+i)&3]
	}
}

// Frame is what Reader.Next returns: a whole data message (its fragments joined), or one control
// frame. Payload is valid until the next call to Next.
type Frame struct {
	Opcode  byte // OpText, OpBinary, OpClose, OpPing or OpPong
	Payload []byte
}

// Reader reads frames from a peer. Its zero value is not usable: use NewReader.
type Reader struct {
	r          io.Reader
	role       Role
	maxMessage int
	hdr        [MaxHeader]byte
	buf        []byte // the message being assembled, reused
	control    [MaxControlPayload]byte
	fragOp     byte // opcode of the fragmented message in progress, 0 when none
}

// NewReader returns a Reader of frames from r, for role, refusing data messages (all fragments
// together) of more than maxMessage bytes with CloseTooLarge. r should be buffered: headers are
// read in small pieces.
func NewReader(r io.Reader, role Role, maxMessage int) *Reader {
	if maxMessage < MaxControlPayload {
		maxMessage = MaxControlPayload
	}
	return &Reader{r: r, role: role, maxMessage: maxMessage}
}

// maxKeptBuffer bounds the message buffer kept between messages: one large command does not pin
// its buffer on an idle connection.
const maxKeptBuffer = 4 << 10

// Next returns the next data message or control frame. Errors are the reader's (io.EOF, a
// timeout) or an *Error for a protocol violation; after an error the Reader must not be used.
func (r *Reader) Next() (Frame, error) {
	if cap(r.buf) > maxKeptBuffer && r.fragOp == 0 {
		r.buf = nil
	}
	if r.fragOp == 0 {
		r.buf = r.buf[:0]
	}
	for {
		h, err := r.readHeader()
		if err != nil {
			return Frame{}, err
		}
		if h.Opcode >= OpClose {
			p := r.control[:h.Length]
			if _, err := io.ReadFull(r.r, p); err != nil {
				return Frame{}, unexpected(err)
			}
			if h.Masked {
				Mask(p, h.MaskKey, 0)
			}
			if h.Opcode == OpClose {
				if _, _, err := ParseClose(p); err != nil {
					return Frame{}, err
				}
			}
			return Frame{Opcode: h.Opcode, Payload: p}, nil
		}
		switch {
		case h.Opcode == OpContinuation && r.fragOp == 0:
			return Frame{}, protocolError("continuation frame without a message to continue")
		case h.Opcode != OpContinuation && r.fragOp != 0:
			return Frame{}, protocolError("new message inside a fragmented one")
		case len(r.buf)+h.Length > r.maxMessage:
			return Frame{}, &Error{Code: CloseTooLarge, Reason: fmt.Sprintf("message over the limit of %d bytes", r.maxMessage)}
		}
		if h.Opcode != OpContinuation {
			r.fragOp = h.Opcode
		}
		start := len(r.buf)
		r.buf = grow(r.buf, h.Length)
		p := r.buf[start:]
		if _, err := io.ReadFull(r.r, p); err != nil {
			return Frame{}, unexpected(err)
		}
		if h.Masked {
			Mask(p, h.MaskKey, 0)
		}
		if !h.Fin {
			continue
		}
		op := r.fragOp
		r.fragOp = 0
		if op == OpText && !utf8.Valid(r.buf) {
			return Frame{}, &Error{Code: CloseInvalidData, Reason: "text message is not UTF-8"}
		}
		return Frame{Opcode: op, Payload: r.buf}, nil
	}
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// readHeader reads and validates one header; the bound is the message limit for data frames.
func (r *Reader) readHeader() (Header, error) {
	b := r.hdr[:]
	if _, err := io.ReadFull(r.r, b[:2]); err != nil {
		return Header{}, err // io.EOF here is a clean end between frames
	}
	if err := checkStart(b[0], b[1], r.role); err != nil {
		return Header{}, err
	}
	size := headerSize(b[1])
	if _, err := io.ReadFull(r.r, b[2:size]); err != nil {
		return Header{}, unexpected(err)
	}
	h, _, err := ParseHeader(b[:size], r.role, r.maxMessage)
	return h, err
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseClose returns the status code and reason of a close frame's payload (code 1005, "no
// status", for an empty payload). A payload of one byte, a code that may not be sent on the wire
// or a reason that is not UTF-8 is an *Error.
func ParseClose(p []byte) (code int, reason string, err error) {
	switch {
	case len(p) == 0:
		return 1005, "", nil
	case len(p) == 1:
		return 0, "", protocolError("close payload of one byte")
	}
	code = int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", protocolError("close code %d may not be sent", code)
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &Error{Code: CloseInvalidData, Reason: "close reason is not UTF-8"}
	}
	return code, string(p[2:]), nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 section 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
