package outbox

import (
	"errors"
	"net/netip"
	"testing"
)

// Each special-purpose range is refused, at the URL and at the dialer, and
// an IPv6 address that carries an IPv4 address is judged as that IPv4
// address. Nothing here dials: the checks are called directly.
func TestPublicAddrFollowsTheSpecialPurposeRegistries(t *testing.T) {
	t.Parallel()
	refused := []string{
		// IPv4 special purpose.
		"0.0.0.0", "0.0.0.1", "0.255.255.255", // "this network", 0/8
		"10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "127.8.9.10",
		"169.254.169.254", "100.64.0.1", "100.127.255.255",
		"192.0.0.1", "192.0.0.170", // IETF protocol assignments, 192.0.0/24
		"192.0.2.1", "198.51.100.7", "203.0.113.9", // documentation
		"198.18.0.1", "198.19.255.254", // benchmarking, 198.18/15
		"192.88.99.1",                  // 6to4 relay anycast
		"224.0.0.1", "239.255.255.250", // multicast
		"240.0.0.1", "250.1.2.3", "255.255.255.255", // reserved 240/4, broadcast
		// IPv6 special purpose and outside global unicast.
		"::", "::1", "fe80::1", "fd00:ec2::254", "fc00::1", "ff02::1", "2001:db8::1", "2001::1", "3fff::1",
		"64:ff9b:1::1", // local-use NAT64
		// IPv4 carried in IPv6, judged as that IPv4.
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.1",
		"::127.0.0.1", "::169.254.169.254", "::10.0.0.1", // IPv4-compatible
		"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::10.0.0.1", "64:ff9b::c612:1", // NAT64
		"2002:a9fe:a9fe::1", "2002:7f00:1::", "2002:c0a8:101::1", // 6to4
	}
	public := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.128.0.1", "198.20.0.1", "223.255.255.254",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	for _, s := range refused {
		a := netip.MustParseAddr(s)
		if publicAddr(a) {
			t.Errorf("%s is public, want refused", s)
		}
		if err := refusePrivate("tcp", netip.AddrPortFrom(a, 443).String(), nil); !errors.Is(err, errPrivateAddress) {
			t.Errorf("dialing %s: %v, want refused", s, err)
		}
		if _, err := checkURL("https://"+netip.AddrPortFrom(a, 443).String()+"/hook", false); err == nil {
			t.Errorf("URL at %s accepted", s)
		}
	}
	for _, s := range public {
		a := netip.MustParseAddr(s)
		if !publicAddr(a) {
			t.Errorf("%s refused, want public", s)
		}
		if err := refusePrivate("tcp", netip.AddrPortFrom(a, 443).String(), nil); err != nil {
			t.Errorf("dialing %s: %v", s, err)
		}
	}
	if publicAddr(netip.Addr{}) || refusePrivate("tcp", "not-an-address", nil) == nil {
		t.Error("an invalid address passes")
	}
}
