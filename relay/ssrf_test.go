package relay

import (
	"context"
	"errors"
	"net"
	"testing"
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
		err := checkTarget(ctx, u, false)
		if !errors.Is(err, errBlockedTarget) {
			t.Errorf("%s with the guard on: %v, want blocked", u, err)
		}
		if err := checkTarget(ctx, u, true); err != nil {
			t.Errorf("%s with allow_private_targets: %v", u, err)
		}
	}
	malformed := []string{"", "ftp://example.com/", "/relative", "http://", "mailto:a@b", "http://%zz/", "example.com/x"}
	for _, u := range malformed {
		if err := checkTarget(ctx, u, true); err == nil {
			t.Errorf("%q: accepted", u)
		}
	}
	if err := checkTarget(ctx, "http://93.184.216.34/hook", false); err != nil {
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
