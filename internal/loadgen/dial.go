package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// dialAll opens cfg.Clients clients, cfg.ConnectConcurrency at a time, until done or ctx ends.
// dial opens client i subscribed to the instruments (or channels) idx; a failure is counted in
// rep.Setup (the first error kept) and leaves clients[i] nil. It returns the clients and each
// one's layout, and records the connect time.
func dialAll[C any](ctx context.Context, cfg Config, rep *Report, dial func(i int, idx []int) (*C, error)) (clients []*C, layouts [][]int) {
	k := cfg.PerClient()
	clients = make([]*C, cfg.Clients)
	layouts = make([][]int, cfg.Clients)
	start := time.Now()
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(cfg.ConnectConcurrency, cfg.Clients) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Clients || ctx.Err() != nil {
					return
				}
				idx := layout(i, k, cfg.Instruments)
				c, err := dial(i, idx)
				mu.Lock()
				layouts[i] = idx
				if err != nil {
					rep.Setup.ConnectFailed++
					if rep.Setup.FirstError == "" {
						rep.Setup.FirstError = err.Error()
					}
				} else {
					clients[i] = c
					rep.Setup.Connected++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.Setup.ConnectSeconds = time.Since(start).Seconds()
	return clients, layouts
}

// closeAll closes every client (nil ones skipped), 256 at a time, and waits.
func closeAll[C any, P interface {
	*C
	Close()
}](clients []P) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		if c == nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			c.Close()
			<-sem
		}()
	}
	wg.Wait()
}
