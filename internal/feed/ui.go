package feed

import "net/http"

const fallbackPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Tickwire feed</title>
<style>body{font:16px system-ui,sans-serif;background:#111;color:#ddd;max-width:40em;margin:4em auto}code{color:#8cf}</style></head>
<body><h1>Tickwire feed is running</h1>
<p>The dashboard was not built into this binary. Build it with
<code>cd web/dashboard &amp;&amp; npm ci &amp;&amp; npm run build</code> and rebuild feed (<code>make run</code> does both).</p>
<p>Meanwhile: the WebSocket endpoint is <code>/ws</code> (docs/PROTOCOL.md), instruments are listed at
<a href="/api/instruments">/api/instruments</a>; metrics are on the admin listener (<code>--admin-listen</code>, 127.0.0.1:9102 by default).</p></body></html>
`

// FallbackUI serves a page saying how to build the dashboard, for binaries built without it.
func FallbackUI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(fallbackPage))
	})
}
