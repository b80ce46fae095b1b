#!/usr/bin/env bash
# bench/memory.sh: bytes per key, ecache against Redis, side by side
# (issue 7, goal "memory per key").
#
# For each of ROUNDS rounds, one server at a time (Redis, then ecache, fresh
# processes each round so the rounds interleave):
#   - Redis: redis-server --save '' --appendonly no on a free port; INFO
#     memory used_memory and used_memory_rss before and after loading.
#   - ecache: ecache serve --persistence none with a memory tier large enough
#     for everything (no eviction is checked); before and after loading:
#     ecache_memory_bytes (the tier's own accounting), the Go heap after a
#     forced GC (/debug/pprof/heap?gc=1): go_memstats_heap_inuse_bytes (spans
#     in use) and go_memstats_heap_alloc_bytes (live objects), and the
#     process RSS (VmRSS).
# Both are loaded with the same client and the same keys (key:0 … key:KEYS-1,
# VALUE-byte values): `ecache bench --preload` with pipelining; the RESP
# driver for Redis, the native protocol for ecache.
#
# Usage: bench/memory.sh [ECACHE_BINARY]
# Env: KEYS (1000000), VALUE (100), ROUNDS (2), STEP_TIMEOUT (seconds per
# load, 600), OUT (a file to append the result lines to).
# Prints one line per figure and round, then the medians and the ratios.
# Starts and stops everything it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
VALUE=${VALUE:-100}
ROUNDS=${ROUNDS:-2}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
. bench/lib.sh # WORK, PIDS, cleanup on exit, freeport, waitport, stop, ecache_binary

for c in redis-server redis-cli curl python3; do
	command -v "$c" >/dev/null || { echo "memory.sh: $c missing (apt-get install -y redis-server curl python3)" >&2; exit 1; }
done
ecache_binary "${1:-}"

rss() { awk '/^VmRSS/ { print $2 * 1024 }' "/proc/$1/status"; }
redis_mem() { redis-cli -p "$RPORT" info memory | tr -d '\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }
metric() { curl -sf "http://127.0.0.1:$APORT/metrics" | awk -v k="$1" '$1 == k { printf "%.0f\n", $2 }'; }
heap() {
	curl -sf "http://127.0.0.1:$APORT/debug/pprof/heap?gc=1" >/dev/null
	metric go_memstats_heap_inuse_bytes
}
load() { # url
	timeout "$STEP_TIMEOUT" "$BIN" bench --target "$1" --conns 16 --pipeline 64 --keys "$KEYS" \
		--value-size "$VALUE" --ratio 0:1 --preload --ops 1 >"$WORK/load.txt" 2>&1 ||
		{ cat "$WORK/load.txt" >&2; return 1; }
}
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) / n }'; }
RES="$WORK/res"
: >"$RES"
emit() { # round figure keys before after
	printf '%s %-34s keys=%-9s before=%-11s after=%-11s per_key=%s\n' "$1" "$2" "$3" "$4" "$5" "$(per "$4" "$5" "$3")" | tee -a "$RES"
}

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr), redis $(redis-server --version | cut -d' ' -f3), $KEYS keys of $VALUE bytes"
for r in $(seq 1 "$ROUNDS"); do
	RPORT=$(freeport)
	redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
	RPID=$!
	PIDS+=("$RPID")
	waitport "$RPORT" "$RPID"
	u0=$(redis_mem used_memory) s0=$(redis_mem used_memory_rss) p0=$(rss "$RPID")
	load "redis://127.0.0.1:$RPORT"
	n=$(redis-cli -p "$RPORT" dbsize | tr -d '\r')
	[ "$n" = "$KEYS" ] || { echo "redis holds $n keys, want $KEYS" >&2; exit 1; }
	emit "r$r" "redis used_memory" "$n" "$u0" "$(redis_mem used_memory)"
	emit "r$r" "redis used_memory_rss" "$n" "$s0" "$(redis_mem used_memory_rss)"
	emit "r$r" "redis VmRSS" "$n" "$p0" "$(rss "$RPID")"
	stop "$RPID"

	LPORT=$(freeport) APORT=$(freeport)
	"$BIN" serve --listen "127.0.0.1:$LPORT" --admin-listen "127.0.0.1:$APORT" --resp-listen off \
		--persistence none --data-dir "$WORK/data" --memory-limit "$(((KEYS * 600 >> 20) + 256))MiB" >"$WORK/ecache.log" 2>&1 &
	EPID=$!
	PIDS+=("$EPID")
	waitport "$LPORT" "$EPID"
	waitport "$APORT" "$EPID"
	t0=$(metric ecache_memory_bytes) h0=$(heap) a0=$(metric go_memstats_heap_alloc_bytes) p0=$(rss "$EPID")
	load "ecache://127.0.0.1:$LPORT"
	n=$(metric ecache_memory_entries)
	ev=$(metric ecache_memory_evictions_total)
	[ "$n" = "$KEYS" ] && [ "$ev" = 0 ] || { echo "ecache holds $n keys ($ev evictions), want $KEYS and none" >&2; exit 1; }
	emit "r$r" "ecache ecache_memory_bytes" "$n" "$t0" "$(metric ecache_memory_bytes)"
	emit "r$r" "ecache heap_inuse after GC" "$n" "$h0" "$(heap)"
	emit "r$r" "ecache heap_alloc after GC" "$n" "$a0" "$(metric go_memstats_heap_alloc_bytes)"
	emit "r$r" "ecache VmRSS" "$n" "$p0" "$(rss "$EPID")"
	stop "$EPID"
	rm -rf "$WORK/data"
done

echo
echo "== bytes per key (median of $ROUNDS rounds; ratio = figure / Redis used_memory per key)"
awk '{ sub(/^per_key=/, "", $NF); f = $2 " " $3; v[f] = v[f] " " $NF }
	END {
		n = 0
		for (f in v) {
			k = split(substr(v[f], 2), a, " ")
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			m[f] = (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
			order[++n] = f
		}
		ref = m["redis used_memory"]
		for (i = 1; i <= n; i++) printf "%-34s %8.1f B/key  %5.2fx\n", order[i], m[order[i]], m[order[i]] / ref
	}' "$RES" | sort
if [ -n "${OUT:-}" ]; then cat "$RES" >>"$OUT"; fi
