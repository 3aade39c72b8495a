package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

var metricName = regexp.MustCompile(`\btickwire_[a-z0-9_]+\b`)

// referenced maps every tickwire_ metric the deployment files name to where they name it: the
// alert rules' expressions, the Grafana dashboard's queries, the autoscaler's pods metric.
func referenced(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	add := func(where, expr string) int {
		n := 0
		for _, m := range metricName.FindAllString(expr, -1) {
			refs[m] = append(refs[m], where)
			n++
		}
		return n
	}

	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n += add("alert "+r.Alert, r.Expr)
		}
	}
	if n < 20 {
		t.Fatalf("alerts.yml: only %d metric references", n)
	}

	b, err = os.ReadFile("grafana/tickwire.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("tickwire.json: %v", err)
	}
	n = 0
	var walk func(v any, title string)
	walk = func(v any, title string) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["title"].(string); ok {
				title = s
			}
			if e, ok := x["expr"].(string); ok {
				n += add("dashboard panel "+title, e)
			}
			for _, c := range x {
				walk(c, title)
			}
		case []any:
			for _, c := range x {
				walk(c, title)
			}
		}
	}
	walk(dash, "")
	if n < 20 {
		t.Fatalf("tickwire.json: only %d metric references", n)
	}

	n = 0
	for _, doc := range rendered(t) {
		if doc["kind"] != "HorizontalPodAutoscaler" {
			continue
		}
		spec, _ := doc["spec"].(map[string]any)
		metrics, _ := spec["metrics"].([]any)
		for _, m := range metrics {
			if name := dig(m, "pods", "metric", "name"); name != "" {
				n += add("helm HorizontalPodAutoscaler", name)
			}
		}
	}
	if n == 0 {
		t.Fatal("the chart's HorizontalPodAutoscaler names no tickwire_ pods metric")
	}
	return refs
}

func dig(v any, keys ...string) string {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// TestAlertsCoverOperations: every metric docs/OPERATIONS.md says to alert on has an alert rule.
func TestAlertsCoverOperations(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "### Metrics worth alerting on")
	if start < 0 {
		t.Fatal(`docs/OPERATIONS.md has no "### Metrics worth alerting on"`)
	}
	section := doc[start+4:]
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	refs := referenced(t)
	named := metricName.FindAllString(section, -1)
	if len(named) < 15 {
		t.Fatalf("found only %d metrics in the section: %v", len(named), named)
	}
	for _, m := range named {
		alerted := false
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} { // a histogram's series
			for _, w := range refs[m+suffix] {
				alerted = alerted || strings.HasPrefix(w, "alert ")
			}
		}
		if !alerted {
			t.Errorf("%s: docs/OPERATIONS.md says to alert on it; no rule in deploy/prometheus/alerts.yml does", m)
		}
	}
}

