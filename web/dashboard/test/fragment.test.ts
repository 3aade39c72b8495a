import { describe, expect, it } from "vitest";
import { fragmentFocus, splitFragment } from "../src/app/fragment";

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
