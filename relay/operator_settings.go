package relay

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"notifyrelay/api"
	"notifyrelay/delivery"
	"notifyrelay/destkind"
	"notifyrelay/oma"
)

// putSettings is PUT /destinations/{id}: the destination's rate limit and custom
// headers, replaced as a whole ({} clears them). An operator destination may be
// set before its first delivery (its id is known from (notifyURL, key)).
func (o *operatorAPI) putSettings(r *api.Request) (api.Answer, *oma.RequestError) {
	if f, ok := oma.FormatOf(string(r.Request.Header.ContentType())); !ok || f != oma.JSON {
		return api.Answer{}, oma.UnsupportedMedia(string(r.Request.Header.ContentType()))
	}
	dest := r.Params["id"]
	if !wellFormedOperatorDest(dest) && !o.knownDest(r, dest) {
		return api.Answer{}, oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	var s delivery.Settings
	dec := json.NewDecoder(bytes.NewReader(r.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return api.Answer{}, oma.InvalidInput("body ({\"rateLimit\":{\"rate\",\"burst\"},\"headers\":{}})")
	}
	if bad := delivery.CheckSettings(dest, s); bad != "" {
		return api.Answer{}, oma.InvalidInput(bad)
	}
	if err := o.ctl.SetSettings(r, dest, s); err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.OK(mustJSON(o.destinationView(r, o.q.DestStats(dest), time.Now()))), nil
}

// wellFormedOperatorDest: "o:" and 32 hex digits, as delivery.OperatorDest makes.
func wellFormedOperatorDest(dest string) bool {
	h, ok := strings.CutPrefix(dest, destkind.OperatorPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}
