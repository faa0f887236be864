package client

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/oma"
)

// Subprotocols of the channel WebSocket.
const (
	ProtocolAck = "notifyrelay.ack.v1"
	ProtocolOMA = "notificationchannel-netapi-rest.openmobilealliance.org"
)

// socket is one open WebSocket: read by the session's goroutine, written (acks,
// connChecks) under mu by it and the renewer.
type socket struct {
	conn *websocket.Conn
	mu   sync.Mutex
}

func (s *socket) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.conn.WriteMessage(websocket.TextMessage, b)
}

// wsSession holds one socket until it fails or ctx ends.
func (r *receiver) wsSession(ctx context.Context) (bool, error) {
	conn, err := r.dial(ctx)
	if err != nil {
		return false, err
	}
	s := &socket{conn: conn}
	r.state(Connected, nil, 0)
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.renew(sctx, s) })
	wg.Go(func() { <-sctx.Done(); s.close(ctx.Err() != nil) })
	progress, err := r.read(sctx, s)
	cancel()
	wg.Wait()
	return progress, err
}

// close ends the socket; with bye (Receive is stopping) it says goodbye first.
func (s *socket) close(bye bool) {
	if bye {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "client stopping")
		_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
	_ = s.conn.Close()
}

func (r *receiver) dial(ctx context.Context) (*websocket.Conn, error) {
	proto, u := ProtocolOMA, r.ch.ChannelURL
	if r.o.Mode == Acknowledged {
		proto = ProtocolAck
		if r.o.Window > 0 {
			u += sep(u) + "window=" + strconv.Itoa(r.o.Window)
		}
	}
	h := http.Header{}
	if r.c.token != "" {
		h.Set("Authorization", "Bearer "+r.c.token)
	}
	d := *r.o.Dialer
	d.Subprotocols = []string{proto}
	conn, resp, err := d.DialContext(ctx, u, h)
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		return nil, statusError("GET", u, resp.StatusCode, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", redact(u), err)
	}
	if conn.Subprotocol() != proto {
		_ = conn.Close()
		return nil, fmt.Errorf("websocket %s: server chose subprotocol %q, not %q", redact(u), conn.Subprotocol(), proto)
	}
	return conn, nil
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// renew sends a connCheck every RenewEvery: it restarts the channel's lifetime.
func (r *receiver) renew(ctx context.Context, s *socket) {
	msg := []byte(`{"connCheck":{"checkInterval":` + strconv.Itoa(int(r.o.RenewEvery/time.Second)) + `}}`)
	t := time.NewTicker(r.o.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.write(msg) != nil {
				return // the reader sees the broken socket too
			}
		}
	}
}

// read is the socket's reader: every frame in order, until an error.
func (r *receiver) read(ctx context.Context, s *socket) (bool, error) {
	progress := false
	s.conn.SetPingHandler(func(data string) error {
		_ = s.conn.SetReadDeadline(time.Now().Add(r.o.ReadTimeout))
		_ = s.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		return nil
	})
	for {
		_ = s.conn.SetReadDeadline(time.Now().Add(r.o.ReadTimeout))
		_, frame, err := s.conn.ReadMessage()
		if err != nil {
			return progress, fmt.Errorf("websocket: %w", err)
		}
		handled, err := r.frame(ctx, s, frame)
		progress = progress || handled
		if err != nil {
			return progress, err
		}
	}
}

func (r *receiver) frame(ctx context.Context, s *socket, frame []byte) (bool, error) {
	if r.o.Mode == Acknowledged {
		return r.ackFrame(ctx, s, frame)
	}
	return r.omaFrame(ctx, s, frame)
}

// wireFrame is a server frame of the acknowledged mode, or a control message.
type wireFrame struct {
	Seq          uint64          `json:"seq"`
	PrevSeq      *uint64         `json:"prevSeq"` // absent: the server does not say (no information)
	ContentType  string          `json:"contentType"`
	Notification string          `json:"notification"`
	ConnCheck    json.RawMessage `json:"connCheck"`
}

