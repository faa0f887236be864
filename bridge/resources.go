package bridge

import (
	"context"
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

func (s *store) channelsURL(user string) string {
	return s.base + "/notificationchannel/v1/" + api.EscapeID(user) + "/channels"
}

// document renders st as the client sees it: lifetime is the remaining seconds.
func (s *store) document(st state, now time.Time) oma.NotificationChannel {
	res := s.channelsURL(st.User) + "/" + st.ID
	d := oma.NotificationChannel{
		ClientCorrelator: st.Correlator, ApplicationTag: st.AppTag, ChannelType: st.Type,
		MaxNotifications: st.MaxNotifications,
		ChannelLifetime:  int(math.Ceil(st.Expires.Sub(now).Seconds())),
		CallbackURL:      st.callback(s),
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
func (st state) callback(s *store) string { return s.base + "/notifications/" + st.Token }

func wsScheme(u string) string {
	if rest, ok := strings.CutPrefix(u, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(u, "http://")
}

// grant is the lifetime given for an asked one (0: none asked).
func (s *store) grant(asked int) int {
	if asked <= 0 {
		return s.cfg.DefaultLifetime
	}
	return min(asked, s.cfg.MaxLifetime)
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
		return nc, oma.JSON, oma.InvalidInput("channelType (missing)")
	}
	for _, f := range []struct {
		keys []string
		dst  *int
	}{{[]string{"maxNotifications", "channelData.maxNotifications"}, &nc.MaxNotifications}, {[]string{"channelLifetime"}, &nc.ChannelLifetime}} {
		for _, k := range f.keys {
			if s := string(a.Peek(k)); s != "" {
				v, err := strconv.Atoi(s)
				if err != nil || v < 0 {
					return nc, oma.JSON, oma.InvalidInput(k + " (not a non-negative integer)")
				}
				*f.dst = v
			}
		}
	}
	return nc, oma.JSON, nil
}

func (s *store) handleCreate(r *api.Request) (api.Answer, *oma.RequestError) {
	nc, reqFormat, rerr := parseCreate(r.RequestCtx)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	if nc.ChannelType != oma.ChannelWebSockets && nc.ChannelType != oma.ChannelLongPolling {
		return api.Answer{}, oma.UnsupportedChannelType(nc.ChannelType)
	}
	if nc.MaxNotifications > maxMaxNotifications {
		nc.MaxNotifications = maxMaxNotifications
	}
	st, status, rerr := s.create(r, r.User, nc, reqFormat)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	doc := s.document(st, time.Now())
	return api.Answer{Status: status, Body: doc.Marshal(r.Format), Location: doc.ResourceURL}, nil
}

// create makes the channel durable, or answers a repeated clientCorrelator.
func (s *store) create(ctx context.Context, user string, nc oma.NotificationChannel, f oma.Format) (state, int, *oma.RequestError) {
	fp := fmt.Sprintf("%s|%s|%d|%d", nc.ChannelType, nc.ApplicationTag, nc.MaxNotifications, nc.ChannelLifetime)
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if nc.ClientCorrelator != "" {
		if c := s.hub.byCorrelator(user, nc.ClientCorrelator); c != nil {
			st := s.hub.snapshot(c)
			if st.Fingerprint != fp {
				return st, 0, oma.DuplicateCorrelator(nc.ClientCorrelator)
			}
			return st, fasthttp.StatusCreated, nil
		}
	}
	if max := s.maxPerUser; max > 0 && s.hub.owned(user) >= max {
		return state{}, 0, oma.Forbidden(fmt.Sprintf("at most %d notification channels per user (limits.max_channels_per_user)", max))
	}
	maxN := nc.MaxNotifications
	if maxN == 0 {
		maxN = defaultMaxNotifications
	}
	lifetime := s.grant(nc.ChannelLifetime)
	st := state{ID: randomHex(8), User: user, Type: nc.ChannelType, Format: f.String(),
		Correlator: nc.ClientCorrelator, AppTag: nc.ApplicationTag, Fingerprint: fp,
		MaxNotifications: maxN, Lifetime: lifetime, Token: randomHex(16),
		Expires: time.Now().Add(time.Duration(lifetime) * time.Second)}
	if err := s.save(ctx, st); err != nil {
		return st, 0, oma.Unavailable().Because(fmt.Errorf("create channel: %w", err))
	}
	s.hub.add(&channel{st: st})
	s.metrics.channelAdded(st.Type)
	return st, fasthttp.StatusCreated, nil
}

// ownChannel finds the request's {channelId} among its user's channels.
func (s *store) ownChannel(r *api.Request) (*channel, *oma.RequestError) {
	return s.channelOf(r.RequestCtx, r.User, r.Params["channelId"])
}

func (s *store) channelOf(ctx *fasthttp.RequestCtx, user, id string) (*channel, *oma.RequestError) {
	c := s.hub.get(id)
	if c == nil || c.st.User != user {
		return nil, oma.NotFound(api.RequestPath(ctx))
	}
	return c, nil
}

func (s *store) handleList(r *api.Request) (api.Answer, *oma.RequestError) {
	now := time.Now()
	var docs []oma.NotificationChannel
	for _, st := range s.hub.list(r.User) {
		docs = append(docs, s.document(st, now))
	}
	return api.OK(oma.MarshalNotificationChannelList(r.Format, docs, s.channelsURL(r.User))), nil
}

func (s *store) handleRead(r *api.Request) (api.Answer, *oma.RequestError) {
	c, rerr := s.ownChannel(r)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	return api.OK(s.document(s.hub.snapshot(c), time.Now()).Marshal(r.Format)), nil
}

func (s *store) handleDelete(r *api.Request) (api.Answer, *oma.RequestError) {
	c, rerr := s.ownChannel(r)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	s.deleteChannel(r, c, "deleted by its user")
	return api.NoContent(), nil
}

func (s *store) handleLifetimeGet(r *api.Request) (api.Answer, *oma.RequestError) {
	c, rerr := s.ownChannel(r)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	doc := s.document(s.hub.snapshot(c), time.Now())
	return api.OK(oma.MarshalChannelLifetime(r.Format, doc.ChannelLifetime)), nil
}

func (s *store) handleLifetimePut(r *api.Request) (api.Answer, *oma.RequestError) {
	c, rerr := s.ownChannel(r)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	rf, rerr := api.RequestFormat(r.RequestCtx)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	asked, rerr := oma.ParseChannelLifetime(rf, r.PostBody())
	if rerr != nil {
		return api.Answer{}, rerr
	}
	granted, err := s.refresh(r, c, s.grant(asked))
	if err != nil {
		return api.Answer{}, oma.Unavailable().Because(fmt.Errorf("refresh channel lifetime: %w", err))
	}
	return api.OK(oma.MarshalChannelLifetime(r.Format, granted)), nil
}
