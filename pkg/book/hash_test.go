package book

import (
	"math/rand/v2"
	"testing"
)

// TestHashVectors pins the full-depth hash to the values in docs/PROTOCOL.md, which the other
// clients (the TypeScript one) check against too.
func TestHashVectors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		bids, asks []Level
		want       uint64
	}{
		{"empty", nil, nil, 0},
		{"one bid", []Level{{Price: 1000, Size: 20}}, nil, 0xfa3a0a8ae3d50598},
		{"docs book", []Level{{Price: 1000, Size: 20}, {Price: 999, Size: 11}}, []Level{{Price: 1001, Size: 5}}, 0x5ca4cac89f3810fd},
		// The same levels in another order: the hash is a sum.
		{"reordered", []Level{{Price: 999, Size: 11}, {Price: 1000, Size: 20}}, []Level{{Price: 1001, Size: 5}}, 0x5ca4cac89f3810fd},
		// A level on the other side is another level.
		{"bid as ask", nil, []Level{{Price: 1000, Size: 20}}, LevelHash(Ask, 1000, 20)},
		// A consolidated book's level: its venues count (docs/PROTOCOL.md section 5.4).
		{"consolidated", []Level{{Price: 1000, Size: 20, Venues: 1}, {Price: 999, Size: 11, Venues: 3}}, []Level{{Price: 1001, Size: 5, Venues: 2}}, 0x849208d9e2eca207},
	} {
		if got := Hash(tc.bids, tc.asks); got != tc.want {
			t.Errorf("%s: %#016x, want %#016x", tc.name, got, tc.want)
		}
	}
	if LevelHash(Ask, 1000, 20) == LevelHash(Bid, 1000, 20) {
		t.Fatal("the side does not change a level's hash")
	}
}

// TestHashChange: keeping the hash up to date from each side's Diff gives what hashing the
// whole book gives, over many random changes to views of several depths.
func TestHashChange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var b Book
	for _, depth := range []int{1, 10, 50} {
		b.Reset()
		h := uint64(0)
		for range 20000 {
			bidsBefore := append([]Level(nil), b.Top(Bid, depth)...)
			asksBefore := append([]Level(nil), b.Top(Ask, depth)...)
			for range 1 + r.IntN(3) {
				side, price := Side(r.IntN(2)), int64(900+r.IntN(200))
				if side == Bid {
					price -= 100
				} else {
					price += 100
				}
				size := int64(0)
				if r.IntN(3) > 0 {
					size = int64(1 + r.IntN(100))
				}
				// Venues too (0 on most books): a change of venues alone is a change.
				b.SetLevel(side, Level{Price: price, Size: size, Venues: uint32(r.IntN(3))})
			}
			h += HashChange(Bid, bidsBefore, Diff(nil, Bid, bidsBefore, b.Top(Bid, depth))) +
				HashChange(Ask, asksBefore, Diff(nil, Ask, asksBefore, b.Top(Ask, depth)))
			if want := Hash(b.Top(Bid, depth), b.Top(Ask, depth)); h != want {
				t.Fatalf("depth %d: kept %#x, whole book %#x", depth, h, want)
			}
		}
	}
}
