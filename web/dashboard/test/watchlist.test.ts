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

import { compareValues, favouritesKey, loadFavourites, nextSort, saveFavourites } from "../src/views/watchlist";
import { tzLabel } from "../src/views/tape";

describe("watchlist sorting", () => {
  it("orders numbers and strings in the sort's direction, rows without a value last either way", () => {
    const vals = [3, undefined, 1, NaN, 2];
    const asc = [...vals].sort((a, b) => compareValues(a, b, 1));
    expect(asc.slice(0, 3)).toEqual([1, 2, 3]);
    expect(asc.slice(3).every((x) => x === undefined || Number.isNaN(x))).toBe(true);
    const desc = [...vals].sort((a, b) => compareValues(a, b, -1));
    expect(desc.slice(0, 3)).toEqual([3, 2, 1]);
    expect(desc.slice(3).every((x) => x === undefined || Number.isNaN(x))).toBe(true);
    expect(["b", "a", "C"].sort((a, b) => compareValues(a, b, 1))).toEqual(["a", "b", "C"]);
    expect(["b", "a", "C"].sort((a, b) => compareValues(a, b, -1))).toEqual(["C", "b", "a"]);
  });
  it("cycles a column: text A→Z first, figures highest first, then the other way, then the feed's order", () => {
    expect(nextSort(null, "sym")).toEqual({ key: "sym", dir: 1 });
    expect(nextSort({ key: "sym", dir: 1 }, "sym")).toEqual({ key: "sym", dir: -1 });
    expect(nextSort({ key: "sym", dir: -1 }, "sym")).toBeNull();
    expect(nextSort(null, "pct")).toEqual({ key: "pct", dir: -1 });
    expect(nextSort({ key: "pct", dir: -1 }, "pct")).toEqual({ key: "pct", dir: 1 });
    expect(nextSort({ key: "pct", dir: 1 }, "pct")).toBeNull();
    expect(nextSort({ key: "sym", dir: 1 }, "vol")).toEqual({ key: "vol", dir: -1 });
  });
});

describe("favourites in storage", () => {
  it("round-trips, and survives storage that is missing, disabled or holds something else", () => {
    const m = new Map<string, string>();
    const storage = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
    saveFavourites(storage, new Set(["synthetic:B", "synthetic:A"]));
    expect(m.get(favouritesKey)).toBe('["synthetic:A","synthetic:B"]');
    expect([...loadFavourites(storage)]).toEqual(["synthetic:A", "synthetic:B"]);
    m.set(favouritesKey, "{not json");
    expect(loadFavourites(storage).size).toBe(0);
    m.set(favouritesKey, '[1, "x", null]');
    expect([...loadFavourites(storage)]).toEqual(["x"]);
    expect(loadFavourites(undefined).size).toBe(0);
    const throwing = { getItem: () => { throw new Error("SecurityError"); }, setItem: () => { throw new Error("QuotaExceededError"); } };
    expect(loadFavourites(throwing).size).toBe(0);
    expect(() => saveFavourites(throwing, new Set(["a"]))).not.toThrow();
  });
});

describe("tzLabel", () => {
  it("names the offset from UTC (getTimezoneOffset is minutes to add for UTC)", () => {
    expect(tzLabel(0)).toBe("UTC");
    expect(tzLabel(-60)).toBe("UTC+1");
    expect(tzLabel(240)).toBe("UTC-4");
    expect(tzLabel(-330)).toBe("UTC+5:30");
    expect(tzLabel(210)).toBe("UTC-3:30");
    expect(tzLabel(-345)).toBe("UTC+5:45");
  });
});
