#!/usr/bin/env bash
# bench/compare.sh (`make bench-compare`): ecache against Redis on loopback,
# side by side in one run (issue 7). It installs redis-server if missing,
# starts Redis without persistence and ecache with --persistence none, then
# async, on free ports; runs redis-benchmark (SET, GET; pipeline 1 and 16)
# against Redis and ecache's RESP listener, and `ecache bench` with the
# native protocol against Redis through the harness's RESP driver at
# pipeline 16; prints the ratios; stops everything it started.
#
# redis-benchmark runs against Redis right before each ecache run (same
# depth), so every ratio compares runs made under the same machine load.
#
# Environment: N (redis-benchmark requests per test, default 100000),
# DURATION (ecache bench time per target, default 10s), STEP_TIMEOUT
# (seconds per step, default 300), MODES (default "none async"), MEMORY
# (default 1: also run bench/memory.sh, bytes per key against Redis).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
DURATION=${DURATION:-10s}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
MODES=${MODES:-none async}
MEMORY=${MEMORY:-1}
. bench/lib.sh # WORK, PIDS, cleanup on exit, freeport, waitport, stop, ecache_binary

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		echo "== installing redis-server"
		apt-get install -y redis-server >/dev/null || { apt-get update >/dev/null && apt-get install -y redis-server >/dev/null; }
	else
		echo "redis-server/redis-benchmark missing and not root: run 'sudo apt-get install -y redis-server' first" >&2
		exit 1
	fi
fi

echo "== machine: $(nproc) cores, $(uname -sr), $(redis-server --version | cut -d' ' -f3)"
echo "== building ecache"
go build -o "$WORK/ecache" ./cmd/ecache

RPORT=$(freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
waitport "$RPORT" "$!"

# rb NAME PORT PIPELINE: redis-benchmark SET,GET as "NAME P<p> TEST RPS" lines.
rb() {
	timeout "$STEP_TIMEOUT" redis-benchmark -h 127.0.0.1 -p "$2" -t set,get -n "$N" -c 50 -d 100 -r 1000000 -P "$3" --csv |
		awk -F, -v name="$1" -v p="$3" 'NR>1 { gsub(/"/, ""); print name, "P" p, $1, $2 }'
}

RESULTS="$WORK/results"
: >"$RESULTS"

for mode in $MODES; do
	LPORT=$(freeport)
	APORT=$(freeport)
	EPORT=$(freeport)
	echo "== ecache serve --persistence $mode"
	"$WORK/ecache" serve --listen "127.0.0.1:$LPORT" --admin-listen "127.0.0.1:$APORT" --resp-listen "127.0.0.1:$EPORT" \
		--persistence "$mode" --data-dir "$WORK/data-$mode" >"$WORK/ecache-$mode.log" 2>&1 &
	EPID=$!
	PIDS+=("$EPID")
	waitport "$LPORT" "$EPID"
	waitport "$EPORT" "$EPID"
	# Redis right before ecache, per pipeline depth, so both see the same
	# machine load (it is shared and noisy).
	for p in 1 16; do
		rb "redis-$mode" "$RPORT" "$p" | tee -a "$RESULTS"
		rb "ecache-$mode" "$EPORT" "$p" | tee -a "$RESULTS"
	done
	for r in 0:1 1:0; do
		echo "== ecache bench native (persistence $mode) vs Redis via RESP, pipeline 16, GET:SET $r"
		timeout "$STEP_TIMEOUT" "$WORK/ecache" bench --target "ecache://127.0.0.1:$LPORT" --compare "redis://127.0.0.1:$RPORT" \
			--conns 50 --pipeline 16 --keys 1000000 --value-size 100 --ratio "$r" --duration "$DURATION" --warmup 1s |
			tee "$WORK/bench-$mode-$r.txt"
	done
	kill "$EPID"
	wait "$EPID" 2>/dev/null || true
done

echo
echo "== redis-benchmark -t set,get -n $N -c 50 -d 100 -r 1000000 (requests/s; ratio = ecache / Redis)"
awk '
	$1 ~ /^redis-/ { m = $1; sub(/^redis-/, "", m); ref[m " " $2 " " $3] = $4; next }
	{ m = $1; sub(/^ecache-/, "", m); k = m " " $2 " " $3; rows[++n] = sprintf("%-14s %-4s %-4s %12.0f %12.0f %7.2fx", $1, $2, $3, $4, ref[k], (ref[k] > 0 ? $4 / ref[k] : 0)) }
	END { printf "%-14s %-4s %-4s %12s %12s %8s\n", "server", "pipe", "test", "ecache", "redis", "ratio"; for (i = 1; i <= n; i++) print rows[i] }
' "$RESULTS"
echo
echo "== ecache bench, native protocol vs Redis through the RESP driver (pipeline 16; ratio = native / Redis)"
for f in "$WORK"/bench-*.txt; do
	b=$(basename "$f" .txt)
	printf '%-22s %s\n' "${b#bench-}" "$(grep '^ratio' "$f" | sed 's/.*: //')"
done
if [ "$MEMORY" = 1 ]; then
	echo
	ROUNDS=1 timeout "$STEP_TIMEOUT" bench/memory.sh "$WORK/ecache"
fi
