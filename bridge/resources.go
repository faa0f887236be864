package bridge

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
)

// Bounds on maxNotifications (per long-poll answer and per OMA-mode frame).
const (
	defaultMaxNotifications = 32
	maxMaxNotifications     = 1024
)

func (b *Bridge) channelsURL(user string) string {
	return b.base + "/notificationchannel/v1/" + api.EscapeID(user) + "/channels"
}

// document renders st as the client sees it: lifetime is the remaining seconds.
func (b *Bridge) document(st state, now time.Time) oma.NotificationChannel {
	res := b.channelsURL(st.User) + "/" + st.ID
	d := oma.NotificationChannel{
		ClientCorrelator: st.Correlator, ApplicationTag: st.AppTag, ChannelType: st.Type,
		MaxNotifications: st.MaxNotifications,
		ChannelLifetime:  int(math.Ceil(st.Expires.Sub(now).Seconds())),
		CallbackURL:      st.callback(b),
		ResourceURL:      res,
	}
	if d.ChannelLifetime < 0 {
		d.ChannelLifetime = 0
	}
	if st.Type == oma.ChannelWebSockets {
		d.ChannelURL = wsScheme(res) + "/ws"
	} else {
		d.ChannelURL = res + "/poll"
	}
	return d
}

// callback is st's callbackURL.
func (st state) callback(b *Bridge) string { return b.base + "/notifications/" + st.Token }

func wsScheme(u string) string {
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

// grant is the lifetime given for an asked one (0: none asked).
func (b *Bridge) grant(asked int) int {
	if asked <= 0 {
		return b.cfg.DefaultLifetime
	}
	return min(asked, b.cfg.MaxLifetime)
}

// parseCreate reads a create request in XML, JSON or form encoding.
func parseCreate(ctx *fasthttp.RequestCtx) (oma.NotificationChannel, oma.Format, *oma.RequestError) {
	ct := string(ctx.Request.Header.ContentType())
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/x-www-form-urlencoded") {
		return parseCreateForm(ctx.PostArgs())
	}
	f, rerr := api.RequestFormat(ctx)
	if rerr != nil {
		return oma.NotificationChannel{}, f, rerr
	}
	nc, rerr := oma.ParseNotificationChannel(f, ctx.PostBody())
	return nc, f, rerr
}

func parseCreateForm(a *fasthttp.Args) (oma.NotificationChannel, oma.Format, *oma.RequestError) {
	nc := oma.NotificationChannel{
		ClientCorrelator: string(a.Peek("clientCorrelator")),
		ApplicationTag:   string(a.Peek("applicationTag")),
		ChannelType:      string(a.Peek("channelType")),
	}
	if nc.ChannelType == "" {
		return nc, oma.JSON, oma.InvalidInput("channelType")
	}
	for _, f := range []struct {
		keys []string
		dst  *int
	}{{[]string{"maxNotifications", "channelData.maxNotifications"}, &nc.MaxNotifications}, {[]string{"channelLifetime"}, &nc.ChannelLifetime}} {
		for _, k := range f.keys {
			if s := string(a.Peek(k)); s != "" {
				v, err := strconv.Atoi(s)
				if err != nil || v < 0 {
					return nc, oma.JSON, oma.InvalidInput(k)
				}
				*f.dst = v
			}
		}
	}
	return nc, oma.JSON, nil
}

func (b *Bridge) handleCreate(ctx *fasthttp.RequestCtx, p api.Params) {
	user, rerr := b.opts.Auth.ActAs(ctx, p["userId"])
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	nc, reqFormat, rerr := parseCreate(ctx)
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	f, rerr := api.Negotiate(ctx)
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	if nc.ChannelType != oma.ChannelWebSockets && nc.ChannelType != oma.ChannelLongPolling {
		api.WriteError(ctx, f, oma.UnsupportedChannelType(nc.ChannelType))
		return
	}
	if nc.MaxNotifications > maxMaxNotifications {
		nc.MaxNotifications = maxMaxNotifications
	}
	st, status, rerr := b.create(ctx, user, nc, reqFormat)
	if rerr != nil {
		api.WriteError(ctx, f, rerr)
		return
	}
	doc := b.document(st, time.Now())
	ctx.Response.Header.Set("Location", doc.ResourceURL)
	api.Write(ctx, status, f, doc.Marshal(f))
}

