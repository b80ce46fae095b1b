#!/usr/bin/env bash
# bench/latency.sh: peak and open-loop latency, ecache's native protocol
# against Redis through the harness's RESP driver (issue 7). Starts Redis
# (--save '' --appendonly no) and `ecache serve --persistence MODE`, preloads
# 1M keys of 100 bytes into both, measures the closed-loop peak (GET:SET 9:1,
# 50 conns x pipeline 16), then runs open loop (--rate) at each of RATES
# (default: half of ecache's peak) with pipeline 16 and 1, both targets
# interleaved. Usage: bench/latency.sh [ECACHE_BINARY]
# (env: MODE=none, RATES="", DURATION=8s, KEYS=1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-none}
KEYS=${KEYS:-1000000}
DURATION=${DURATION:-8s}
. bench/lib.sh # WORK, PIDS, cleanup on exit, freeport, waitport, stop, ecache_binary
ecache_binary "${1:-}"
RP=$(freeport)
LP=$(freeport)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
"$BIN" serve --listen "127.0.0.1:$LP" --admin-listen off --resp-listen off --persistence "$MODE" \
	--data-dir "$WORK/data" >"$WORK/ecache.log" 2>&1 &
PIDS+=($!)
waitport "$RP"
waitport "$LP"
COMMON=(--keys "$KEYS" --value-size 100 --ratio 9:1 --conns 50)
for t in "ecache://127.0.0.1:$LP" "redis://127.0.0.1:$RP"; do
	"$BIN" bench --target "$t" "${COMMON[@]}" --preload --ops 1 >/dev/null
done
echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== peak: closed loop, GET:SET 9:1, pipeline 16"
"$BIN" bench --target "ecache://127.0.0.1:$LP" --compare "redis://127.0.0.1:$RP" "${COMMON[@]}" \
	--pipeline 16 --duration 5s --warmup 1s | tee "$WORK/peak.txt" | tail -4
PEAK=$(awk '/^ecache:/ { print $2; exit }' "$WORK/peak.txt")
for RATE in ${RATES:-$((PEAK / 2))}; do
	for PL in 16 1; do
		echo "== open loop --rate $RATE (ecache peak $PEAK), pipeline $PL, load average $(cut -d' ' -f1-3 /proc/loadavg)"
		"$BIN" bench --target "ecache://127.0.0.1:$LP" --compare "redis://127.0.0.1:$RP" "${COMMON[@]}" \
			--pipeline "$PL" --rate "$RATE" --duration "$DURATION" --warmup 1s | tail -4
	done
done
