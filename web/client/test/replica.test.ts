import { fromBinary, fromJson, equals, toJson, type JsonValue } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { InstrumentInfoSchema, QuoteSchema } from "../src/gen/tickwire/v1/market_pb.js";
import {
  CandleSchema,
  Channel,
  ServerMessageSchema,
  StatsSchema,
  TradeRecordSchema,
} from "../src/gen/tickwire/v1/stream_pb.js";
import { Replica, dataChannels, needsResync, type Outcome } from "../src/replica.js";
import { isConsolidated, levelMembers } from "../src/venues.js";

// The replica vectors written by pkg/market/vectors_test.go from the Go replica. Book levels are
// [price, size], or [price, size, venues] when venues is not 0 (a consolidated book).
type VectorLevel = [string, string] | [string, string, string];
interface Step {
  note?: string;
  message: JsonValue;
  proto: string;
  outcome: Outcome;
  resync?: boolean;
  state: {
    positions: Record<string, { epoch: string; seq: string; synced: boolean }>;
    quote: JsonValue;
    depth: number;
    bids: VectorLevel[];
    asks: VectorLevel[];
    trades: JsonValue[];
    candles: JsonValue[];
    stats: JsonValue | null;
  };
}
interface Case {
  name: string;
  instrument: string;
  /** The InstrumentInfo (protobuf JSON), on the consolidated case. */
  info?: JsonValue;
  trade_history: number;
  candle_history: number;
  steps: Step[];
}
const file = JSON.parse(readFileSync(new URL("../../../pkg/market/testdata/replica_vectors.json", import.meta.url), "utf8")) as {
  cases: Case[];
};

const channelName: Record<number, string> = {
  [Channel.QUOTE]: "CHANNEL_QUOTE",
  [Channel.BOOK]: "CHANNEL_BOOK",
  [Channel.TRADES]: "CHANNEL_TRADES",
  [Channel.CANDLES]: "CHANNEL_CANDLES",
  [Channel.STATS]: "CHANNEL_STATS",
};

function stateOf(r: Replica): Step["state"] {
  const positions: Step["state"]["positions"] = {};
  for (const ch of dataChannels) {
    const p = r.pos[ch]!;
    positions[channelName[ch]!] = { epoch: p.epoch.toString(), seq: p.seq.toString(), synced: p.synced };
  }
  const pair = (l: { price: bigint; size: bigint; venues: number }): VectorLevel =>
    l.venues !== 0 ? [l.price.toString(), l.size.toString(), l.venues.toString()] : [l.price.toString(), l.size.toString()];
  return {
    positions,
    quote: toJson(QuoteSchema, r.quote),
    depth: r.depth,
    bids: r.book.bids.map(pair),
    asks: r.book.asks.map(pair),
    trades: r.trades.map((t) => toJson(TradeRecordSchema, t)),
    candles: r.candles.map((c) => toJson(CandleSchema, c)),
    stats: r.stats ? toJson(StatsSchema, r.stats) : null,
  };
}

function bytes(b64: string): Uint8Array {
  return Uint8Array.from(Buffer.from(b64, "base64"));
}

