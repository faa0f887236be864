package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/client"
	"notifyrelay/config"
	"notifyrelay/oma"
)

func startServer(t *testing.T) string {
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token", User: "alice"}}
	})
	return apptest.URL(a)
}

// Every mode hands the notifications over in order; acknowledged mode with their seq.
func TestReceiveInOrderInEveryMode(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	for _, m := range []struct {
		name string
		mode client.Mode
		typ  string
	}{{"ack", client.Acknowledged, oma.ChannelWebSockets}, {"oma", client.OMA, oma.ChannelWebSockets},
		{"poll", client.LongPoll, oma.ChannelLongPolling}, {"omapoll", client.OMALongPoll, oma.ChannelLongPolling}} {
		t.Run(m.name, func(t *testing.T) {
			ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{Type: m.typ, MaxNotifications: 5})
			if err != nil {
				t.Fatal(err)
			}
			mustPost(t, ch.CallbackURL, 1, 20) // queued before: OMA frames and poll answers carry lists
			r := &received{}
			receive(t, c, ch, client.ReceiveOptions{Mode: m.mode, Handler: r.handler, OnGap: r.onGap})
			mustPost(t, ch.CallbackURL, 21, 40)
			waitFor(t, "40 notifications", func() bool { return r.distinct() == 40 })
			r.mu.Lock()
			defer r.mu.Unlock()
			if want := seqRange(1, 40); !slices.Equal(r.ns, toInts(want)) {
				t.Fatalf("got %v", r.ns)
			}
			if (m.mode == client.Acknowledged || m.mode == client.LongPoll) && !slices.Equal(r.seqs, seqRange(1, 40)) {
				t.Fatalf("seqs %v", r.seqs)
			}
			if len(r.gaps) != 0 {
				t.Fatalf("gaps %v", r.gaps)
			}
		})
	}
}

// A channel another receiver acknowledged up to 3: a new receiver that starts
// from nothing learns from prevSeq that it never got 1…3; one resuming at its
// persisted LastSeq skips what it handled and sees no gap.
func TestGapAndResume(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{ClientCorrelator: "gap"})
	if err != nil {
		t.Fatal(err)
	}
	mustPost(t, ch.CallbackURL, 1, 3)
	first := &received{}
	stop := receiveUntil(t, c, ch, client.ReceiveOptions{Handler: first.handler}, func() bool { return first.distinct() == 3 })
	stop()
	mustPost(t, ch.CallbackURL, 4, 6)

	fresh := &received{}
	stop = receiveUntil(t, c, ch, client.ReceiveOptions{Handler: fresh.handler, OnGap: fresh.onGap}, func() bool { return fresh.distinct() == 3 })
	stop()
	if !slices.Equal(fresh.gaps, []client.Gap{{From: 1, To: 3}}) || !slices.Equal(fresh.ns, []int{4, 5, 6}) {
		t.Fatalf("fresh receiver: gaps %v ns %v", fresh.gaps, fresh.ns)
	}

	// The same channel again by its correlator (create or reuse), resuming at 6.
	again, err := c.CreateChannel(context.Background(), client.ChannelSpec{ClientCorrelator: "gap"})
	if err != nil || again.ResourceURL != ch.ResourceURL {
		t.Fatalf("reuse: %v %+v", err, again)
	}
	mustPost(t, ch.CallbackURL, 7, 7)
	resumed := &received{}
	stop = receiveUntil(t, c, again, client.ReceiveOptions{Handler: resumed.handler, OnGap: resumed.onGap, LastSeq: 6},
		func() bool { return resumed.distinct() == 1 })
	stop()
	if len(resumed.gaps) != 0 || !slices.Equal(resumed.seqs, []uint64{7}) {
		t.Fatalf("resumed: gaps %v seqs %v", resumed.gaps, resumed.seqs)
	}
}

// receiveUntil runs Receive until cond holds; stop ends it and waits.
func receiveUntil(t *testing.T, c *client.Client, ch client.Channel, o client.ReceiveOptions, cond func() bool) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Receive(ctx, ch, o) }()
	waitFor(t, "notifications", cond)
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Receive: %v", err)
		}
	}
}

