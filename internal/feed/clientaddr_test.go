package feed

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"no proxy trusted: the peer", "10.0.0.5:4000", []string{"203.0.113.7"}, nil, "10.0.0.5"},
		{"an untrusted peer's header is ignored", "198.51.100.9:4000", []string{"203.0.113.7"}, lb, "198.51.100.9"},
		{"a trusted proxy names the client", "10.0.0.5:4000", []string{"203.0.113.7"}, lb, "203.0.113.7"},
		{"a client's own header is not believed", "10.0.0.5:4000", []string{"1.2.3.4, 203.0.113.7"}, lb, "203.0.113.7"},
		{"proxies in a chain are skipped", "127.0.0.1:4000", []string{"203.0.113.7, 10.1.2.3"}, lb, "203.0.113.7"},
		{"several header lines are one list", "10.0.0.5:4000", []string{"1.2.3.4", "203.0.113.7"}, lb, "203.0.113.7"},
		{"IPv6 and a port", "10.0.0.5:4000", []string{"[2001:db8::1]:5555"}, lb, "2001:db8::1"},
		{"garbage: the peer", "10.0.0.5:4000", []string{"not-an-address"}, lb, "10.0.0.5"},
		{"garbage left of the client is never reached", "10.0.0.5:4000", []string{"junk, 203.0.113.7"}, lb, "203.0.113.7"},
		{"no header from a trusted proxy: the peer", "10.0.0.5:4000", nil, lb, "10.0.0.5"},
		{"every hop trusted: the leftmost", "10.0.0.5:4000", []string{"10.9.9.9, 10.0.0.4"}, lb, "10.9.9.9"},
		{"a peer without a port", "10.0.0.5", []string{"203.0.113.7"}, lb, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddress(r, tc.trusted); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
