/**
 * `@tickwire/client`: the Tickwire feed client for browsers and Node.js bots.
 *
 * - {@link FeedClient}: the connection (binary subprotocol `tickwire.v1.proto`), jittered
 *   reconnect, resume from stream positions, one Resync per break, and events for apps and bots.
 * - {@link Replica}: one instrument's streams rebuilt from snapshots and deltas, checked against
 *   the book checksum and the full-depth book hash, rule for rule as Go's `pkg/market.Replica`.
 * - {@link Book}, {@link checksum}, {@link bookHash}: the L2 book and its checks (Go's `pkg/book`);
 *   a consolidated book's levels carry their venues, named by {@link levelMembers}.
 * - {@link formatDecimal} and friends: exact decimal strings from the wire's int64 mantissas.
 * - The protobuf messages and enums generated from `proto/` (protoc-gen-es), re-exported as they
 *   are: `Channel`, `Quote`, `Delta`, `Snapshot`, `ServerFrameSchema`, ...
 *
 * The wire contract is docs/PROTOCOL.md in the Tickwire repository.
 *
 * @packageDocumentation
 */

export * from "./client.js";
export * from "./replica.js";
export * from "./decimal.js";
export * from "./crc32.js";
export * from "./closes.js";
// closes.ts's CloseCode (named like Go's constants, plus 1006) rather than the generated enum it is built from.
export { CloseCode } from "./closes.js";
// The book's side and level are named BookSide and BookLevel here: the protocol's own Side (of a
// trade) and Level (a book level message) are re-exported from the generated code below.
export {
  Book,
  Side as BookSide,
  checksum,
  checksumDepth,
  levelHash,
  levelHashOf,
  bookHash,
  type Level as BookLevel,
  type LevelInput as BookLevelInput,
} from "./book.js";
export * from "./venues.js";
export * from "./gen/tickwire/v1/market_pb.js";
export * from "./gen/tickwire/v1/stream_pb.js";
export * from "./gen/tickwire/v1/replay_pb.js";