func (r *receiver) ackFrame(ctx context.Context, s *socket, frame []byte) (bool, error) {
	var f wireFrame
	if err := json.Unmarshal(frame, &f); err != nil {
		return false, fmt.Errorf("acknowledged-mode frame: %w", err)
	}
	if f.ConnCheck != nil {
		return false, s.write([]byte(`{"connAck":{}}`))
	}
	if f.Seq == 0 {
		return false, nil // connAck, the answer to our connCheck
	}
	handled, err := r.handleSeq(ctx, f)
	if err != nil {
		return false, err
	}
	return handled, s.write(ackMessage(f.Seq))
}

// handleSeq hands a notification that carries a seq (acknowledged-mode frame or
// acknowledged long-poll answer) to the handler, unless its seq is one handled
// before (a repeat after a reconnect or a restart: acknowledged but skipped).
// handled reports whether the handler took it; an error leaves it unacknowledged.
func (r *receiver) handleSeq(ctx context.Context, f wireFrame) (handled bool, err error) {
	if f.Seq <= r.last {
		return false, nil
	}
	r.checkGap(f.Seq, f.PrevSeq)
	n := Notification{Seq: f.Seq, ContentType: f.ContentType, Body: []byte(f.Notification), Root: root(f.Notification)}
	if f.PrevSeq != nil {
		n.PrevSeq = *f.PrevSeq
	}
	if err := r.o.Handler(ctx, n); err != nil {
		return false, &handlerError{err: err, retry: true}
	}
	r.last = f.Seq
	return true, nil
}

// checkGap reports what the receiver never got before seq: after r.last up to
// prevSeq when the frame names it, else up to seq-1 (seq grows by one per
// notification of the channel).
func (r *receiver) checkGap(seq uint64, prevSeq *uint64) {
	to := seq - 1
	if prevSeq != nil {
		to = *prevSeq
	}
	if to > r.last && r.o.OnGap != nil {
		r.o.OnGap(Gap{From: r.last + 1, To: to})
	}
}

func ackMessage(seq uint64) []byte {
	return []byte(`{"ack":` + strconv.FormatUint(seq, 10) + `}`)
}

// root is the local name of a document's root, read from its first tokens only.
func root(doc string) string {
	if f, ok := oma.SniffFormat([]byte(doc)); ok && f == oma.XML {
		d := xml.NewDecoder(strings.NewReader(doc))
		for {
			tok, err := d.Token()
			if err != nil {
				return ""
			}
			if se, ok := tok.(xml.StartElement); ok {
				return se.Name.Local
			}
		}
	}
	d := json.NewDecoder(strings.NewReader(doc))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	key, _ := d.Token()
	k, _ := key.(string)
	return k[strings.LastIndexByte(k, ':')+1:]
}

// omaFrame handles an OMA-mode frame: one document or a notificationList.
func (r *receiver) omaFrame(ctx context.Context, s *socket, frame []byte) (bool, error) {
	docs, err := oma.SplitNotifications(frame)
	if err != nil {
		return false, fmt.Errorf("OMA-mode frame: %w", err)
	}
	if len(docs) == 1 && docs[0].Root == "connCheck" {
		return false, s.write(connAck(docs[0].Format))
	}
	if len(docs) == 1 && docs[0].Root == "connAck" {
		return false, nil
	}
	return len(docs) > 0, r.handleAll(ctx, docs)
}

func connAck(f oma.Format) []byte {
	if f == oma.XML {
		return []byte(oma.XMLHeader + `<nc:connAck xmlns:nc="` + oma.NSChannel + `"/>`)
	}
	return []byte(`{"connAck":{}}`)
}

// handleAll hands documents that carry no seq to the handler.
func (r *receiver) handleAll(ctx context.Context, docs []oma.Document) error {
	for _, d := range docs {
		n := Notification{ContentType: d.Format.ContentType(), Root: d.Root, Body: d.Body}
		if err := r.o.Handler(ctx, n); err != nil {
			return &handlerError{err: err}
		}
	}
	return nil
}
