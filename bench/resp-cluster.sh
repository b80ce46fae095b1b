#!/usr/bin/env bash
# bench/resp-cluster.sh: issue #6's redis-benchmark command against a
# 3-node ecache cluster (N=3, persistence none, all on this host) and, in
# the same run, against one redis-server without persistence. Every process
# it starts is stopped on exit; each redis-benchmark run is bounded.
# Usage: bench/resp-cluster.sh [ECACHE_BINARY]   (env: N=100000 TESTS=...)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
TESTS=${TESTS:-ping,set,get,incr,sadd,mset}
. bench/lib.sh # WORK, PIDS, cleanup on exit, freeport, waitport, stop, ecache_binary

ecache_binary "${1:-}"
bench() { # port
	timeout 1200 redis-benchmark -h 127.0.0.1 -p "$1" -t "$TESTS" -n "$N" -c 50 -P 16 -r 100000 -q 2>&1 |
		tr '\r' '\n' | grep -v 'rps=' | grep -v '^\s*$'
}

RPORT=$(freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
waitport "$RPORT"

KEY=resp-cluster-bench
SEED=""
RESP1=""
for i in 1 2 3; do
	LPORT=$(freeport) APORT=$(freeport) GPORT=$(freeport) EPORT=$(freeport)
	join=(--cluster)
	[ -n "$SEED" ] && join=(--join "$SEED")
	"$BIN" serve --listen "127.0.0.1:$LPORT" --admin-listen "127.0.0.1:$APORT" --resp-listen "127.0.0.1:$EPORT" \
		--gossip-listen "127.0.0.1:$GPORT" "${join[@]}" --cluster-key "$KEY" --node-name "n$i" \
		--persistence none --data-dir "$WORK/n$i" >"$WORK/n$i.log" 2>&1 &
	PIDS+=($!)
	waitport "$EPORT"
	[ -z "$SEED" ] && SEED="127.0.0.1:$GPORT" RESP1=$EPORT ADMIN1=$APORT
done
for _ in $(seq 1 100); do
	alive=$(curl -s "http://127.0.0.1:$ADMIN1/v1/cluster" | grep -o '"state":"alive"' | wc -l)
	[ "$alive" -ge 3 ] && break
	sleep 0.1
done

echo "== redis-server (one node, no persistence)"
bench "$RPORT"
echo "== ecache, 3-node cluster (N=3, persistence none), through node 1"
bench "$RESP1"
echo "== SCARD myset: redis $(redis-cli -p "$RPORT" scard myset), ecache $(redis-cli -p "$RESP1" scard myset)"
