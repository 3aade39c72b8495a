package main

import (
	"fmt"
	"net/http"

	"github.com/tickwire/tickwire/web/dashboard"
)

// dashboardFlags are what the feed tells the dashboard it serves (docs/OPERATIONS.md, "The
// dashboard's token").
type dashboardFlags struct {
	TokenURL string `name:"dashboard-token-url" placeholder:"URL" help:"Where the dashboard gets a fresh token before its token expires: GET with the browser's cookies, answering {\"token\":\"...\"} or the token as text (a path on this origin, or an absolute http(s) URL that allows this origin with CORS and credentials). Empty: the dashboard asks its user to paste a new token."`
}

func (f *dashboardFlags) validate() error {
	if err := dashboard.ValidateTokenURL(f.TokenURL); err != nil {
		return fmt.Errorf("--dashboard-token-url %q: %w", f.TokenURL, err)
	}
	return nil
}

// handler serves the dashboard (or, in a binary built without it, the page saying how to build it).
func (f *dashboardFlags) handler() http.Handler {
	return dashboard.New(dashboard.Config{TokenURL: f.TokenURL})
}
