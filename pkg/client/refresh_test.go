package client

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// expiring returns a token tokenExpiry reads as expiring at exp (unsigned: the client does not
// verify tokens, the feed does).
func expiring(exp time.Time) string {
	claims := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"bot","exp":%d}`, exp.Unix()))
	return "eyJhbGciOiJIUzI1NiJ9." + claims + ".sig"
}

// TestRefreshSchedule: the token is refreshed a fifth of its remaining life before exp (at least
// minRefreshLead before), at once when less than that is left, and no more once the source
// returns no later token. In a synctest bubble (the schedule
// is timers: fake time, exact to the nanosecond, no connection needed: without one the refresh
// only asks the source).
func TestRefreshSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var asked []time.Duration                     // since start, per call of the source
		exps := []time.Duration{time.Hour, time.Hour} // the tokens the source returns expire at start + these
		source := func(context.Context) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, time.Since(start))
			exp := exps[min(len(asked), len(exps))-1]
			return expiring(start.Add(exp)), nil
		}
		calls := func() string { mu.Lock(); defer mu.Unlock(); return fmt.Sprint(asked) }
		c, err := New(Options{URL: "ws://127.0.0.1:1/ws", TokenSource: source})
		if err != nil {
			t.Fatal(err)
		}
		// The connection's token expires in 3 s, less than minRefreshLead: refreshed at once.
		stop := c.startRefresh(context.Background(), expiring(start.Add(3*time.Second)))
		defer stop()
		synctest.Wait()
		if got := calls(); got != "[0s]" {
			t.Fatalf("token source asked at %s, want [0s]", got)
		}
		// The new token expires in 60 min: refreshed 12 min before, at 48 min; not a nanosecond
		// earlier.
		time.Sleep(48*time.Minute - time.Nanosecond)
		synctest.Wait()
		if got := calls(); got != "[0s]" {
			t.Fatalf("token source asked at %s, want [0s] until 48m0s", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if got := calls(); got != "[0s 48m0s]" {
			t.Fatalf("token source asked at %s, want [0s 48m0s]", got)
		}
		// That token expires no later than the one in force: refreshing ends (the feed closes
		// the connection at exp and Run reconnects, asking the source again).
		time.Sleep(10 * time.Hour)
		synctest.Wait()
		if got := calls(); got != "[0s 48m0s]" {
			t.Fatalf("token source asked at %s after it returned no later token", got)
		}
	})
}
