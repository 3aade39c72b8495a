package book

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

func TestSetKeepsOrder(t *testing.T) {
	tests := []struct {
		name     string
		side     Side
		ops      []Level
		want     []Level
		wantBest int64
	}{
		{"bids descending", Bid, []Level{{100, 1, 0}, {102, 2, 0}, {101, 3, 0}}, []Level{{102, 2, 0}, {101, 3, 0}, {100, 1, 0}}, 102},
		{"asks ascending", Ask, []Level{{100, 1, 0}, {102, 2, 0}, {101, 3, 0}}, []Level{{100, 1, 0}, {101, 3, 0}, {102, 2, 0}}, 100},
		{"update in place", Bid, []Level{{100, 1, 0}, {100, 9, 0}}, []Level{{100, 9, 0}}, 100},
		{"remove", Ask, []Level{{100, 1, 0}, {101, 1, 0}, {100, 0, 0}}, []Level{{101, 1, 0}}, 101},
		{"remove missing is a no-op", Ask, []Level{{100, 1, 0}, {99, 0, 0}}, []Level{{100, 1, 0}}, 100},
		{"negative size removes", Bid, []Level{{100, 1, 0}, {100, -5, 0}}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Book
			for _, l := range tt.ops {
				b.Set(tt.side, l.Price, l.Size)
			}
			if got := b.Levels(tt.side); !slices.Equal(got, tt.want) {
				t.Fatalf("levels = %v, want %v", got, tt.want)
			}
			best, ok := b.Best(tt.side)
			if ok != (tt.wantBest != 0) || best.Price != tt.wantBest {
				t.Fatalf("best = %v %v, want %d", best, ok, tt.wantBest)
			}
		})
	}
}

func TestCrossed(t *testing.T) {
	var b Book
	b.Apply([]Level{{100, 1, 0}}, []Level{{101, 1, 0}})
	if b.Crossed() {
		t.Fatal("100/101 reported crossed")
	}
	b.Set(Bid, 101, 1)
	if !b.Crossed() {
		t.Fatal("101/101 not reported crossed")
	}
}

// TestDiffRebuildsView checks Diff's contract on random books: applying Diff(before, after) to
// a copy of the before view and truncating gives the after view exactly.
func TestDiffRebuildsView(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, depth := range []int{1, 5, 10, 50} {
		var full Book
		for i := range 2000 {
			var client Book
			client.Replace(full.Top(Bid, depth), full.Top(Ask, depth))
			beforeB := slices.Clone(full.Top(Bid, depth))
			beforeA := slices.Clone(full.Top(Ask, depth))
			for range 1 + rng.IntN(4) {
				side := Side(rng.IntN(2))
				price := int64(1000 + rng.IntN(40))
				if side == Ask {
					price += 40
				}
				size := int64(rng.IntN(3)) * int64(1+rng.IntN(100))
				full.Set(side, price, size)
			}
			client.Apply(Diff(nil, Bid, beforeB, full.Top(Bid, depth)), Diff(nil, Ask, beforeA, full.Top(Ask, depth)))
			client.Truncate(depth)
			if !slices.Equal(client.Bids(), full.Top(Bid, depth)) || !slices.Equal(client.Asks(), full.Top(Ask, depth)) {
				t.Fatalf("depth %d step %d: client %v/%v, server %v/%v", depth, i, client.Bids(), client.Asks(), full.Top(Bid, depth), full.Top(Ask, depth))
			}
		}
	}
}

// TestDiffSeesVenues: on a consolidated book a level whose venues change at the same size is a
// change, sent with its new venues.
func TestDiffSeesVenues(t *testing.T) {
	before := []Level{{Price: 3, Size: 1, Venues: 1}, {Price: 2, Size: 1, Venues: 2}}
	after := []Level{{Price: 3, Size: 1, Venues: 3}, {Price: 2, Size: 1, Venues: 2}}
	d := Diff(nil, Bid, before, after)
	if len(d) != 1 || d[0] != after[0] {
		t.Fatalf("Diff = %v, want [%v]", d, after[0])
	}
	var b Book
	b.Apply(before, nil)
	b.Apply(d, nil)
	if !equalLevels(b.Bids(), after) {
		t.Fatalf("applying the diff gave %v, want %v", b.Bids(), after)
	}
}

