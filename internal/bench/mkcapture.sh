#!/usr/bin/env bash
# mkcapture.sh — make (or reuse) the synthetic web capture for flowlake's comparative benchmark.
#
# Usage: mkcapture.sh [OUT]
#
#   OUT               capture to write (default /tmp/flowlake-bench/web-${BENCH_CAPTURE_MB}mb.pcap)
#   BENCH_CAPTURE_MB  target size in MB (10^6 bytes), default 160
#   BENCH_CAPTURE_MAX_S  give up if the target is not reached after this many seconds (default 900)
#
# Two network namespaces (flb-srv, flb-cli) joined by a veth pair with MTU 1500 and no other link
# and no default route, so no packet can leave them. nginx serves static files of assorted sizes
# in flb-srv; wrk in flb-cli drives keep-alive traffic (GET/HEAD/POST over all the paths) and
# short-lived connections (Connection: close); tcpdump records the server end of the veth until
# the file reaches the target size. Offloads are switched off on the veth pair so that the capture
# holds real MTU-sized frames with real checksums, as on a physical NIC.
#
# An existing OUT at least as large as the target is reused. The namespaces, processes and
# temp files are removed on exit, whatever happens; a run left behind by a crash is cleaned first.
set -euo pipefail

readonly NS_SRV=flb-srv NS_CLI=flb-cli
readonly VETH_SRV=flb-veth-s VETH_CLI=flb-veth-c
readonly ADDR_SRV=10.200.0.1 ADDR_CLI=10.200.0.2 # a /30 that exists only inside the two namespaces

MB=${BENCH_CAPTURE_MB:-160}
MAX_S=${BENCH_CAPTURE_MAX_S:-900}
OUT=${1:-${BENCH_CAPTURE:-/tmp/flowlake-bench/web-${MB}mb.pcap}}

die() { echo "mkcapture: $*" >&2; exit 1; }

[[ $MB =~ ^[0-9]+$ && $MB -gt 0 ]] || die "BENCH_CAPTURE_MB must be a positive integer, got '$MB'"
[[ $MAX_S =~ ^[0-9]+$ && $MAX_S -gt 0 ]] || die "BENCH_CAPTURE_MAX_S must be a positive integer, got '$MAX_S'"
TARGET=$((MB * 1000 * 1000))

report() { # report FILE: packet count and size
	local size packets=unknown
	size=$(stat -c %s "$1")
	if command -v capinfos >/dev/null; then
		packets=$(capinfos -M -c -T -r "$1" | awk -F'\t' 'NF >= 2 { print $2; exit }')
	fi
	echo "capture: $1"
	echo "size:    $size bytes ($((size / 1000000)) MB)"
	echo "packets: $packets"
}

# Cache first: a reader of the capture needs neither root nor the traffic tools.
if [[ -f $OUT ]] && (($(stat -c %s "$OUT") >= TARGET)); then
	echo "mkcapture: reusing $OUT (>= $MB MB)"
	report "$OUT"
	exit 0
fi

((EUID == 0)) || die "must run as root (network namespaces, tcpdump); try: sudo $0 $*"
missing=()
for tool in ip nginx tcpdump wrk ethtool capinfos stat awk gzip head timeout; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (Debian: apt-get install iproute2 nginx tcpdump wrk ethtool tshark coreutils gawk gzip)"

WORK=$(mktemp -d /tmp/flowlake-mkcapture.XXXXXX)
PARTIAL=${OUT%.pcap}.partial.pcap
NGINX_PID="" TCPDUMP_PID="" WRK_PIDS=()

