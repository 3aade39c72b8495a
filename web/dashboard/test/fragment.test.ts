import { describe, expect, it } from "vitest";
import { fragmentFocus, nextFocus, splitFragment } from "../src/app/fragment";

describe("splitFragment", () => {
  it("takes the token first", () => {
    expect(splitFragment("#token=abc.def&synthetic%3AACME")).toEqual({ token: "abc.def", rest: "synthetic%3AACME" });
  });
  it("takes the token after the instrument, leaving no second #", () => {
    const f = splitFragment("#synthetic:ACME&token=abc.def");
    expect(f).toEqual({ token: "abc.def", rest: "synthetic:ACME" });
    expect(`#${f.rest}`).toBe("#synthetic:ACME");
  });
  it("takes the token between other parts", () => {
    expect(splitFragment("#a&token=t&b")).toEqual({ token: "t", rest: "a&b" });
  });
  it("token only, no fragment, no token", () => {
    expect(splitFragment("#token=t")).toEqual({ token: "t", rest: "" });
    expect(splitFragment("")).toEqual({ token: null, rest: "" });
    expect(splitFragment("#")).toEqual({ token: null, rest: "" });
    expect(splitFragment("#synthetic:ACME")).toEqual({ token: null, rest: "synthetic:ACME" });
  });
  it("decodes the token, an empty one is a token", () => {
    expect(splitFragment("#token=a%2Bb").token).toBe("a+b");
    expect(splitFragment("#token=&x").token).toBe("");
  });
  it("a part that only contains token= is not the token", () => {
    expect(splitFragment("#x_token=1")).toEqual({ token: null, rest: "x_token=1" });
  });
});

describe("fragmentFocus", () => {
  it("decodes the instrument wherever the token is", () => {
    expect(fragmentFocus("#synthetic%3AACME")).toBe("synthetic:ACME");
    expect(fragmentFocus("#synthetic:ACME&token=t")).toBe("synthetic:ACME");
    expect(fragmentFocus("#token=t&synthetic%3AACME")).toBe("synthetic:ACME");
    expect(fragmentFocus("#token=t")).toBe("");
    expect(fragmentFocus("")).toBe("");
  });
  it("a malformed escape is taken as written", () => {
    expect(fragmentFocus("#bad%zz")).toBe("bad%zz");
  });
});

describe("nextFocus", () => {
  const listed = (...ids: string[]) => (id: string) => ids.includes(id);
  const cases: { name: string; current: string | undefined; wanted: string; listed: string[]; first: string | undefined; want: { focus: string | undefined; wanted: string } }[] = [
    { name: "the wanted instrument in the first list", current: undefined, wanted: "s:ACME", listed: ["c:ACME", "s:ACME"], first: "c:ACME", want: { focus: "s:ACME", wanted: "" } },
    { name: "the wanted one not listed yet: the first in order meanwhile", current: undefined, wanted: "s:ACME", listed: ["c:ACME"], first: "c:ACME", want: { focus: "c:ACME", wanted: "s:ACME" } },
    // A replay session joined afresh: the first list lacked it, a later one brings it.
    { name: "listed later: it takes the focus from the first in order", current: "c:ACME", wanted: "s:ACME", listed: ["c:ACME", "s:ACME"], first: "c:ACME", want: { focus: "s:ACME", wanted: "" } },
    { name: "no fragment: the first in order", current: undefined, wanted: "", listed: ["c:ACME", "s:ACME"], first: "c:ACME", want: { focus: "c:ACME", wanted: "" } },
    { name: "no fragment: a focus stays when earlier ones are listed", current: "s:ACME", wanted: "", listed: ["a:X", "s:ACME"], first: "a:X", want: { focus: "s:ACME", wanted: "" } },
    { name: "picked by hand (wanted cleared): stays", current: "s:BOLT", wanted: "", listed: ["s:ACME", "s:BOLT"], first: "s:ACME", want: { focus: "s:BOLT", wanted: "" } },
    { name: "nothing listed", current: undefined, wanted: "s:ACME", listed: [], first: undefined, want: { focus: undefined, wanted: "s:ACME" } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(nextFocus(c.current, c.wanted, listed(...c.listed), c.first)).toEqual(c.want);
    });
  }
});
