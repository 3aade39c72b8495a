package client

import "time"

// Backoff returns the wait before reconnect attempt n under opts (defaults applied).
func Backoff(opts Options, n int) time.Duration {
	o, err := opts.withDefaults()
	if err != nil {
		panic(err)
	}
	return o.backoff(n)
}

// PendingLists returns how many ListInstruments calls wait for their answer: a test sees that a
// call made before Run is queued without sleeping.
func (c *Client) PendingLists() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lists)
}
