package client_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/tickwire/tickwire/pkg/client"
)

func TestFormatDecimal(t *testing.T) {
	tests := []struct {
		m     int64
		scale int32
		want  string
	}{
		{0, 0, "0"},
		{7, 0, "7"},
		{-7, 0, "-7"},
		{0, 2, "0.00"},
		{12345, 2, "123.45"},
		{-12345, 2, "-123.45"},
		{5, 3, "0.005"},
		{-5, 3, "-0.005"},
		{100, 2, "1.00"},
		{-100, 2, "-1.00"},
		{99, 2, "0.99"},
		{1, 18, "0.000000000000000001"},
		{math.MaxInt64, 0, "9223372036854775807"},
		{math.MaxInt64, 18, "9.223372036854775807"},
		{math.MinInt64, 0, "-9223372036854775808"},
		{math.MinInt64, 19, "-0.9223372036854775808"},
		{math.MinInt64, 20, "-0.09223372036854775808"},
		{7, -2, "700"},
		{-7, -2, "-700"},
		{0, -2, "0"},
		{12, 99, "12e-99"},
		{12, -99, "12e99"},
	}
	for _, tt := range tests {
		if got := client.FormatDecimal(tt.m, tt.scale); got != tt.want {
			t.Errorf("FormatDecimal(%d, %d) = %q, want %q", tt.m, tt.scale, got, tt.want)
		}
	}
}

func ExampleFormatDecimal() {
	// A price mantissa of 6512345 at price_scale 2, and a size at size_scale 8.
	fmt.Println(client.FormatDecimal(6512345, 2))
	fmt.Println(client.FormatDecimal(1500000, 8))
	fmt.Println(client.FormatDecimal(-42, 3))
	fmt.Println(client.FormatDecimal(42, 0))
	// Output:
	// 65123.45
	// 0.01500000
	// -0.042
	// 42
}
