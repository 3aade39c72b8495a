import { describe, expect, it } from "vitest";
import { InstrumentStatus } from "@tickwire/client";
import { haltLabel } from "../src/views/watchlist";

describe("haltLabel", () => {
  it("badges an instrument that is not trading, and only that", () => {
    expect(haltLabel(InstrumentStatus.HALTED)).toBe("HALTED");
    expect(haltLabel(InstrumentStatus.CLOSED)).toBe("CLOSED");
    expect(haltLabel(InstrumentStatus.TRADING)).toBe("");
    expect(haltLabel(InstrumentStatus.UNSPECIFIED)).toBe("");
    expect(haltLabel(undefined)).toBe("");
  });
});
