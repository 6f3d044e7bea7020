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
)

// errPrivateAddress is what a delivery to, or an endpoint at, an address
// off the public internet meets while webhooks.allow_private_networks is
// off: a webhook URL must not let an admin's typo or an attacker's DNS
// record reach the daemon's own network or the cloud's metadata service.
var errPrivateAddress = errors.New("is not a public address (webhooks.allow_private_networks is off)")

// sharedAddressSpace is carrier-grade NAT (RFC 6598): not public either.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether a is on the public internet: not loopback,
// private, link-local (which holds the 169.254.169.254 metadata service),
// unique-local (fd00:ec2::254), multicast, unspecified or shared.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && !a.IsLoopback() && !a.IsPrivate() && !a.IsLinkLocalUnicast() &&
		!a.IsLinkLocalMulticast() && !a.IsInterfaceLocalMulticast() && !a.IsMulticast() &&
		!a.IsUnspecified() && !sharedAddressSpace.Contains(a)
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
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return fmt.Errorf("dialing %s: the address %w", address, errPrivateAddress)
			}
			return nil
		}
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
