package main

import (
	"strings"
	"testing"
)

func TestDashboardTokenURLFlag(t *testing.T) {
	// kong validates the whole config (dashboardFlags.validate too): a feed without keys needs --auth-disabled.
	cfg := parse(t, "--auth-disabled", "--dashboard-token-url", "/auth/tickwire-token")
	if cfg.Dashboard.TokenURL != "/auth/tickwire-token" {
		t.Fatalf("TokenURL %q", cfg.Dashboard.TokenURL)
	}
	if err := cfg.Dashboard.validate(); err != nil {
		t.Fatal(err)
	}
	if err := parse(t, "--auth-disabled").Dashboard.validate(); err != nil {
		t.Fatalf("no token URL: %v", err)
	}
	bad := dashboardFlags{TokenURL: "idp.example/token"}
	if err := bad.validate(); err == nil || !strings.Contains(err.Error(), "--dashboard-token-url") {
		t.Fatalf("a relative URL without /: %v", err)
	}
}
