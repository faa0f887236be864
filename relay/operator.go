package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// Bounds of the operator API's inputs.
const (
	maxNotifyURL  = 2048
	maxOrderKey   = 256
	maxBatchItems = 10000
)

// operatorAPI serves /relay/v1: operators hand notifications for webhook URLs to
// the relay and inspect their delivery. Operator tokens only.
type operatorAPI struct {
	q     queue.Engine
	auth  *api.Auth
	cfg   config.Config
	dests *destBook
	subs  func(ctx context.Context, dest string) (string, bool) // subscription notifyURLs
	log   zerolog.Logger
}

func (o *operatorAPI) routes(rt *api.Router) {
	const base = "/relay/v1"
	rt.Handle(base+"/deliveries", api.Methods{fasthttp.MethodPost: o.only(o.postDelivery)})
	rt.Handle(base+"/deliveries:batch", api.Methods{fasthttp.MethodPost: o.only(o.postBatch)})
	rt.Handle(base+"/deliveries/{id}", api.Methods{fasthttp.MethodGet: o.only(o.getDelivery)})
	rt.Handle(base+"/deadletters", api.Methods{fasthttp.MethodGet: o.only(o.listDeadLetters)})
	rt.Handle(base+"/deadletters/{id}", api.Methods{fasthttp.MethodPost: o.only(o.replay)})
	rt.Handle(base+"/destinations", api.Methods{fasthttp.MethodGet: o.only(o.listDestinations)})
}

// only lets operator tokens through: 401 without a valid token, 403 POL0001 for a
// user token, 406 when the client accepts no JSON (every answer here is JSON).
func (o *operatorAPI) only(h api.Handler) api.Handler {
	return func(ctx *fasthttp.RequestCtx, p api.Params) {
		pr, e := o.auth.Authenticate(ctx, false)
		switch {
		case e != nil:
		case !pr.Operator:
			e = oma.Forbidden("the operator API needs an operator token")
		case !acceptsJSON(string(ctx.Request.Header.Peek("Accept"))):
			e = oma.NotAcceptable(string(ctx.Request.Header.Peek("Accept")))
		}
		if e != nil {
			api.WriteError(ctx, oma.JSON, e)
			return
		}
		h(ctx, p)
	}
}

func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt == "*/*" || mt == "application/*" || mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return true
		}
	}
	return false
}

