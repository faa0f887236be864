package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// signer adds Standard Webhooks signature headers (webhook-id, webhook-timestamp,
// webhook-signature) to every attempt. With no key it adds only webhook-id, so
// receivers can deduplicate whether or not signing is on.
type signer struct {
	key []byte // decoded delivery.signing_secret; nil: unsigned
}

// signature is "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
func (s signer) signature(id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// headers returns the header pairs for one attempt at time ts.
func (s signer) headers(id string, ts time.Time, body []byte) [][2]string {
	h := [][2]string{{"webhook-id", id}}
	if s.key == nil {
		return h
	}
	return append(h,
		[2]string{"webhook-timestamp", strconv.FormatInt(ts.Unix(), 10)},
		[2]string{"webhook-signature", s.signature(id, ts, body)})
}
