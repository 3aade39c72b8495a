package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/pkg/client"
)

// The token source is asked before every connect, and its token goes in the Authorization
// header of the upgrade, never in the URL.
func TestTokenSourceOnEveryConnect(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if strings.Contains(r.URL.RawQuery, "tok") {
			t.Errorf("token in the URL: %s", r.URL)
		}
		http.Error(w, "not ready", http.StatusServiceUnavailable) // retryable: the client reconnects
	}))
	defer srv.Close()
	var n atomic.Int32
	c, err := client.New(client.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws",
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		TokenSource: func(context.Context) (string, error) { return "tok" + strconv.Itoa(int(n.Add(1))), nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("fewer than 3 connects")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, h := range seen[:3] {
		if want := "Bearer tok" + strconv.Itoa(i+1); h != want {
			t.Fatalf("connect %d sent %q, want %q (a fresh token each time)", i+1, h, want)
		}
	}
	if err := (&client.Client{}).Refresh(context.Background()); err == nil {
		t.Fatal("Refresh without a token source succeeded")
	}
}
