package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// deliverFunc takes one received body for a receiver. body is only valid during the call.
type deliverFunc func(receiver string, body []byte, now time.Time)

// listeners owns the tool's channel clients: one goroutine per WebSocket or long
// poll, all stopped and waited for by Close.
type listeners struct {
	e       *env
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[*websocket.Conn]struct{}
	hc      *http.Client
	dialer  *websocket.Dialer
	deliver deliverFunc
	dropped atomic.Int64 // idle sockets that closed (no reconnect)
}

func newListeners(e *env, deliver deliverFunc) *listeners {
	ctx, cancel := context.WithCancel(context.Background())
	return &listeners{e: e, ctx: ctx, cancel: cancel, conns: map[*websocket.Conn]struct{}{}, deliver: deliver,
		hc: &http.Client{Timeout: e.o.Timeout + 2*time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: 1 << 16, IdleConnTimeout: time.Minute}},
		dialer: &websocket.Dialer{HandshakeTimeout: e.o.Timeout, ReadBufferSize: 4096, WriteBufferSize: 1024}}
}

// dial opens a WebSocket on channelURL offering proto.
func (l *listeners) dial(channelURL, proto string) (*websocket.Conn, error) {
	h := http.Header{}
	if l.e.o.Token != "" {
		h.Set("Authorization", "Bearer "+l.e.o.Token)
	}
	d := *l.dialer
	d.Subprotocols = []string{proto}
	conn, resp, err := d.DialContext(l.ctx, channelURL, h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("websocket %s: %w", redact(channelURL), err)
	}
	if conn.Subprotocol() != proto {
		_ = conn.Close()
		return nil, fmt.Errorf("websocket %s: server chose subprotocol %q, not %q", redact(channelURL), conn.Subprotocol(), proto)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ctx.Err(); err != nil { // Close has begun: it would miss this conn
		_ = conn.Close()
		return nil, err
	}
	l.conns[conn] = struct{}{}
	return conn, nil
}

func (l *listeners) forget(conn *websocket.Conn) {
	_ = conn.Close()
	l.mu.Lock()
	delete(l.conns, conn)
	l.mu.Unlock()
}

// websocket connects receiver to its channel and reads it until Close. With
// reconnect it dials again after a drop (acknowledged mode then redelivers what was
// not acknowledged); without, a drop is counted in dropped.
func (l *listeners) websocket(receiver string, ch channel, ack, reconnect bool) error {
	proto := protoOMA
	if ack {
		proto = protoAck
	}
	conn, err := l.dial(ch.ChannelURL, proto)
	if err != nil {
		return err
	}
	l.wg.Go(func() {
		for conn != nil {
			err := l.read(conn, receiver, ack)
			l.forget(conn)
			if l.ctx.Err() != nil {
				return
			}
			if !reconnect {
				l.dropped.Add(1)
				return
			}
			l.e.stats.Error("websocket " + closeKind(err))
			conn = l.redial(ch.ChannelURL, proto)
		}
	})
	return nil
}

// redial retries until it connects or Close; nil means closed.
func (l *listeners) redial(channelURL, proto string) *websocket.Conn {
	for sleepCtx(l.ctx, 250*time.Millisecond) {
		conn, err := l.dial(channelURL, proto)
		if err == nil {
			return conn
		}
		l.e.stats.Error("websocket dial")
	}
	return nil
}

func closeKind(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d", ce.Code)
	}
	return "read error"
}

// read is the connection's only reader and (but for pongs) only writer.
func (l *listeners) read(conn *websocket.Conn, receiver string, ack bool) error {
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case ack:
			err = l.readAck(conn, receiver, frame, now)
		case isConnCheck(frame):
			err = conn.WriteMessage(websocket.TextMessage, connAckFor(frame))
		default:
			l.deliver(receiver, frame, now)
		}
		if err != nil {
			return err
		}
	}
}

func (l *listeners) readAck(conn *websocket.Conn, receiver string, frame []byte, now time.Time) error {
	var f ackFrame
	if err := json.Unmarshal(frame, &f); err != nil {
		l.e.stats.Error("bad ack-mode frame")
		return nil
	}
	if f.ConnCheck != nil {
		return conn.WriteMessage(websocket.TextMessage, []byte(`{"connAck":{}}`))
	}
	if f.Seq == 0 {
		return nil // connAck or another control frame
	}
	l.deliver(receiver, []byte(f.Notification), now)
	return conn.WriteMessage(websocket.TextMessage, ackMessage(f.Seq))
}

// longPoll polls receiver's channel until Close.
func (l *listeners) longPoll(receiver string, ch channel) {
	l.wg.Go(func() {
		for l.ctx.Err() == nil {
			body, err := l.pollOnce(ch.ChannelURL)
			if err != nil {
				if l.ctx.Err() == nil {
					l.e.stats.Error("long poll: " + errorKind(err))
					sleepCtx(l.ctx, 250*time.Millisecond)
				}
				continue
			}
			l.deliver(receiver, body, time.Now())
		}
	})
}

func (l *listeners) pollOnce(channelURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(l.ctx, "POST", channelURL, strings.NewReader(`{"longPollingRequestParameters":null}`))
	if err != nil {
		return nil, fmt.Errorf("long poll: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, application/xml") // lists come in the subscriptions' format
	if l.e.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+l.e.o.Token)
	}
	resp, err := l.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("long poll %s: %w", redact(channelURL), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("long poll %s: %w", redact(channelURL), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{Method: "POST", Path: redact(channelURL), Status: resp.StatusCode, Body: body}
	}
	return body, nil
}

// Close stops every client and waits for them.
func (l *listeners) Close() {
	l.cancel()
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
