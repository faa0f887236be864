package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// errBlockedTarget marks a webhook URL or a dialled address that the SSRF guard
// refuses. Delivery dead-letters at once on it: retrying cannot help.
var errBlockedTarget = errors.New("target address not allowed (delivery.allow_private_targets is off)")

// blockedPrefixes are the ranges a webhook may not reach beyond the ones netip
// classifies itself (loopback, private, link-local, multicast, unspecified).
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // documentation (TEST-NET-1)
	netip.MustParsePrefix("198.51.100.0/24"),    // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),     // documentation (TEST-NET-3)
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),       // NAT64: embeds an IPv4 address
	netip.MustParsePrefix("::/96"),              // IPv4-compatible (deprecated)
	netip.MustParsePrefix("2002::/16"),          // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("100::/64"),           // discard-only
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("255.255.255.255/32"), // limited broadcast
}

// privateAddr reports whether ip is an address a webhook must not reach: loopback,
// private, link-local, multicast, unspecified, CGNAT or reserved, in IPv4, IPv6 or
// IPv4-mapped IPv6 form. An invalid ip counts as private.
func privateAddr(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CheckTarget validates a webhook URL when it is handed to us: absolute http(s)
// with a host and, unless allowPrivate, a host that resolves only to public
// addresses. A host that does not resolve is refused too: it cannot be checked,
// and an operator learns of the typo at once rather than after max_age.
func CheckTarget(ctx context.Context, rawURL string, allowPrivate bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("parse notifyURL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return errors.New("notifyURL must be an absolute http or https URL")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("notifyURL port must be 1-65535")
		}
	}
	if allowPrivate {
		return nil
	}
	return checkHost(ctx, u.Hostname())
}

func checkHost(ctx context.Context, host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if privateAddr(ip) {
			return fmt.Errorf("%w: %s", errBlockedTarget, host)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return hideResolver(err)
	}
	for _, ip := range ips {
		if privateAddr(ip) {
			return fmt.Errorf("%w: %s resolves to %s", errBlockedTarget, host, ip)
		}
	}
	return nil
}

// refusePrivateDial is a net.Dialer Control function: it runs on the address
// actually being connected to (after DNS), so a name that re-resolves to a private
// address between acceptance and delivery (DNS rebinding) is still refused.
func refusePrivateDial(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", errBlockedTarget, address)
	}
	if ip := net.ParseIP(host); ip == nil || privateAddr(ip) {
		return fmt.Errorf("%w: %s", errBlockedTarget, address)
	}
	return nil
}

// dnsFailure is a failed name lookup told without the resolver's address (which
// net.DNSError names): lastError and 400 texts reach clients.
type dnsFailure struct {
	host, reason string
	timeout      bool
}

func (e *dnsFailure) Error() string   { return "DNS lookup failed for " + e.host + ": " + e.reason }
func (e *dnsFailure) Timeout() bool   { return e.timeout }
func (e *dnsFailure) Temporary() bool { return e.timeout }

// hideResolver replaces a DNS error by a dnsFailure; other errors pass unchanged.
func hideResolver(err error) error {
	var de *net.DNSError
	if !errors.As(err, &de) {
		return err
	}
	reason := "no such host"
	switch {
	case de.IsTimeout:
		reason = "timeout"
	case !de.IsNotFound:
		reason = "lookup error"
	}
	return &dnsFailure{host: de.Name, reason: reason, timeout: de.IsTimeout}
}