// create makes the channel durable, or answers a repeated clientCorrelator.
func (b *Bridge) create(ctx *fasthttp.RequestCtx, user string, nc oma.NotificationChannel, f oma.Format) (state, int, *oma.RequestError) {
	fp := fmt.Sprintf("%s|%s|%d|%d", nc.ChannelType, nc.ApplicationTag, nc.MaxNotifications, nc.ChannelLifetime)
	b.createMu.Lock()
	defer b.createMu.Unlock()
	if nc.ClientCorrelator != "" {
		if c := b.hub.byCorrelator(user, nc.ClientCorrelator); c != nil {
			st := b.hub.snapshot(c)
			if st.Fingerprint != fp {
				return st, 0, oma.DuplicateCorrelator(nc.ClientCorrelator)
			}
			return st, fasthttp.StatusCreated, nil
		}
	}
	if max := b.opts.Config.Limits.MaxChannelsPerUser; max > 0 && b.hub.owned(user) >= max {
		return state{}, 0, oma.Forbidden(fmt.Sprintf("at most %d notification channels per user (limits.max_channels_per_user)", max))
	}
	maxN := nc.MaxNotifications
	if maxN == 0 {
		maxN = defaultMaxNotifications
	}
	lifetime := b.grant(nc.ChannelLifetime)
	st := state{ID: randomHex(8), User: user, Type: nc.ChannelType, Format: f.String(),
		Correlator: nc.ClientCorrelator, AppTag: nc.ApplicationTag, Fingerprint: fp,
		MaxNotifications: maxN, Lifetime: lifetime, Token: randomHex(16),
		Expires: time.Now().Add(time.Duration(lifetime) * time.Second)}
	if err := b.save(ctx, st); err != nil {
		b.log.Error().Err(err).Msg("creating channel")
		return st, 0, unavailable()
	}
	b.hub.add(&channel{st: st})
	b.metrics.channelAdded(st.Type)
	return st, fasthttp.StatusCreated, nil
}

// unavailable is the fault for a queue that cannot take the write (closing, disk).
func unavailable() *oma.RequestError {
	return &oma.RequestError{Status: 503, MessageID: "SVC0001", Text: oma.TextSVC0001, Variables: []string{"service unavailable, retry later"}}
}

// ownChannel authenticates ctx for {userId} and finds that user's {channelId}.
func (b *Bridge) ownChannel(ctx *fasthttp.RequestCtx, p api.Params) (*channel, *oma.RequestError) {
	user, rerr := b.opts.Auth.ActAs(ctx, p["userId"])
	if rerr != nil {
		return nil, rerr
	}
	return b.channelOf(ctx, user, p["channelId"])
}

func (b *Bridge) channelOf(ctx *fasthttp.RequestCtx, user, id string) (*channel, *oma.RequestError) {
	c := b.hub.get(id)
	if c == nil || c.st.User != user {
		return nil, oma.NotFound(api.RequestPath(ctx))
	}
	return c, nil
}

func (b *Bridge) handleList(ctx *fasthttp.RequestCtx, p api.Params) {
	user, rerr := b.opts.Auth.ActAs(ctx, p["userId"])
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	f, rerr := api.Negotiate(ctx)
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	now := time.Now()
	var docs []oma.NotificationChannel
	for _, st := range b.hub.list(user) {
		docs = append(docs, b.document(st, now))
	}
	api.Write(ctx, fasthttp.StatusOK, f, oma.MarshalNotificationChannelList(f, docs, b.channelsURL(user)))
}

func (b *Bridge) handleRead(ctx *fasthttp.RequestCtx, p api.Params) {
	c, f, ok := b.readable(ctx, p)
	if ok {
		api.Write(ctx, fasthttp.StatusOK, f, b.document(b.hub.snapshot(c), time.Now()).Marshal(f))
	}
}

// readable resolves the channel and the response format, answering any fault.
func (b *Bridge) readable(ctx *fasthttp.RequestCtx, p api.Params) (*channel, oma.Format, bool) {
	c, rerr := b.ownChannel(ctx, p)
	if rerr == nil {
		var f oma.Format
		if f, rerr = api.Negotiate(ctx); rerr == nil {
			return c, f, true
		}
	}
	api.Fail(ctx, rerr)
	return nil, oma.JSON, false
}

func (b *Bridge) handleDelete(ctx *fasthttp.RequestCtx, p api.Params) {
	c, rerr := b.ownChannel(ctx, p)
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	b.deleteChannel(ctx, c, "deleted by its user")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (b *Bridge) handleLifetimeGet(ctx *fasthttp.RequestCtx, p api.Params) {
	c, f, ok := b.readable(ctx, p)
	if ok {
		doc := b.document(b.hub.snapshot(c), time.Now())
		api.Write(ctx, fasthttp.StatusOK, f, oma.MarshalChannelLifetime(f, doc.ChannelLifetime))
	}
}

func (b *Bridge) handleLifetimePut(ctx *fasthttp.RequestCtx, p api.Params) {
	c, f, ok := b.readable(ctx, p)
	if !ok {
		return
	}
	rf, rerr := api.RequestFormat(ctx)
	if rerr != nil {
		api.WriteError(ctx, f, rerr)
		return
	}
	asked, rerr := oma.ParseChannelLifetime(rf, ctx.PostBody())
	if rerr != nil {
		api.WriteError(ctx, f, rerr)
		return
	}
	granted, err := b.refresh(ctx, c, b.grant(asked))
	if err != nil {
		api.WriteError(ctx, f, unavailable())
		return
	}
	api.Write(ctx, fasthttp.StatusOK, f, oma.MarshalChannelLifetime(f, granted))
}
