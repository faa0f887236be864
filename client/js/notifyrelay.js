// notifyrelay.js: browser client for notifyrelay notification channels
// (docs/clients.md). Dependency-free ES module, served by notifyrelay at
// /client/notifyrelay.js.
//
//   import { NotifyRelay } from "https://relay.example.com/client/notifyrelay.js";
//   const nr = new NotifyRelay({ token, clientCorrelator: "alice-browser" });
//   nr.addEventListener("notification", (e) => show(e.detail.body));
//   const channel = await nr.start(); // subscribe with channel.callbackURL
//
// Acknowledged mode (notifyrelay.ack.v1): each notification is acknowledged once
// the "notification" listeners returned and the promises they passed to
// e.detail.waitUntil() resolved; the last acknowledged seq is kept in
// localStorage, so a reloaded page resumes where it stopped and never sees a
// notification twice.

const PROTOCOL = "notifyrelay.ack.v1";

export class NotifyRelay extends EventTarget {
  #opts;
  #ws = null;
  #running = false;
  #attempt = 0;
  #timer = null;
  #renew = null;
  #chain = Promise.resolve();

  /**
   * @param {object} opts
   * @param {string} [opts.baseURL] public_url plus base_path (default: the origin this module was loaded from)
   * @param {string} [opts.token] bearer token (sent as Authorization, and as access_token on the WebSocket)
   * @param {string} [opts.user] the {userId} of the channel (default "acr:auth": the token's user)
   * @param {string} [opts.clientCorrelator] stable per device: creating again answers the same channel (default: a random one kept in storage)
   * @param {number} [opts.lifetime] channel lifetime to ask for, seconds (default: the server's)
   * @param {object} [opts.channel] an existing channel ({channelURL, resourceURL, lifetime}): no create call
   * @param {number} [opts.window] unacknowledged notifications in flight (default: the server's)
   * @param {number} [opts.backoffMin] first reconnect wait, ms (default 250)
   * @param {number} [opts.backoffMax] longest reconnect wait, ms (default 30000)
   * @param {Storage|null} [opts.storage] where the last seq is kept (default localStorage; null: nowhere)
   * @param {string} [opts.storageKey] its key (default "notifyrelay:" + baseURL + ":" + user)
   */
  constructor(opts = {}) {
    super();
    const baseURL = (opts.baseURL || new URL(import.meta.url).origin).replace(/\/+$/, "");
    const user = opts.user || "acr:auth";
    this.#opts = {
      backoffMin: 250, backoffMax: 30000, ...opts, baseURL, user,
      storage: opts.storage === undefined ? globalThis.localStorage : opts.storage,
      storageKey: opts.storageKey || `notifyrelay:${baseURL}:${user}`,
    };
    this.channel = opts.channel || null;
    this.lastSeq = 0;
    this.state = "stopped";
  }

  /** Creates (or reuses) the channel and connects; resolves to the channel. */
  async start() {
    if (this.#running) return this.channel;
    this.#running = true;
    const saved = this.#load();
    this.#opts.clientCorrelator = saved.correlator;
    this.#setState("connecting");
    while (!this.channel) {
      try {
        this.channel = await this.#createChannel(saved.correlator);
      } catch (err) {
        if (err.fatal) {
          this.#stopWith(err);
          throw err;
        }
        await this.#sleep(this.#nextWait(), err);
        if (!this.#running) throw new Error("stopped");
      }
    }
    this.lastSeq = saved.resourceURL === channelId(this.channel) ? saved.lastSeq : 0;
    this.#save();
    this.#connect();
    return this.channel;
  }

  /** Closes the socket and stops reconnecting. Unacknowledged notifications stay queued. */
  stop() {
    this.#stopWith(null);
  }

  #stopWith(error) {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#stopRenew();
    const ws = this.#ws;
    this.#ws = null;
    if (ws) ws.close(1000, "client stopping");
    this.#setState("stopped", { error });
  }

  async #createChannel(correlator) {
    const o = this.#opts;
    const doc = { notificationChannel: { clientCorrelator: correlator, channelType: "WebSockets", channelData: {} } };
    if (o.lifetime) doc.notificationChannel.channelLifetime = o.lifetime;
    const url = `${o.baseURL}/notificationchannel/v1/${encodeURIComponent(o.user)}/channels`;
    const r = await this.#fetch("POST", url, JSON.stringify(doc));
    if (r.status !== 201 && r.status !== 200) throw await httpError("create channel", r);
    const nc = (await r.json()).notificationChannel;
    return {
      channelURL: nc.channelData.channelURL, callbackURL: nc.callbackURL,
      resourceURL: nc.resourceURL, lifetime: nc.channelLifetime,
    };
  }

  #fetch(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body) headers["Content-Type"] = "application/json";
    if (this.#opts.token) headers.Authorization = "Bearer " + this.#opts.token;
    return fetch(url, { method, headers, body });
  }

  #connect() {
    if (!this.#running) return;
    this.#setState("connecting");
    const url = new URL(this.channel.channelURL);
    if (this.#opts.token) url.searchParams.set("access_token", this.#opts.token);
    if (this.#opts.window) url.searchParams.set("window", String(this.#opts.window));
    const ws = new WebSocket(url, PROTOCOL);
    this.#ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.#setState("connected");
      this.#startRenew(ws);
    };
    ws.onmessage = (m) => {
      this.#chain = this.#chain.then(() => this.#frame(ws, m.data));
    };
    ws.onclose = (e) => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#stopRenew();
      this.#afterClose(opened, e);
    };
  }

  // #afterClose reconnects, unless it cannot help: a failed handshake or a close
  // with 1000 (deleted, expired, or superseded) is checked on the channel
  // resource, and a channel gone (404) or a token refused (401, 403) stops.
  async #afterClose(opened, e) {
    const err = new Error(`socket closed (${e.code}${e.reason ? " " + e.reason : ""})`);
    const status = !opened || e.code === 1000 ? await this.#probe() : 0;
    if (status === 404 || status === 401 || status === 403) {
      const fatal = new Error(status === 404 ? "notification channel gone" : `token refused (HTTP ${status})`);
      fatal.gone = status === 404;
      fatal.status = status;
      this.#stopWith(fatal);
      return;
    }
    if (opened && this.#handled) this.#attempt = 0;
    this.#handled = false;
    await this.#sleep(this.#nextWait(), err);
    this.#connect();
  }

  #handled = false;
  #refused = new WeakSet();

  // #probe is the status of GET resourceURL, 0 when it cannot be had.
  async #probe() {
    if (!this.channel.resourceURL || !this.#running) return 0;
    try {
      return (await this.#fetch("GET", this.channel.resourceURL)).status;
    } catch {
      return 0; // the server is down: try again
    }
  }

  async #frame(ws, data) {
    if (this.#ws !== ws || this.#refused.has(ws)) return; // a socket given up: its frames come again
    this.#awaitingAck = false;
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f.connCheck !== undefined) return this.#send(ws, { connAck: {} });
    if (!f.seq) return; // connAck: the answer to our connCheck
    if (f.seq <= this.lastSeq) return this.#send(ws, { ack: f.seq }); // handled before, its ack lost
    const to = typeof f.prevSeq === "number" ? f.prevSeq : f.seq - 1; // no prevSeq: no information but seq
    if (to > this.lastSeq) this.dispatchEvent(new CustomEvent("gap", { detail: { from: this.lastSeq + 1, to } }));
    const waits = [];
    const detail = {
      seq: f.seq, prevSeq: f.prevSeq, contentType: f.contentType, body: f.notification,
      root: rootOf(f.notification), json: () => JSON.parse(f.notification),
      waitUntil: (p) => { waits.push(p); },
    };
    this.dispatchEvent(new CustomEvent("notification", { detail }));
    try {
      await Promise.all(waits);
    } catch (err) {
      this.#refused.add(ws); // nothing after it may be handled before it comes again
      if (this.#ws === ws) ws.close(4000, "handler failed"); // not acknowledged: it comes again
      return;
    }
    this.lastSeq = f.seq;
    this.#handled = true;
    this.#save();
    if (this.#ws === ws) this.#send(ws, { ack: f.seq });
  }

  #send(ws, msg) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  #awaitingAck = false;

  // #startRenew sends a connCheck every third of the channel's lifetime (at most
  // 60 s): it restarts the lifetime, and a socket whose previous connCheck got no
  // answer is taken as dead.
  #startRenew(ws) {
    const every = Math.max(1000, Math.min(60000, (this.channel.lifetime || 180) * 1000 / 3));
    this.#awaitingAck = false;
    this.#renew = setInterval(() => {
      if (this.#awaitingAck) return ws.close(4001, "no connAck");
      this.#awaitingAck = true;
      this.#send(ws, { connCheck: { checkInterval: Math.round(every / 1000) } });
    }, every);
  }

  #stopRenew() {
    clearInterval(this.#renew);
    this.#renew = null;
  }

  #nextWait() {
    const o = this.#opts;
    const d = Math.min(o.backoffMax, o.backoffMin * 2 ** Math.min(this.#attempt++, 30));
    return d / 2 + Math.random() * d / 2;
  }

  #sleep(ms, error) {
    this.#setState("disconnected", { error, retryMs: ms });
    return new Promise((resolve) => { this.#timer = setTimeout(resolve, ms); });
  }

  #setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, ...extra } }));
  }

  #load() {
    const o = this.#opts;
    let saved = {};
    try {
      saved = JSON.parse(o.storage?.getItem(o.storageKey) || "{}") || {};
    } catch { /* unreadable: start afresh */ }
    return {
      resourceURL: saved.resourceURL || "", lastSeq: Number(saved.lastSeq) || 0,
      correlator: o.clientCorrelator || saved.correlator || randomId(),
    };
  }

  #save() {
    const o = this.#opts;
    const v = { resourceURL: channelId(this.channel), lastSeq: this.lastSeq, correlator: o.clientCorrelator };
    try {
      o.storage?.setItem(o.storageKey, JSON.stringify(v));
    } catch { /* full or disabled storage: resume from the server's state only */ }
  }
}

// channelId names a channel in storage: a seq means something only on its channel.
function channelId(ch) {
  return ch.resourceURL || ch.channelURL;
}

async function httpError(what, r) {
  const err = new Error(`${what}: HTTP ${r.status}: ${(await r.text()).slice(0, 300)}`);
  err.status = r.status;
  err.fatal = r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429;
  return err;
}

// rootOf is the local name of a document's root element (JSON: its one key).
function rootOf(doc) {
  if (/^\s*</.test(doc)) {
    const m = /<(?![?!])(?:[\w.-]+:)?([\w.-]+)/.exec(doc);
    return m ? m[1] : "";
  }
  try {
    const k = Object.keys(JSON.parse(doc))[0] || "";
    return k.slice(k.lastIndexOf(":") + 1);
  } catch {
    return "";
  }
}

function randomId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return "nr-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
