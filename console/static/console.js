// notifyrelay console: plain JavaScript, no build step. Everything it shows comes
// from the operator API ({apiBase}/relay/v1/…) with the operator token.
"use strict";

const state = { apiBase: "", token: "", samples: [], timer: null, deadletters: [] };
const $ = (id) => document.getElementById(id);
const HISTORY = 120; // samples kept (one a second)

// ---- API ------------------------------------------------------------------

async function call(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token, Accept: "application/json" } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(state.apiBase + "/relay/v1" + path, opts);
  const text = await resp.text();
  const doc = text ? JSON.parse(text) : {};
  if (resp.status === 401 || resp.status === 403) {
    forgetToken();
  }
  if (!resp.ok) {
    throw new Error(resp.status + " " + faultText(doc));
  }
  return doc;
}

// faultText renders an OMA requestError as the operator reads it (%1… filled in).
function faultText(doc) {
  const re = doc && doc.requestError;
  const ex = re && (re.serviceException || re.policyException);
  if (!ex) return JSON.stringify(doc);
  let text = ex.text;
  (ex.variables || []).forEach((v, i) => { text = text.split("%" + (i + 1)).join(v); });
  return ex.messageId + ": " + text;
}

function say(msg, isError) {
  const s = $("status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

// ---- token ----------------------------------------------------------------

function forgetToken() {
  sessionStorage.removeItem("notifyrelay.token");
  state.token = "";
  showLogin();
}

function showLogin() {
  $("login").hidden = false;
  $("main").hidden = true;
  $("logout").hidden = true;
  stopLive();
}

function start(token) {
  state.token = token;
  sessionStorage.setItem("notifyrelay.token", token);
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  showTab("live");
}

// ---- tabs -----------------------------------------------------------------

function showTab(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== "tab-" + name; });
  stopLive();
  if (name === "live") startLive();
  if (name === "destinations") loadDestinations();
  if (name === "deadletters") loadDeadLetters();
  if (name === "channels") loadChannels();
}

// ---- live -----------------------------------------------------------------

function startLive() {
  poll();
  state.timer = setInterval(poll, 1000);
}

function stopLive() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

async function poll() {
  try {
    const s = await call("GET", "/stats");
    state.samples.push(s);
    if (state.samples.length > HISTORY) state.samples.shift();
    renderLive();
    say("updated " + new Date(s.at).toLocaleTimeString());
  } catch (e) {
    say(e.message, true);
  }
}

const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
const kinds = (s) => [...new Set([...Object.keys(s.accepted), ...Object.keys(s.delivered), ...Object.keys(s.queueDepth)])].sort();

// rate is the per-second change of a counter between two samples (one kind, or all).
function rate(a, b, field, kind) {
  const dt = (new Date(b.at) - new Date(a.at)) / 1000;
  if (dt <= 0) return 0;
  const va = kind ? (a[field][kind] || 0) : sum(a[field]);
  const vb = kind ? (b[field][kind] || 0) : sum(b[field]);
  return Math.max(0, (vb - va) / dt);
}

// quantile of the observations made between samples a and b (histogram deltas),
// interpolated inside the bucket like Prometheus' histogram_quantile.
function quantile(q, a, b, kind) {
  const ks = kind ? [kind] : Object.keys(b.latency);
  let le = null, counts = null;
  for (const k of ks) {
    const hb = b.latency[k], ha = a.latency[k];
    if (!hb) continue;
    if (!le) { le = hb.le; counts = hb.le.map(() => 0); }
    hb.counts.forEach((c, i) => { counts[i] += c - (ha ? ha.counts[i] : 0); });
  }
  if (!le) return null;
  const total = counts[counts.length - 1];
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < le.length; i++) {
    if (counts[i] >= rank) {
      const lo = i === 0 ? 0 : le[i - 1], below = i === 0 ? 0 : counts[i - 1];
      const inBucket = counts[i] - below;
      return lo + (le[i] - lo) * (inBucket > 0 ? (rank - below) / inBucket : 1);
    }
  }
  return le[le.length - 1];
}

const fmt = (v, digits) => (v === null || v === undefined || isNaN(v)) ? "–" : Number(v).toFixed(digits === undefined ? 1 : digits);
const fmtS = (v) => v === null ? "–" : v < 1 ? (v * 1000).toFixed(0) + " ms" : v.toFixed(2) + " s";

function renderLive() {
  const n = state.samples.length;
  const b = state.samples[n - 1];
  const a = state.samples[Math.max(0, n - 2)];
  const w = state.samples[Math.max(0, n - 6)]; // latency over the last ~5 s
  $("num-accepted").textContent = fmt(rate(a, b, "accepted"));
  $("num-delivered").textContent = fmt(rate(a, b, "delivered"));
  $("num-dead").textContent = fmt(rate(a, b, "deadLettered"));
  $("num-inflight").textContent = fmt(sum(b.inFlight), 0);
  $("num-depth").textContent = fmt(sum(b.queueDepth), 0);
  $("num-age").textContent = fmtS(Math.max(0, ...Object.values(b.oldestAgeSeconds)));
  $("num-latency").textContent = [0.5, 0.95, 0.99].map((q) => fmtS(quantile(q, w, b))).join(" / ");
  renderKinds(a, b, w);
  renderCharts();
}

