package app

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
)

// A standby forwards each connection to the active node after a preface line,
//
//	NRFWD <token> <client ip:port>\r\n
//
// so that the active node counts and limits the client (limits.max_conns_per_ip),
// not the standby, which would otherwise stand for every client it forwards. The
// token is the active node's own, random, and published only in its JetStream
// lock (lockMeta): a node that can read the queue can present it, a client cannot.
const forwardMagic = "NRFWD "

// maxPreface bounds the preface line.
const maxPreface = 256

// errBadPreface is a preface with a wrong token or address: not one of ours.
var errBadPreface = errors.New("forwarded connection: bad preface")

// lockMeta is what an active node publishes in its lock for the standbys.
type lockMeta struct {
	Public string `json:"public"`        // its public_url, which every node must share
	Token  string `json:"fwd,omitempty"` // the forwarding token its listener accepts
}

func (m lockMeta) encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

func decodeLockMeta(s string) lockMeta {
	var m lockMeta
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

func newForwardToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// preface is the line a standby sends before a forwarded client's bytes.
func preface(token string, client net.Addr) []byte {
	return []byte(forwardMagic + token + " " + client.String() + "\r\n")
}

// readPreface reads the start of c. When it is a preface bearing token, it
// returns the client's address; rest is what was read after it (all of what
// was read when there is no preface). err is the read's error, or errBadPreface.
func readPreface(c net.Conn, token string) (client net.Addr, rest []byte, err error) {
	buf := make([]byte, 0, 512)
	tmp := make([]byte, 512)
	for {
		n, rerr := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if k := min(len(buf), len(forwardMagic)); string(buf[:k]) != forwardMagic[:k] {
			return nil, buf, rerr // a client's own request
		}
		if i := bytes.Index(buf, []byte("\r\n")); i >= 0 {
			client, err := parsePreface(string(buf[len(forwardMagic):i]), token)
			return client, buf[i+2:], err
		}
		if rerr != nil {
			return nil, buf, rerr
		}
		if len(buf) > maxPreface {
			return nil, nil, errBadPreface
		}
	}
}

// parsePreface checks "<token> <ip:port>" (no name resolution).
func parsePreface(line, token string) (net.Addr, error) {
	got, addr, ok := strings.Cut(line, " ")
	if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		return nil, errBadPreface
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, errBadPreface
	}
	return net.TCPAddrFromAddrPort(ap), nil
}
