#!/usr/bin/env bash
# bench/larger-than-memory.sh: zipf 0.99 GETs with a memory tier holding
# about 10% of the data against the same node holding all of it (issue 7).
# Starts two `ecache serve --persistence async` nodes, A with a memory tier
# of KEYS*193/10 bytes (a 100-byte value's record is about 193 bytes in the
# tier) and B with 1GiB, preloads KEYS keys into both, then measures A
# against B interleaved and prints A's memory-tier figures.
# Usage: bench/larger-than-memory.sh [ECACHE_BINARY]   (env: KEYS=1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
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
AP=$(freeport)
BP=$(freeport)
AA=$(freeport)
SMALL="$((KEYS * 193 / 10 >> 10))KiB"
"$BIN" serve --listen "127.0.0.1:$AP" --admin-listen "127.0.0.1:$AA" --resp-listen off --persistence async \
	--memory-limit "$SMALL" --data-dir "$WORK/a" >"$WORK/a.log" 2>&1 &
PIDS+=($!)
"$BIN" serve --listen "127.0.0.1:$BP" --admin-listen off --resp-listen off --persistence async \
	--memory-limit 1GiB --data-dir "$WORK/b" >"$WORK/b.log" 2>&1 &
PIDS+=($!)
waitport "$AP"
waitport "$BP"
waitport "$AA"
echo "== $KEYS keys of 100 bytes; A: memory tier $SMALL (~10% of the data), B: 1GiB (all); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for p in "$AP" "$BP"; do
	"$BIN" bench --target "ecache://127.0.0.1:$p" --keys "$KEYS" --value-size 100 --ratio 0:1 \
		--conns 50 --pipeline 16 --preload --ops 1 >/dev/null
done
"$BIN" bench --target "ecache://127.0.0.1:$AP" --compare "ecache://127.0.0.1:$BP" --keys "$KEYS" --value-size 100 \
	--ratio 1:0 --dist zipf:0.99 --conns 50 --pipeline 16 --duration 8s --warmup 2s | tail -4
curl -s "http://127.0.0.1:$AA/metrics" | grep -E '^ecache_memory_(entries|bytes|limit_bytes|hits_total|misses_total) '