stop_pid() { # stop_pid PID SIGNAL: signal a process we started and reap it
	local pid=$1 sig=$2
	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill "-$sig" "$pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

netns_gone() { # remove a namespace and any process still inside it (left by an earlier crash)
	local ns=$1 sig pids
	ip netns list | awk '{ print $1 }' | grep -qx "$ns" || return 0
	for sig in TERM KILL; do
		mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
		((${#pids[@]} == 0)) && break
		kill "-$sig" "${pids[@]}" 2>/dev/null || true
		sleep 0.2
	done
	ip netns del "$ns"
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in "${WRK_PIDS[@]}"; do stop_pid "$pid" TERM; done
	stop_pid "$TCPDUMP_PID" INT
	stop_pid "$NGINX_PID" QUIT
	netns_gone "$NS_CLI" || true
	netns_gone "$NS_SRV" || true
	rm -rf "$WORK"
	rm -f "$PARTIAL" "$PARTIAL"[0-9]*
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$(dirname "$OUT")"
rm -f "$PARTIAL" "$PARTIAL"[0-9]*

# --- network: two namespaces, one veth pair, nothing else -------------------------------------
netns_gone "$NS_CLI"
netns_gone "$NS_SRV"
ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
ip link add "$VETH_SRV" netns "$NS_SRV" type veth peer name "$VETH_CLI" netns "$NS_CLI"
for pair in "$NS_SRV:$VETH_SRV:$ADDR_SRV" "$NS_CLI:$VETH_CLI:$ADDR_CLI"; do
	IFS=: read -r ns dev addr <<<"$pair"
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$ns" link set lo up
	ip -n "$ns" link set "$dev" mtu 1500
	# Real 1500-byte frames with real checksums, as a physical NIC would show them.
	ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
		ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off >/dev/null
	ip -n "$ns" addr add "$addr/30" dev "$dev"
	ip -n "$ns" link set "$dev" up
done

# --- content and nginx ------------------------------------------------------------------------
DOCROOT=$WORK/www
mkdir -p "$DOCROOT/static" "$DOCROOT/api"
fill() { # fill FILE BYTES: printable, mildly compressible content
	local i=0
	while :; do printf 'line %06d: the quick brown fox jumps over the lazy dog; flowlake bench payload\n' $((i++)); done |
		head -c "$2" >"$1" || true
}
fill "$DOCROOT/static/200b.txt" 200
fill "$DOCROOT/static/2k.html" 2048
fill "$DOCROOT/static/16k.css" 16384
head -c 131072 /dev/urandom >"$DOCROOT/static/128k.bin"
fill "$DOCROOT/static/page.html" 32768
gzip -9 -c "$DOCROOT/static/page.html" >"$DOCROOT/static/page.html.gz"
printf '{"status":"ok","service":"flowlake-bench"}\n' >"$DOCROOT/api/status.json"

cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 10000;
    client_body_temp_path $WORK/body;
    proxy_temp_path $WORK/proxy;
    fastcgi_temp_path $WORK/fastcgi;
    uwsgi_temp_path $WORK/uwsgi;
    scgi_temp_path $WORK/scgi;
    server {
        listen $ADDR_SRV:80 default_server;
        server_name bench.flowlake.test;
        root $DOCROOT;
        location /static/ { gzip_static on; etag on; }
        # POST/PUT with a small JSON body; nginx reads and discards the body.
        location = /api/items { default_type application/json; return 201 '{"id":1,"created":true}\n'; }
        location /api/ { default_type application/json; }
    }
}
EOF
ip netns exec "$NS_SRV" nginx -c "$WORK/nginx.conf" -g 'daemon off;' 2>>"$WORK/nginx-error.log" &
NGINX_PID=$!

ready=0
for _ in $(seq 50); do
	if ip netns exec "$NS_CLI" timeout 1 bash -c "exec 3<>/dev/tcp/$ADDR_SRV/80" 2>/dev/null; then ready=1; break; fi
	kill -0 "$NGINX_PID" 2>/dev/null || break
	sleep 0.1
done
((ready)) || die "nginx did not start: $(cat "$WORK/nginx-error.log")"

# --- capture ----------------------------------------------------------------------------------
# -Z root: write the file as root (Debian's tcpdump otherwise drops to user tcpdump first).
# -C: tcpdump itself moves on to "${PARTIAL}1" once the first file holds $MB MB, so the first file
# ends at the target plus less than one packet, however far tcpdump's reading lags the traffic.
ip netns exec "$NS_SRV" tcpdump -i "$VETH_SRV" -s 0 -B 65536 -Z root -C "$MB" -w "$PARTIAL" 2>"$WORK/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 100); do
	grep -q 'listening on' "$WORK/tcpdump.log" && break
	kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump failed: $(cat "$WORK/tcpdump.log")"
	sleep 0.1
done
grep -q 'listening on' "$WORK/tcpdump.log" || die "tcpdump did not start: $(cat "$WORK/tcpdump.log")"

# --- traffic ----------------------------------------------------------------------------------
cat >"$WORK/mix.lua" <<'EOF'
-- Rotates over paths and methods (one large object per round, as in real pages). With the script argument "close", every request asks for
-- Connection: close, so wrk opens a new TCP connection for each one.
local reqs = {
  {"GET",  "/static/200b.txt"},
  {"GET",  "/static/2k.html"},
  {"GET",  "/api/status.json"},
  {"GET",  "/static/16k.css"},
  {"POST", "/api/items", {["Content-Type"] = "application/json"}, "json"},
  {"GET",  "/static/2k.html?page=2&sort=asc"},
  {"GET",  "/static/page.html", {["Accept-Encoding"] = "gzip, deflate"}},
  {"HEAD", "/static/16k.css"},
  {"GET",  "/no/such/page"},
  {"GET",  "/static/200b.txt", {["If-None-Match"] = "\"x\""}},
  {"GET",  "/static/128k.bin"},
  {"POST", "/api/items", {["Content-Type"] = "application/x-www-form-urlencoded"}, "form"},
  {"GET",  "/api/status.json?v=2"},
  {"GET",  "/static/2k.html"},
  {"POST", "/static/200b.txt", {["Content-Type"] = "text/plain"}, "text"},
  {"GET",  "/static/page.html"},
  {"GET",  "/static/200b.txt?cache=no"},
  {"HEAD", "/static/128k.bin"},
  {"GET",  "/favicon.ico"},
  {"POST", "/api/items", {["Content-Type"] = "application/json"}, "json"},
  {"GET",  "/static/16k.css", {["Accept-Encoding"] = "gzip"}},
  {"GET",  "/static/2k.html?q=flow+lake"},
}
local agents = {"curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "python-requests/2.31", "Go-http-client/1.1"}
local close, i, n = false, 0, 0

function init(args)
  close = args[1] == "close"
  i = math.random(#reqs) - 1
end

function request()
  i = i % #reqs + 1
  n = n + 1
  local r = reqs[i]
  local h = {["User-Agent"] = agents[n % #agents + 1], ["Accept"] = "*/*"}
  for k, v in pairs(r[3] or {}) do h[k] = v end
  -- wrk cannot read a HEAD response without a body on a kept-alive connection (it waits for
  -- Content-Length bytes), so HEAD always closes; the server ends the exchange with FIN.
  if close or r[1] == "HEAD" then h["Connection"] = "close" end
  local body = nil
  if r[4] == "json" then
    body = string.format('{"n":%d,"name":"item-%d","tags":["a","b"]}', n, n % 97)
  elseif r[4] == "form" then
    body = string.format("n=%d&name=item-%d&ok=1", n, n % 89)
  elseif r[4] == "text" then
    body = string.rep("x", 16 + n % 200)
  end
  return wrk.format(r[1], r[2], h, body)
end
EOF

URL="http://$ADDR_SRV/"
ip netns exec "$NS_CLI" wrk -t 1 -c 12 -d "$((MAX_S + 60))s" --timeout 5s -s "$WORK/mix.lua" "$URL" >"$WORK/wrk-keepalive.log" 2>&1 &
WRK_PIDS+=($!)
ip netns exec "$NS_CLI" wrk -t 1 -c 2 -d "$((MAX_S + 60))s" --timeout 5s -s "$WORK/mix.lua" "$URL" -- close >"$WORK/wrk-close.log" 2>&1 &
WRK_PIDS+=($!)

echo "mkcapture: capturing to $OUT until it holds $MB MB"
start=$SECONDS last=-1
while :; do
	[[ -e ${PARTIAL}1 ]] && break
	size=$(stat -c %s "$PARTIAL" 2>/dev/null || echo 0)
	for pid in "${WRK_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null || die "wrk stopped early at $size bytes: $(cat "$WORK"/wrk-*.log)"
	done
	kill -0 "$TCPDUMP_PID" 2>/dev/null || die "tcpdump stopped early: $(cat "$WORK/tcpdump.log")"
	((SECONDS - start < MAX_S)) || die "only $size of $TARGET bytes after ${MAX_S}s"
	if (((SECONDS - start) / 10 != last)); then
		last=$(((SECONDS - start) / 10))
		echo "mkcapture: $((SECONDS - start))s: $((size / 1000000)) MB"
	fi
	sleep 0.05
done

# Stop cleanly: traffic first (wrk prints its summary on SIGINT), then let tcpdump see the last
# packets and flush its buffer.
kill -INT "${WRK_PIDS[@]}" 2>/dev/null || true
for pid in "${WRK_PIDS[@]}"; do stop_pid "$pid" INT; done
WRK_PIDS=()
sleep 0.5
stop_pid "$TCPDUMP_PID" INT
TCPDUMP_PID=""

echo "mkcapture: wrk keep-alive:"; sed 's/^/  /' "$WORK/wrk-keepalive.log"
echo "mkcapture: wrk Connection: close:"; sed 's/^/  /' "$WORK/wrk-close.log"
echo "mkcapture: tcpdump (counts include what came after the target size, not kept):"; grep -E 'packets' "$WORK/tcpdump.log" | sed 's/^/  /'

mv -f "$PARTIAL" "$OUT"
report "$OUT"