func TestDiffEmptyWhenUnchanged(t *testing.T) {
	v := []Level{{3, 1, 0}, {2, 1, 0}}
	if d := Diff(nil, Bid, v, v); len(d) != 0 {
		t.Fatalf("Diff of equal views = %v", d)
	}
}

type vectorFile struct {
	Vectors []struct {
		Name     string     `json:"name"`
		Bids     [][]string `json:"bids"`
		Asks     [][]string `json:"asks"`
		Checksum uint32     `json:"checksum"`
	} `json:"vectors"`
}

// parseLevels reads [price, size] or, on a consolidated book, [price, size, venues].
func parseLevels(t *testing.T, in [][]string) []Level {
	t.Helper()
	var out []Level
	for _, l := range in {
		if len(l) != 2 && len(l) != 3 {
			t.Fatalf("level %q: want [price, size] or [price, size, venues]", l)
		}
		p, err := strconv.ParseInt(l[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		s, err := strconv.ParseInt(l[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		var v uint64
		if len(l) == 3 {
			if v, err = strconv.ParseUint(l[2], 10, 32); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, Level{Price: p, Size: s, Venues: uint32(v)})
	}
	return out
}

// TestChecksumVectors checks the vectors in testdata, computed outside Go; docs/PROTOCOL.md and
// the dashboard use the same file.
func TestChecksumVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/checksum_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) < 5 {
		t.Fatalf("only %d vectors", len(vf.Vectors))
	}
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			bids, asks := parseLevels(t, v.Bids), parseLevels(t, v.Asks)
			if got := Checksum(bids, asks); got != v.Checksum {
				t.Fatalf("Checksum = %d (%08x), want %d", got, got, v.Checksum)
			}
			var b Book
			b.Replace(bids, asks)
			if got := b.Checksum(); got != v.Checksum {
				t.Fatalf("Book.Checksum = %08x, want %08x", got, v.Checksum)
			}
		})
	}
}

func TestChecksumSeesEveryField(t *testing.T) {
	base := Checksum([]Level{{100, 1, 0}}, []Level{{101, 1, 0}})
	for name, sum := range map[string]uint32{
		"bid price":  Checksum([]Level{{99, 1, 0}}, []Level{{101, 1, 0}}),
		"bid size":   Checksum([]Level{{100, 2, 0}}, []Level{{101, 1, 0}}),
		"ask price":  Checksum([]Level{{100, 1, 0}}, []Level{{102, 1, 0}}),
		"ask size":   Checksum([]Level{{100, 1, 0}}, []Level{{101, 2, 0}}),
		"side swap":  Checksum(nil, []Level{{100, 1, 0}, {101, 1, 0}}),
		"bid venues": Checksum([]Level{{100, 1, 1}}, []Level{{101, 1, 0}}),
		"ask venues": Checksum([]Level{{100, 1, 0}}, []Level{{101, 1, 4}}),
	} {
		if sum == base {
			t.Errorf("changing %s does not change the checksum", name)
		}
	}
}

func BenchmarkChecksum(b *testing.B) {
	var bk Book
	for i := range 50 {
		bk.Set(Bid, int64(10000-i), int64(100+i))
		bk.Set(Ask, int64(10001+i), int64(100+i))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = bk.Checksum()
	}
}

func BenchmarkSet(b *testing.B) {
	var bk Book
	for i := range 50 {
		bk.Set(Bid, int64(10000-i), int64(100+i))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		bk.Set(Bid, int64(9950+rng.IntN(50)), int64(rng.IntN(3)*100))
	}
}
