// Package book is an L2 order book on scaled integers, shared by the feed server and its
// clients so that both hold byte-for-byte the same levels and compute the same checksum.
//
// Prices and sizes are int64 mantissas at the instrument's scale (see InstrumentInfo in proto/).
// A Book keeps bids highest first and asks lowest first; each price appears at most once per
// side and every stored size is positive. The zero value is an empty book ready to use.
// A Book is not safe for concurrent use.
package book

import "sort"

// Level is one price level.
type Level struct {
	Price int64
	Size  int64
	// Venues is set only on a consolidated book: bit i is the instrument's i-th member venue
	// quoting at this price (InstrumentInfo.members). 0 on every other book.
	Venues uint32
}

// Side selects the bid or the ask side.
type Side uint8

const (
	Bid Side = iota
	Ask
)

func (s Side) String() string {
	if s == Bid {
		return "bid"
	}
	return "ask"
}

// Book is an L2 order book.
type Book struct {
	bids []Level // highest price first
	asks []Level // lowest price first
}

// Bids returns the bid levels, best first. The slice is the book's own: do not modify it, and
// do not keep it across changes to the book.
func (b *Book) Bids() []Level { return b.bids }

// Asks returns the ask levels, best first, with the same rules as Bids.
func (b *Book) Asks() []Level { return b.asks }

// Levels returns one side's levels, best first.
func (b *Book) Levels(s Side) []Level {
	if s == Bid {
		return b.bids
	}
	return b.asks
}

// Len returns the number of levels on a side.
func (b *Book) Len(s Side) int { return len(b.Levels(s)) }

// Reset empties the book, keeping its memory.
func (b *Book) Reset() {
	b.bids = b.bids[:0]
	b.asks = b.asks[:0]
}

// index returns where price is, or would be inserted, on side s, and whether it is there.
func index(levels []Level, s Side, price int64) (int, bool) {
	var i int
	if s == Bid {
		i = sort.Search(len(levels), func(i int) bool { return levels[i].Price <= price })
	} else {
		i = sort.Search(len(levels), func(i int) bool { return levels[i].Price >= price })
	}
	return i, i < len(levels) && levels[i].Price == price
}

// Rank returns the position of price on side s (0 is best) and whether the level exists. For a
// missing price it is the position the level would take.
func (b *Book) Rank(s Side, price int64) (int, bool) {
	return index(b.Levels(s), s, price)
}

// Set sets the size at price on side s; size 0 removes the level. A negative size is treated
// as 0: callers validate sizes at the edge, and the book must never hold one.
func (b *Book) Set(s Side, price, size int64) {
	b.SetLevel(s, Level{Price: price, Size: size})
}

// SetLevel is Set with the level's venues: l replaces the level at l.Price (size 0 removes it).
func (b *Book) SetLevel(s Side, l Level) {
	levels := b.Levels(s)
	i, found := index(levels, s, l.Price)
	switch {
	case l.Size <= 0 && found:
		levels = append(levels[:i], levels[i+1:]...)
	case l.Size <= 0:
		return
	case found:
		levels[i] = l
	default:
		levels = append(levels, Level{})
		copy(levels[i+1:], levels[i:])
		levels[i] = l
	}
	if s == Bid {
		b.bids = levels
	} else {
		b.asks = levels
	}
}

// Apply sets every level in bids and asks (size 0 removes), with their venues.
func (b *Book) Apply(bids, asks []Level) {
	for _, l := range bids {
		b.SetLevel(Bid, l)
	}
	for _, l := range asks {
		b.SetLevel(Ask, l)
	}
}

// Replace makes the book hold exactly the given levels (in any order; size 0 ignored).
func (b *Book) Replace(bids, asks []Level) {
	b.Reset()
	b.Apply(bids, asks)
}

// Truncate keeps at most depth levels per side.
func (b *Book) Truncate(depth int) {
	if depth < 0 {
		depth = 0
	}
	if len(b.bids) > depth {
		b.bids = b.bids[:depth]
	}
	if len(b.asks) > depth {
		b.asks = b.asks[:depth]
	}
}

// Top returns at most n levels of side s, best first, with the same aliasing rules as Bids.
func (b *Book) Top(s Side, n int) []Level {
	levels := b.Levels(s)
	if n < len(levels) {
		return levels[:n]
	}
	return levels
}

// Best returns the best level of side s, or false if the side is empty.
func (b *Book) Best(s Side) (Level, bool) {
	levels := b.Levels(s)
	if len(levels) == 0 {
		return Level{}, false
	}
	return levels[0], true
}

// Crossed reports whether the best bid is at or above the best ask.
func (b *Book) Crossed() bool {
	bid, okb := b.Best(Bid)
	ask, oka := b.Best(Ask)
	return okb && oka && bid.Price >= ask.Price
}

// Clone returns a deep copy.
func (b *Book) Clone() *Book {
	return &Book{bids: append([]Level(nil), b.bids...), asks: append([]Level(nil), b.asks...)}
}

// Equal reports whether two books hold the same levels.
func (b *Book) Equal(o *Book) bool {
	return equalLevels(b.bids, o.bids) && equalLevels(b.asks, o.asks)
}

func equalLevels(a, b []Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Diff appends to dst the level changes that turn view before into view after, both one side's
// levels best first (as Top returns them): every level of after that is new or has a new size,
// (or new venues), then every price of before that is gone from after, with size 0. Applying the result to a book
// whose top of that side equals before and truncating it to len(after)'s depth gives after.
func Diff(dst []Level, s Side, before, after []Level) []Level {
	i, j := 0, 0
	for {
		// Most levels of a view are unchanged: skip equal ones without ranking them.
		for i < len(before) && j < len(after) && before[i] == after[j] {
			i++
			j++
		}
		if i == len(before) && j == len(after) {
			return dst
		}
		switch {
		case j == len(after) || (i < len(before) && better(s, before[i].Price, after[j].Price)):
			dst = append(dst, Level{Price: before[i].Price})
			i++
		case i == len(before) || better(s, after[j].Price, before[i].Price):
			dst = append(dst, after[j])
			j++
		default: // same price
			if before[i] != after[j] { // a new size or new venues
				dst = append(dst, after[j])
			}
			i++
			j++
		}
	}
}

// better reports whether price a ranks before price b on side s.
func better(s Side, a, b int64) bool {
	if s == Bid {
		return a > b
	}
	return a < b
}
