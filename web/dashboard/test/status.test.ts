import { describe, expect, it } from "vitest";
import { detailsKey, loadDetails, saveDetails } from "../src/views/status";

describe("the details toggle's storage", () => {
  it("is off by default, kept on, removed off, and off when storage fails", () => {
    const m = new Map<string, string>();
    const st = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), removeItem: (k: string) => void m.delete(k) };
    expect(loadDetails(st)).toBe(false);
    saveDetails(st, true);
    expect(m.get(detailsKey)).toBe("on");
    expect(loadDetails(st)).toBe(true);
    saveDetails(st, false);
    expect(m.has(detailsKey)).toBe(false);
    expect(loadDetails(undefined)).toBe(false);
    expect(loadDetails({ getItem: () => { throw new Error("denied"); } })).toBe(false);
    expect(() => saveDetails({ setItem: () => { throw new Error("full"); }, removeItem: () => {} }, true)).not.toThrow();
  });
});
