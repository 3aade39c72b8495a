import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { intervals } from "../src/market/candles";
import { shortcuts } from "../src/views/help";

const keysOf = (labels: readonly string[]) => shortcuts(labels).flatMap((s) => s.keys);

describe("help shortcuts", () => {
  it("lists the interval keys from the chart's intervals", () => {
    const s = shortcuts(["1s", "1m", "5m", "1h"]).find((x) => x.what.startsWith("Chart interval"))!;
    expect(s.keys).toEqual(["1", "–", "4"]);
    expect(s.what).toBe("Chart interval: 1 1s, 2 1m, 3 5m, 4 1h");
    const six = shortcuts(["1s", "1m", "5m", "1h", "4h", "1D"]).find((x) => x.what.startsWith("Chart interval"))!;
    expect(six.keys).toEqual(["1", "–", "6"]);
    expect(six.what).toContain("5 4h, 6 1D");
  });
  it("lists help, hide and search keys", () => {
    const k = keysOf(intervals.map((i) => i.label));
    for (const key of ["?", "Esc", "/", "x", "Delete", "↑", "↓", "j", "k", "PgUp", "PgDn"]) expect(k).toContain(key);
  });
  it("lists every key main.ts's handler moves the watchlist with", () => {
    const main = readFileSync(new URL("../src/main.ts", import.meta.url), "utf8");
    const m = /const moves: Record<string, number> = \{([^}]*)\}/.exec(main);
    expect(m).not.toBeNull();
    const shown: Record<string, string> = { ArrowDown: "↓", ArrowUp: "↑", PageDown: "PgDn", PageUp: "PgUp" };
    const k = keysOf(intervals.map((i) => i.label));
    for (const [, name] of m![1]!.matchAll(/(\w+):/g)) expect(k).toContain(shown[name!] ?? name);
    // The interval keys the handler takes ("/^[1-N]$/") are the ones listed.
    const r = /\/\^\[1-(\d)\]\$\//.exec(main);
    if (r) expect(Number(r[1])).toBe(Math.min(9, intervals.length));
  });
});
