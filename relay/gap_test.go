package relay_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// gapReceiver is what a receiver does to find gaps: remember the seqs it got (2xx)
// and flag a notification whose notifyrelay-prev-seq it never got.
type gapReceiver struct {
	mu   sync.Mutex
	got  map[uint64]bool
	gaps []uint64 // the prev-seqs it found missing
}

func (g *gapReceiver) see(h http.Header) {
	seq, err1 := strconv.ParseUint(h.Get("notifyrelay-seq"), 10, 64)
	prev, err2 := strconv.ParseUint(h.Get("notifyrelay-prev-seq"), 10, 64)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err1 != nil || err2 != nil {
		g.gaps = append(g.gaps, 1<<63) // a missing header is a failure too
		return
	}
	if prev != 0 && !g.got[prev] {
		g.gaps = append(g.gaps, prev)
	}
	g.got[seq] = true
}

// seqSignature is the documented notifyrelay-signature, computed here from
// docs/delivery.md, not from the server's code.
func seqSignature(key []byte, h http.Header, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(strings.Join([]string{h.Get("webhook-id"), h.Get("webhook-timestamp"),
		h.Get("notifyrelay-seq"), h.Get("notifyrelay-prev-seq"), string(body)}, ".")))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// A receiver finds the gap a dead letter leaves through notifyrelay-prev-seq, asks
// for the dead letters of its URL, replays the one it missed, and gets it at the
// end of the destination (a new seq, the same webhook-id). Every attempt is signed,
// the seq headers included.
func TestGapDetectedAfterDeadLetter(t *testing.T) {
	rawKey := []byte("a 32-byte secret for the gaps!!!")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(rawKey)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	g := &gapReceiver{got: map[uint64]bool{}}
	var refused sync.Once
	var badSig []string
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if wh.Verify(body, r.Header) != nil || r.Header.Get("notifyrelay-signature") != seqSignature(rawKey, r.Header, body) {
			g.mu.Lock()
			badSig = append(badSig, r.Header.Get("notifyrelay-seq"))
			g.mu.Unlock()
		}
		if strings.Contains(string(body), "refuse") {
			done := false
			refused.Do(func() { done = true })
			if done { // the first attempt: a 4xx dead-letters it at once
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
		}
		g.see(r.Header)
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, func(c *config.Config) { c.Delivery.SigningSecret = secret })
	target := rc.URL("/gap")
	whPost(t, a, target, "", `{"n":1}`)
	lost := whPost(t, a, target, "", `{"n":2,"refuse":true}`)
	last := whPost(t, a, target, "", `{"n":3}`)
	whWaitState(t, a, last, "delivered", 10*time.Second)
	g.mu.Lock()
	gaps := append([]uint64(nil), g.gaps...)
	g.mu.Unlock()
	if len(gaps) != 1 || gaps[0] != 2 {
		t.Fatalf("gaps found %v, want [2] (the dead letter's seq)", gaps)
	}

	// The receiver asks for what it missed and replays it.
	status, _, b := whDo(t, http.MethodGet, apptest.URL(a)+"/relay/v1/deadletters?notifyURL="+url.QueryEscape(target), whOperator, "", nil)
	var dl struct{ Deadletters []struct{ ID string } }
	if err := json.Unmarshal(b, &dl); err != nil || status != http.StatusOK || len(dl.Deadletters) != 1 || dl.Deadletters[0].ID != lost {
		t.Fatalf("dead letters of %s: %d %s", target, status, b)
	}
	if status, _, b := whDo(t, http.MethodPost, apptest.URL(a)+"/relay/v1/deadletters/"+lost+":replay", whOperator, "", nil); status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", status, b)
	}
	whWaitState(t, a, lost, "delivered", 10*time.Second)
	reqs := rc.requests()
	want := []struct{ id, seq, prev string }{{"", "1", "0"}, {lost, "2", "1"}, {last, "3", "2"}, {lost, "4", "3"}}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		h := reqs[i].Header
		if (w.id != "" && reqs[i].ID != w.id) || h.Get("notifyrelay-seq") != w.seq || h.Get("notifyrelay-prev-seq") != w.prev {
			t.Errorf("request %d: webhook-id %s seq %s prev-seq %s, want %+v", i+1, reqs[i].ID, h.Get("notifyrelay-seq"), h.Get("notifyrelay-prev-seq"), w)
		}
	}
	if len(badSig) > 0 {
		t.Errorf("attempts with seq %v failed signature verification", badSig)
	}
}

// A tampered seq header no longer matches notifyrelay-signature.
func TestSeqSignatureCoversTheSeqHeaders(t *testing.T) {
	rawKey := []byte("another 32-byte secret for tests")
	var mu sync.Mutex
	var ok, tamperedOK bool
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		ok = r.Header.Get("notifyrelay-signature") == seqSignature(rawKey, r.Header, body)
		h := r.Header.Clone()
		h.Set("notifyrelay-prev-seq", "7")
		tamperedOK = h.Get("notifyrelay-signature") == seqSignature(rawKey, h, body)
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, func(c *config.Config) { c.Delivery.SigningSecret = base64.StdEncoding.EncodeToString(rawKey) })
	whWaitState(t, a, whPost(t, a, rc.URL("/s"), "", `{"n":1}`), "delivered", 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if !ok || tamperedOK {
		t.Fatalf("signature verifies: %v; with a tampered prev-seq: %v", ok, tamperedOK)
	}
}

// While a signing secret is rotated, every attempt carries one signature per
// secret in webhook-signature and notifyrelay-signature: a receiver still on the
// previous secret verifies, and so does one already on the new.
func TestSigningSecretRotation(t *testing.T) {
	oldKey, newKey := []byte("the previous 32-byte secret....."), []byte("the new 32-byte signing secret!!")
	oldSecret := "whsec_" + base64.StdEncoding.EncodeToString(oldKey)
	newSecret := "whsec_" + base64.StdEncoding.EncodeToString(newKey)
	var verifiers []*standardwebhooks.Webhook
	for _, s := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		verifiers = append(verifiers, wh)
	}
	type check struct{ oldOK, newOK, seqOK bool }
	got := make(chan check, 1)
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		seqSigs := strings.Fields(r.Header.Get("notifyrelay-signature"))
		got <- check{verifiers[0].Verify(body, r.Header) == nil, verifiers[1].Verify(body, r.Header) == nil,
			len(seqSigs) == 2 && seqSigs[0] == seqSignature(newKey, r.Header, body) && seqSigs[1] == seqSignature(oldKey, r.Header, body)}
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, func(c *config.Config) {
		c.Delivery.SigningSecret = newSecret
		c.Delivery.PreviousSigningSecrets = []string{oldSecret}
	})
	whPost(t, a, rc.URL("/rotating"), "", `{"n":1}`)
	select {
	case c := <-got:
		if !c.oldOK || !c.newOK || !c.seqOK {
			t.Fatalf("verified with the previous secret %v, with the new %v; seq signatures %v", c.oldOK, c.newOK, c.seqOK)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
}
