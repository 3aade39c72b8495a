package wire

// WebSocket close codes: the CloseCode enum of proto/tickwire/v1/stream.proto, where a new code
// is added first (TestDisconnectsCoverEveryCloseCode holds these to it, name for name), kept
// here as untyped constants so that they compare with any integer type a WebSocket library
// uses. Codes 4000-4499 mean "reconnect (with backoff) and resume"; codes 4500-4999 mean the
// client did something wrong and must change before reconnecting.
const (
	// CloseNormal: the client or server ended the session on purpose.
	CloseNormal = 1000
	// CloseGoingAway: the server is shutting down or restarting; reconnect, perhaps elsewhere.
	CloseGoingAway = 1001
	// CloseBadFrame: a WebSocket frame that breaks RFC 6455 (reserved bits, an unmasked client
	// frame, a 64-bit length with its top bit set, a fragmented or long control frame...).
	CloseBadFrame = 1002
	// CloseInvalidUTF8: a text message or close reason that is not UTF-8.
	CloseInvalidUTF8 = 1007
	// CloseMessageTooBig: a client frame exceeded the read limit.
	CloseMessageTooBig = 1009
	// CloseInternalError: the server failed handling this connection (a bug, logged and
	// counted); reconnect with backoff.
	CloseInternalError = 1011
	// CloseTryAgainLater: the server cannot serve this connection yet (a delay tier still
	// reading history up to its lag); reconnect with backoff.
	CloseTryAgainLater = 1013

	// CloseSlowConsumer: the connection's queue passed its hard bound; reconnect and resume.
	CloseSlowConsumer = 4000
	// CloseWriteTimeout: a write did not finish within the write deadline.
	CloseWriteTimeout = 4001
	// ClosePingTimeout: nothing came from the client within the read deadline.
	ClosePingTimeout = 4002
	// CloseRateLimited: commands kept arriving far above the rate limit.
	CloseRateLimited = 4003
	// CloseIdle: the connection held no subscription for the idle timeout.
	CloseIdle = 4004
	// CloseTokenExpired: the connection's token reached its exp before an Authenticate with a
	// fresh one extended it; reconnect with a fresh token (docs/PROTOCOL.md, "Authentication").
	CloseTokenExpired = 4005
	// CloseTokenRevoked: the connection's token was revoked (by its jti, or its subject's
	// tokens issued until then); reconnect only with a fresh token: the same one is refused
	// with 401 (docs/PROTOCOL.md, "Authentication").
	CloseTokenRevoked = 4006

	// CloseProtocolError: a frame that is not a ClientMessage, or a text frame on the binary
	// subprotocol (or the reverse).
	CloseProtocolError = 4500
	// CloseUnauthorized: no valid credentials: an Authenticate refused, none sent within the
	// sign-in timeout, a replay watcher without the replay right, or the subject's connection
	// limit; the close reason says which. Fix the credentials before reconnecting.
	CloseUnauthorized = 4501
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
