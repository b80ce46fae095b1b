#!/usr/bin/env bash
# bench/cluster.sh: issue #7's cluster goal — a 3-node cluster (N=3, W=1)
# on this one host against a single node, both `ecache serve --persistence
# none`, measured interleaved by `ecache bench --compare` (the cluster
# target names all three nodes, so the client spreads requests over them).
# Prints the report and the ratio cluster/single. Stops what it starts.
# Usage: bench/cluster.sh [ECACHE_BINARY]
# Env: KEYS (1000000), RATIO (9:1), DURATION (10s per target), CONNS (50),
# PIPELINE (16), STEP_TIMEOUT (600 s per step).
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
RATIO=${RATIO:-9:1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
PIPELINE=${PIPELINE:-16}
STEP_TIMEOUT=${STEP_TIMEOUT:-600}
. bench/lib.sh # WORK, PIDS, cleanup on exit, freeport, waitport, stop, ecache_binary
ecache_binary "${1:-}"

serve() { # name args...: starts a node, sets PORT and ADMIN to its client and admin ports
	local name=$1
	shift
	PORT=$(freeport) ADMIN=$(freeport)
	"$BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN" --resp-listen off --persistence none \
		--data-dir "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	waitport "$PORT" "$!"
}

serve single
SINGLE=$PORT
KEY=cluster-bench
GOSSIP=$(freeport)
serve n1 --cluster --cluster-key "$KEY" --gossip-listen "127.0.0.1:$GOSSIP" --node-name n1
NODES=127.0.0.1:$PORT ADMIN1=$ADMIN CLUSTER_ADMINS=$ADMIN
for i in 2 3; do
	serve "n$i" --join "127.0.0.1:$GOSSIP" --cluster-key "$KEY" --gossip-listen "127.0.0.1:$(freeport)" --node-name "n$i"
	NODES=$NODES,127.0.0.1:$PORT CLUSTER_ADMINS="$CLUSTER_ADMINS $ADMIN"
done
# Wait until node 1 sees three alive members.
for _ in $(seq 1 100); do
	[ "$("$BIN" cluster members --admin "127.0.0.1:$ADMIN1" 2>/dev/null | grep -c alive)" -ge 3 ] && break
	sleep 0.1
done

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
flags=(--keys "$KEYS" --value-size 100 --ratio "$RATIO" --conns "$CONNS" --pipeline "$PIPELINE")
# Preload both, then wait until every cluster node holds every key (the
# background replication of a million writes takes a while) so that the
# measured slices compare steady states.
for t in "ecache://$NODES" "ecache://127.0.0.1:$SINGLE"; do
	timeout "$STEP_TIMEOUT" "$BIN" bench --target "$t" "${flags[@]}" --preload --ops 1 >/dev/null
done
entries() { curl -s "http://127.0.0.1:$1/metrics" | awk '$1 == "ecache_memory_entries" { printf "%.0f\n", $2 }'; }
deadline=$((SECONDS + STEP_TIMEOUT))
while :; do
	low=$KEYS
	for a in $CLUSTER_ADMINS; do
		e=$(entries "$a")
		[ "${e:-0}" -lt "$low" ] && low=${e:-0}
	done
	[ "$low" -ge "$KEYS" ] && break
	[ $SECONDS -ge $deadline ] && { echo "replication did not converge: a node holds $low of $KEYS keys" >&2; break; }
	sleep 1
done
echo "== every node holds $low of $KEYS keys after $((SECONDS)) s"
timeout "$STEP_TIMEOUT" "$BIN" bench --target "ecache://$NODES" --compare "ecache://127.0.0.1:$SINGLE" \
	"${flags[@]}" --duration "$DURATION"
