package app

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// readPreface over a real loopback connection, the sender writing in pieces: a
// preface is taken off whatever the split, what follows (or a request without
// one) is handed back as read, a wrong token or a line too long is refused.
func TestReadPreface(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	req := "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
	cases := []struct {
		name   string
		pieces []string
		client string // "" none
		rest   string
		bad    bool
	}{
		{"a request", []string{req}, "", req, false},
		{"a request, one byte first", []string{"G", req[1:]}, "", req, false},
		{"a preface and a request", []string{"NRFWD " + token + " 10.1.2.3:4000\r\n" + req}, "10.1.2.3:4000", req, false},
		{"a preface in pieces", []string{"NR", "FWD " + token, " [2001:db8::1]:443\r", "\n" + req}, "[2001:db8::1]:443", req, false},
		{"another token", []string{"NRFWD ffffffffffffffffffffffffffffffff 10.1.2.3:4000\r\n" + req}, "", "", true},
		{"a name, not an address", []string{"NRFWD " + token + " example.com:80\r\n"}, "", "", true},
		{"no end of line", []string{"NRFWD " + token + " ", string(make([]byte, 300))}, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server, client := pipeTCP(t)
			go func() {
				for _, p := range tc.pieces {
					if _, err := client.Write([]byte(p)); err != nil {
						return
					}
				}
			}()
			got, rest, err := readPreface(server, token)
			if tc.bad {
				if !errors.Is(err, errBadPreface) {
					t.Fatalf("err %v, want errBadPreface", err)
				}
				return
			}
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if (got == nil && tc.client != "") || (got != nil && got.String() != tc.client) {
				t.Fatalf("client %v, want %q", got, tc.client)
			}
			if !strings.HasPrefix(tc.rest, string(rest)) || (tc.client == "" && len(rest) == 0) {
				t.Fatalf("rest %q, want a start of %q", rest, tc.rest)
			}
		})
	}
}

// pipeTCP is a connected pair of TCP connections on 127.0.0.1.
func pipeTCP(t *testing.T) (server, client net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}
