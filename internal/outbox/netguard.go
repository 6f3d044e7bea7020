package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// errPrivateAddress is what a delivery to, or an endpoint at, an address
// off the public internet meets while webhooks.allow_private_networks is
// off: a webhook URL must not let an admin's typo or an attacker's DNS
// record reach the daemon's own network or the cloud's metadata service.
var errPrivateAddress = errors.New("is not a public address (webhooks.allow_private_networks is off)")

// registries decides what is public: code.dny.dev/ssrf carries the IANA
// IPv4 and IPv6 Special-Purpose Address Registries, regenerated from them
// with each release (v0.3.0: July 2026), instead of a list of our own that
// misses a range (0.0.0.0/8, 198.18.0.0/15, 240.0.0.0/4, ...). IPv6 outside
// global unicast (2000::/3) is refused, which holds loopback, link-local,
// unique-local (fd00:ec2::254) and multicast. Ports and protocols are
// checked elsewhere (the URL's scheme), so the guardian checks addresses
// only.
var registries = ssrf.New(ssrf.WithAnyNetwork(), ssrf.WithAnyPort())

// IPv6 ranges that carry an IPv4 address, besides IPv4-mapped
// (::ffff:a.b.c.d): a connection to one reaches the IPv4 address through
// a translator or a tunnel, so 64:ff9b::a9fe:a9fe is 169.254.169.254
// where NAT64 runs.
var (
	ipv4Compatible = netip.MustParsePrefix("::/96")        // ::a.b.c.d, deprecated (RFC 4291)
	nat64          = netip.MustParsePrefix("64:ff9b::/96") // a.b.c.d in the last 32 bits (RFC 6052)
	sixToFour      = netip.MustParsePrefix("2002::/16")    // a.b.c.d in bits 16 to 47 (RFC 3056)
)

// carriedIPv4 returns the IPv4 address an IPv6 address carries, if any.
func carriedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case ipv4Compatible.Contains(a), nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// publicAddr reports whether a is on the public internet: in no range of
// the special-purpose registries, which hold loopback, private, link-local
// (the 169.254.169.254 metadata service), shared, benchmarking, reserved
// and broadcast addresses. An IPv6 address that carries an IPv4 address
// (mapped, compatible, NAT64, 6to4) is judged as the IPv4 address it
// reaches.
func publicAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if v4, ok := carriedIPv4(a); ok {
		a = v4
	}
	return registries.SafeAddr(a) == nil
}

// checkURL is the rule for an endpoint's URL, when it is stored and when
// it is delivered to: absolute, https, and not naming a private address;
// with allowPrivate, plain http and any address too.
func checkURL(raw string, allowPrivate bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("must be an absolute URL")
	}
	if u.Scheme != "https" && !(allowPrivate && u.Scheme == "http") {
		return nil, errors.New("must use https (http is allowed only with webhooks.allow_private_networks: true, for local receivers in development)")
	}
	if a, err := netip.ParseAddr(u.Hostname()); err == nil && !allowPrivate && !publicAddr(a) {
		return nil, fmt.Errorf("host %s %w", a, errPrivateAddress)
	}
	return u, nil
}

// resolvesPublic refuses a host name that resolves to a private address. A
// name that does not resolve yet passes: delivery checks every address it
// connects to.
func resolvesPublic(ctx context.Context, u *url.URL) error {
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if !publicAddr(a) {
			return fmt.Errorf("host %s resolves to %s, which %w", u.Hostname(), a, errPrivateAddress)
		}
	}
	return nil
}

// newHTTPClient is the client of deliveries: each attempt within timeout,
// redirects not followed (a 3xx is a failure), no proxy from the
// environment, and, unless allowPrivate, every connection checked against
// the address it actually dials, so a DNS answer that changes between the
// check and the delivery (rebinding) is caught.
func newHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// refusePrivate is the dialer's check of the address it is about to
// connect to (a net.Dialer Control function).
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !publicAddr(ap.Addr()) {
		return fmt.Errorf("dialing %s: the address %w", address, errPrivateAddress)
	}
	return nil
}