function renderKinds(a, b, w) {
  const rows = kinds(b).map((k) => [k, fmt(rate(a, b, "accepted", k)), fmt(rate(a, b, "delivered", k)),
    fmt(b.queueDepth[k] || 0, 0), fmt(b.oldestAgeSeconds[k] || 0),
    fmtS(quantile(0.5, w, b, k)), fmtS(quantile(0.95, w, b, k)), fmtS(quantile(0.99, w, b, k))]);
  fillTable("kinds", rows.map((r) => r.map((v, i) => ({ text: v, cls: i ? "num" : "" }))));
}

function series(fn) {
  const out = [];
  for (let i = 1; i < state.samples.length; i++) out.push(fn(state.samples[i - 1], state.samples[i], i));
  return out;
}

function renderCharts() {
  const S = state.samples;
  drawChart($("chart-rates"), [
    { name: "accepted/s", color: "#2563eb", values: series((a, b) => rate(a, b, "accepted")) },
    { name: "delivered/s", color: "#16a34a", values: series((a, b) => rate(a, b, "delivered")) },
  ]);
  drawChart($("chart-depth"), [
    { name: "queued", color: "#9333ea", values: series((a, b) => sum(b.queueDepth)) },
    { name: "in flight", color: "#ea580c", values: series((a, b) => sum(b.inFlight)) },
  ]);
  const lat = (q) => series((a, b, i) => quantile(q, S[Math.max(0, i - 5)], b));
  drawChart($("chart-latency"), [
    { name: "p50", color: "#16a34a", values: lat(0.5) },
    { name: "p95", color: "#ca8a04", values: lat(0.95) },
    { name: "p99", color: "#b91c1c", values: lat(0.99) },
  ]);
  drawChart($("chart-age"), [
    { name: "oldest", color: "#0891b2", values: series((a, b) => Math.max(0, ...Object.values(b.oldestAgeSeconds))) },
  ]);
}

// drawChart draws lines on a canvas: y from 0 to the largest value, x one point a sample.
function drawChart(canvas, lines) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pad = 34;
  ctx.clearRect(0, 0, W, H);
  const all = lines.flatMap((l) => l.values.filter((v) => v !== null));
  const max = Math.max(1e-9, ...all) * 1.1;
  ctx.strokeStyle = "#e3e6eb";
  ctx.fillStyle = "#6b7280";
  ctx.font = "10px system-ui";
  for (let i = 0; i <= 4; i++) {
    const y = H - pad / 2 - (H - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(W, y); ctx.stroke();
    ctx.fillText(shortNum(max * i / 4), 2, y + 3);
  }
  lines.forEach((l, li) => {
    ctx.strokeStyle = l.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawn = false;
    l.values.forEach((v, i) => {
      if (v === null) return;
      const x = pad + (W - pad) * i / Math.max(1, HISTORY - 1);
      const y = H - pad / 2 - (H - pad) * v / max;
      if (drawn) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      drawn = true;
    });
    ctx.stroke();
    ctx.fillStyle = l.color;
    ctx.fillText(l.name, pad + 6 + li * 80, 10);
  });
}

function shortNum(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return v >= 10 ? v.toFixed(0) : v.toFixed(2);
}

// ---- tables ---------------------------------------------------------------

// fillTable replaces a table's rows; a cell is {text, cls} or {node}.
function fillTable(id, rows) {
  const tbody = $(id).querySelector("tbody");
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    cells.forEach((c) => {
      const td = document.createElement("td");
      if (c.node) td.appendChild(c.node); else td.textContent = c.text;
      if (c.cls) td.className = c.cls;
      tr.appendChild(td);
    });
    return tr;
  }));
}

