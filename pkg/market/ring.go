package market

// ring keeps the last cap items pushed, oldest first.
type ring[T any] struct {
	items []T
	head  int // index of the oldest item once full
	cap   int
}

func newRing[T any](n int) ring[T] { return ring[T]{cap: n, items: make([]T, 0, min(n, 64))} }

func (r *ring[T]) len() int { return len(r.items) }

func (r *ring[T]) push(v T) {
	if len(r.items) < r.cap {
		r.items = append(r.items, v)
		return
	}
	r.items[r.head] = v
	r.head = (r.head + 1) % r.cap
}

// at returns the i-th oldest item.
func (r *ring[T]) at(i int) T { return r.items[(r.head+i)%len(r.items)] }

func (r *ring[T]) set(i int, v T) { r.items[(r.head+i)%len(r.items)] = v }
