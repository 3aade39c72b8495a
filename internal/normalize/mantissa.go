package normalize

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/shopspring/decimal"
)

// MaxScale is the largest price or size scale (InstrumentInfo: 0..18).
const MaxScale = 18

var (
	bigMaxInt64 = big.NewInt(1<<63 - 1)
	bigMinInt64 = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 63))
)

// ToMantissa returns d as an integer mantissa m at scale, so that d == m * 10^-scale exactly.
// It never rounds: a value with more significant decimal places than scale returns
// ErrInexact, and a mantissa outside int64 returns ErrOverflow. Trailing zeros do not count
// ("1.500" at scale 1 is 15).
func ToMantissa(d decimal.Decimal, scale int32) (int64, error) {
	if scale < 0 || scale > MaxScale {
		return 0, fmt.Errorf("%w: %d", ErrScale, scale)
	}
	// d = coef * 10^exp; mantissa = coef * 10^(exp+scale).
	coef := d.Coefficient()
	if coef.Sign() == 0 {
		return 0, nil
	}
	shift := int64(d.Exponent()) + int64(scale)
	m := new(big.Int)
	switch {
	case shift >= 0:
		if shift > 40 {
			// 10^41 exceeds int64 by far whatever coef is (coef != 0).
			return 0, fmt.Errorf("%w: %s at scale %d", ErrOverflow, d, scale)
		}
		m.Mul(coef, new(big.Int).Exp(big.NewInt(10), big.NewInt(shift), nil))
	case -shift > int64(len(coef.String())):
		// 10^-shift has more digits than coef: it cannot divide a non-zero coef.
		return 0, fmt.Errorf("%w: %s at scale %d", ErrInexact, d, scale)
	default:
		div := new(big.Int).Exp(big.NewInt(10), big.NewInt(-shift), nil)
		var rem big.Int
		m.QuoRem(coef, div, &rem)
		if rem.Sign() != 0 {
			return 0, fmt.Errorf("%w: %s at scale %d", ErrInexact, d, scale)
		}
	}
	if m.Cmp(bigMaxInt64) > 0 || m.Cmp(bigMinInt64) < 0 {
		return 0, fmt.Errorf("%w: %s at scale %d", ErrOverflow, d, scale)
	}
	return m.Int64(), nil
}

// ParseMantissa parses a decimal string (as venues send them: "123.45", "-0.5", "1e-3") and
// returns its mantissa at scale, with ToMantissa's rules. Surrounding whitespace or an empty
// string is ErrSyntax.
func ParseMantissa(s string, scale int32) (int64, error) {
	if s == "" || strings.TrimSpace(s) != s || len(s) > 128 {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrSyntax, s, err)
	}
	m, err := ToMantissa(d, scale)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return m, nil
}

// FormatMantissa renders a mantissa at scale as a decimal string (for logs and display).
func FormatMantissa(m int64, scale int32) string {
	return decimal.New(m, -scale).StringFixed(scale)
}

// Decimals returns the number of decimal places a decimal string is written with ("27120.00000":
// 5, "985": 0, "1e-3": 3). Trailing zeros count: they are the venue's stated precision. It is how
// sources infer an instrument's scale when the venue publishes none.
func Decimals(s string) (int32, error) {
	if s == "" || len(s) > 128 {
		return 0, fmt.Errorf("%w: %q", ErrSyntax, s)
	}
	if strings.ContainsAny(s, "eE") {
		d, err := decimal.NewFromString(s)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: %v", ErrSyntax, s, err)
		}
		return max(-d.Exponent(), 0), nil
	}
	_, frac, ok := strings.Cut(s, ".")
	if !ok {
		return 0, nil
	}
	return int32(len(frac)), nil
}
