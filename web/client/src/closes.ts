// What a client does after each way a connection ends: docs/PROTOCOL.md §12 and §13.1, and the
// shared table proto/testdata/disconnects.json (test/closes.test.ts checks every row of it, as
// pkg/wire's disconnects_test.go checks Go's wire.Reconnectable).

import { CloseCode as Code } from "./gen/tickwire/v1/stream_pb.js";

/**
 * What to do after a connection ended:
 * - `"stop"`: do not reconnect on its own (the same connect would fail the same way);
 * - `"backoff"`: reconnect with jittered exponential backoff, and resume;
 * - `"fresh_token"`: reconnect only with a new token (a client whose token source gives fresh
 *   tokens reconnects; one with a fixed token stops; a browser asks its user to sign in).
 */
export type DisconnectAction = "stop" | "backoff" | "fresh_token";

/**
 * WebSocket close codes of the protocol, named after the CloseCode enum of
 * proto/tickwire/v1/stream.proto (generated as `Code`; Go's pkg/wire constants come from it too),
 * plus 1006, which a WebSocket API reports for a connection lost without a close frame.
 */
export const CloseCode = {
  Normal: Code.NORMAL,
  GoingAway: Code.GOING_AWAY,
  BadFrame: Code.BAD_FRAME,
  /** Never sent on the wire: the connection was lost without a close frame. */
  Abnormal: 1006,
  InvalidUTF8: Code.INVALID_UTF8,
  MessageTooBig: Code.MESSAGE_TOO_BIG,
  InternalError: Code.INTERNAL_ERROR,
  TryAgainLater: Code.TRY_AGAIN_LATER,
  SlowConsumer: Code.SLOW_CONSUMER,
  WriteTimeout: Code.WRITE_TIMEOUT,
  PingTimeout: Code.PING_TIMEOUT,
  RateLimited: Code.RATE_LIMITED,
  Idle: Code.IDLE,
  TokenExpired: Code.TOKEN_EXPIRED,
  TokenRevoked: Code.TOKEN_REVOKED,
  ProtocolError: Code.PROTOCOL_ERROR,
  Unauthorized: Code.UNAUTHORIZED,
} as const;

/**
 * What to do after the feed (or the network) closed a connection with `code`. 1000 is "stop":
 * the session ended on purpose; a client that closed its own connection (FeedClient.stop) does
 * not reconnect whatever the code.
 */
export function closeAction(code: number): DisconnectAction {
  switch (code) {
    case CloseCode.Normal:
    case CloseCode.BadFrame:
    case CloseCode.InvalidUTF8:
    case CloseCode.MessageTooBig:
      return "stop";
    case CloseCode.TokenExpired:
    case CloseCode.TokenRevoked:
      return "fresh_token";
  }
  if (code >= 4500 && code <= 4999) return "stop";
  return "backoff";
}

/**
 * Whether a client may reconnect on its own after close `code` (Go's `wire.Reconnectable`):
 * false for "stop", true for "backoff" and "fresh_token" (with a fresh token; see needsSignIn).
 */
export function reconnectable(code: number): boolean {
  return closeAction(code) !== "stop";
}

/**
 * Whether close `code` ended the connection for its credentials: 4005 (the token expired without
 * a refresh) and 4006 (the operator revoked it), which need a fresh token ("fresh_token"), and
 * 4501 (no valid credentials: "stop" until they are fixed). A client with a fixed token does not
 * reconnect after them; the dashboard asks its user to sign in, which fixes 4501 too.
 */
export function needsSignIn(code: number): boolean {
  return closeAction(code) === "fresh_token" || code === CloseCode.Unauthorized;
}

/**
 * What to do when the WebSocket handshake was refused with HTTP `status` (PROTOCOL.md §2.2):
 * 408, 429 and 5xx are passing ("backoff"); any other refusal (400, 401, 403, 404, 426, ...)
 * would be refused again ("stop"). A browser never sees the status (the connection fails as
 * 1006); Node's `ws` reports it ("Unexpected server response: 401"), and FeedClient uses it.
 */
export function handshakeAction(status: number): DisconnectAction {
  if (status === 408 || status === 429 || status >= 500) return "backoff";
  return "stop";
}
