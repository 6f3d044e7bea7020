package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// clientAddr is the address a request came from: the peer, unless the peer
// is a trusted proxy, in which case the rightmost X-Forwarded-For entry that
// is not itself a trusted proxy (entries further left are the client's own
// claims and could be forged).
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for _, hop := range slices.Backward(hops) {
		addr, err := netip.ParseAddr(strings.TrimSpace(hop))
		if err != nil {
			return host // a malformed chain: trust nothing in it
		}
		if !isTrusted(addr, trusted) {
			return addr.String()
		}
	}
	return host
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	addr = addr.Unmap()
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// clientKey is the rate limits' key of a request's client: its address, or
// for IPv6 its /64, which one host or home is commonly given whole, so that
// a client cannot get a fresh bucket from each of its 2^64 addresses.
func clientKey(r *http.Request, trusted []netip.Prefix) string {
	return limitKey(clientAddr(r, trusted))
}

// limitKey is addr as a rate limit key: an IPv6 address as its /64, an
// IPv4 one (mapped into IPv6 or not) as itself, anything else as it is.
func limitKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	switch {
	case err != nil:
		return addr
	case a.Is4() || a.Is4In6():
		return a.Unmap().String()
	}
	return netip.PrefixFrom(a.WithZone(""), ipv6ClientBits).Masked().String()
}

// ipv6ClientBits is the prefix an IPv6 client is limited by: a /64, the
// smallest subnet a site is usually given.
const ipv6ClientBits = 64
