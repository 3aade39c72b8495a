// Exact decimal formatting of the int64 mantissas that carry every price and size on the wire.
//
// A price is mantissa * 10^-scale (InstrumentInfo.price_scale). Turning it into a float and back
// would print 0.30000000000000004 or drop digits past 2^53, so everything here is string and
// bigint arithmetic. Floats appear only in toChartNumber, for chart coordinates.

// maxScale bounds the scales written out in full, as the Go SDK's FormatDecimal does; the protocol
// allows 0..18, and a broken server must not make us build a string of any length.
const maxScale = 64;

/** formatDecimal(12345n, 2) is "123.45", (-5n, 3) is "-0.005", (7n, 0) is "7", (7n, -2) is "700". */
export function formatDecimal(mantissa: bigint, scale: number): string {
  const neg = mantissa < 0n;
  const digits = (neg ? -mantissa : mantissa).toString();
  const sign = neg ? "-" : "";
  if (scale > maxScale || scale < -maxScale) return `${sign}${digits}e${-scale}`;
  if (scale <= 0) return sign + digits + (mantissa !== 0n ? "0".repeat(-scale) : "");
  if (digits.length <= scale) return `${sign}0.${"0".repeat(scale - digits.length)}${digits}`;
  return `${sign}${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
}

/** Like formatDecimal with an explicit "+" on positive values (changes). */
export function formatSigned(mantissa: bigint, scale: number): string {
  return (mantissa > 0n ? "+" : "") + formatDecimal(mantissa, scale);
}

/** Inserts thousands separators in the integer part of a decimal string from formatDecimal. */
export function groupThousands(s: string): string {
  const neg = s.startsWith("-");
  const body = neg ? s.slice(1) : s;
  const dot = body.indexOf(".");
  const int = dot < 0 ? body : body.slice(0, dot);
  const frac = dot < 0 ? "" : body.slice(dot);
  return (neg ? "-" : "") + int.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + frac;
}

/** a / b rounded half away from zero (b != 0). */
export function divRound(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a % b;
  if (r === 0n) return q;
  const twice = (r < 0n ? -r : r) * 2n;
  const babs = b < 0n ? -b : b;
  if (twice >= babs) return (a < 0n) !== (b < 0n) ? q - 1n : q + 1n;
  return q;
}

/**
 * The percent change from open to last, with two decimals: "+1.25%". The ratio is computed on
 * the mantissas (the scale cancels out), rounded half away from zero. Empty when open is 0.
 */
export function formatPercentChange(open: bigint, last: bigint): string {
  if (open === 0n) return "";
  const hundredths = divRound((last - open) * 10000n, open);
  return formatSigned(hundredths, 2) + "%";
}

const suffixes: [bigint, string][] = [
  [10n ** 12n, "T"],
  [10n ** 9n, "B"],
  [10n ** 6n, "M"],
  [10n ** 3n, "K"],
];

/**
 * A short form of a large amount (volumes): 1234567.8 -> "1.23M", with two decimals rounded half
 * away from zero; below 1000 the amount with at most `maxDecimals` decimals, truncated toward zero
 * (volume is a count of lots: it never rounds up to an amount that did not trade).
 */
export function formatCompact(mantissa: bigint, scale: number, maxDecimals = 2): string {
  const pow = 10n ** BigInt(Math.max(scale, 0));
  const neg = mantissa < 0n;
  const abs = neg ? -mantissa : mantissa;
  const sign = neg ? "-" : "";
  for (const [unit, suffix] of suffixes) {
    if (abs >= unit * pow) return sign + formatDecimal(divRound(abs * 100n, unit * pow), 2) + suffix;
  }
  const keep = Math.min(maxDecimals, Math.max(scale, 0));
  const cut = 10n ** BigInt(Math.max(scale, 0) - keep);
  return sign + formatDecimal(abs / cut, keep);
}

/** mantissa * 10^-scale as a float: for chart coordinates and bar widths only, never for display. */
export function toChartNumber(mantissa: bigint, scale: number): number {
  return Number(mantissa) / 10 ** scale;
}
