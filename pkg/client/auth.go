package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
