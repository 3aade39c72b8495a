package normalize

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

func TestParseMantissa(t *testing.T) {
	tests := []struct {
		in    string
		scale int32
		want  int64
		err   error
	}{
		{"0", 0, 0, nil},
		{"0.1", 0, 0, ErrInexact},
		{"0.1", 1, 1, nil},
		{"0.10", 1, 1, nil},
		{"1.500", 1, 15, nil},
		{"123.45", 2, 12345, nil},
		{"123.45", 4, 1234500, nil},
		{"123.456", 2, 0, ErrInexact},
		{"-0.5", 1, -5, nil},
		{"-12.34", 2, -1234, nil},
		{"1e-3", 3, 1, nil},
		{"1e-3", 2, 0, ErrInexact},
		{"1E3", 0, 1000, nil},
		{"9223372036854775807", 0, 9223372036854775807, nil},
		{"9223372036854775808", 0, 0, ErrOverflow},
		{"-9223372036854775808", 0, -9223372036854775808, nil},
		{"-9223372036854775809", 0, 0, ErrOverflow},
		{"92233720368547758.07", 2, 9223372036854775807, nil},
		{"92233720368547758.08", 2, 0, ErrOverflow},
		{"1", 18, 1000000000000000000, nil},
		{"10", 18, 0, ErrOverflow},
		{"1e100", 0, 0, ErrOverflow},
		{"1e-9000", 18, 0, ErrInexact},
		{"0e-9000", 2, 0, nil},
		{"1e-1000000", 2, 0, ErrSyntax},
		{"1e9000", 18, 0, ErrOverflow},
		{"", 2, 0, ErrSyntax},
		{" 1", 2, 0, ErrSyntax},
		{"1 ", 2, 0, ErrSyntax},
		{"1.2.3", 2, 0, ErrSyntax},
		{"abc", 2, 0, ErrSyntax},
		{"NaN", 2, 0, ErrSyntax},
		{"1", -1, 0, ErrScale},
		{"1", 19, 0, ErrScale},
	}
	for _, tt := range tests {
		got, err := ParseMantissa(tt.in, tt.scale)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("ParseMantissa(%q, %d) err = %v, want %v", tt.in, tt.scale, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseMantissa(%q, %d) = %d, want %d", tt.in, tt.scale, got, tt.want)
		}
	}
}

func TestToMantissaRoundTrip(t *testing.T) {
	for _, m := range []int64{0, 1, -1, 5, 12345, -987654321, 1<<63 - 1, -1 << 63} {
		for scale := int32(0); scale <= MaxScale; scale += 3 {
			s := FormatMantissa(m, scale)
			got, err := ParseMantissa(s, scale)
			if err != nil || got != m {
				t.Errorf("round trip %d at %d via %q = %d, %v", m, scale, s, got, err)
			}
		}
	}
}

func FuzzParseMantissa(f *testing.F) {
	for _, s := range []string{"0", "0.1", "123.45", "-1e-3", "9223372036854775807", "1e999", ""} {
		f.Add(s, int32(2))
	}
	f.Fuzz(func(t *testing.T, s string, scale int32) {
		scale = ((scale % (MaxScale + 1)) + MaxScale + 1) % (MaxScale + 1)
		m, err := ParseMantissa(s, scale)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrInexact) && !errors.Is(err, ErrOverflow) {
				t.Fatalf("ParseMantissa(%q, %d): unexpected error %v", s, scale, err)
			}
			return
		}
		// Exact: the mantissa at scale is the same number.
		d, _ := decimal.NewFromString(s)
		if !decimal.New(m, -scale).Equal(d) {
			t.Fatalf("ParseMantissa(%q, %d) = %d: not equal", s, scale, m)
		}
	})
}
