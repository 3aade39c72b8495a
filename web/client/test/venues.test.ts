import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { InstrumentInfoSchema } from "../src/gen/tickwire/v1/market_pb.js";
import { isConsolidated, levelMembers } from "../src/venues.js";

describe("consolidated venues", () => {
  const members = ["synthetic:ACME", "synthetic-b:ACME"];
  it("names a level's members by bit, lowest first", () => {
    expect(levelMembers(0, members)).toEqual([]);
    expect(levelMembers(1, members)).toEqual([{ bit: 0, member: "synthetic:ACME" }]);
    expect(levelMembers(3, members)).toEqual([
      { bit: 0, member: "synthetic:ACME" },
      { bit: 1, member: "synthetic-b:ACME" },
    ]);
  });
  it("keeps bits past the members, without a member", () => {
    expect(levelMembers(0b110, members)).toEqual([
      { bit: 1, member: "synthetic-b:ACME" },
      { bit: 2, member: undefined },
    ]);
    expect(levelMembers(0x80000000, [])).toEqual([{ bit: 31, member: undefined }]);
    expect(levelMembers(-1, members).length).toBe(32); // a uint32 read as a signed number
  });
  it("tells a consolidated instrument by its members", () => {
    expect(isConsolidated(undefined)).toBe(false);
    expect(isConsolidated(create(InstrumentInfoSchema, { id: "synthetic:ACME" }))).toBe(false);
    expect(isConsolidated(create(InstrumentInfoSchema, { id: "consolidated:ACME", members }))).toBe(true);
  });
});
