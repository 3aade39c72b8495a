package feed

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddress returns the address a request's per-address limits count it under
// (connections per address, the candles rate): the TCP peer's, or, when the peer is a proxy
// in trusted (a load balancer that appends the address it saw to X-Forwarded-For, as HAProxy's
// "option forwardfor" does), the rightmost X-Forwarded-For address that is not itself a trusted
// proxy. Addresses left of it were written by the client and are not believed; an entry that
// does not parse ends the walk at the last address believed.
func clientAddress(r *http.Request, trusted []netip.Prefix) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !trustedProxy(addr, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			ap, perr := netip.ParseAddrPort(h)
			if perr != nil {
				return client
			}
			a = ap.Addr()
		}
		client = a.Unmap().String()
		if !trustedProxy(a, trusted) {
			return client
		}
	}
	return client
}

func trustedProxy(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses proxy addresses or CIDR prefixes (a bare address is a single
// host).
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, &net.ParseError{Type: "trusted proxy (an address or CIDR prefix)", Text: s}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
