# bench/lib.sh: what the bench scripts share. Source it from the
# repository root (`. bench/lib.sh`). It creates WORK, a temporary
# directory, and PIDS, the processes to stop: append with PIDS+=($!). On
# exit (or TERM/INT) it stops them, and any child still running, and removes
# WORK. Functions: freeport, waitport PORT [PID], stop PID, and
# ecache_binary [BIN], which sets BIN to BIN or to a binary built into WORK.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	pkill -P $$ 2>/dev/null || true # a bench step still in flight
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 143" TERM INT

# freeport prints a free TCP port on 127.0.0.1.
freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

# waitport waits up to 60 s until something listens on PORT, failing early
# if PID (when given) exits first.
waitport() {
	for _ in $(seq 1 600); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			echo "process $2 exited before listening on $1" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "nothing listening on $1" >&2
	return 1
}

# stop stops PID and waits for it.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# ecache_binary sets BIN to $1, or builds ./cmd/ecache into WORK.
ecache_binary() {
	BIN=${1:-}
	if [ -z "$BIN" ]; then
		go build -o "$WORK/ecache" ./cmd/ecache
		BIN="$WORK/ecache"
	fi
}
