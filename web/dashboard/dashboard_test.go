package dashboard

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestHandlerServesBuiltAssets(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html":            {Data: []byte("<!doctype html><title>app</title>")},
		"assets/index-abc1.js":  {Data: []byte("console.log(1)")},
		"assets/index-abc1.css": {Data: []byte("body{}")},
		"favicon.svg":           {Data: []byte("<svg/>")},
	}
	h, err := newHandler(fsys)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path         string
		status       int
		ctype, cache string
		body         string
	}{
		{"/", 200, "text/html; charset=utf-8", cacheRevalid, "<title>app</title>"},
		{"/index.html", 200, "text/html; charset=utf-8", cacheRevalid, "<title>app</title>"},
		{"/i/synthetic:ACME", 200, "text/html; charset=utf-8", cacheRevalid, "<title>app</title>"},
		{"/assets/index-abc1.js", 200, "text/javascript; charset=utf-8", cacheImmutable, "console.log(1)"},
		{"/assets/index-abc1.css", 200, "text/css; charset=utf-8", cacheImmutable, "body{}"},
		{"/favicon.svg", 200, "image/svg+xml", cacheRevalid, "<svg/>"},
		{"/assets/gone-123.js", 404, "", "", ""},
		{"/assets", 200, "text/html; charset=utf-8", cacheRevalid, "<title>app</title>"},
	}
	for _, c := range cases {
		rec := get(t, h, c.path)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d", c.path, rec.Code, c.status)
			continue
		}
		if c.status != http.StatusOK {
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := rec.Header().Get("Cache-Control"); got != c.cache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
		if !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s: body %q lacks %q", c.path, rec.Body.String(), c.body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d, want 405", rec.Code)
	}
}

func TestHandlerWithoutIndexFallsBack(t *testing.T) {
	if _, err := newHandler(fstest.MapFS{}); err == nil {
		t.Fatal("newHandler accepted assets without index.html")
	}
}

func TestFallbackSaysHowToBuild(t *testing.T) {
	h := fallback()
	rec := get(t, h, "/")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "npm run build") {
		t.Fatalf("fallback /: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get(t, h, "/nope"); rec.Code != 404 {
		t.Fatalf("fallback /nope: %d, want 404", rec.Code)
	}
}

func TestHandlerMatchesBuild(t *testing.T) {
	// Without the build tag the binary has no assets and serves the fallback; with it, the
	// embedded index.html must be there (newHandler succeeds).
	h := Handler()
	if _, isBuilt := h.(*handler); isBuilt != Built() {
		t.Fatalf("Handler() built=%v, Built()=%v", isBuilt, Built())
	}
}

func TestTokenURLMeta(t *testing.T) {
	index := []byte("<!doctype html><html><head><title>app</title></head><body></body></html>")
	if got := withMeta(index, Config{}); !bytes.Equal(got, index) {
		t.Fatalf("no token URL: index changed to %q", got)
	}
	got := string(withMeta(index, Config{TokenURL: `https://idp.example/t?a=1&b="x"`}))
	want := `<title>app</title><meta name="tickwire-token-url" content="https://idp.example/t?a=1&amp;b=&#34;x&#34;" />` + "\n</head>"
	if !strings.Contains(got, want) {
		t.Fatalf("index %q lacks %q", got, want)
	}
	// The handler serves the page with the tag (h.index is what New sets).
	h, err := newHandler(fstest.MapFS{"index.html": {Data: index}})
	if err != nil {
		t.Fatal(err)
	}
	h.index = withMeta(h.index, Config{TokenURL: "/auth/token"})
	if body := get(t, h, "/").Body.String(); !strings.Contains(body, `<meta name="tickwire-token-url" content="/auth/token" />`) {
		t.Fatalf("GET / without the meta tag: %q", body)
	}
}

func TestValidateTokenURL(t *testing.T) {
	for _, ok := range []string{"", "/auth/token", "https://idp.example/tickwire/token", "http://127.0.0.1:9/t?x=1"} {
		if err := ValidateTokenURL(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"auth/token", "//idp.example/t", "ftp://idp.example/t", "https://u:p@idp.example/t", "https://idp.example/t#x", "javascript:alert(1)", "https:///t"} {
		if err := ValidateTokenURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
