import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FeedClient, InstrumentInfoSchema } from "@tickwire/client";
import { Store } from "../src/app/store";
import { labelBudget, memberTags, shortVenue, venueColours, venueLabels, venueTags, venuesTitle } from "../src/market/venues";

// A consolidated instrument's venue tags (market/venues.ts): bit i of Level.venues is
// InstrumentInfo.members[i]; the ladder shows each as its member's venue.
describe("venue tags", () => {
  const members = ["synthetic:ACME", "synthetic-b:ACME"];

  it("names a member by its venue, the part before the first colon", () => {
    expect(shortVenue("synthetic-b:ACME")).toBe("synthetic-b");
    expect(shortVenue("kraken:BTC/USD")).toBe("kraken");
    expect(shortVenue("odd:A:B")).toBe("odd");
    expect(shortVenue("novenue")).toBe("novenue");
  });

  it("tags the venues of a bit set, lowest bit first, coloured by bit", () => {
    expect(venueTags(0, members)).toEqual([]);
    expect(venueTags(1, members)).toEqual([{ label: "synthetic", title: "synthetic:ACME", cls: "vt vt-0" }]);
    expect(venueTags(2, members)).toEqual([{ label: "synthetic-b", title: "synthetic-b:ACME", cls: "vt vt-1" }]);
    const both = venueTags(3, members);
    expect(both.map((t) => t.label)).toEqual(["synthetic", "synthetic-b"]);
    expect(venuesTitle(both)).toBe("synthetic:ACME, synthetic-b:ACME");
    expect(venuesTitle([])).toBe("");
  });

  it("shows bits past the members as ?, without failing", () => {
    const tags = venueTags(0b1101, members);
    expect(tags.map((t) => t.label)).toEqual(["synthetic", "?", "?"]);
    expect(tags[1]).toEqual({ label: "?", title: "venue bit 2: not among the instrument's 2 members", cls: "vt unknown" });
    expect(venueTags(0x80000000, members).map((t) => t.label)).toEqual(["?"]); // the top bit of the uint32
    expect(venueTags(5, []).map((t) => t.label)).toEqual(["?", "?"]); // an info without members
    expect(venueTags(-1, members).length).toBe(32); // the uint32 read as a negative number
  });

  it("cycles the colours past the last one, the same on a level and in the members' legend", () => {
    const many = Array.from({ length: venueColours + 2 }, (_, i) => `v${i}:X`);
    const tags = venueTags((1 << (venueColours + 1)) | 1, many);
    expect(tags.map((t) => t.cls)).toEqual(["vt vt-0", `vt vt-${(venueColours + 1) % venueColours}`]);
    const legend = memberTags(many);
    expect(legend.map((t) => t.label)).toEqual(many.map((m) => m.split(":")[0]));
    expect(legend[venueColours + 1]).toEqual(tags[1]);
  });

  it("labels the venues whole while they are short, else abbreviated, each label its own", () => {
    expect(venueLabels(members)).toEqual(["synthetic", "synthetic-b"]); // 20 characters: whole
    expect("synthetic".length + "synthetic-b".length).toBe(labelBudget);
    expect(venueLabels(["synthetic:ACME", "synthetic-b:ACME", "synthetic-c:ACME"])).toEqual(["syn", "syn-b", "syn-c"]);
    expect(venueLabels(["coinbase:BTC-USD", "kraken:BTC/USD", "bitstamp:btcusd", "bitfinex:tBTCUSD"])).toEqual(["coi", "kra", "bits", "bitf"]);
    expect(venueLabels(["a_long_name:X", "another-one:X", "third:X"], 10)).toEqual(["a_lon_nam", "ano-one", "thi"]);
    // Two members of the same venue (not valid, but no endless loop): the whole names, shared.
    expect(venueLabels(["samevenuename:A", "samevenuename:B"], 5)).toEqual(["samevenuename", "samevenuename"]);
    // The tags use the labels; their tooltips keep the member ids.
    const three = ["synthetic:ACME", "synthetic-b:ACME", "synthetic-c:ACME"];
    expect(venueTags(0b101, three)).toEqual([
      { label: "syn", title: "synthetic:ACME", cls: "vt vt-0" },
      { label: "syn-c", title: "synthetic-c:ACME", cls: "vt vt-2" },
    ]);
    expect(memberTags(three).map((t) => t.label)).toEqual(["syn", "syn-b", "syn-c"]);
  });
});

describe("a consolidated instrument in the watchlist", () => {
  it("is listed like any other, beside its members, with its own venue", () => {
    const client = new FeedClient({ url: "ws://x/ws", newSocket: () => ({}) as never });
    const store = new Store(client, {});
    const info = (id: string, venue: string, members: string[] = []) => create(InstrumentInfoSchema, { id, venue, symbol: "ACME", members });
    const added = store.setInstruments([
      info("synthetic:ACME", "synthetic"),
      info("consolidated:ACME", "consolidated", ["synthetic:ACME", "synthetic-b:ACME"]),
      info("synthetic-b:ACME", "synthetic-b"),
    ]);
    expect(added).toEqual(["synthetic:ACME", "consolidated:ACME", "synthetic-b:ACME"]);
    expect(store.order).toEqual(["consolidated:ACME", "synthetic-b:ACME", "synthetic:ACME"]);
    expect(store.rows.get("consolidated:ACME")?.info?.venue).toBe("consolidated");
    expect(store.rows.get("consolidated:ACME")?.info?.members).toEqual(["synthetic:ACME", "synthetic-b:ACME"]);
  });
});
