package kraken

import (
	"hash/crc32"
	"strconv"

	"github.com/tickwire/tickwire/pkg/book"
)

// ChecksumDepth is how many levels per side Kraken's checksum covers, whatever the
// subscribed depth.
const ChecksumDepth = 10

// Precision is the number of decimals Kraken writes a pair's prices and sizes with; the
// checksum hashes those digits.
type Precision struct {
	Price, Size int32
}

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// rescale re-expresses mantissa m from scale from to scale to; ok is false if that is not exact
// or overflows.
func rescale(m int64, from, to int32) (int64, bool) {
	switch {
	case from == to:
		return m, true
	case from > to:
		d := pow10[from-to]
		return m / d, m%d == 0
	default:
		f := pow10[to-from]
		if m > (1<<63-1)/f {
			return 0, false
		}
		return m * f, true
	}
}

// Checksum computes Kraken's book checksum: CRC32 (IEEE) of, for the top 10 asks (lowest
// first) then the top 10 bids (highest first), each level's price and size written with the
// pair's precision, '.' removed and leading zeros dropped, concatenated. levels are mantissas
// at priceScale/sizeScale; prec is the precision Kraken writes. ok is false if a value cannot
// be written at prec exactly (then the book cannot match).
func Checksum(bids, asks []book.Level, priceScale, sizeScale int32, prec Precision) (sum uint32, ok bool) {
	var buf [2 * ChecksumDepth * 2 * 20]byte
	out := buf[:0]
	for _, side := range [][]book.Level{asks, bids} {
		if len(side) > ChecksumDepth {
			side = side[:ChecksumDepth]
		}
		for _, l := range side {
			p, ok1 := rescale(l.Price, priceScale, prec.Price)
			s, ok2 := rescale(l.Size, sizeScale, prec.Size)
			if !ok1 || !ok2 {
				return 0, false
			}
			out = strconv.AppendInt(out, p, 10)
			out = strconv.AppendInt(out, s, 10)
		}
	}
	return crc32.ChecksumIEEE(out), true
}
