package wire

import pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"

// WebSocket close codes: the values of the CloseCode enum of proto/tickwire/v1/stream.proto, so
// that every language's generated code names them alike. Codes 4000-4499 mean "reconnect (with
// backoff) and resume"; codes 4500-4999 mean the client did something wrong and must change
// before reconnecting.
const (
	// CloseNormal: the client or server ended the session on purpose.
	CloseNormal = int(pb.CloseCode_CLOSE_CODE_NORMAL)
	// CloseGoingAway: the server is shutting down or restarting; reconnect, perhaps elsewhere.
	CloseGoingAway = int(pb.CloseCode_CLOSE_CODE_GOING_AWAY)
	// CloseBadFrame: a WebSocket frame that breaks RFC 6455 (reserved bits, an unmasked client
	// frame, a 64-bit length with its top bit set, a fragmented or long control frame...).
	CloseBadFrame = int(pb.CloseCode_CLOSE_CODE_BAD_FRAME)
	// CloseInvalidUTF8: a text message or close reason that is not UTF-8.
	CloseInvalidUTF8 = int(pb.CloseCode_CLOSE_CODE_INVALID_UTF8)
	// CloseMessageTooBig: a client frame exceeded the read limit.
	CloseMessageTooBig = int(pb.CloseCode_CLOSE_CODE_MESSAGE_TOO_BIG)
	// CloseInternalError: the server failed handling this connection (a bug, logged and
	// counted); reconnect with backoff.
	CloseInternalError = int(pb.CloseCode_CLOSE_CODE_INTERNAL_ERROR)
	// CloseTryAgainLater: the server cannot serve this connection yet (a delay tier still
	// reading history up to its lag); reconnect with backoff.
	CloseTryAgainLater = int(pb.CloseCode_CLOSE_CODE_TRY_AGAIN_LATER)

	// CloseSlowConsumer: the connection's queue passed its hard bound; reconnect and resume.
	CloseSlowConsumer = int(pb.CloseCode_CLOSE_CODE_SLOW_CONSUMER)
	// CloseWriteTimeout: a write did not finish within the write deadline.
	CloseWriteTimeout = int(pb.CloseCode_CLOSE_CODE_WRITE_TIMEOUT)
	// ClosePingTimeout: nothing came from the client within the read deadline.
	ClosePingTimeout = int(pb.CloseCode_CLOSE_CODE_PING_TIMEOUT)
	// CloseRateLimited: commands kept arriving far above the rate limit.
	CloseRateLimited = int(pb.CloseCode_CLOSE_CODE_RATE_LIMITED)
	// CloseIdle: the connection held no subscription for the idle timeout.
	CloseIdle = int(pb.CloseCode_CLOSE_CODE_IDLE)
	// CloseTokenExpired: the connection's token reached its exp before an Authenticate with a
	// fresh one extended it; reconnect with a fresh token (docs/PROTOCOL.md, "Authentication").
	CloseTokenExpired = int(pb.CloseCode_CLOSE_CODE_TOKEN_EXPIRED)
	// CloseTokenRevoked: the connection's token was revoked (by its jti, or its subject's
	// tokens issued until then); reconnect only with a fresh token: the same one is refused
	// with 401 (docs/PROTOCOL.md, "Authentication").
	CloseTokenRevoked = int(pb.CloseCode_CLOSE_CODE_TOKEN_REVOKED)

	// CloseProtocolError: a frame that is not a ClientMessage, or a text frame on the binary
	// subprotocol (or the reverse).
	CloseProtocolError = int(pb.CloseCode_CLOSE_CODE_PROTOCOL_ERROR)
	// CloseUnauthorized: no valid credentials: an Authenticate refused, none sent within the
	// sign-in timeout, a replay watcher without the replay right, or the subject's connection
	// limit; the close reason says which. Fix the credentials before reconnecting.
	CloseUnauthorized = int(pb.CloseCode_CLOSE_CODE_UNAUTHORIZED)
)

// Reconnectable reports whether a client closed with code should reconnect on its own.
func Reconnectable(code int) bool {
	switch {
	case code == CloseNormal:
		return false
	case code == CloseMessageTooBig, code == CloseBadFrame, code == CloseInvalidUTF8:
		return false
	case code >= 4500 && code <= 4999:
		return false
	}
	return true
}
