#!/usr/bin/env bash
# Runs the published load tests of docs/benchmarks.md ("## Load tests") against a real
# `notifyrelay serve` on 127.0.0.1:18080, a fresh data dir per run. Usage:
#   loadtest/bench.sh OUTDIR [NAME…]      (names: chat-webhook-max chat-webhook-half
#   chat-ws-max chat-ws-half relay-0 relay-10 channels kill9; default all)
set -u
out=${1:?OUTDIR}; shift
mkdir -p "$out"
bin=${NR_BIN:-$out/notifyrelay}
[ -x "$bin" ] || go build -o "$bin" ./cmd/notifyrelay
target=http://127.0.0.1:18080
half_webhook=${HALF_WEBHOOK:-600} half_ws=${HALF_WS:-600}

start_server() {
	cat > "$out/cfg.yaml" <<CFG
listen: 127.0.0.1:18080
data_dir: $out/data
log_level: warn
delivery:
  allow_private_targets: true
  backoff: {initial: 20ms, max: 500ms}
  # every receiver of the tool shares one host:port; the default 64 would cap delivery
  max_conns_per_host: 256
limits:
  # every client of the tool is 127.0.0.1 (10,000 WebSockets in "channels")
  max_conns_per_ip: 0
CFG
	"$bin" serve --config "$out/cfg.yaml" >>"$out/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do curl -sf "$target/readyz" >/dev/null && return; sleep 0.1; done
	echo "server did not start" >&2; exit 1
}
fresh() { rm -rf "$out/data"; start_server; }
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }

lt() { # name args…
	local name=$1; shift
	echo "== $name: notifyrelay loadtest $*" >"$out/$name.txt"
	"$bin" loadtest "$@" --target "$target" --json "$out/$name.json" --html "$out/$name.html" \
		>>"$out/$name.txt" 2>"$out/$name.err"
	echo "exit $?" >>"$out/$name.txt"
	cat "$out/$name.txt"
}

chat1000() { echo chat --groups 1000 --participants 10 "$@"; }

run() {
	case $1 in
	chat-webhook-max) fresh; lt "$1" $(chat1000 --receivers webhook --max --duration 30s --drain 120s); stop ;;
	chat-webhook-half) fresh; lt "$1" $(chat1000 --receivers webhook --rate "$half_webhook" --duration 30s); stop ;;
	chat-ws-max) fresh; lt "$1" $(chat1000 --receivers websocket --max --duration 30s --drain 120s); stop ;;
	chat-ws-half) fresh; lt "$1" $(chat1000 --receivers websocket --rate "$half_ws" --duration 30s); stop ;;
	relay-0) fresh; lt "$1" relay --destinations 1000 --max --duration 30s --drain 120s; stop ;;
	relay-10) fresh; lt "$1" relay --destinations 1000 --fail-rate 0.1 --max --duration 30s --drain 120s; stop ;;
	channels) fresh; lt "$1" channels --connections 10000 --duration 20s --server-pid "$pid" --concurrency 32; stop ;;
	kill9)
		fresh
		( until grep -q accepted "$out/kill9.err" 2>/dev/null; do sleep 0.5; done
		  sleep 10; kill -9 "$pid"; echo "killed $pid" >"$out/kill9.server"
		  sleep 1; start_server; echo "restarted as $pid" >>"$out/kill9.server" ) &
		lt "$1" $(chat1000 --receivers websocket --ws-mode ack --rate 300 --duration 40s --drain 120s)
		wait; pid=$(pgrep -n -f "serve --config $out/cfg.yaml"); stop ;;
	esac
}

names=${*:-chat-webhook-max chat-webhook-half chat-ws-max chat-ws-half relay-0 relay-10 channels kill9}
for n in $names; do run "$n"; done
