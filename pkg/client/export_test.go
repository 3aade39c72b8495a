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
