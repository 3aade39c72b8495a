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

	"github.com/lxzan/gws"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
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
	testwait.For(t, 10*time.Second, "3 connects", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 3
	})
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

// authRecorder is a WebSocket server that keeps the tokens of the Authenticate commands it gets.
type authRecorder struct {
	gws.BuiltinEventHandler
	tokens chan string
}

func (r *authRecorder) OnMessage(_ *gws.Conn, m *gws.Message) {
	defer m.Close()
	var cm pb.ClientMessage
	if proto.Unmarshal(m.Bytes(), &cm) == nil && cm.GetAuthenticate() != nil {
		r.tokens <- cm.GetAuthenticate().GetToken()
	}
}

// A connected client refreshes its token in band before exp: it asks the source again and
// sends the new token as Authenticate, without reconnecting.
func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	rec := &authRecorder{tokens: make(chan string, 8)}
	up := gws.NewUpgrader(rec, &gws.ServerOption{SubProtocols: []string{wire.SubprotocolProto}})
	var headers atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers.Store(r.Header.Get("Authorization"))
		conn, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go conn.ReadLoop()
	}))
	defer srv.Close()
	secret := auth.NewSecret()
	var n atomic.Int32
	source := func(context.Context) (string, error) {
		ttl := time.Hour
		if n.Add(1) == 1 {
			ttl = 3 * time.Second // refreshed at once: less than the 5 s lead is left
		}
		return auth.MintHS256(secret, auth.MintOptions{Subject: "bot", TTL: ttl})
	}
	c, err := client.New(client.Options{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", TokenSource: source})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case tok := <-rec.tokens:
		if h, _ := headers.Load().(string); h == "" || h == "Bearer "+tok {
			t.Fatalf("refresh sent %q, the upgrade had %q: want a new token", tok, h)
		}
		if n.Load() != 2 {
			t.Fatalf("token source asked %d times, want 2", n.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh before exp")
	}
}