// deliveryItem is one notification handed in: a batch element, or a single POST's
// query and body.
type deliveryItem struct {
	NotifyURL   string `json:"notifyURL"`
	Key         string `json:"key"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

// accepted is a validated item ready to be queued.
type accepted struct {
	id     string
	dest   string
	target destTarget
	entry  queue.Entry
}

// checker validates items, resolving each distinct notifyURL once per request.
type checker struct {
	ctx          context.Context
	allowPrivate bool
	seen         map[string]error
}

// check validates one item; part prefixes the name of a bad part ("[3]." in a batch).
func (c *checker) check(it deliveryItem, part string) (accepted, *oma.RequestError) {
	switch {
	case it.NotifyURL == "" || len(it.NotifyURL) > maxNotifyURL:
		return accepted{}, oma.InvalidInput(part + "notifyURL")
	case len(it.Key) > maxOrderKey:
		return accepted{}, oma.InvalidInput(part + "key (at most 256 bytes)")
	case !validMediaType(it.ContentType):
		return accepted{}, oma.InvalidInput(part + "contentType")
	case it.Body == "":
		return accepted{}, oma.InvalidInput(part + "body")
	}
	if err := c.target(it.NotifyURL); err != nil {
		return accepted{}, oma.InvalidInput(part + "notifyURL")
	}
	id := newDeliveryID()
	dest := operatorDest(it.NotifyURL, it.Key)
	data := oma.Envelope{ContentType: it.ContentType, Body: []byte(it.Body)}.Marshal()
	if len(data) > queue.MaxEntrySize {
		return accepted{}, oma.TooLarge(queue.MaxEntrySize)
	}
	return accepted{id: id, dest: dest, target: destTarget{NotifyURL: it.NotifyURL, Key: it.Key},
		entry: queue.Entry{ID: id, Dest: dest, Data: data}}, nil
}

func (c *checker) target(url string) error {
	if err, ok := c.seen[url]; ok {
		return err
	}
	err := checkTarget(c.ctx, url, c.allowPrivate)
	c.seen[url] = err
	return err
}

func validMediaType(ct string) bool {
	_, _, err := mime.ParseMediaType(ct)
	return err == nil
}

func (o *operatorAPI) checker(ctx context.Context) *checker {
	return &checker{ctx: ctx, allowPrivate: o.cfg.Delivery.AllowPrivateTargets, seen: map[string]error{}}
}

// queueAll makes every item durable in one Append: all or none.
func (o *operatorAPI) queueAll(ctx context.Context, items []accepted) error {
	now := time.Now()
	w := queue.Write{Entries: make([]queue.Entry, 0, len(items))}
	newDests := map[string]destTarget{}
	for _, a := range items {
		w.Entries = append(w.Entries, a.entry)
		w.Records = append(w.Records, queue.Record{Key: []byte(keyAccepted + a.id), Value: mustJSON(acceptedRecord{
			Dest: a.dest, NotifyURL: a.target.NotifyURL, Key: a.target.Key, CreatedAt: now})})
		if _, dup := newDests[a.dest]; !dup {
			if recs := o.dests.record(a.dest, a.target); recs != nil {
				w.Records = append(w.Records, recs...)
				newDests[a.dest] = a.target
			}
		}
	}
	if _, err := o.q.Append(ctx, w); err != nil {
		return fmt.Errorf("queue deliveries: %w", err)
	}
	for dest, t := range newDests {
		o.dests.remember(dest, t)
	}
	return nil
}

// postDelivery is POST /deliveries?notifyURL=&key=: the body is the notification.
func (o *operatorAPI) postDelivery(ctx *fasthttp.RequestCtx, _ api.Params) {
	args := ctx.QueryArgs()
	it := deliveryItem{NotifyURL: string(args.Peek("notifyURL")), Key: string(args.Peek("key")),
		ContentType: string(ctx.Request.Header.ContentType()), Body: string(ctx.PostBody())}
	if !validMediaType(it.ContentType) {
		api.WriteError(ctx, oma.JSON, oma.UnsupportedMedia(it.ContentType))
		return
	}
	a, e := o.checker(ctx).check(it, "")
	if e != nil {
		api.WriteError(ctx, oma.JSON, e)
		return
	}
	if err := o.queueAll(ctx, []accepted{a}); err != nil {
		o.internal(ctx, err)
		return
	}
	ctx.Response.Header.Set("Location", o.deliveryURL(a.id))
	writeJSON(ctx, fasthttp.StatusAccepted, map[string]string{"id": a.id, "state": statePending})
}

// postBatch is POST /deliveries:batch: a JSON array queued all or none.
func (o *operatorAPI) postBatch(ctx *fasthttp.RequestCtx, _ api.Params) {
	if f, ok := oma.FormatOf(string(ctx.Request.Header.ContentType())); !ok || f != oma.JSON {
		api.WriteError(ctx, oma.JSON, oma.UnsupportedMedia(string(ctx.Request.Header.ContentType())))
		return
	}
	items, e := decodeBatch(ctx.PostBody())
	if e != nil {
		api.WriteError(ctx, oma.JSON, e)
		return
	}
	c := o.checker(ctx)
	all := make([]accepted, 0, len(items))
	ids := make([]string, 0, len(items))
	for i, it := range items {
		a, e := c.check(it, "["+strconv.Itoa(i)+"].")
		if e != nil {
			api.WriteError(ctx, oma.JSON, e)
			return
		}
		all, ids = append(all, a), append(ids, a.id)
	}
	if err := o.queueAll(ctx, all); err != nil {
		o.internal(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusAccepted, map[string][]string{"ids": ids})
}

// decodeBatch reads the array strictly, naming the index of a malformed element.
func decodeBatch(body []byte) ([]deliveryItem, *oma.RequestError) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, oma.InvalidInput("body (a JSON array of {notifyURL, key, contentType, body})")
	}
	if len(raw) == 0 || len(raw) > maxBatchItems {
		return nil, oma.InvalidInput("body (1 to " + strconv.Itoa(maxBatchItems) + " deliveries)")
	}
	items := make([]deliveryItem, len(raw))
	for i, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&items[i]); err != nil {
			return nil, oma.InvalidInput("[" + strconv.Itoa(i) + "]")
		}
	}
	return items, nil
}

func (o *operatorAPI) deliveryURL(id string) string {
	return o.cfg.Public() + o.cfg.BasePath + "/relay/v1/deliveries/" + id
}

// internal answers a queue failure: 503 while stopping, else 500. Nothing was queued.
func (o *operatorAPI) internal(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusInternalServerError
	if errors.Is(err, queue.ErrClosed) {
		status = fasthttp.StatusServiceUnavailable
	}
	o.log.Warn().Err(err).Msg("operator API")
	api.WriteError(ctx, oma.JSON, &oma.RequestError{Status: status, MessageID: "SVC0001",
		Text: oma.TextSVC0001, Variables: []string{"queue unavailable"}})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	api.Write(ctx, status, oma.JSON, mustJSON(v))
}
