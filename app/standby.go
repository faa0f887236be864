package app

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"notifyrelay/queue"
)

// Several nodes on one JetStream prefix: the node holding the prefix's lock (the
// active node) runs the queue, the relay, delivery and the bridge; every other
// node is a standby. A standby forwards each connection it accepts to the active
// node (switchListener), so clients and load balancers may use any node, and
// tries to take the lock about every second. When the active node dies its lock
// expires (queue.jetstream.lock_ttl) and one standby gets it: it closes the
// connections it was forwarding, loads the queue from JetStream and serves.

// standby starts forwarding to the holder and the takeover loop.
func (a *App) standby(ctx context.Context, held *queue.HeldError) {
	sw := newSwitchListener(a.ln, a.log)
	a.ln = sw
	a.retarget(sw, held)
	a.setActive(false)
	a.serveAdmin()
	a.log.Info().Str("listen", a.Addr()).Str("active", held.Addr).Str("holder", held.Who).
		Msg("notifyrelay standby: forwarding to the active node")
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.takeOver(ctx, sw)
	}()
}

// retarget forwards to the holder's address, unless that is this node's own
// (a lock left by this node's previous run): then clients get 503 until it expires.
func (a *App) retarget(sw *switchListener, held *queue.HeldError) {
	meta := decodeLockMeta(held.Meta)
	a.checkPublic(held, meta.Public)
	addr := held.Addr
	if addr == a.cfg.Queue.JetStream.Advertise {
		addr = ""
	}
	sw.setTarget(addr, meta.Token)
}

// checkPublic warns, once per holder, when the active node's public_url is not
// this node's: every URL one node hands out (callbackURLs, resourceURLs) must
// mean the same on all of them, and a chat subscription to a callbackURL is
// recognised as a channel only under the active node's public_url.
func (a *App) checkPublic(held *queue.HeldError, public string) {
	if public == "" || public == a.cfg.Public() || held.Who == a.warnedHolder {
		return
	}
	a.warnedHolder = held.Who
	a.log.Error().Str("public_url", a.cfg.Public()).Str("active_public_url", public).Str("active", held.Addr).
		Msg("this node's public_url differs from the active node's: nodes of one jetstream prefix must share one public_url (the load balancer's)")
}

// takeOver tries to take the prefix until it succeeds or the app stops.
func (a *App) takeOver(ctx context.Context, sw *switchListener) {
	for {
		select {
		case <-a.stopping:
			return
		case <-time.After(time.Second/2 + rand.N(time.Second)):
		}
		engine, err := a.openEngine()
		var held *queue.HeldError
		switch {
		case errors.As(err, &held):
			a.retarget(sw, held)
			continue
		case err != nil:
			a.log.Warn().Err(err).Msg("standby: could not reach the queue")
			continue
		}
		a.activateStandby(ctx, engine)
		return
	}
}

func (a *App) activateStandby(ctx context.Context, engine countedEngine) {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.stopping:
		_ = engine.Close()
		return
	default:
	}
	if err := a.activate(ctx, engine); err != nil {
		a.log.Error().Err(err).Msg("standby: could not take over")
		a.fail(err)
		return
	}
	a.setActive(true)
}

// watchLock ends the node (Wait returns) when the engine loses its JetStream
// prefix lock: another node may be taking over, and this one's in-memory queue
// can no longer be written.
func (a *App) watchLock(engine countedEngine) {
	lost, ok := engine.(interface{ Lost() <-chan struct{} })
	if !ok {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		select {
		case <-lost.Lost():
			a.fail(queue.ErrLocked)
		case <-a.stopping:
		}
	}()
}

// fail makes Wait return err.
func (a *App) fail(err error) {
	select {
	case a.serveErr <- err:
	default:
	}
}

// setActive sets notifyrelay_cluster_active (registered on first use).
func (a *App) setActive(on bool) {
	a.activeOnce.Do(func() {
		a.active = prometheus.NewGauge(prometheus.GaugeOpts{Name: "notifyrelay_cluster_active",
			Help: "1 on the node that holds the queue (JetStream prefix), 0 on a standby."})
		a.reg.MustRegister(a.active)
	})
	if on {
		a.active.Set(1)
	} else {
		a.active.Set(0)
	}
}

// advertised is the address other nodes reach a listener bound at addr at: the
// host name instead of an unspecified IP.
func advertised(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}
