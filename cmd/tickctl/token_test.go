package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func TestTokenMintsWhatTheFeedVerifies(t *testing.T) {
	key := filepath.Join(t.TempDir(), "keys", "hs256.key")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"token", "--key-file", key, "--new-key", "--sub", "alice",
		"--instruments", "coinbase:*,binance:BTCUSDT", "--channels", "quote", "--max-depth", "10", "--audience", "tickwire", "--ttl", "5m"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	v, err := auth.New(auth.Config{HS256KeyFile: key, Audience: "tickwire"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Entitlements
	if c.Subject != "alice" || !e.Instrument("coinbase:ETH-USD") || !e.Instrument("binance:BTCUSDT") || e.Instrument("binance:ETHUSDT") ||
		!e.Channel(pb.Channel_CHANNEL_QUOTE) || e.Channel(pb.Channel_CHANNEL_BOOK) || e.MaxDepth != 10 {
		t.Fatalf("claims %+v, entitlements %+v", c, e)
	}
	// --new-key leaves an existing key alone.
	before, _ := os.ReadFile(key)
	if code := run(context.Background(), []string{"token", "--key-file", key, "--new-key", "--sub", "bob"}, &out, &errb); code != exitOK {
		t.Fatal(errb.String())
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) {
		t.Fatal("--new-key replaced an existing key")
	}
	if code := run(context.Background(), []string{"token", "--key-file", key, "--sub", "x", "--instruments", "bad*"}, &out, &errb); code != exitConfig {
		t.Fatalf("a bad pattern: exit %d", code)
	}
}

func TestTokenTiers(t *testing.T) {
	key := filepath.Join(t.TempDir(), "hs256.key")
	v := func() *auth.Verifier {
		v, err := auth.New(auth.Config{HS256KeyFile: key}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		args     []string
		code     int
		interval time.Duration
		delay    time.Duration
		control  bool
	}{
		{args: []string{"--max-rate", "2", "--delay", "15m"}, interval: 500 * time.Millisecond, delay: 15 * time.Minute},
		{args: []string{"--replay-control"}, control: true},
		{args: []string{"--delay", "1500ms"}, code: exitConfig},
		{args: []string{"--delay", "25h"}, code: exitConfig},
		{args: []string{"--max-rate", "1000"}, code: exitConfig},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"token", "--key-file", key, "--new-key", "--sub", "s"}, tc.args...)
		if code := run(context.Background(), args, &out, &errb); code != tc.code {
			t.Errorf("%v: exit %d (%s), want %d", tc.args, code, errb.String(), tc.code)
			continue
		}
		if tc.code != exitOK {
			continue
		}
		c, err := v().Verify(strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatal(err)
		}
		e := c.Entitlements
		if e.Interval != tc.interval || e.Delay != tc.delay || e.ReplayControl != tc.control || e.Replay != tc.control {
			t.Errorf("%v: entitlements %+v", tc.args, e)
		}
	}
}
