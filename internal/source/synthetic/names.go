package synthetic

import "math/rand/v2"

// wellKnown are the first tickers, so small configurations read well in demos.
var wellKnown = []string{"ACME", "BOLT", "CORA", "DUNE", "EMBR", "FIZZ", "GALA", "HALO", "IRIS", "JADE",
	"KITE", "LUMO", "MIRA", "NOVA", "ONYX", "PIKA", "QUIL", "RUNE", "SOLA", "TIDE"}

const (
	consonants = "BCDFGHJKLMNPRSTVWZ"
	vowels     = "AEIOU"
)

// namesSeed fixes the ticker sequence independently of Config.Seed, so that the same
// instrument count always yields the same instrument ids (a restarted ingest continues the
// same instruments whatever the seed).
const namesSeed = 0x7469636b

// Tickers returns n unique, pronounceable 3-5 letter tickers, deterministic: the first are
// wellKnown, the rest alternate consonants and vowels (CVC, CVCV, CVCVC).
func Tickers(n int) []string {
	out := make([]string, 0, n)
	seen := make(map[string]bool, n)
	for _, t := range wellKnown {
		if len(out) == n {
			return out
		}
		out = append(out, t)
		seen[t] = true
	}
	rng := rand.New(rand.NewPCG(namesSeed, 0))
	for len(out) < n {
		l := 3 + rng.IntN(3)
		if len(out) > 3000 {
			l = 4 + rng.IntN(2) // CVC has only 1620 combinations: go longer when many are asked
		}
		b := make([]byte, l)
		for i := range b {
			if i%2 == 0 {
				b[i] = consonants[rng.IntN(len(consonants))]
			} else {
				b[i] = vowels[rng.IntN(len(vowels))]
			}
		}
		if t := string(b); !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}