// A handler error in acknowledged mode (WebSocket or long poll) leaves the
// notification unacknowledged: it comes again after the reconnect (the next
// poll, which acknowledges only 1 and 2), Receive goes on, and nothing after it
// overtakes it. The long-poll answer carries 1…5, so 4 and 5 come again too.
func TestHandlerErrorRedelivers(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	for _, m := range []struct {
		mode client.Mode
		typ  string
	}{{client.Acknowledged, oma.ChannelWebSockets}, {client.LongPoll, oma.ChannelLongPolling}} {
		t.Run(m.mode.String(), func(t *testing.T) {
			ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{Type: m.typ})
			if err != nil {
				t.Fatal(err)
			}
			mustPost(t, ch.CallbackURL, 1, 5)
			r := &received{}
			calls3 := 0
			h := func(ctx context.Context, n client.Notification) error {
				if n.Seq == 3 {
					if calls3++; calls3 == 1 {
						return errors.New("not now")
					}
				}
				return r.handler(ctx, n)
			}
			done := receive(t, c, ch, client.ReceiveOptions{Mode: m.mode, Handler: h, OnState: r.onState,
				Backoff: client.Backoff{Min: 10 * time.Millisecond}})
			waitFor(t, "5 notifications", func() bool { return r.distinct() == 5 })
			select {
			case err := <-done:
				t.Fatalf("Receive ended: %v", err)
			default:
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if !slices.Equal(r.seqs, seqRange(1, 5)) || calls3 != 2 || !slices.Contains(r.states, client.Disconnected) {
				t.Fatalf("seqs %v, seq 3 handed over %d times, states %v", r.seqs, calls3, r.states)
			}
		})
	}
}

// Acknowledged long polling reports gaps and resumes as the WebSocket does.
// Another receiver (raw polls here) took 1…3 and acknowledged them: a receiver
// starting from nothing gets 4 with prevSeq 3, a gap 1…3. On a second channel
// the other receiver took 1…3 without acknowledging: one resuming at LastSeq 5
// acknowledges 1…3 (all that was sent), gets 4…6 and hands over only 6.
func TestLongPollGapAndResume(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	newChannel := func() client.Channel {
		ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{Type: oma.ChannelLongPolling, MaxNotifications: 3})
		if err != nil {
			t.Fatal(err)
		}
		mustPost(t, ch.CallbackURL, 1, 6)
		if got := rawAckedPoll(t, ch, 0); !slices.Equal(got, seqRange(1, 3)) {
			t.Fatalf("raw poll ack=0: seqs %v", got)
		}
		return ch
	}
	ch := newChannel()
	if got := rawAckedPoll(t, ch, 3); !slices.Equal(got, seqRange(4, 6)) {
		t.Fatalf("raw poll ack=3: seqs %v", got)
	}
	fresh := &received{}
	stop := receiveUntil(t, c, ch, client.ReceiveOptions{Mode: client.LongPoll, Handler: fresh.handler, OnGap: fresh.onGap},
		func() bool { return fresh.distinct() == 3 })
	stop()
	if !slices.Equal(fresh.gaps, []client.Gap{{From: 1, To: 3}}) || !slices.Equal(fresh.seqs, seqRange(4, 6)) {
		t.Fatalf("fresh receiver: gaps %v seqs %v", fresh.gaps, fresh.seqs)
	}

	resumed := &received{}
	stop = receiveUntil(t, c, newChannel(), client.ReceiveOptions{Mode: client.LongPoll, Handler: resumed.handler,
		OnGap: resumed.onGap, LastSeq: 5}, func() bool { return resumed.distinct() == 1 })
	stop()
	if len(resumed.gaps) != 0 || !slices.Equal(resumed.seqs, []uint64{6}) || !slices.Equal(resumed.ns, []int{6}) {
		t.Fatalf("resumed: gaps %v seqs %v ns %v", resumed.gaps, resumed.seqs, resumed.ns)
	}
}

