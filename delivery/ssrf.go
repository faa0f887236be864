package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// errBlockedTarget marks a webhook URL or a dialled address that the SSRF guard
// refuses. Delivery dead-letters at once on it: retrying cannot help.
var errBlockedTarget = errors.New("target address not allowed")

// blockedError is an errBlockedTarget that says which address and why, and what
// setting would allow it: the text reaches operators (400 variables, lastError).
type blockedError struct {
	what, addr, class string
}

func (e *blockedError) Error() string {
	s := e.what + " is"
	if e.addr != "" && !strings.Contains(e.what, e.addr) {
		s = e.what + " resolves to " + e.addr + ","
	}
	return s + " " + article(e.class) + " " + e.class + " address, not allowed as a webhook target (set delivery.allow_private_targets to allow private targets)"
}

func (e *blockedError) Unwrap() error { return errBlockedTarget }

// blocked builds the refusal of ip (reached through what: a host, a host:port).
func blocked(what string, ip net.IP) error {
	addr := ""
	if ip != nil {
		addr = ip.String()
	}
	return &blockedError{what: what, addr: addr, class: addrClass(ip)}
}

// blockedPrefixes are the ranges a webhook may not reach beyond the ones netip
// classifies itself (loopback, private, link-local, multicast, unspecified), each
// with the class a refusal names.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" (0.0.0.0/8)`},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (192.0.2.0/24)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (198.51.100.0/24)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (203.0.113.0/24)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 (64:ff9b::/96, embeds an IPv4 address)"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 (::/96)"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (2002::/16, embeds an IPv4 address)"},
	{netip.MustParsePrefix("fec0::/10"), "site-local IPv6 (fec0::/10)"},
	{netip.MustParsePrefix("100::/64"), "discard-only IPv6 (100::/64)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation (2001:db8::/32)"},
}

// privateAddr reports whether ip is an address a webhook must not reach: loopback,
// private, link-local, multicast, unspecified, CGNAT or reserved, in IPv4, IPv6 or
// IPv4-mapped IPv6 form. An invalid ip counts as private.
func privateAddr(ip net.IP) bool { return addrClass(ip) != "" }

// addrClass names the class of address that makes ip refused, "" for a public one.
func addrClass(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return "invalid"
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private (RFC 1918 / RFC 4193)"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	for _, p := range blockedPrefixes {
		if p.prefix.Contains(a) {
			return p.class
		}
	}
	return ""
}

// CheckTarget validates a webhook URL when it is handed to us: absolute http(s)
// with a host and, unless allowPrivate, a host that resolves only to public
// addresses. A host that does not resolve is refused too: it cannot be checked,
// and an operator learns of the typo at once rather than after max_age.
func CheckTarget(ctx context.Context, rawURL string, allowPrivate bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.Opaque != "" {
		return notHTTP(u)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %s out of range (1 to 65535)", p)
		}
	}
	if allowPrivate {
		return nil
	}
	return checkHost(ctx, u.Hostname())
}

func checkHost(ctx context.Context, host string) error {
	if ip := literalIP(host); ip != nil {
		if privateAddr(ip) {
			return blocked(host, ip)
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
			return blocked(host, ip)
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
		return blocked(address, nil)
	}
	if ip := net.ParseIP(host); ip == nil || privateAddr(ip) {
		return blocked(address, ip)
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

// notHTTP says why u is not an absolute http(s) URL.
func notHTTP(u *url.URL) error {
	switch {
	case u.Scheme == "":
		return errors.New("not an absolute URL (scheme http or https needed)")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q not allowed (http or https only)", u.Scheme)
	}
	return errors.New("no host in the URL")
}

// literalIP parses host as an IP address, including the IPv4 forms inet_aton
// accepts and curl or a browser would dial (127.1, 0x7f.0.0.1, 2130706433), so that
// a refusal of one says what it is rather than "DNS lookup failed".
func literalIP(host string) net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return ip
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return nil
	}
	var n []uint64
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 0, 32)
		if err != nil {
			return nil
		}
		n = append(n, v)
	}
	return inetAton(n)
}

// inetAton joins the numbers of a dotted IPv4 address, the last one filling the
// bytes the others leave.
func inetAton(n []uint64) net.IP {
	var v uint64
	for i, x := range n[:len(n)-1] {
		if x > 255 {
			return nil
		}
		v |= x << (24 - 8*i)
	}
	last := n[len(n)-1]
	if last >= 1<<(8*(5-len(n))) {
		return nil
	}
	v |= last
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func article(word string) string {
	if strings.ContainsAny(word[:1], "aeiouAEIOU") {
		return "an"
	}
	return "a"
}
