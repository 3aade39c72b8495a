import { describe, expect, it } from "vitest";
import {
  divRound,
  formatCompact,
  formatDecimal,
  formatPercentChange,
  formatSigned,
  groupThousands,
  toChartNumber,
} from "../src/decimal.js";

describe("formatDecimal", () => {
  // The same cases as pkg/client's FormatDecimal tests, plus the int64 extremes.
  const cases: [bigint, number, string][] = [
    [12345n, 2, "123.45"],
    [-5n, 3, "-0.005"],
    [7n, 0, "7"],
    [0n, 0, "0"],
    [0n, 4, "0.0000"],
    [100n, 2, "1.00"],
    [1n, 1, "0.1"],
    [-12345n, 2, "-123.45"],
    [-100n, 2, "-1.00"],
    [7n, -2, "700"],
    [0n, -2, "0"],
    [9223372036854775807n, 0, "9223372036854775807"],
    [9223372036854775807n, 18, "9.223372036854775807"],
    [-9223372036854775808n, 18, "-9.223372036854775808"],
    [-9223372036854775808n, 0, "-9223372036854775808"],
    [1n, 18, "0.000000000000000001"],
    [123456789012345678n, 8, "1234567890.12345678"],
    [12n, 99, "12e-99"],
  ];
  for (const [m, scale, want] of cases) {
    it(`${m} at scale ${scale} is ${want}`, () => expect(formatDecimal(m, scale)).toBe(want));
  }
  it("never goes through a float: 2^53+1 keeps its last digit", () => {
    expect(formatDecimal(9007199254740993n, 2)).toBe("90071992547409.93");
  });
});

describe("derived figures", () => {
  it("signs changes", () => {
    expect(formatSigned(150n, 2)).toBe("+1.50");
    expect(formatSigned(-150n, 2)).toBe("-1.50");
    expect(formatSigned(0n, 2)).toBe("0.00");
  });
  it("groups thousands of the integer part only", () => {
    expect(groupThousands("1234567.891234")).toBe("1,234,567.891234");
    expect(groupThousands("-1234.5")).toBe("-1,234.5");
    expect(groupThousands("999")).toBe("999");
  });
  it("rounds half away from zero", () => {
    expect(divRound(5n, 2n)).toBe(3n);
    expect(divRound(-5n, 2n)).toBe(-3n);
    expect(divRound(4n, 3n)).toBe(1n);
    expect(divRound(-4n, 3n)).toBe(-1n);
    expect(divRound(6n, 3n)).toBe(2n);
  });
  it("computes percent change on mantissas", () => {
    expect(formatPercentChange(10000n, 10125n)).toBe("+1.25%");
    expect(formatPercentChange(10000n, 9875n)).toBe("-1.25%");
    expect(formatPercentChange(3n, 4n)).toBe("+33.33%");
    expect(formatPercentChange(3n, 2n)).toBe("-33.33%");
    expect(formatPercentChange(10000n, 10000n)).toBe("0.00%");
    expect(formatPercentChange(0n, 5n)).toBe("");
  });
  it("shortens volumes without inventing lots", () => {
    expect(formatCompact(1234567800n, 3)).toBe("1.23M");
    expect(formatCompact(999999n, 3)).toBe("999.99");
    expect(formatCompact(1000000n, 3)).toBe("1.00K");
    expect(formatCompact(42n, 0)).toBe("42");
    expect(formatCompact(9223372036854775807n, 0)).toBe("9223372.04T");
  });
  it("converts to float for charts only", () => {
    expect(toChartNumber(12345n, 2)).toBeCloseTo(123.45, 10);
  });
});