// rawAckedPoll is POST {channelURL}?ack=N by hand; it returns the answer's seqs.
func rawAckedPoll(t *testing.T, ch client.Channel, ack int) []uint64 {
	t.Helper()
	req, _ := http.NewRequest("POST", ch.ChannelURL+"?ack="+strconv.Itoa(ack), nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct{ Notifications []struct{ Seq uint64 } }
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != 200 {
		t.Fatalf("acked poll: %d %v", resp.StatusCode, err)
	}
	var seqs []uint64
	for _, n := range a.Notifications {
		seqs = append(seqs, n.Seq)
	}
	return seqs
}

// A deleted channel ends Receive with ErrChannelGone; a bad token with 401.
func TestReceiveFatalErrors(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{})
	if err != nil {
		t.Fatal(err)
	}
	bad := client.New(client.Options{BaseURL: base, Token: "nope"})
	var se *client.StatusError
	if err := bad.Receive(context.Background(), ch, client.ReceiveOptions{Handler: (&received{}).handler}); !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("bad token: %v", err)
	}
	if err := c.DeleteChannel(context.Background(), ch.ResourceURL); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{oma.ChannelWebSockets, oma.ChannelLongPolling} {
		ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteChannel(context.Background(), ch.ResourceURL); err != nil {
			t.Fatal(err)
		}
		mode := client.Acknowledged
		if typ == oma.ChannelLongPolling {
			mode = client.LongPoll
		}
		err = c.Receive(context.Background(), ch, client.ReceiveOptions{Mode: mode, Handler: (&received{}).handler})
		if !errors.Is(err, client.ErrChannelGone) {
			t.Fatalf("%v on a deleted channel: %v", mode, err)
		}
	}
	if err := c.Receive(context.Background(), ch, client.ReceiveOptions{Mode: client.LongPoll, Handler: (&received{}).handler}); err == nil {
		t.Fatal("LongPoll on a WebSockets channel: no error")
	}
	if _, err := c.GetChannel(context.Background(), ch.ResourceURL); !errors.Is(err, client.ErrChannelGone) {
		t.Fatalf("GetChannel: %v", err)
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func toInts(s []uint64) []int {
	out := make([]int, len(s))
	for i, v := range s {
		out[i] = int(v)
	}
	return out
}

// connCheck keeps a channel alive: of two channels with a 2 s lifetime, the one
// created and connected first, then renewed, outlives the idle one.
func TestReceiveRenewsTheLifetime(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	ctx := context.Background()
	held, err := c.CreateChannel(ctx, client.ChannelSpec{Lifetime: 2 * time.Second})
	if err != nil || held.Lifetime != 2*time.Second {
		t.Fatalf("create: %v %+v", err, held)
	}
	r := &received{}
	receive(t, c, held, client.ReceiveOptions{Handler: r.handler, OnState: r.onState})
	waitFor(t, "connected", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return slices.Contains(r.states, client.Connected) })
	idle, err := c.CreateChannel(ctx, client.ChannelSpec{Lifetime: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle channel to expire", func() bool {
		_, err := c.GetChannel(ctx, idle.ResourceURL)
		return errors.Is(err, client.ErrChannelGone)
	})
	if _, err := c.GetChannel(ctx, held.ResourceURL); err != nil {
		t.Fatalf("the received channel: %v", err)
	}
}

// XML and JSON documents mixed on one channel come out one by one, in order, in
// their own format, whether the server sent them as notificationLists (OMA
// mode, long poll) or one per frame (acknowledged mode).
func TestReceiveMixedFormats(t *testing.T) {
	base := startServer(t)
	c := client.New(client.Options{BaseURL: base, Token: "alice-token"})
	docs := []string{`<x:a xmlns:x="urn:x"><n>1</n></x:a>`, `<?xml version="1.0"?><b><n>2</n></b>`, `{"c":{"n":3}}`, `{"d":{"n":4}}`, `<e xmlns="urn:e"/>`}
	for _, m := range []struct {
		mode client.Mode
		typ  string
	}{{client.Acknowledged, oma.ChannelWebSockets}, {client.OMA, oma.ChannelWebSockets},
		{client.LongPoll, oma.ChannelLongPolling}, {client.OMALongPoll, oma.ChannelLongPolling}} {
		ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{Type: m.typ})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			ct := "application/json"
			if d[0] == '<' {
				ct = "application/xml"
			}
			resp, err := http.Post(ch.CallbackURL, ct, strings.NewReader(d))
			if err != nil || resp.StatusCode != 204 {
				t.Fatalf("post %s: %v %v", d, err, resp)
			}
			resp.Body.Close()
		}
		var mu sync.Mutex
		var got []string
		receive(t, c, ch, client.ReceiveOptions{Mode: m.mode, Handler: func(_ context.Context, n client.Notification) error {
			mu.Lock()
			got = append(got, n.Root+" "+n.ContentType)
			mu.Unlock()
			return nil
		}})
		waitFor(t, "5 documents", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 5 })
		mu.Lock()
		want := "a application/xml,b application/xml,c application/json,d application/json,e application/xml"
		if strings.Join(got, ",") != want {
			t.Errorf("%v: %v", m.mode, got)
		}
		mu.Unlock()
	}
}
