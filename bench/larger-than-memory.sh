#!/usr/bin/env bash
# bench/larger-than-memory.sh: GET throughput when the memory tier
# holds only a fraction of the keys, against a node holding them all
# (issue 7, goal "larger than memory": at least 0.5x).
#
# Each of ROUNDS rounds starts two nodes, ecache serve --persistence async,
# each with a fresh data dir:
#   all:   a memory tier large enough for every key;
#   small: a memory tier of PERCENT % of the bytes the "all" tier holds once
#          loaded (ecache_memory_bytes, so the fraction is of the real
#          per-key cost, not a guess).
# Both are loaded with KEYS keys (key:0 … key:KEYS-1, VALUE bytes) by
# `ecache bench --preload` (pipelined). Once Pebble's flushes and compactions
# have stopped on both (checked every 5 s, at most SETTLE_MAX checks), each
# node is warmed with GET-only DIST chunks of WARMUP until its tier is 90%
# full (or holds every key) and its hit ratio moved by less than 0.01 since
# the chunk before (at most WARMUP_CHUNKS). Then one
#   ecache bench --target small --compare all --slices SLICES --duration DURATION
# measures both in alternating slices (small, all, small, all, …) so that
# the load of this shared machine hits both alike, and gives the ratio.
# Reported per round: both throughputs and latencies, the ratio, the
# small tier's hit ratio over the measured slices (deltas of
# ecache_memory_hits_total / misses_total), and the disk used
# (ecache_pebble_disk_usage_bytes and du of the data dirs).
#
# Usage: bench/larger-than-memory.sh [ECACHE_BINARY]
# Env: KEYS (2000000), VALUE (100), PERCENT (10), DIST (zipf:0.99),
# DURATION (measured per node, 40s), SLICES (8), WARMUP (10s),
# WARMUP_CHUNKS (12), SETTLE_MAX (24), ROUNDS (2), CONNS (50), PIPELINE (16),
# STEP_TIMEOUT (seconds per step, 900), DATA (parent of the data dirs;
# default a temporary dir), OUT (a file to append the result lines to).
# Starts and stops everything it starts and removes its data dirs.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-2000000}
VALUE=${VALUE:-100}
PERCENT=${PERCENT:-10}
DIST=${DIST:-zipf:0.99}
DURATION=${DURATION:-40s}
SLICES=${SLICES:-8}
WARMUP=${WARMUP:-10s}
WARMUP_CHUNKS=${WARMUP_CHUNKS:-12}
SETTLE_MAX=${SETTLE_MAX:-24}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-50}
PIPELINE=${PIPELINE:-16}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
. bench/lib.sh # WORK, PIDS, cleanup on exit, freeport, waitport, stop, ecache_binary
DATA=${DATA:-$WORK}
DDIR="$DATA/ltm-data.$$"
trap 'cleanup; rm -rf "$DDIR"' EXIT

for c in curl python3; do
	command -v "$c" >/dev/null || { echo "larger-than-memory.sh: $c missing" >&2; exit 1; }
done
ecache_binary "${1:-}"

