package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ErrNoTokenSource is returned by Refresh on a client without Options.TokenSource.
var ErrNoTokenSource = errors.New("client: no token source")

// token asks the token source for a token, or returns "" without one.
func (c *Client) token(ctx context.Context) (string, error) {
	if c.opts.TokenSource == nil {
		return "", nil
	}
	tok, err := c.opts.TokenSource(ctx)
	if err != nil {
		return "", fmt.Errorf("client: token source: %w", err)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", errors.New("client: token source returned an empty token")
	}
	return tok, nil
}

// Refresh asks the token source for a fresh token and sends it to the feed in band (an
// Authenticate command), extending the connection past the current token's exp without a
// reconnect. Call it before exp; the feed answers with an Authenticated message, or an Error
// (ERROR_CODE_UNAUTHENTICATED) when it refuses the token, which leaves the current one in force.
// Without a connection there is nothing to refresh: the next connect asks the source anyway.
// Safe from any goroutine.
func (c *Client) Refresh(ctx context.Context) error {
	if c.opts.TokenSource == nil {
		return ErrNoTokenSource
	}
	tok, err := c.token(ctx)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.sendLocked(&pb.ClientMessage{Id: c.nextID(), Command: &pb.ClientMessage_Authenticate{Authenticate: &pb.Authenticate{Token: tok}}})
	return nil
}

// refreshLead is how long before exp a token is refreshed: a fifth of its remaining life, at
// least minRefreshLead, so that a slow token source or a busy feed still makes it in time.
const minRefreshLead = 5 * time.Second

func refreshWait(now, exp time.Time) time.Duration {
	left := exp.Sub(now)
	return max(left-max(left/5, minRefreshLead), 0)
}

// tokenExpiry reads a JWT's exp without verifying it (the feed verifies; the client only needs
// to know when to refresh). ok is false for a token that is not a JWT or has no exp.
func tokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(c.Exp*1e9)), true
}

// startRefresh refreshes the connection's token in band (Refresh) before each token's exp,
// until the returned stop is called (it waits for the goroutine). A token source that returns
// a token expiring no later than the current one ends the refreshing: the feed closes the
// connection at exp (4005) and Run reconnects, asking the source again.
func (c *Client) startRefresh(ctx context.Context, token string) (stop func()) {
	if c.opts.TokenSource == nil || token == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		exp, ok := tokenExpiry(token)
		for ok {
			t := time.NewTimer(refreshWait(time.Now(), exp))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			tok, err := c.token(ctx)
			if err != nil {
				c.log.Warn("tickwire client: token refresh failed; the connection ends at the token's expiry", "err", err)
				return
			}
			next, nok := tokenExpiry(tok)
			if !nok || !next.After(exp) {
				c.log.Warn("tickwire client: the token source returned no later token; the connection ends at the token's expiry")
				return
			}
			c.wmu.Lock()
			c.sendLocked(&pb.ClientMessage{Id: c.nextID(), Command: &pb.ClientMessage_Authenticate{Authenticate: &pb.Authenticate{Token: tok}}})
			c.wmu.Unlock()
			exp = next
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
