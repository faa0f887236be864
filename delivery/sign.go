package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// signer adds Standard Webhooks signature headers (webhook-id, webhook-timestamp,
// webhook-signature) and the gap detection headers (notifyrelay-seq,
// notifyrelay-prev-seq) to every attempt, and with a key notifyrelay-signature,
// which covers the seq headers too. With no key it adds only webhook-id and the
// seq headers, so receivers can deduplicate and find gaps whether or not signing
// is on.
type signer struct {
	// keys are delivery.signing_secret then previous_signing_secrets, decoded;
	// none: unsigned. Each signs: Standard Webhooks verifiers accept a header
	// holding several signatures, space-separated, if one of them matches.
	keys [][]byte
}

func (s signer) on() bool { return len(s.keys) > 0 }

// signature is "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", one per key.
func (s signer) signature(id string, ts time.Time, body []byte) string {
	return s.sign(id, strconv.AppendInt(nil, ts.Unix(), 10), body)
}

// seqSignature is "v1,<base64 HMAC-SHA256(key, id.timestamp.seq.prevSeq.body)>",
// one per key: the Standard Webhooks signature cannot cover headers, so the seq
// headers get a signature of their own that verifiers check beside it
// (docs/delivery.md).
func (s signer) seqSignature(id string, ts time.Time, seq, prevSeq uint64, body []byte) string {
	mid := strconv.AppendInt(nil, ts.Unix(), 10)
	mid = strconv.AppendUint(append(mid, '.'), seq, 10)
	mid = strconv.AppendUint(append(mid, '.'), prevSeq, 10)
	return s.sign(id, mid, body)
}

// sign is the space-separated "v1,<base64 HMAC-SHA256(key, id.mid.body)>" of
// every key.
func (s signer) sign(id string, mid, body []byte) string {
	sigs := make([]string, len(s.keys))
	for i, key := range s.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(mid)
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return strings.Join(sigs, " ")
}

// Header names of gap detection (docs/delivery.md).
const (
	HeaderSeq          = "notifyrelay-seq"
	HeaderPrevSeq      = "notifyrelay-prev-seq"
	HeaderSeqSignature = "notifyrelay-signature"
)

// headers returns the header pairs for one attempt of notification seq (prevSeq
// before it) at time ts.
func (s signer) headers(id string, ts time.Time, seq, prevSeq uint64, body []byte) [][2]string {
	h := [][2]string{{"webhook-id", id},
		{HeaderSeq, strconv.FormatUint(seq, 10)}, {HeaderPrevSeq, strconv.FormatUint(prevSeq, 10)}}
	if !s.on() {
		return h
	}
	return append(h,
		[2]string{"webhook-timestamp", strconv.FormatInt(ts.Unix(), 10)},
		[2]string{"webhook-signature", s.signature(id, ts, body)},
		[2]string{HeaderSeqSignature, s.seqSignature(id, ts, seq, prevSeq, body)})
}

// signedHeader reports whether a header name is one the signer sets: custom
// headers never replace those.
func signedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "webhook-id", "webhook-timestamp", "webhook-signature", HeaderSeq, HeaderPrevSeq, HeaderSeqSignature:
		return true
	}
	return false
}