// TestMetricsExported runs feed (NATS embedded, TLS on, so that the store fault and certificate
// gauges exist), ingest for the synthetic market, a consolidated ingest and a file ingest (a
// future-dated quote, so that a reject is counted), plus one gap published on NATS, and waits
// until every metric the dashboard, the alerts and the autoscaler name is exported by one of them.
func TestMetricsExported(t *testing.T) {
	refs := referenced(t)
	bin := binaries(t)
	dir := t.TempDir()
	authDir := filepath.Join(dir, "auth")
	key := filepath.Join(dir, "hs256.key")
	if err := os.WriteFile(key, bytes.Repeat([]byte("k"), 48), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, certKey, pool := selfSigned(t, dir)
	feedAddr, adminAddr, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	natsURL := "nats://" + natsAddr
	ingestAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}

	feed := start(t, "feed", filepath.Join(bin, "feed"), "--listen", feedAddr, "--admin-listen", adminAddr,
		"--embed-nats", "--nats-listen", natsAddr, "--nats-data-dir", filepath.Join(dir, "nats"),
		"--nats-auth-dir", authDir, "--auth-hs256-key-file", key, "--tls-cert", cert, "--tls-key", certKey,
		"--checkpoint-interval", "1s")
	start(t, "ingest", filepath.Join(bin, "ingest"), "--nats-url", natsURL, "--nats-auth-dir", authDir,
		"--source", "synthetic", "--synthetic-instruments", "3", "--synthetic-rate", "100",
		"--synthetic-venues", "synthetic,synthetic-b", "--synthetic-cross-listed", "1",
		"--lease", "synthetic", "--metrics-listen", ingestAddrs[0])
	start(t, "consolidated ingest", filepath.Join(bin, "ingest"), "--nats-url", natsURL, "--nats-auth-dir", authDir,
		"--nats-user", "consolidator", "--source", "consolidated",
		"--consolidate", "consolidated:ACME=synthetic:ACME,synthetic-b:ACME", "--metrics-listen", ingestAddrs[1])
	// Two quotes an hour apart at 1x: the process stays up after the first, which is rejected.
	fx := filepath.Join(dir, "fx.csv")
	if err := os.WriteFile(fx, []byte("timestamp,bid,ask\n2099-01-02 00:00:00.000,1.1000,1.1002\n2099-01-02 01:00:00.000,1.1001,1.1003\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, "file ingest", filepath.Join(bin, "ingest"), "--nats-url", natsURL, "--nats-auth-dir", authDir,
		"--source", "file", "--file-format", "fx-quotes", "--file", fx, "--file-instrument", "fx:EURUSD",
		"--speed", "1", "--metrics-listen", ingestAddrs[2])

	admin := "http://" + adminAddr
	testwait.For(t, 60*time.Second, "the feed to be ready", func() bool {
		feed.failIfExited(t)
		code, _ := get(http.DefaultClient, admin+"/readyz")
		return code == http.StatusOK
	})

	// A gap: two events of an instrument of its own, seq 1 then 3, published as ingest would.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, bus.Config{URL: natsURL, Name: "deploy-test",
		Auth: bus.Auth{User: "ingest", PasswordFile: filepath.Join(authDir, "ingest.password")}}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, seq := range []uint64{1, 3} {
		ev := &tickwirev1.Event{Instrument: "gaptest:X", Epoch: 1, Seq: seq, IngestTimeNs: time.Now().UnixNano(),
			Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: 100, Size: 1}}}
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A WebSocket request with a bad token: refused and counted.
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, err := http.NewRequest(http.MethodGet, "https://"+feedAddr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer not-a-token")
	resp, err := https.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /ws with a bad token: %d", resp.StatusCode)
	}

	scrapes := []string{admin + "/metrics"}
	for _, a := range ingestAddrs {
		scrapes = append(scrapes, "http://"+a+"/metrics")
	}
	var missing []string
	ok := testwait.Until(60*time.Second, func() bool {
		feed.failIfExited(t)
		exported := map[string]bool{}
		for _, u := range scrapes {
			for n := range samples(u) {
				exported[n] = true
			}
		}
		missing = missing[:0]
		for _, m := range sortedKeys(refs) {
			if !exported[m] {
				missing = append(missing, m)
			}
		}
		return len(missing) == 0
	})
	if !ok {
		for _, m := range missing {
			t.Errorf("%s (named by %s) is not exported by the running feed or ingest", m, strings.Join(uniq(refs[m]), ", "))
		}
	}
	t.Logf("%d metrics named by the dashboard, the alerts and the autoscaler, all exported", len(refs))
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// samples returns the sample names a /metrics page exports (a histogram's _bucket, _sum and
// _count included), none if it does not answer.
func samples(url string) map[string]bool {
	names := map[string]bool{}
	resp, err := http.Get(url)
	if err != nil {
		return names
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		if i := strings.IndexAny(l, "{ "); i > 0 {
			names[l[:i]] = true
		}
	}
	return names
}

func get(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their paths and a pool
// that trusts it.
func selfSigned(t *testing.T, dir string) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "deploy-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return cert, key, pool
}

// proc is a process the test started; it is stopped (SIGTERM, then SIGKILL) when the test ends.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer // guarded by mu
	done chan struct{}
	err  error // set before done is closed
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.out.String()
	if len(s) > 3000 {
		s = "..." + s[len(s)-3000:]
	}
	return s
}

func (p *proc) failIfExited(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
	default:
	}
}

func start(t *testing.T, name string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}
