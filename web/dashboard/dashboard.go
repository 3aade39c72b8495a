// Package dashboard serves the trader's dashboard, the TypeScript app in this folder, from
// assets embedded in the binary.
//
// The assets are embedded only with the build tag "dashboard" (make run and make e2e build
// feed with it after `npm ci && npm run build`). Without it, as in a plain `go build ./...` on
// a fresh checkout, Handler serves a page that says how to build the dashboard.
package dashboard

import (
	"bytes"
	"errors"
	"html"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// Built reports whether the dashboard is embedded in this binary.
func Built() bool { return assets() != nil }

// Handler serves the dashboard at /: index.html for "/" and for app routes, the hashed assets
// Vite writes under /assets/ with a year-long immutable cache, other files without caching.
// Without embedded assets it serves the how-to-build page at / (and 404 elsewhere).
func Handler() http.Handler { return New(Config{}) }

// Config is what the operator tells the page (docs/OPERATIONS.md, "The dashboard's token").
type Config struct {
	// TokenURL, when set, is where the page asks for a fresh token before its token expires:
	// GET with the browser's cookies (credentials: include), answered with {"token": "..."} or
	// the token as text. An absolute http(s) URL (another origin must allow this one with CORS
	// and credentials) or a path on this origin. Empty: the page asks its user to paste one.
	TokenURL string
}

// ValidateTokenURL checks a Config.TokenURL: empty, a path starting with "/", or an absolute
// http or https URL without user information or fragment.
func ValidateTokenURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.User != nil || u.Fragment != "":
		return errors.New("no user information or fragment in the token URL")
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(s, "//"):
		return nil
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host != "":
		return nil
	}
	return errors.New("the token URL must be a path on this origin (/...) or an absolute http(s) URL")
}

// New serves the dashboard as Handler does, telling the page cfg in index.html's head (a
// <meta name="tickwire-token-url"> tag; the page reads it at start).
func New(cfg Config) http.Handler {
	if fsys := assets(); fsys != nil {
		if h, err := newHandler(fsys); err == nil {
			h.index = withMeta(h.index, cfg)
			return h
		}
	}
	return fallback()
}

// withMeta puts cfg's meta tags before </head> (at the start of the page when it has none).
func withMeta(index []byte, cfg Config) []byte {
	if cfg.TokenURL == "" {
		return index
	}
	tag := []byte(`<meta name="tickwire-token-url" content="` + html.EscapeString(cfg.TokenURL) + `" />` + "\n")
	i := bytes.Index(index, []byte("</head>"))
	if i < 0 {
		return append(tag, index...)
	}
	out := make([]byte, 0, len(index)+len(tag))
	out = append(out, index[:i]...)
	out = append(out, tag...)
	return append(out, index[i:]...)
}

// Cache policies. Files under /assets/ have a content hash in their name, so a new build never
// reuses a URL: cache them for good. index.html names the current hashes, so it is revalidated
// on every load (no-cache means "check with the server", which ETag-less embed answers with the
// full small page); that is what makes a feed upgrade reach open browsers on the next reload.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheRevalid   = "no-cache"
)

// contentTypes covers extensions that Go's built-in table lacks and that a minimal container's
// /etc/mime.types may not list; a wrong type makes browsers refuse module scripts.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

type handler struct {
	fsys  fs.FS
	index []byte
	// modTime is when the process started: embedded files carry no time, and a fixed one lets
	// If-Modified-Since work for the life of the process.
	modTime time.Time
}

func newHandler(fsys fs.FS) (*handler, error) {
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		return nil, err
	}
	return &handler{fsys: fsys, index: index, modTime: time.Now()}, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" || name == "index.html" {
		h.serveIndex(w, r)
		return
	}
	f, err := h.fsys.Open(name)
	if err != nil {
		// A path without an extension is an app route (the app may put the focused instrument
		// in the URL): give it the app. A missing file with an extension is a real 404, so a
		// stale asset URL fails loudly instead of running index.html as JavaScript.
		if path.Ext(name) == "" {
			h.serveIndex(w, r)
			return
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		h.serveIndex(w, r)
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.Error(w, "unreadable asset", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType(name))
	if strings.HasPrefix(name, "assets/") {
		w.Header().Set("Cache-Control", cacheImmutable)
	} else {
		w.Header().Set("Cache-Control", cacheRevalid)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, h.modTime, rs)
}

func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", contentTypes[".html"])
	w.Header().Set("Cache-Control", cacheRevalid)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "index.html", h.modTime, bytes.NewReader(h.index))
}

const fallbackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Tickwire feed</title>
<style>body{font:16px system-ui,sans-serif;background:#111;color:#ddd;max-width:40em;margin:4em auto}code{color:#8cf}</style></head>
<body><h1>Tickwire feed is running</h1>
<p>The dashboard was not built into this binary. Build it with
<code>cd web/dashboard &amp;&amp; npm ci &amp;&amp; npm run build</code>, then build feed with
<code>go build -tags dashboard ./cmd/feed</code> (<code>make run</code> does all of it).</p>
<p>Meanwhile: the WebSocket endpoint is <code>/ws</code> (docs/PROTOCOL.md), instruments are listed at
<a href="/api/instruments">/api/instruments</a>; metrics are on the admin listener (<code>--admin-listen</code>, 127.0.0.1:9102 by default).</p></body></html>
`

func fallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentTypes[".html"])
		w.Header().Set("Cache-Control", cacheRevalid)
		io.WriteString(w, fallbackPage)
	})
}
