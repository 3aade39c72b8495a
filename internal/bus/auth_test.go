package bus_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// rawConn is a plain nats.go connection as user (no user: anonymous) that records the
// permission violations the server reports.
type rawConn struct {
	*nats.Conn
	mu         sync.Mutex
	violations []string // guarded by mu
}

func dialRaw(t *testing.T, s *bus.Embedded, user string) (*rawConn, error) {
	t.Helper()
	rc := &rawConn{}
	opts := []nats.Option{nats.Name(t.Name() + "-raw"), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			rc.mu.Lock()
			rc.violations = append(rc.violations, err.Error())
			rc.mu.Unlock()
		}
	})}
	if user != "" {
		a := s.Auth(user)
		opts = append(opts, nats.UserInfo(a.User, a.Password), nats.CustomInboxPrefix(bus.InboxPrefix(user)))
	}
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	rc.Conn = nc
	return rc, nil
}

// violated waits until the server has reported a publish permission violation on subject.
func (rc *rawConn) violated(t *testing.T, subject string) {
	t.Helper()
	if !testwait.Until(5*time.Second, func() bool { return hasViolation(rc, `"`+subject+`"`) }) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		t.Fatalf("no permission violation for %s reported; got %q", subject, rc.violations)
	}
}

// filled starts a server whose stream holds n events of x:A, published as ingest.
func filled(t *testing.T, n int) (*bus.Embedded, *bus.Bus) {
	t.Helper()
	s := bustest.Start(t)
	b := bustest.ConnectAs(t, s, string(bus.RoleIngest))
	ctx := ctxT(t)
	if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= uint64(n); seq++ {
		if err := b.Publish(ctx, trade("x:A", 1, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return s, b
}

// events counts the events s stores, read as the test user.
func events(t *testing.T, s *bus.Embedded) int {
	t.Helper()
	return bustest.StoredEvents(t, bustest.Connect(t, s))
}

func TestAnonymousAndWrongPasswordRefused(t *testing.T) {
	s := bustest.Start(t)
	if _, err := dialRaw(t, s, ""); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous connect: %v, want an authorization violation", err)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(string(bus.RoleFeed), s.Auth(string(bus.RoleIngest)).Password))
	if !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("feed with ingest's password: %v, want an authorization violation", err)
	}
}

// The request of issue 15 that purged a whole store, and its kin, fail for every user.
func TestPurgeAndDeleteRefusedForEveryUser(t *testing.T) {
	s, _ := filled(t, 10)
	for _, u := range bustest.Users() {
		t.Run(u.Name, func(t *testing.T) {
			rc, err := dialRaw(t, s, u.Name)
			if err != nil {
				t.Fatal(err)
			}
			for _, subj := range []string{
				"$JS.API.STREAM.PURGE." + bus.DefaultStreamName,
				"$JS.API.STREAM.DELETE." + bus.DefaultStreamName,
				"$JS.API.STREAM.MSG.DELETE." + bus.DefaultStreamName,
			} {
				if msg, err := rc.Request(subj, []byte(`{"seq":1}`), 300*time.Millisecond); err == nil {
					t.Fatalf("%s answered: %s", subj, msg.Data)
				}
				rc.violated(t, subj)
			}
			if n := events(t, s); n != 10 {
				t.Fatalf("%d events left of 10", n)
			}
		})
	}
}

func TestIngestPublishesButCannotConsumeOrUpdate(t *testing.T) {
	s, b := filled(t, 3) // created the stream and published as ingest
	ctx := ctxT(t)
	if ep, seq, ok, err := b.LastPosition(ctx, "x:A"); err != nil || !ok || ep != 1 || seq != 3 {
		t.Fatalf("LastPosition = %d/%d %v %v", ep, seq, ok, err)
	}
	// Ensuring the same stream again is a no-op; other limits are kept, not applied.
	if err := b.EnsureStream(ctx, bus.StreamConfig{MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if info, err := b.StreamInfo(ctx); err != nil || info.MaxAge != bus.DefaultMaxAge {
		t.Fatalf("stream after EnsureStream with another MaxAge: %+v %v", info, err)
	}
	rc, err := dialRaw(t, s, string(bus.RoleIngest))
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{
		"$JS.API.STREAM.UPDATE." + bus.DefaultStreamName,
		"$JS.API.CONSUMER.CREATE." + bus.DefaultStreamName + ".c1",
	} {
		if _, err := rc.Request(subj, []byte(`{}`), 300*time.Millisecond); err == nil {
			t.Fatalf("%s answered", subj)
		}
		rc.violated(t, subj)
	}
	if _, err := rc.SubscribeSync(bus.EventSubjects); err != nil {
		t.Fatal(err)
	}
	rc.Flush()
	testwait.For(t, 5*time.Second, "the violation of ingest subscribing to the events", func() bool {
		return hasViolation(rc, "Subscription to \""+bus.EventSubjects+"\"")
	})
	if n := events(t, s); n != 3 {
		t.Fatalf("%d events, want 3", n)
	}
}

func hasViolation(rc *rawConn, s string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, v := range rc.violations {
		if strings.Contains(v, s) {
			return true
		}
	}
	return false
}

func TestFeedReadsButCannotPublish(t *testing.T) {
	s, _ := filled(t, 5)
	ctx := ctxT(t)
	feed := bustest.ConnectAs(t, s, string(bus.RoleFeed))
	var got []uint64
	c, err := feed.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *tickwirev1.Event) error {
		got = append(got, ev.GetSeq())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.CaughtUp():
	case <-time.After(5 * time.Second):
		t.Fatal("feed not caught up")
	}
	c.Stop()
	if len(got) != 5 {
		t.Fatalf("feed read %v", got)
	}

	rc, err := dialRaw(t, s, string(bus.RoleFeed))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := bus.EventSubject("x:A")
	if err := rc.Publish(subj, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	rc.violated(t, subj)
	for _, api := range []string{
		"$JS.API.STREAM.CREATE.OTHER",
		"$JS.API.STREAM.UPDATE." + bus.DefaultStreamName,
	} {
		if _, err := rc.Request(api, []byte(`{}`), 300*time.Millisecond); err == nil {
			t.Fatalf("%s answered", api)
		}
		rc.violated(t, api)
	}
	// Through the Bus too: the publish is never acknowledged.
	fb, err := bus.Connect(ctx, bus.Config{URL: s.ClientURL(), Auth: s.Auth(string(bus.RoleFeed)), PublishAckTimeout: 300 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if err := fb.Publish(ctx, trade("x:A", 1, 6)); err != nil {
		t.Fatal(err)
	}
	if err := fb.Flush(ctx); !errors.Is(err, bus.ErrPublish) {
		t.Fatalf("feed's publish: Flush = %v, want ErrPublish", err)
	}
	if n := events(t, s); n != 5 {
		t.Fatalf("%d events, want 5", n)
	}
}

// tickctl's replay session answers the feed's control requests (on the session's reply
// subjects: neither user has a response permission), and tickctl may import events but not
// update the stream.
func TestTickctlReplayControlAcrossUsers(t *testing.T) {
	s, _ := filled(t, 1)
	ctx := ctxT(t)
	tc := bustest.ConnectAs(t, s, string(bus.RoleTickctl))
	feed := bustest.ConnectAs(t, s, string(bus.RoleFeed))
	stop, err := tc.ServeReplayControl("r-auth", func(*tickwirev1.ReplayControl) *tickwirev1.ReplayStatus {
		return &tickwirev1.ReplayStatus{Session: "r-auth", Events: 42}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var status sync.WaitGroup
	status.Add(1)
	var once sync.Once
	stopSub, err := feed.SubscribeReplay("r-auth", nil, func(*tickwirev1.ReplayStatus) { once.Do(status.Done) })
	if err != nil {
		t.Fatal(err)
	}
	defer stopSub()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := feed.RequestReplayControl(rctx, "r-auth", &tickwirev1.ReplayControl{})
	if err != nil || st.GetEvents() != 42 {
		t.Fatalf("feed's control request: %v %v", st, err)
	}
	if err := tc.FlushReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tc.PublishReplayStatus("r-auth", &tickwirev1.ReplayStatus{Session: "r-auth"}); err != nil {
		t.Fatal(err)
	}
	status.Wait()

	// Import publishes events.
	if err := tc.Publish(ctx, trade("x:A", 1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := tc.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := events(t, s); n != 2 {
		t.Fatalf("%d events after tickctl's import, want 2", n)
	}
	uctx, ucancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer ucancel()
	if err := tc.UpdateStream(uctx, bus.StreamConfig{MaxAge: time.Second}); err == nil {
		t.Fatal("tickctl updated the stream")
	}
}

func TestAdminUpdatesTheStream(t *testing.T) {
	s, _ := filled(t, 2)
	ctx := ctxT(t)
	admin := bustest.ConnectAs(t, s, string(bus.RoleAdmin))
	if err := admin.UpdateStream(ctx, bus.StreamConfig{MaxAge: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	info, err := admin.StreamInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxAge != 48*time.Hour {
		t.Fatalf("after update: %+v", info)
	}
	if n := events(t, s); n != 2 {
		t.Fatalf("%d events after the update, want 2", n)
	}
}

func TestPasswordFiles(t *testing.T) {
	dir := t.TempDir()
	authDir := filepath.Join(dir, "auth")
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	// A client started before the server and its password file: it connects once both exist.
	early, err := bus.Connect(ctxT(t), bus.Config{URL: url, ReconnectWait: 50 * time.Millisecond,
		Auth: bus.Auth{User: "feed", PasswordFile: bus.PasswordFile(authDir, "feed")}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	start := func() *bus.Embedded {
		s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: port, DataDir: filepath.Join(dir, "js"), AuthDir: authDir}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	pw := s.Auth("ingest").Password
	for _, u := range bus.DefaultUsers() {
		fi, err := os.Stat(bus.PasswordFile(authDir, u.Name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v", fi.Name(), fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(authDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("auth dir: %v %v", fi.Mode().Perm(), err)
	}
	testwait.For(t, 5*time.Second, "the client that started first to connect", early.Connected)
	s.Shutdown()
	// Reused, not regenerated.
	s = start()
	defer s.Shutdown()
	if s.Auth("ingest").Password != pw {
		t.Fatal("password regenerated on restart")
	}
	// A password file others may read is refused.
	f := bus.PasswordFile(authDir, "ingest")
	if err := os.Chmod(f, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.ReadPasswordFile(f); !errors.Is(err, bus.ErrAuth) {
		t.Fatalf("mode 0644: %v", err)
	}
	s.Shutdown()
	if _, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: filepath.Join(dir, "js"), AuthDir: authDir}, nil); !errors.Is(err, bus.ErrAuth) {
		t.Fatalf("server with a 0644 password file: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