describe("replica vectors from the Go replica", () => {
  it("covers every outcome", () => {
    const seen = new Set(file.cases.flatMap((c) => c.steps.map((s) => s.outcome)));
    expect([...seen].sort()).toEqual(["checksum", "epoch", "gap", "not_synced", "ok", "stale"]);
  });
  for (const c of file.cases) {
    it(`${c.name}: ${c.steps.length} steps reach the same outcomes and states`, () => {
      const r = new Replica();
      r.tradeHistory = c.trade_history;
      r.candleHistory = c.candle_history;
      c.steps.forEach((step, i) => {
        const where = `step ${i} (${step.note ?? ""})`;
        const msg = fromBinary(ServerMessageSchema, bytes(step.proto));
        // The binary and the JSON encodings decode to the same message.
        expect(equals(ServerMessageSchema, msg, fromJson(ServerMessageSchema, step.message)), where).toBe(true);
        let outcome: Outcome;
        if (msg.kind.case === "snapshot") outcome = r.applySnapshot(msg.kind.value);
        else if (msg.kind.case === "delta") outcome = r.applyDelta(msg.kind.value);
        else throw new Error(`${where}: unexpected ${msg.kind.case}`);
        expect(outcome, where).toBe(step.outcome);
        expect(needsResync(outcome), where).toBe(step.resync ?? false);
        expect(stateOf(r), where).toEqual(step.state);
      });
    });
  }

  it("has a consolidated case: venues on its levels, from its members, a venues-only change", () => {
    const c = file.cases.find((k) => k.name === "consolidated");
    expect(c?.info).toBeDefined();
    const info = fromJson(InstrumentInfoSchema, c!.info!);
    expect(info.venue).toBe("consolidated");
    expect(isConsolidated(info)).toBe(true);
    const levels = c!.steps.flatMap((s) => [...s.state.bids, ...s.state.asks]);
    expect(levels.length).toBeGreaterThan(0);
    for (const l of levels) {
      // Every level of a consolidated book names at least one venue, each one a member.
      expect(l.length, JSON.stringify(l)).toBe(3);
      const named = levelMembers(Number(l[2]), info.members);
      expect(named.length).toBeGreaterThan(0);
      for (const m of named) expect(m.member, JSON.stringify(l)).toBeDefined();
    }
    expect(c!.steps.some((s) => s.note?.includes("venues change"))).toBe(true);
    expect(c!.steps.some((s) => s.note?.includes("venues altered") && s.outcome === "checksum")).toBe(true);
  });
});

// A replica wrong below the checksum's 10 levels passes the CRC32 but not the full-depth hash
// (docs/PROTOCOL.md 9.5), as pkg/market's TestFullDepthHashCatchesDeepDrift checks in Go.
describe("full-depth hash", () => {
  it("catches a drift below the top 10 levels", async () => {
    const { create } = await import("@bufbuild/protobuf");
    const { SnapshotSchema, DeltaSchema, BookLevelsSchema, SnapshotReason } = await import("../src/gen/tickwire/v1/stream_pb.js");
    const { LevelSchema } = await import("../src/gen/tickwire/v1/market_pb.js");
    const { Book, Side, bookHash } = await import("../src/book.js");
    const server = new Book();
    for (let i = 0n; i < 20n; i++) {
      server.set(Side.Bid, 1000n - i, 10n + i);
      server.set(Side.Ask, 1001n + i, 10n + i);
    }
    const lv = (ls: { price: bigint; size: bigint }[]) => ls.map((l) => create(LevelSchema, { price: l.price, size: l.size }));
    const snap = create(SnapshotSchema, {
      handle: 1, channel: Channel.BOOK, epoch: 1n, seq: 1n, reason: SnapshotReason.SUBSCRIBE,
      checksum: server.checksum(50), bookHash: bookHash(server.bids, server.asks),
      body: { case: "book", value: create(BookLevelsSchema, { depth: 50, bids: lv(server.bids), asks: lv(server.asks) }) },
    });
    const r = new Replica();
    expect(r.applySnapshot(snap)).toBe("ok");
    // Level 16 of the bids drifts on the client only.
    const deep = r.book.bids[15]!;
    r.book.set(Side.Bid, deep.price, deep.size + 1n);
    // The server's next change is at the top; its CRC32 matches the client's top 10.
    server.set(Side.Ask, 1001n, 99n);
    const delta = create(DeltaSchema, {
      handle: 1, epoch: 1n, seq: 2n, prevSeq: 1n, checksum: server.checksum(50), bookHash: bookHash(server.bids, server.asks),
      body: { case: "book", value: create(BookLevelsSchema, { depth: 50, asks: lv([{ price: 1001n, size: 99n }]) }) },
    });
    // Without the hash (an older server) the CRC32 alone passes the drifted book:
    expect(r.applyDelta(create(DeltaSchema, { ...delta, bookHash: 0n }))).toBe("ok");
    r.applySnapshot(snap); // again, and the same drift
    r.book.set(Side.Bid, deep.price, deep.size + 1n);
    expect(r.applyDelta(delta)).toBe("checksum");
  });
});
