package delivery

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

func TestPrivateAddr(t *testing.T) {
	private := []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "0.0.0.0", "0.1.2.3", "100.64.0.1", "100.127.255.255", "224.0.0.1",
		"239.255.255.250", "255.255.255.255", "198.18.0.1", "240.0.0.1",
		"::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff05::2",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
		"64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1",
	}
	public := []string{"8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1",
		"2606:4700:4700::1111", "::ffff:8.8.8.8", "93.184.216.34"}
	for _, s := range private {
		if !privateAddr(net.ParseIP(s)) {
			t.Errorf("%s: not refused", s)
		}
	}
	for _, s := range public {
		if privateAddr(net.ParseIP(s)) {
			t.Errorf("%s: refused", s)
		}
	}
	if !privateAddr(nil) {
		t.Error("nil IP: not refused")
	}
}

func TestCheckTarget(t *testing.T) {
	ctx := context.Background()
	refused := []string{
		"http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::1]:9/x", "http://[::ffff:127.0.0.1]:9/",
		"http://0.0.0.0:9/", "http://10.1.2.3/", "https://169.254.169.254/latest/meta-data",
		"http://192.168.0.10:8080/hook", "http://100.64.1.1/",
	}
	for _, u := range refused {
		err := CheckTarget(ctx, u, false)
		if !errors.Is(err, errBlockedTarget) {
			t.Errorf("%s with the guard on: %v, want blocked", u, err)
		}
		if err := CheckTarget(ctx, u, true); err != nil {
			t.Errorf("%s with allow_private_targets: %v", u, err)
		}
	}
	malformed := []string{"", "ftp://example.com/", "/relative", "http://", "mailto:a@b", "http://%zz/", "example.com/x"}
	for _, u := range malformed {
		if err := CheckTarget(ctx, u, true); err == nil {
			t.Errorf("%q: accepted", u)
		}
	}
	if err := CheckTarget(ctx, "http://93.184.216.34/hook", false); err != nil {
		t.Errorf("public literal: %v", err)
	}
}

// The dial-time check refuses what the acceptance check would, on the address
// actually dialled: here a name (localhost) that resolves to loopback.
func TestDialRefusesPrivateAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	d := &net.Dialer{Control: refusePrivateDial}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		conn, err := d.Dial("tcp", net.JoinHostPort(host, port))
		if err == nil {
			conn.Close()
			t.Fatalf("%s: dialled", host)
		}
		if !errors.Is(err, errBlockedTarget) {
			t.Errorf("%s: %v, want blocked", host, err)
		}
	}
}

// Issue 16, F8: ports outside 1–65535 are refused whatever allow_private_targets
// says; the documentation and benchmarking ranges are refused like private ones.
func TestCheckTargetPortsAndReservedRanges(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"http://93.184.216.34:99999/", "http://93.184.216.34:0/", "http://93.184.216.34:65536/", "http://127.0.0.1:70000/"} {
		for _, allow := range []bool{false, true} {
			if err := CheckTarget(ctx, u, allow); err == nil {
				t.Errorf("%s (allow_private_targets %v): accepted", u, allow)
			}
		}
	}
	for _, u := range []string{"http://93.184.216.34:1/", "http://93.184.216.34:65535/", "https://93.184.216.34/"} {
		if err := CheckTarget(ctx, u, false); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://192.0.2.1/", "http://198.51.100.7/", "http://203.0.113.9:8080/", "http://198.19.255.1/", "http://[::ffff:203.0.113.9]/"} {
		if err := CheckTarget(ctx, u, false); !errors.Is(err, errBlockedTarget) {
			t.Errorf("%s: %v, want blocked", u, err)
		}
	}
}

// A name that does not resolve is reported as such, without the resolver's address
// (which the error of the Go resolver names).
func TestDNSFailureHidesResolver(t *testing.T) {
	const u = "http://no-such-host.invalid/hook"
	err := CheckTarget(context.Background(), u, false)
	if err == nil || !strings.Contains(err.Error(), "DNS lookup failed") || resolverNamed(err.Error()) {
		t.Errorf("acceptance: %v", err)
	}
	cfg := config.Default().Delivery
	cfg.AllowPrivateTargets = true
	res := newWebhookClient(cfg, nil).post(u, queue.Entry{ID: "id-1", Seq: 1}, oma.Envelope{ContentType: "application/json", Body: []byte(`{}`)}, nil)
	if d := res.describe(); !strings.Contains(d, "DNS lookup failed") || resolverNamed(d) {
		t.Errorf("delivery: %s", d)
	}
}

// resolverNamed reports whether s names a nameserver of /etc/resolv.conf, or says
// "on <server>" the way net.DNSError does.
func resolverNamed(s string) bool {
	if strings.Contains(s, " on ") {
		return true
	}
	conf, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(conf), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" && strings.Contains(s, f[1]) {
			return true
		}
	}
	return false
}

// Short and numeric IPv4 forms are read as the address they dial, and refused by
// what they are (issue 12: http://127.1/ is a loopback address, not a DNS failure).
func TestLegacyIPv4FormsNamed(t *testing.T) {
	for host, want := range map[string]string{"127.1": "127.0.0.1", "0x7f.0.0.1": "127.0.0.1", "2130706433": "127.0.0.1",
		"10.1.258": "10.1.1.2", "8.8.8.8": "8.8.8.8"} {
		if got := literalIP(host); got.String() != want {
			t.Errorf("%s: %v, want %s", host, got, want)
		}
	}
	for _, host := range []string{"example.com", "1.2.3.4.5", "256.1.1.1", "1.2.65536", "4294967296"} {
		if ip := literalIP(host); ip != nil {
			t.Errorf("%s: %v", host, ip)
		}
	}
	err := CheckTarget(context.Background(), "http://127.1/", false)
	if !errors.Is(err, errBlockedTarget) || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("127.1: %v", err)
	}
}
