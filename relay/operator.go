package relay

import (
	"go.opentelemetry.io/otel/trace"

	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/delivery"
	"notifyrelay/oma"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
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
	tracer trace.Tracer
	q      operatorQueue
	auth   *api.Auth
	cfg    config.Config
	book   *delivery.Book
	ctl    *delivery.Controls
	idem   *idemGate
	subs   func(ctx context.Context, dest string) (string, bool) // subscription notifyURLs
}

// operatorQueue is what the operator API uses of the queue.
type operatorQueue interface {
	Append(ctx context.Context, w queue.Write) ([]uint64, error)
	queue.DeadLetters
	Dests(prefix string) []queue.DestStats
	DestStats(dest string) queue.DestStats
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
}

func (o *operatorAPI) routes(rt *api.Router) {
	base, open := "/relay/v1", api.ForOperator(o.auth)
	rt.Handle(base+"/deliveries", open, api.Methods{fasthttp.MethodPost: o.postDelivery})
	rt.Handle(base+"/deliveries:batch", open, api.Methods{fasthttp.MethodPost: o.postBatch})
	rt.Handle(base+"/deliveries/{id}", open, api.Methods{fasthttp.MethodGet: o.getDelivery})
	rt.Handle(base+"/deadletters", open, api.Methods{fasthttp.MethodGet: o.listDeadLetters})
	rt.Handle(base+"/deadletters:replay", open, api.Methods{fasthttp.MethodPost: o.postReplayRange})
	rt.Handle(base+"/deadletters/{id}", open, api.Methods{fasthttp.MethodPost: o.replay, fasthttp.MethodGet: o.getDeadLetter})
	rt.Handle(base+"/destinations", open, api.Methods{fasthttp.MethodGet: o.listDestinations})
	rt.Handle(base+"/destinations/{id}", open, api.Methods{fasthttp.MethodPut: o.putSettings})
	rt.Handle(base+"/destinations/{id}/pause", open, api.Methods{fasthttp.MethodPost: o.pause})
	rt.Handle(base+"/destinations/{id}/resume", open, api.Methods{fasthttp.MethodPost: o.resume})
	rt.Handle(base+"/destinations/{id}/redeliver", open, api.Methods{fasthttp.MethodPost: o.postRedeliver})
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
	target delivery.Target
	entry  queue.Entry
}

// checker validates items, resolving each distinct notifyURL once per request.
type checker struct {
	ctx          context.Context
	allowPrivate bool
	seen         map[string]error
	traceparent  string     // the accept span's W3C trace context (or the producer's), kept with each notification
	span         trace.Span // the accept span; end it when the request is answered
}

// check validates one item; part prefixes the name of a bad part ("[3]." in a batch).
func (c *checker) check(it deliveryItem, part string) (accepted, *oma.RequestError) {
	switch {
	case it.NotifyURL == "":
		return accepted{}, oma.InvalidInput(part + "notifyURL (missing)")
	case len(it.NotifyURL) > maxNotifyURL:
		return accepted{}, oma.InvalidInput(part + "notifyURL (longer than " + strconv.Itoa(maxNotifyURL) + " bytes)")
	case len(it.Key) > maxOrderKey:
		return accepted{}, oma.InvalidInput(part + "key (at most 256 bytes)")
	case !validMediaType(it.ContentType):
		return accepted{}, oma.InvalidInput(part + "contentType (not a media type: " + strconv.Quote(it.ContentType) + ")")
	case it.Body == "":
		return accepted{}, oma.InvalidInput(part + "body (empty)")
	}
	if err := c.target(it.NotifyURL); err != nil {
		return accepted{}, oma.InvalidInput(part + "notifyURL (" + err.Error() + ")")
	}
	id := delivery.NewID()
	dest := delivery.OperatorDest(it.NotifyURL, it.Key)
	data := oma.Envelope{ContentType: it.ContentType, Body: []byte(it.Body), Traceparent: c.traceparent}.Marshal()
	if len(data) > queue.MaxEntrySize {
		return accepted{}, oma.TooLarge(queue.MaxEntrySize)
	}
	return accepted{id: id, dest: dest, target: delivery.Target{NotifyURL: it.NotifyURL, Key: it.Key},
		entry: queue.Entry{ID: id, Dest: dest, Data: data}}, nil
}

func (c *checker) target(url string) error {
	if err, ok := c.seen[url]; ok {
		return err
	}
	err := delivery.CheckTarget(c.ctx, url, c.allowPrivate)
	c.seen[url] = err
	return err
}

func validMediaType(ct string) bool {
	_, _, err := mime.ParseMediaType(ct)
	return err == nil
}

func (o *operatorAPI) checker(r *api.Request) *checker {
	c := &checker{ctx: r, allowPrivate: o.cfg.Delivery.AllowPrivateTargets, seen: map[string]error{}}
	c.span, c.traceparent = api.AcceptSpan(o.tracer, r.RequestCtx, "relay")
	return c
}