# Nodes are named all and small; their ports and pids live in L_<name>,
# A_<name>, P_<name>.
metric() { # name metric
	local a="A_$1"
	curl -sf "http://127.0.0.1:${!a}/metrics" | awk -v k="$2" '$1 == k { printf "%.0f\n", $2 }'
}
start() { # name memory-limit
	local l a
	l=$(freeport) a=$(freeport)
	mkdir -p "$DDIR"
	"$BIN" serve --listen "127.0.0.1:$l" --admin-listen "127.0.0.1:$a" --resp-listen off \
		--persistence async --data-dir "$DDIR/$1" --memory-limit "$2" >>"$WORK/ecache-$1.log" 2>&1 &
	local p=$!
	PIDS+=("$p")
	printf -v "L_$1" %s "$l"
	printf -v "A_$1" %s "$a"
	printf -v "P_$1" %s "$p"
	waitport "$l" "$p"
	waitport "$a" "$p"
}
stopnode() { local p="P_$1"; stop "${!p}"; } # name
url() { local l="L_$1"; echo "ecache://127.0.0.1:${!l}"; }
bench() { # out-file flags...
	local out=$1
	shift
	timeout "$STEP_TIMEOUT" "$BIN" bench --conns "$CONNS" --pipeline "$PIPELINE" \
		--keys "$KEYS" --value-size "$VALUE" "$@" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
}
load() { # name
	local t0
	t0=$(date +%s)
	bench "$WORK/load.txt" --target "$(url "$1")" --ratio 0:1 --preload --ops 1 --conns 16 --pipeline 64
	echo "  $1: preloaded $KEYS keys in $(($(date +%s) - t0)) s"
}
# settle: wait until Pebble has flushed and compacted what the preload left,
# so that background work does not fall in one measured run and not the
# other.
settle() { # name
	local last="" cur i
	for i in $(seq 1 "$SETTLE_MAX"); do
		cur="$(metric "$1" ecache_pebble_compactions_total) $(metric "$1" ecache_pebble_flushes_total)"
		if [ "$cur" = "$last" ]; then
			echo "  $1: settled after $((i * 5 - 5)) s (compactions, flushes: $cur)"
			return 0
		fi
		last=$cur
		sleep 5
	done
	echo "  $1: still compacting after $((SETTLE_MAX * 5)) s; measuring anyway"
}
# warm: GET chunks until the tier is steady (see the top of the file).
warm() { # name
	local prev=-1 h0 m0 hr=0 i
	for i in $(seq 1 "$WARMUP_CHUNKS"); do
		h0=$(metric "$1" ecache_memory_hits_total) m0=$(metric "$1" ecache_memory_misses_total)
		bench "$WORK/warm.txt" --target "$(url "$1")" --ratio 1:0 --dist "$DIST" --duration "$WARMUP" --seed $((100 + i))
		hr=$(awk -v h0="$h0" -v m0="$m0" -v h="$(metric "$1" ecache_memory_hits_total)" -v m="$(metric "$1" ecache_memory_misses_total)" \
			'BEGIN { d = (h - h0) + (m - m0); printf "%.4f", d ? (h - h0) / d : 0 }')
		if awk -v b="$(metric "$1" ecache_memory_bytes)" -v l="$(metric "$1" ecache_memory_limit_bytes)" -v f="$FULL" -v hr="$hr" -v p="$prev" \
			'BEGIN { exit !((b >= 0.9 * l || b >= 0.99 * f) && hr - p <= 0.01 && p - hr <= 0.01) }'; then
			echo "  $1: warm after $i x $WARMUP (tier hit ratio of the last chunk $hr)"
			return 0
		fi
		prev=$hr
	done
	echo "  $1: not steady after $WARMUP_CHUNKS x $WARMUP (tier hit ratio of the last chunk $hr); measuring anyway"
}

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr); $KEYS keys of $VALUE bytes, GET $DIST, tier $PERCENT% vs all; $CONNS conns x pipeline $PIPELINE"
for r in $(seq 1 "$ROUNDS"); do
	echo "== round $r"
	rm -rf "$DDIR"
	start all "$(((KEYS * 600 >> 20) + 256))MiB"
	load all
	n=$(metric all ecache_memory_entries) ev=$(metric all ecache_memory_evictions_total)
	[ "$n" = "$KEYS" ] && [ "$ev" = 0 ] || { echo "the tier holds $n keys ($ev evictions), want $KEYS and none" >&2; exit 1; }
	FULL=$(metric all ecache_memory_bytes)
	start small $((FULL * PERCENT / 100))
	load small
	settle all
	settle small
	warm all
	warm small
	h0=$(metric small ecache_memory_hits_total) m0=$(metric small ecache_memory_misses_total)
	bench "$WORK/run.txt" --target "$(url small)" --compare "$(url all)" --slices "$SLICES" \
		--ratio 1:0 --dist "$DIST" --duration "$DURATION" --json "$WORK/run.json"
	h1=$(metric small ecache_memory_hits_total) m1=$(metric small ecache_memory_misses_total)
	python3 - "$WORK/run.json" "r$r" "$h0" "$m0" "$h1" "$m1" "$(metric small ecache_memory_entries)" \
		"$(metric small ecache_memory_bytes)" "$(metric small ecache_memory_limit_bytes)" \
		"$(metric small ecache_pebble_disk_usage_bytes)" "$(metric all ecache_pebble_disk_usage_bytes)" \
		"$(du -sb "$DDIR/small" | cut -f1)" "$(du -sb "$DDIR/all" | cut -f1)" "$(cut -d' ' -f1 /proc/loadavg)" <<-'EOF' | tee -a "$WORK/res"
		import json, sys
		a = sys.argv
		j = json.load(open(a[1]))
		s, f = j["results"]
		h, m = int(a[5]) - int(a[3]), int(a[6]) - int(a[4])
		lat = lambda x: f"p50={x['latency_us']['p50']}us p99={x['latency_us']['p99']}us"
		print(f"{a[2]} small ops/s={s['ops_per_sec']:.0f} {lat(s)} errors={s['errors']} found={s['hit_ratio']:.4f} "
		      f"tier_hit={h / max(1, h + m):.4f} tier_entries={a[7]} tier_bytes={a[8]} tier_limit={a[9]} pebble_disk={a[10]} du={a[12]}")
		print(f"{a[2]} all   ops/s={f['ops_per_sec']:.0f} {lat(f)} errors={f['errors']} found={f['hit_ratio']:.4f} pebble_disk={a[11]} du={a[13]}")
		print(f"{a[2]} ratio small/all throughput={j['ratios']['throughput']:.2f}x p50={j['ratios']['p50']:.2f}x p99={j['ratios']['p99']:.2f}x load1={a[14]}")
	EOF
	stopnode small
	stopnode all
done
echo
awk '$2 == "ratio" { split($4, a, "="); sub(/x$/, "", a[2]); v[++n] = a[2] }
	END { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
		printf "== GET throughput, tier %s%% / tier holding all: median of %d rounds %.2fx\n", pct, n, (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }' pct="$PERCENT" "$WORK/res"
if [ -n "${OUT:-}" ]; then cat "$WORK/res" >>"$OUT"; fi