function button(label, onClick, cls) {
  const b = document.createElement("button");
  b.textContent = label;
  if (cls) b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

const when = (t) => t ? new Date(t).toLocaleString() : "";

// ---- destinations ---------------------------------------------------------

async function loadDestinations() {
  try {
    const doc = await call("GET", "/destinations");
    const q = $("dest-search").value.trim().toLowerCase();
    const list = doc.destinations.filter((d) => !q || d.id.toLowerCase().includes(q) || d.notifyURL.toLowerCase().includes(q));
    list.sort((a, b) => b.depth - a.depth || a.id.localeCompare(b.id));
    fillTable("destinations", list.map((d) => [
      { text: d.id }, { text: d.notifyURL, cls: "url" }, { text: d.key }, { text: d.depth, cls: "num" },
      { text: fmt(d.oldestAgeSeconds), cls: "num" }, { text: d.state, cls: d.paused ? "paused" : "" },
      { text: when(d.nextAttemptAt) }, { text: d.headAttempts, cls: "num" }, { text: d.lastError || "", cls: "err" },
      { node: button(d.paused ? "Resume" : "Pause", () => control(d.id, d.paused ? "resume" : "pause"), "dest-" + (d.paused ? "resume" : "pause")) },
    ]));
    say(list.length + " destinations");
  } catch (e) {
    say(e.message, true);
  }
}

async function control(id, action) {
  try {
    await call("POST", "/destinations/" + encodeURIComponent(id) + "/" + action);
    say(id + ": " + action + "d");
    loadDestinations();
  } catch (e) {
    say(e.message, true);
  }
}

// ---- dead letters ---------------------------------------------------------

function dlFilter() {
  const f = {};
  const url = $("dl-url").value.trim();
  if (url) f.notifyURL = url;
  if ($("dl-since").value) f.since = new Date($("dl-since").value).toISOString();
  if ($("dl-until").value) f.until = new Date($("dl-until").value).toISOString();
  return f;
}

async function loadDeadLetters() {
  try {
    const f = dlFilter();
    const qs = new URLSearchParams({ limit: "1000" });
    if (f.notifyURL) qs.set("notifyURL", f.notifyURL);
    const doc = await call("GET", "/deadletters?" + qs);
    const list = doc.deadletters.filter((d) => (!f.since || d.deadAt >= f.since) && (!f.until || d.deadAt <= f.until));
    state.deadletters = list;
    fillTable("deadletters", list.map((d) => [
      { node: button(d.id, () => inspect(d.id), "dl-inspect") }, { text: d.kind }, { text: d.notifyURL, cls: "url" },
      { text: d.attempts, cls: "num" }, { text: d.lastError, cls: "err" }, { text: when(d.deadAt) },
      { node: button("Replay", () => replay(d.id), "dl-replay") },
    ]));
    say(list.length + " dead letters" + (doc.next ? " (more: narrow the filter)" : ""));
  } catch (e) {
    say(e.message, true);
  }
}

async function inspect(id) {
  try {
    const d = await call("GET", "/deadletters/" + encodeURIComponent(id));
    $("dl-detail").hidden = false;
    $("dl-detail-id").textContent = d.id;
    const fields = [["destination", d.destination], ["notifyURL", d.notifyURL], ["key", d.key], ["kind", d.kind],
      ["attempts", d.attempts], ["last error", d.lastError], ["dead at", when(d.deadAt)], ["content type", d.contentType]];
    $("dl-detail-fields").replaceChildren(...fields.flatMap(([k, v]) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v;
      return [dt, dd];
    }));
    $("dl-detail-body").textContent = d.body;
    fillTable("dl-history", d.history.map((h) => [
      { text: h.attempt }, { text: when(h.at) }, { text: h.status || "no answer" },
      { text: h.latencyMs.toFixed(1) }, { text: h.error || h.response || "", cls: "err" },
    ]));
  } catch (e) {
    say(e.message, true);
  }
}

async function replay(id) {
  try {
    await call("POST", "/deadletters/" + encodeURIComponent(id) + ":replay");
    say(id + " replayed");
    $("dl-detail").hidden = true;
    loadDeadLetters();
  } catch (e) {
    say(e.message, true);
  }
}

async function replayAll() {
  const f = dlFilter();
  if (!Object.keys(f).length) {
    // The API wants at least one filter: a time range from the first to the last listed.
    if (!state.deadletters.length) return say("nothing to replay");
    f.since = state.deadletters[0].deadAt;
  }
  if (!confirm("Replay every dead letter that matches?")) return;
  try {
    const r = await call("POST", "/deadletters:replay", f);
    say(r.replayed + " replayed" + (r.more ? ", more match: replay again" : ""));
    loadDeadLetters();
  } catch (e) {
    say(e.message, true);
  }
}

// ---- channels -------------------------------------------------------------

async function loadChannels() {
  try {
    const doc = await call("GET", "/channels");
    const connected = doc.channels.filter((c) => c.connected).length;
    $("ch-summary").textContent = doc.channels.length + " channels, " + connected + " connected" + (doc.more ? " (most queued shown)" : "");
    fillTable("channels", doc.channels.map((c) => [
      { text: c.id }, { text: c.user }, { text: c.type }, { text: c.connected ? "yes" : "no" }, { text: c.mode || "" },
      { text: c.window || "", cls: "num" }, { text: c.depth, cls: "num" }, { text: when(c.lastSeen) }, { text: when(c.expiresAt) },
    ]));
  } catch (e) {
    say(e.message, true);
  }
}

// ---- start ----------------------------------------------------------------

async function init() {
  const cfg = await (await fetch("config.json")).json();
  state.apiBase = cfg.apiBase || "";
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); start($("token").value.trim()); });
  $("logout").addEventListener("click", forgetToken);
  $("dest-refresh").addEventListener("click", loadDestinations);
  $("dest-search").addEventListener("input", loadDestinations);
  $("dl-refresh").addEventListener("click", loadDeadLetters);
  $("dl-replay-all").addEventListener("click", replayAll);
  $("ch-refresh").addEventListener("click", loadChannels);
  // A token in the fragment (#token=…, never sent to the server) opens at once.
  const frag = new URLSearchParams(location.hash.slice(1));
  const token = frag.get("token") || sessionStorage.getItem("notifyrelay.token");
  if (frag.get("token")) history.replaceState(null, "", location.pathname);
  if (token) start(token); else showLogin();
}

init();
