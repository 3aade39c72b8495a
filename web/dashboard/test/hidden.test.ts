import { describe, expect, it } from "vitest";
import { FeedClient } from "@tickwire/client";
import { Store } from "../src/app/store";
import { focusAfterHiding, hiddenKey, loadHidden, saveHidden } from "../src/views/watchlist";

describe("hidden instruments", () => {
  it("are kept in storage as a sorted JSON array, none when storage fails or holds something else", () => {
    const m = new Map<string, string>();
    const st = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
    expect(loadHidden(st).size).toBe(0);
    saveHidden(st, new Set(["synthetic:TIDE", "synthetic:ACME"]));
    expect(m.get(hiddenKey)).toBe('["synthetic:ACME","synthetic:TIDE"]');
    expect([...loadHidden(st)]).toEqual(["synthetic:ACME", "synthetic:TIDE"]);
    m.set(hiddenKey, '{"a":1}');
    expect(loadHidden(st).size).toBe(0);
    m.set(hiddenKey, '["a",2,null]');
    expect([...loadHidden(st)]).toEqual(["a"]);
    m.set(hiddenKey, "not json");
    expect(loadHidden(st).size).toBe(0);
    expect(loadHidden(undefined).size).toBe(0);
    expect(() => saveHidden({ setItem: () => { throw new Error("full"); } }, new Set(["a"]))).not.toThrow();
  });

  it("move the focus to the next row shown, else the previous, else nowhere", () => {
    expect(focusAfterHiding(["a", "b", "c"], "b")).toBe("c");
    expect(focusAfterHiding(["a", "b", "c"], "c")).toBe("b");
    expect(focusAfterHiding(["a"], "a")).toBeUndefined();
    expect(focusAfterHiding(["a", "b"], "z")).toBeUndefined();
  });

  it("Store.setHidden marks the list (and the focused instrument's header) dirty, only on a change", () => {
    const store = new Store(new FeedClient({ url: "ws://x/ws", newSocket: () => ({}) as never }));
    store.focus = "synthetic:ACME";
    store.listDirty = store.headerDirty = false;
    expect(store.setHidden("synthetic:ACME", true)).toBe(true);
    expect(store.hidden.has("synthetic:ACME")).toBe(true);
    expect(store.listDirty && store.headerDirty).toBe(true);
    store.listDirty = store.headerDirty = false;
    expect(store.setHidden("synthetic:ACME", true)).toBe(false);
    expect(store.listDirty || store.headerDirty).toBe(false);
    expect(store.setHidden("synthetic:BOLT", true)).toBe(true);
    expect(store.headerDirty).toBe(false);
    expect(store.setHidden("synthetic:ACME", false)).toBe(true);
    expect([...store.hidden]).toEqual(["synthetic:BOLT"]);
  });
});
