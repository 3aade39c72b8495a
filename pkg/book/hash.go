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

// LevelHashOf is the hash of l as Hash counts it: LevelHash(s, price, size) when l.Venues is 0,
// and mix64(LevelHash(s, price, size) ^ venues) on a consolidated book's level.
func LevelHashOf(s Side, l Level) uint64 {
	h := LevelHash(s, l.Price, l.Size)
	if l.Venues != 0 {
		h = mix64(h ^ uint64(l.Venues))
	}
	return h
}

// Hash is the full-depth hash of the given sides: the sum of LevelHashOf over every level,
// modulo 2^64 (0 for an empty book).
func Hash(bids, asks []Level) uint64 {
	var h uint64
	for _, l := range bids {
		h += LevelHashOf(Bid, l)
	}
	for _, l := range asks {
		h += LevelHashOf(Ask, l)
	}
	return h
}

// HashChange is what Hash changes by when one side's view goes from before (best first, as Top
// gives it) by changes, the view's Diff from before to after: add it to the old hash, modulo
// 2^64. It costs O(changes x log(levels)): each changed level's old size is found in before.
func HashChange(s Side, before, changes []Level) uint64 {
	var d uint64
	for _, c := range changes {
		if i, ok := index(before, s, c.Price); ok {
			d -= LevelHashOf(s, before[i])
		}
		if c.Size > 0 {
			d += LevelHashOf(s, c)
		}
	}
	return d
}