// commit is queueAll inside the request's commit span.
func (o *operatorAPI) commit(ctx context.Context, c *checker, items []accepted, extra ...queue.Record) error {
	end := telemetry.Commit(o.tracer, c.traceparent)
	err := o.queueAll(ctx, items, extra...)
	end(err)
	return err
}

// queueAll makes every item durable in one Append, with extra records: all or none.
func (o *operatorAPI) queueAll(ctx context.Context, items []accepted, extra ...queue.Record) error {
	now := time.Now()
	w := queue.Write{Entries: make([]queue.Entry, 0, len(items)), Records: extra}
	newDests := map[string]delivery.Target{}
	for _, a := range items {
		w.Entries = append(w.Entries, a.entry)
		w.Records = append(w.Records, o.book.Accepted(a.id, a.dest, a.target, now))
		if _, dup := newDests[a.dest]; !dup {
			if rec, ok := o.book.DestRecord(a.dest, a.target); ok {
				w.Records = append(w.Records, rec)
				newDests[a.dest] = a.target
			}
		}
	}
	if _, err := o.q.Append(ctx, w); err != nil {
		return fmt.Errorf("queue deliveries: %w", err)
	}
	for dest, t := range newDests {
		o.book.Remember(dest, t)
	}
	return nil
}

// postDelivery is POST /deliveries?notifyURL=&key=: the body is the notification.
func (o *operatorAPI) postDelivery(r *api.Request) (api.Answer, *oma.RequestError) {
	args := r.QueryArgs()
	it := deliveryItem{NotifyURL: string(args.Peek("notifyURL")), Key: string(args.Peek("key")),
		ContentType: string(r.Request.Header.ContentType()), Body: string(r.PostBody())}
	if !validMediaType(it.ContentType) {
		return api.Answer{}, oma.UnsupportedMedia(it.ContentType)
	}
	replay, key, e := o.idempotency(r, "deliveries", []byte(it.NotifyURL), []byte(it.Key), []byte(it.ContentType), []byte(it.Body))
	if replay != nil || e != nil {
		return deref(replay), e
	}
	defer key.done()
	c := o.checker(r)
	defer c.span.End()
	a, e := c.check(it, "")
	if e != nil {
		return api.Answer{}, e
	}
	ans := api.Accepted(mustJSON(map[string]string{"id": a.id, "state": delivery.StatePending, "destination": a.dest}))
	ans.Location = o.deliveryURL(a.id)
	if err := o.commit(r, c, []accepted{a}, key.records(ans)...); err != nil {
		return api.Answer{}, queueFault(err)
	}
	return ans, nil
}

func deref(a *api.Answer) api.Answer {
	if a == nil {
		return api.Answer{}
	}
	return *a
}

// postBatch is POST /deliveries:batch: a JSON array queued all or none.
func (o *operatorAPI) postBatch(r *api.Request) (api.Answer, *oma.RequestError) {
	if f, ok := oma.FormatOf(string(r.Request.Header.ContentType())); !ok || f != oma.JSON {
		return api.Answer{}, oma.UnsupportedMedia(string(r.Request.Header.ContentType()))
	}
	items, e := decodeBatch(r.PostBody())
	if e != nil {
		return api.Answer{}, e
	}
	replay, key, e := o.idempotency(r, "deliveries:batch", r.PostBody())
	if replay != nil || e != nil {
		return deref(replay), e
	}
	defer key.done()
	c := o.checker(r)
	defer c.span.End()
	all := make([]accepted, 0, len(items))
	ids := make([]string, 0, len(items))
	for i, it := range items {
		a, e := c.check(it, "["+strconv.Itoa(i)+"].")
		if e != nil {
			return api.Answer{}, e
		}
		all, ids = append(all, a), append(ids, a.id)
	}
	ans := api.Accepted(mustJSON(map[string][]string{"ids": ids}))
	if err := o.commit(r, c, all, key.records(ans)...); err != nil {
		return api.Answer{}, queueFault(err)
	}
	return ans, nil
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
			return nil, oma.InvalidInput("[" + strconv.Itoa(i) + "] (" + err.Error() + ")")
		}
	}
	return items, nil
}

func (o *operatorAPI) deliveryURL(id string) string {
	return o.cfg.Public() + o.cfg.BasePath + "/relay/v1/deliveries/" + id
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("relay: marshal %T: %v", v, err)) // only plain structs and maps are marshalled
	}
	return b
}

// queueFault answers a queue failure: 503 while stopping, 413 for a write larger
// than one commit of the queue engine, else 500. Nothing was queued.
func queueFault(err error) *oma.RequestError {
	if errors.Is(err, queue.ErrClosed) {
		return oma.Unavailable().Because(err)
	}
	if errors.Is(err, queue.ErrEntryTooBig) {
		return (&oma.RequestError{Status: 413, MessageID: "SVC0002", Text: oma.TextSVC0002,
			Variables: []string{"body (too many deliveries for one commit of the queue: send fewer per batch, or see queue.jetstream.max_batch_msgs)"}}).Because(err)
	}
	return oma.Internal().Because(err)
}
