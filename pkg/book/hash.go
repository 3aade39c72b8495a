package book

// The full-depth book hash (docs/PROTOCOL.md, "Full-depth hash"): the CRC32 checksum covers the
// top 10 levels a side; this covers every level a stream carries. It is a sum, modulo 2^64, of
// one hash per level, so it does not depend on order and a server or a client keeps it up to
// date in O(levels changed): subtract a level's hash when it changes or leaves, add the new one.
// The per-level hash is splitmix64's finalizer over the price salted by the side, then over the
// size, on the integer mantissas.

const (
	bidSalt uint64 = 0x9E3779B97F4A7C15
	askSalt uint64 = 0xC2B2AE3D27D4EB4F
)

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// LevelHash is the hash of one level: mix64(mix64(price + salt) ^ size), where salt is
// 0x9E3779B97F4A7C15 for a bid and 0xC2B2AE3D27D4EB4F for an ask, and price and size are the
// mantissas as unsigned 64-bit integers (arithmetic modulo 2^64).
func LevelHash(s Side, price, size int64) uint64 {
	salt := bidSalt
	if s == Ask {
		salt = askSalt
	}
	return mix64(mix64(uint64(price)+salt) ^ uint64(size))
}

// Hash is the full-depth hash of the given sides: the sum of LevelHash over every level,
// modulo 2^64 (0 for an empty book).
func Hash(bids, asks []Level) uint64 {
	var h uint64
	for _, l := range bids {
		h += LevelHash(Bid, l.Price, l.Size)
	}
	for _, l := range asks {
		h += LevelHash(Ask, l.Price, l.Size)
	}
	return h
}

// HashChange is what Hash changes by when one side's view goes from before to after (both
// best first, as Top gives them): add it to the old hash, modulo 2^64. It walks the two views
// as Diff does.
func HashChange(s Side, before, after []Level) uint64 {
	var d uint64
	i, j := 0, 0
	for {
		for i < len(before) && j < len(after) && before[i] == after[j] {
			i++
			j++
		}
		if i == len(before) && j == len(after) {
			return d
		}
		switch {
		case j == len(after) || (i < len(before) && better(s, before[i].Price, after[j].Price)):
			d -= LevelHash(s, before[i].Price, before[i].Size) // left the view
			i++
		case i == len(before) || better(s, after[j].Price, before[i].Price):
			d += LevelHash(s, after[j].Price, after[j].Size) // entered it
			j++
		default: // same price, another size
			d += LevelHash(s, after[j].Price, after[j].Size) - LevelHash(s, before[i].Price, before[i].Size)
			i++
			j++
		}
	}
}
