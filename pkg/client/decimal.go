package client

import "strconv"

// maxScale bounds the scales written out in full; the protocol allows 0..18.
const maxScale = 64

// FormatDecimal returns mantissa * 10^-scale as an exact decimal string, the way every price and
// size travels in Tickwire: FormatDecimal(12345, 2) is "123.45", FormatDecimal(-5, 3) is
// "-0.005", FormatDecimal(7, 0) is "7". A negative scale appends zeros: FormatDecimal(7, -2) is
// "700". No float is involved, so no digit is ever lost or invented. A scale beyond ±maxScale
// (far outside the protocol's 0..18) is written in exponent form, "12e-99", rather than as a
// string of any length a broken server asks for.
func FormatDecimal(mantissa int64, scale int32) string {
	return string(AppendDecimal(nil, mantissa, scale))
}

// AppendDecimal appends FormatDecimal(mantissa, scale) to dst, for printing without allocating.
func AppendDecimal(dst []byte, mantissa int64, scale int32) []byte {
	neg := mantissa < 0
	u := uint64(mantissa)
	if neg {
		u = -u // two's complement: also right for math.MinInt64
		dst = append(dst, '-')
	}
	if scale > maxScale || scale < -maxScale {
		dst = strconv.AppendUint(dst, u, 10)
		dst = append(dst, 'e')
		return strconv.AppendInt(dst, -int64(scale), 10)
	}
	if scale <= 0 {
		dst = strconv.AppendUint(dst, u, 10)
		if u != 0 {
			for range -int64(scale) {
				dst = append(dst, '0')
			}
		}
		return dst
	}
	var buf [20]byte
	digits := strconv.AppendUint(buf[:0], u, 10)
	n := int(scale)
	if len(digits) <= n {
		dst = append(dst, '0', '.')
		for range n - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-n]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-n:]...)
}
