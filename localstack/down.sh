#!/usr/bin/env bash
# down.sh — stop what localstack/up.sh started: the functions host first
# (SIGTERM: running parses finish), then MinIO. Data, credentials and logs
# stay in the state directory (FLOWLAKE_LOCALSTACK_DIR, default ./.localstack);
# remove it to start from nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${FLOWLAKE_LOCALSTACK_DIR:-$root/.localstack}

# stop NAME PATTERN: stop the process in NAME.pid if it still runs the
# expected program (a stale pid file may name another process by now).
stop() {
	local pidfile=$state/$1.pid pid i
	if [ ! -f "$pidfile" ]; then
		echo "$1: not running (no pid file)"
		return 0
	fi
	pid=$(cat "$pidfile")
	if [ -z "$pid" ] || [ ! -r "/proc/$pid/cmdline" ] || ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$2"; then
		echo "$1: not running (stale pid file)"
		rm -f "$pidfile"
		return 0
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 200; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$1: stopped (pid $pid)"
			rm -f "$pidfile"
			return 0
		fi
		sleep 0.2
	done
	echo "$1: still running 40 s after SIGTERM; sending SIGKILL (pid $pid)"
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$pidfile"
}

stop functions "functions serve"
stop minio "minio server"
