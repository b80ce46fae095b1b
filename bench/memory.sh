#!/usr/bin/env bash
# bench/memory.sh: bytes per key, ecache against Redis (issue 7). Loads KEYS
# keys (key:0 … key:KEYS-1) of VALUE-byte values into an empty Redis
# (--save '' --appendonly no) and an empty `ecache serve --persistence none`
# with the harness's preload, then prints the growth per key of:
#   Redis: used_memory and used_memory_rss (INFO memory);
#   ecache: the memory tier's bytes (ecache_memory_bytes), the Go heap in use
#           after a forced GC (go_memstats_heap_inuse_bytes after
#           /debug/pprof/heap?gc=1) and the process RSS (/proc/PID/status).
# Usage: bench/memory.sh [ECACHE_BINARY]   (env: KEYS=1000000 VALUE=100)
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
VALUE=${VALUE:-100}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

BIN=${1:-}
if [ -z "$BIN" ]; then
	go build -o "$WORK/ecache" ./cmd/ecache
	BIN="$WORK/ecache"
fi
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() {
	for _ in $(seq 1 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listening on $1" >&2
	return 1
}
rss() { awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$1/status"; }
redis_mem() { redis-cli -p "$RPORT" info memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }
metric() { curl -s "http://127.0.0.1:$APORT/metrics" | awk -v k="$1" '$1 == k { printf "%.0f\n", $2 }'; }
ecache_heap() {
	curl -s "http://127.0.0.1:$APORT/debug/pprof/heap?gc=1" >/dev/null
	metric go_memstats_heap_inuse_bytes
}
load() { # target
	"$BIN" bench --target "$1" --conns 50 --pipeline 16 --keys "$KEYS" --value-size "$VALUE" \
		--ratio 0:1 --preload --ops 1 >/dev/null
}

RPORT=$(freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
RPID=$!
PIDS+=("$RPID")
LPORT=$(freeport)
APORT=$(freeport)
"$BIN" serve --listen "127.0.0.1:$LPORT" --admin-listen "127.0.0.1:$APORT" --resp-listen off \
	--persistence none --memory-limit "$(((KEYS * 400 >> 20) + 256))MiB" >"$WORK/ecache.log" 2>&1 &
EPID=$!
PIDS+=("$EPID")
waitport "$RPORT"
waitport "$LPORT"
waitport "$APORT"

r_used0=$(redis_mem used_memory)
r_rss0=$(rss "$RPID")
e_tier0=$(metric ecache_memory_bytes)
e_heap0=$(ecache_heap)
e_rss0=$(rss "$EPID")

load "redis://127.0.0.1:$RPORT"
load "ecache://127.0.0.1:$LPORT"

r_keys=$(redis-cli -p "$RPORT" dbsize | tr -d '\r')
e_keys=$(metric ecache_memory_entries)
r_used=$(redis_mem used_memory)
r_rss=$(rss "$RPID")
e_tier=$(metric ecache_memory_bytes)
e_heap=$(ecache_heap)
e_rss=$(rss "$EPID")

echo "== bytes per key: $KEYS keys (key:N) of $VALUE-byte values; Redis $(redis-server --version | cut -d' ' -f3), ecache --persistence none"
printf '%-44s %12s %14s\n' "figure" "keys" "bytes/key"
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) / n }'; }
printf '%-44s %12s %14s\n' "redis used_memory" "$r_keys" "$(per "$r_used0" "$r_used" "$r_keys")"
printf '%-44s %12s %14s\n' "redis RSS" "$r_keys" "$(per "$r_rss0" "$r_rss" "$r_keys")"
printf '%-44s %12s %14s\n' "ecache memory tier (ecache_memory_bytes)" "$e_keys" "$(per "$e_tier0" "$e_tier" "$e_keys")"
printf '%-44s %12s %14s\n' "ecache Go heap in use after GC" "$e_keys" "$(per "$e_heap0" "$e_heap" "$e_keys")"
printf '%-44s %12s %14s\n' "ecache RSS" "$e_keys" "$(per "$e_rss0" "$e_rss" "$e_keys")"
echo "ratio (ecache heap / redis used_memory): $(awk -v a="$(per "$e_heap0" "$e_heap" "$e_keys")" -v b="$(per "$r_used0" "$r_used" "$r_keys")" 'BEGIN { printf "%.2fx", a / b }')"
