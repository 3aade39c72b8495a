// Package prototest has helpers for tests of hand-written protobuf encoders and decoders.
package prototest

import (
	"math"
	"math/rand/v2"
)

// EdgeInt64 returns a random int64 that is often an edge case for varint code: zero, a large
// negative (ten bytes as a plain varint), a value next to either extreme, or an ordinary one.
func EdgeInt64(r *rand.Rand) int64 {
	switch r.IntN(5) {
	case 0:
		return 0
	case 1:
		return -r.Int64N(1 << 40)
	case 2:
		return math.MaxInt64 - r.Int64N(10)
	case 3:
		return math.MinInt64 + r.Int64N(10)
	}
	return r.Int64N(1 << 30)
}
