#!/usr/bin/env bash
# bench/peers.sh — echlab's resolver beside the DNS servers it is measured
# against (issue 15), on loopback, with the same zone and the same query
# mix, and a table of queries per second, server CPU per query and RSS,
# with each row's ratio to Unbound on the same transport.
#
#   bench/peers.sh                        # every available server, 3 runs of 3 s
#   DURATION=5 RUNS=5 bench/peers.sh
#   SERVERS="echlab unbound" bench/peers.sh
#   TRANSPORTS="udp doh-h2" bench/peers.sh
#   TRANSPORTS="udp doq doh-h3 dot-go doh-h2-go" SERVERS="echlab unbound" bench/peers.sh
#   QUERYLOG=1 bench/peers.sh             # echlab with its query log on (a file)
#   ECHLAB_BIN=/path/to/echlab bench/peers.sh   # skip the build
#
# Servers: echlab (this tree), unbound (local-data), knot (knotd), nsd,
# coredns (file plugin; built with `go install github.com/coredns/coredns@
# $COREDNS_VERSION` into ~/go/bin when missing, COREDNS=0 skips the build),
# dnsdist (packet cache, in front of Unbound or else echlab). Install the C
# ones with: apt-get install unbound knot nsd dnsdist dnsperf nghttp2-client.
# A server that is not installed is listed as "not available" with why.
#
# Load: dnsperf for udp, tcp and dot (TCP_NODELAY set on its sockets by an
# LD_PRELOAD shim built here with cc, as dnsperf leaves Nagle on, which
# stalls pipelined TCP queries); h2load for DoH over HTTP/2 (doh-h2) and
# HTTP/1.1 (doh-h1), GET with ?dns= (ID 0, one URI per query of the mix,
# cycled by h2load -i). dnsperf's own DoH is not used: it loses answers
# that share a TLS record (see bench/resolver.sh). DoQ (doq) and DoH over
# HTTP/3 (doh-h3, GET ?dns=, ID 0) by bench/dnsload, built here with go
# (no Debian load generator speaks them: h2load is built without ngtcp2,
# kdig +quic sends one query per process): CLIENTS connections with STREAMS
# queries in flight on each, the same mix cycled, every answer's rcode and
# answer count checked against the server's own Do53 answers (errors are
# printed under the row). dot-go and doh-h2-go are dnsload's DoT and DoH
# over HTTP/2 against the same server, so that the QUIC rows can be read
# against TCP ones from the same Go client. The server runs pinned
# to core 0 and the load generator to core 1 (taskset), each server with
# one worker thread (echlab and CoreDNS get GOMAXPROCS=1 from the pin).
# Each cell is the median of RUNS runs of DURATION seconds.
#
# Columns: qps (answered queries per second), us/q (server CPU, user +
# system from /proc/PID/stat summed over the server's processes, per
# answered query: the fair figure when the load generator saturates its
# core), sys% (the share of that CPU spent in the kernel: over UDP on
# loopback most of a query's cost is the kernel's, for every server), idle
# (the server's RSS in MiB before any load), RSS (the highest RSS seen
# during the load, sampled every 0.1 s) and anon (its anonymous part:
# heap and stacks; the rest is pages of the binary and its libraries),
# and x unbound (qps over Unbound's on the same transport).
#
# echlab runs as `echlab resolver` does by default: metrics on, padding on
# (the queries of the mix are not padded, so no response is padded), query
# log off (QUERYLOG=1 turns it on, to a file); DoH3 and DoQ listen too.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-4}          # dnsperf -c, and h2load -c
OUTSTANDING=${OUTSTANDING:-100} # dnsperf -q
STREAMS=${STREAMS:-32}         # h2load -m: concurrent streams per connection
SERVERS=${SERVERS:-"echlab unbound knot nsd coredns dnsdist"}
TRANSPORTS=${TRANSPORTS:-"udp tcp dot doh-h2 doh-h1 doq doh-h3 dot-go doh-h2-go"}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
BASE_PORT=${BASE_PORT:-25300}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

for tool in dnsperf taskset openssl dig; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not installed" >&2; exit 1; }
done
if pgrep -f 'bash .ci/run' >/dev/null; then
  echo "bench: warning: a CI run is going on this machine; the figures will be low and noisy" >&2
fi

work=$(mktemp -d)
spid=
stop_server() {
  if [[ -n $spid ]]; then
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    spid=
  fi
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT

# --- shared material: certificate, query mix, TCP_NODELAY shim ----------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 600 "$work/key.pem"

# The mix: HTTPS with ech=, A/AAAA, a CNAME chain, SVCB data, a negative
# answer (NXDOMAIN) and a NODATA. No wildcard: Unbound's local-data does
# not expand them.
mix=("secret.lab.test HTTPS" "secret.lab.test A" "public.lab.test AAAA" "www.lab.test A"
  "svc.lab.test HTTPS" "nope.lab.test A" "public.lab.test MX" "backend.lab.test AAAA")
printf '%s\n' "${mix[@]}" >"$work/queries"

# qwire NAME TYPE prints a DNS query (ID 0, RD, no EDNS) in base64url.
qwire() {
  local name=$1 type=$2 code hex=000001000001000000000000 label
  case $type in A) code=0001 ;; AAAA) code=001c ;; MX) code=000f ;; TXT) code=0010 ;; HTTPS) code=0041 ;; SVCB) code=0040 ;; *) echo "qwire: type $type" >&2; return 1 ;; esac
  IFS=. read -ra labels <<<"$name"
  for label in "${labels[@]}"; do
    hex+=$(printf '%02x' "${#label}")$(printf '%s' "$label" | od -An -tx1 | tr -d ' \n')
  done
  hex+=00${code}0001
  printf '%s' "$hex" | xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '='
}

shim=
if command -v cc >/dev/null; then
  cat >"$work/nodelay.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
/* connect() with TCP_NODELAY set first on stream sockets. */
int connect(int fd, const struct sockaddr *sa, socklen_t len) {
	static int (*real)(int, const struct sockaddr *, socklen_t);
	int type = 0, one = 1;
	socklen_t tl = sizeof type;
	if (!real)
		real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
	    (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return real(fd, sa, len);
}
EOF
  cc -shared -fPIC -O2 -o "$work/nodelay.so" "$work/nodelay.c" -ldl && shim=$work/nodelay.so
fi
[[ -n $shim ]] || echo "bench: no C compiler: dnsperf's TCP and DoT run without TCP_NODELAY" >&2

# --- process accounting -------------------------------------------------
tree() { # PID and its descendants
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do tree "$c"; done
}
cpu_ticks() { # "user+system system" ticks of the server's processes
  local p t=0 s=0 u k
  for p in $(tree "$spid"); do
    [[ -r /proc/$p/stat ]] || continue
    read -r u k < <(awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$p/stat")
    t=$((t + u + k)) s=$((s + k))
  done
  echo "$t $s"
}
rss_mib() { # "resident anonymous" MiB of the server's processes
  local p t=0 a=0 r
  for p in $(tree "$spid"); do
    [[ -r /proc/$p/status ]] || continue
    read -r r < <(awk '/^VmRSS:/ { t = $2 } /^RssAnon:/ { a = $2 } END { print t, a }' "/proc/$p/status")
    t=$((t + ${r% *})) a=$((a + ${r#* }))
  done
  awk -v t="$t" -v a="$a" 'BEGIN { printf "%.0f %.0f\n", t / 1024, a / 1024 }'
}
rss_watch() { # the highest RSS of the server (and its anon part) into $work/rss.peak, every 0.1 s until killed
  local peak=-1 r a
  while :; do
    read -r r a < <(rss_mib)
    if ((r > peak)); then
      peak=$r
      echo "$r $a" >"$work/rss.peak"
    fi
    sleep 0.1
  done
}
hz=$(getconf CLK_TCK)

wait_udp() { # PORT: until the server answers on UDP
  for _ in $(seq 100); do
    dig @127.0.0.1 -p "$1" +tries=1 +time=1 +short public.lab.test A 2>/dev/null | grep -q 127.0.0.1 && return 0
    kill -0 "$spid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_tcp() { # PORT: until something listens on it
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$spid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# measure TRANSPORT PORT DNSPORT: one run; prints "qps ticks errors sys-ticks"
# (DNSPORT is the server's Do53 port, whose answers dnsload expects)
measure() {
  local tr=$1 port=$2 out qps t0 t1 s0 s1 errs=0
  read -r t0 s0 < <(cpu_ticks)
  case $tr in
  udp | tcp | dot)
    out=$(LD_PRELOAD=${shim:+$shim} taskset -c "$LOAD_CPU" dnsperf -m "$tr" -s 127.0.0.1 -p "$port" \
      -d "$work/queries" -l "$DURATION" -c "$CLIENTS" -q "$OUTSTANDING" 2>&1) || { echo "$out" >&2; return 1; }
    qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
    ;;
  doh-h2 | doh-h1)
    local h1=()
    [[ $tr == doh-h1 ]] && h1=(--h1)
    sed "s|^|https://127.0.0.1:$port/dns-query?dns=|" "$work/uris" >"$work/uris.$port"
    out=$(taskset -c "$LOAD_CPU" h2load "${h1[@]}" -c "$CLIENTS" -m "$STREAMS" -D "$DURATION" \
      -i "$work/uris.$port" 2>&1) || { echo "$out" >&2; return 1; }
    # answered = succeeded requests (2xx); qps over the run
    qps=$(awk '/^requests:/ { for (i = 1; i < NF; i++) if ($(i+1) == "succeeded,") ok = $i }
      END { printf "%.0f", ok / '"$DURATION"' }' <<<"$out")
    ;;
  doq | doh-h3 | dot-go | doh-h2-go)
    out=$(taskset -c "$LOAD_CPU" "$dnsload" --transport "${tr%-go}" --addr "127.0.0.1:$port" \
      --queries "$work/queries" --expect-from "127.0.0.1:$3" --ca "$work/cert.pem" \
      --conns "$CLIENTS" --inflight "$STREAMS" --duration "${DURATION}s" 2>&1) || { echo "$out" >&2; return 1; }
    qps=$(awk '/^answered\/s:/ { print $2 }' <<<"$out")
    errs=$(awk '/^errors:/ { print $2 }' <<<"$out")
    grep '^error:' <<<"$out" >"$work/errors.$tr.$port" || true
    ;;
  esac
  read -r t1 s1 < <(cpu_ticks)
  echo "${qps%.*} $((t1 - t0)) $errs $((s1 - s0))"
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print 0; else print a[int((NR + 1) / 2)] }'; }

# answers PORT: the rcode and answer records of each query of the mix, as
# one line each (TTLs kept, order sorted), to check every server serves
# the same data.
answers() {
  local q
  for q in "${mix[@]}"; do
    # shellcheck disable=SC2086 # NAME TYPE
    printf '%s: %s %s\n' "$q" "$(dig @127.0.0.1 -p "$1" +tries=2 +time=1 +norec $q 2>/dev/null |
      awk '/status:/ { sub(/,.*/, "", $6); print $6 }')" \
      "$(dig @127.0.0.1 -p "$1" +tries=2 +time=1 +norec +noall +answer $q 2>/dev/null | sort | tr -s ' \t' ' ' | tr '\n' '|')"
  done
}

declare -A QPS USQ SYS RSS IDLE ANON NOTE ERRS
# run_server NAME "transport:port ..." : measures every listed transport
run_server() {
  local name=$1 tr port pair q t e st qs us sys i
  local first=${2%% *} # udp:PORT
  local dnsport=${first#*:}
  read -r "IDLE[$name]" _ < <(rss_mib)
  rss_watch &
  local watch=$!
  taskset -cp "$LOAD_CPU" "$watch" >/dev/null
  answers "${first#*:}" >"$work/answers.$name"
  if [[ $name != echlab && -s $work/answers.echlab ]] && ! cmp -s "$work/answers.echlab" "$work/answers.$name"; then
    NOTE[$name/answers]="answers differ from echlab's: $( (diff "$work/answers.echlab" "$work/answers.$name" || true) |
      grep '^>' | cut -c3- | cut -d'|' -f1 | paste -sd ';' | cut -c1-300)"
  fi
  for pair in $2; do
    tr=${pair%%:*} port=${pair#*:}
    [[ " $TRANSPORTS " == *" $tr "* ]] || continue
    if [[ $tr == doh-h[12] ]] && ! command -v h2load >/dev/null; then
      NOTE[$name/$tr]="no h2load (apt-get install nghttp2-client)"
      continue
    fi
    if [[ $tr =~ ^(doq|doh-h3|dot-go|doh-h2-go)$ && -z $dnsload ]]; then
      NOTE[$name/$tr]="no bench/dnsload (go build ./bench/dnsload failed or no go)"
      continue
    fi
    qs=() us=() sys=()
    for ((i = 0; i < RUNS; i++)); do
      read -r q t e st < <(measure "$tr" "$port" "$dnsport") || { NOTE[$name/$tr]="load generator failed"; continue 2; }
      [[ -z $q ]] && { NOTE[$name/$tr]="load generator failed"; continue 2; }
      ERRS[$name/$tr]=$((${ERRS[$name/$tr]:-0} + e))
      if ((e > 0)); then
        NOTE[$name/$tr/errors]="$(paste -sd';' "$work/errors.$tr.$port" | cut -c1-300)"
      fi
      qs+=("$q")
      if ((q > 0)); then us+=("$(awk -v t="$t" -v hz="$hz" -v q="$q" -v d="$DURATION" 'BEGIN { printf "%.1f", t * 1e6 / hz / (q * d) }')"); fi
      if ((t > 0)); then sys+=("$((100 * st / t))"); fi
    done
    QPS[$name/$tr]=$(printf '%s\n' "${qs[@]}" | median)
    USQ[$name/$tr]=$( ((${#us[@]})) && printf '%s\n' "${us[@]}" | median || echo -)
    SYS[$name/$tr]=$( ((${#sys[@]})) && printf '%s\n' "${sys[@]}" | median || echo -)
  done
  kill "$watch"
  wait "$watch" 2>/dev/null || true
  read -r "RSS[$name]" "ANON[$name]" <"$work/rss.peak"
}

start() { # start CMD...: runs the server pinned to SERVER_CPU
  taskset -c "$SERVER_CPU" "$@" >"$work/server.out" 2>"$work/server.err" &
  spid=$!
}

# --- the zone: the lab test zone plus echlab's published HTTPS record -----
zone=resolver/testdata/lab.test.zone
if [[ -n ${ECHLAB_BIN:-} ]]; then cp "$ECHLAB_BIN" "$work/echlab"; else go build -o "$work/echlab" ./cmd/echlab; fi
# bench/dnsload for doq, doh-h3, dot-go and doh-h2-go (DNSLOAD_BIN skips the build)
dnsload=
if [[ " $TRANSPORTS " =~ \ (doq|doh-h3|dot-go|doh-h2-go)\  ]]; then
  if [[ -n ${DNSLOAD_BIN:-} ]]; then
    cp "$DNSLOAD_BIN" "$work/dnsload" && dnsload=$work/dnsload
  elif command -v go >/dev/null && go build -o "$work/dnsload" ./bench/dnsload; then
    dnsload=$work/dnsload
  fi
fi
"$work/echlab" keygen --keys "$work/keys" >/dev/null

declare -A AVAIL
for s in $SERVERS; do AVAIL[$s]=1; done

# echlab first: it also writes the HTTPS record the peers serve as data.
p=$BASE_PORT
log=()
[[ ${QUERYLOG:-0} == 1 ]] && log=(--log "$work/query.log")
start "$work/echlab" resolver --zone "$zone" --keyset "main=$work/keys" \
  --publish "secret.lab.test,keyset=main,alpn=h2,alpn=h3" \
  --udp "127.0.0.1:$p" --tcp "127.0.0.1:$p" --dot "127.0.0.1:$((p + 1))" --doh "127.0.0.1:$((p + 2))" \
  --doh3 "127.0.0.1:$((p + 4))" --doq "127.0.0.1:$((p + 5))" \
  --metrics "127.0.0.1:$((p + 3))" --cert "$work/cert.pem" --key "$work/key.pem" --pki '' "${log[@]}"
wait_udp "$p" || { cat "$work/server.err" >&2; exit 1; }
cp "$zone" "$work/zone"
dig @127.0.0.1 -p "$p" +noall +answer secret.lab.test HTTPS >>"$work/zone"
grep -q 'secret.lab.test.*ech=' "$work/zone" || { echo "bench: no published HTTPS record" >&2; exit 1; }
# shellcheck disable=SC2086 # NAME TYPE
for q in "${mix[@]}"; do qwire $q; echo; done >"$work/uris"
if [[ -n ${AVAIL[echlab]:-} ]]; then
  run_server echlab "udp:$p tcp:$p dot:$((p + 1)) doh-h2:$((p + 2)) doh-h1:$((p + 2)) doq:$((p + 5)) doh-h3:$((p + 4)) dot-go:$((p + 1)) doh-h2-go:$((p + 2))"
fi
stop_server

# Absolute one-record-a-line form of the zone, for Unbound's local-data.
awk '
  function abs(n) { return n == "@" ? origin : (n ~ /\.$/ ? n : n "." origin) }
  /^[ \t]*;/ || /^[ \t]*$/ { next }
  $1 == "$ORIGIN" { origin = $2; next }
  $1 == "$TTL" { ttl = $2; next }
  {
    owner = abs($1); i = 2; t = ttl
    if ($i ~ /^[0-9]+$/) { t = $i; i++ }
    if ($i == "IN") i++
    type = $i; rest = ""
    for (j = i + 1; j <= NF; j++) rest = rest " " $j
    n = split(substr(rest, 2), f, " ")
    if (type == "NS" || type == "CNAME") f[1] = abs(f[1])
    if (type == "SOA") { f[1] = abs(f[1]); f[2] = abs(f[2]) }
    if (type == "MX" || type == "SVCB" || type == "HTTPS") f[2] = abs(f[2])
    rdata = f[1]; for (j = 2; j <= n; j++) rdata = rdata " " f[j]
    if (owner ~ /^\*/) next   # local-data has no wildcards
    # single quotes: TXT and SVCB rdata hold double quotes
    printf "local-data: '"'"'%s %s IN %s %s'"'"'\n", owner, t, type, rdata
  }' origin=lab.test. "$work/zone" >"$work/local-data"

# --- Unbound ---------------------------------------------------------------
if [[ -n ${AVAIL[unbound]:-} ]]; then
  if ! command -v unbound >/dev/null; then
    NOTE[unbound]="not available: unbound not installed (apt-get install unbound)"
  else
    p=$((BASE_PORT + 10))
    mkdir -p "$work/unbound"
    {
      cat <<EOF
server:
  username: ""
  chroot: ""
  directory: "$work/unbound"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  do-ip6: no
  so-reuseport: no
  interface: 127.0.0.1@$p
  interface: 127.0.0.1@$((p + 1))
  interface: 127.0.0.1@$((p + 2))
  tls-port: $((p + 1))
  https-port: $((p + 2))
  tls-service-key: "$work/key.pem"
  tls-service-pem: "$work/cert.pem"
  http-endpoint: "/dns-query"
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "lab.test." static
EOF
      sed 's/^/  /' "$work/local-data"
      printf 'remote-control:\n  control-enable: no\n'
    } >"$work/unbound.conf"
    start unbound -d -c "$work/unbound.conf"
    if wait_udp "$p"; then
      run_server unbound "udp:$p tcp:$p dot:$((p + 1)) doh-h2:$((p + 2))"
      NOTE[unbound/doh-h1]="Unbound serves DoH over HTTP/2 only"
      NOTE[unbound/doq]="Unbound 1.17 has no DoQ (1.22 added it, built with ngtcp2)"
      NOTE[unbound/doh-h3]="Unbound has no DoH over HTTP/3"
    else
      NOTE[unbound]="not available: did not start: $(tail -1 "$work/server.err")"
    fi
    stop_server
  fi
fi

# --- Knot ------------------------------------------------------------------
if [[ -n ${AVAIL[knot]:-} ]]; then
  if ! command -v knotd >/dev/null; then
    NOTE[knot]="not available: knotd not installed (apt-get install knot)"
  else
    p=$((BASE_PORT + 20))
    mkdir -p "$work/knot"
    cat >"$work/knot.conf" <<EOF
server:
    listen: 127.0.0.1@$p
    rundir: "$work/knot"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$work/knot"
control:
    listen: "$work/knot/knot.sock"
log:
  - target: stderr
    any: error
template:
  - id: default
    storage: "$work/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: lab.test
    file: "$work/zone"
EOF
    start knotd -c "$work/knot.conf"
    if wait_udp "$p"; then
      run_server knot "udp:$p tcp:$p"
      NOTE[knot/dot]="Knot 3.2 has no DoT or DoH"
      NOTE[knot/doq]="Knot 3.2 has no DoQ (3.3 added it) and no DoH3"
    else
      NOTE[knot]="not available: did not start: $(tail -1 "$work/server.err")"
    fi
    stop_server
  fi
fi

# --- NSD -------------------------------------------------------------------
if [[ -n ${AVAIL[nsd]:-} ]]; then
  if ! command -v nsd >/dev/null; then
    NOTE[nsd]="not available: nsd not installed (apt-get install nsd)"
  else
    p=$((BASE_PORT + 30))
    mkdir -p "$work/nsd"
    cat >"$work/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$p
  ip-address: 127.0.0.1@$((p + 1))
  port: $p
  tls-port: $((p + 1))
  tls-service-key: "$work/key.pem"
  tls-service-pem: "$work/cert.pem"
  server-count: 1
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
  username: ""
  chroot: ""
  zonesdir: "$work/nsd"
  database: ""
  pidfile: "$work/nsd/nsd.pid"
  xfrdfile: "$work/nsd/xfrd.state"
  zonelistfile: "$work/nsd/zone.list"
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: lab.test
  zonefile: "$work/zone"
EOF
    start nsd -d -c "$work/nsd.conf"
    if wait_udp "$p"; then
      run_server nsd "udp:$p tcp:$p dot:$((p + 1))"
      NOTE[nsd/doh-h2]="NSD has no DoH"
      NOTE[nsd/doq]="NSD has no DoQ or DoH3"
    else
      NOTE[nsd]="not available: did not start: $(tail -1 "$work/server.err")"
    fi
    stop_server
  fi
fi

# --- CoreDNS ---------------------------------------------------------------
if [[ -n ${AVAIL[coredns]:-} ]]; then
  coredns=$(command -v coredns || true)
  gobin=$(go env GOPATH 2>/dev/null)/bin
  [[ -z $coredns && -x $gobin/coredns ]] && coredns=$gobin/coredns
  if [[ -z $coredns && ${COREDNS:-1} == 1 ]] && command -v go >/dev/null; then
    echo "bench: building CoreDNS $COREDNS_VERSION (go install, a few minutes the first time)" >&2
    go install "github.com/coredns/coredns@$COREDNS_VERSION" >&2 && coredns=$gobin/coredns
  fi
  if [[ -z $coredns ]]; then
    NOTE[coredns]="not available: no coredns binary (COREDNS=0 or go install failed)"
  else
    p=$((BASE_PORT + 40))
    cat >"$work/Corefile" <<EOF
dns://lab.test:$p {
    bind 127.0.0.1
    file $work/zone
}
tls://lab.test:$((p + 1)) {
    bind 127.0.0.1
    tls $work/cert.pem $work/key.pem
    file $work/zone
}
https://lab.test:$((p + 2)) {
    bind 127.0.0.1
    tls $work/cert.pem $work/key.pem
    file $work/zone
}
quic://lab.test:$((p + 3)) {
    bind 127.0.0.1
    tls $work/cert.pem $work/key.pem
    file $work/zone
}
https3://lab.test:$((p + 4)) {
    bind 127.0.0.1
    tls $work/cert.pem $work/key.pem
    file $work/zone
}
EOF
    start "$coredns" -conf "$work/Corefile" -quiet
    if wait_udp "$p"; then
      run_server coredns "udp:$p tcp:$p dot:$((p + 1)) doh-h2:$((p + 2)) doh-h1:$((p + 2)) doq:$((p + 3)) doh-h3:$((p + 4))"
    else
      NOTE[coredns]="not available: did not start: $(tail -1 "$work/server.err")"
    fi
    stop_server
  fi
fi

# --- dnsdist (packet cache in front of Unbound, or echlab) ------------------
if [[ -n ${AVAIL[dnsdist]:-} ]]; then
  if ! command -v dnsdist >/dev/null; then
    NOTE[dnsdist]="not available: dnsdist not installed (apt-get install dnsdist)"
  else
    # The backend runs on the load core: dnsdist answers from its cache
    # after the first query of each name, so the backend barely works.
    bp=$((BASE_PORT + 60))
    taskset -c "$LOAD_CPU" "$work/echlab" resolver --zone "$work/zone" --udp "127.0.0.1:$bp" --tcp "127.0.0.1:$bp" \
      --dot '' --doh '' --doh3 '' --doq '' --metrics '' --pki '' >/dev/null 2>&1 &
    backend=$!
    p=$((BASE_PORT + 50))
    cat >"$work/dnsdist.conf" <<EOF
setLocal("127.0.0.1:$p")
addTLSLocal("127.0.0.1:$((p + 1))", "$work/cert.pem", "$work/key.pem")
addDOHLocal("127.0.0.1:$((p + 2))", "$work/cert.pem", "$work/key.pem", "/dns-query")
newServer({address="127.0.0.1:$bp"})
getPool(""):setCache(newPacketCache(10000))
setSecurityPollSuffix("")
EOF
    start dnsdist --supervised --disable-syslog -C "$work/dnsdist.conf"
    if wait_udp "$p"; then
      run_server dnsdist "udp:$p tcp:$p dot:$((p + 1)) doh-h2:$((p + 2)) doh-h1:$((p + 2))"
      NOTE[dnsdist/doq]="dnsdist 1.7 has no DoQ or DoH3 (1.9 added both)"
    else
      NOTE[dnsdist]="not available: did not start: $(tail -1 "$work/server.err")"
    fi
    stop_server
    kill "$backend" 2>/dev/null; wait "$backend" 2>/dev/null || true
  fi
fi

# --- the table --------------------------------------------------------------
printf '%-8s %-9s %10s %8s %5s %5s %5s %5s %10s\n' server transport qps "us/q" "sys%" idle RSS anon "x unbound"
for s in $SERVERS; do
  if [[ -n ${NOTE[$s]:-} ]]; then
    printf '%-8s %s\n' "$s" "${NOTE[$s]}"
    continue
  fi
  [[ -n ${NOTE[$s/answers]:-} ]] && printf '%-8s %s\n' "$s" "${NOTE[$s/answers]}"
  for tr in $TRANSPORTS; do
    if [[ -z ${QPS[$s/$tr]:-} ]]; then
      [[ -n ${NOTE[$s/$tr]:-} ]] && printf '%-8s %-9s %s\n' "$s" "$tr" "${NOTE[$s/$tr]}"
      continue
    fi
    ratio=-
    u=${QPS[unbound/$tr]:-0}
    ((u > 0)) && ratio=$(awk -v a="${QPS[$s/$tr]}" -v b="$u" 'BEGIN { printf "%.2f", a / b }')
    printf '%-8s %-9s %10s %8s %5s %5s %5s %5s %10s\n' "$s" "$tr" "${QPS[$s/$tr]}" "${USQ[$s/$tr]}" "${SYS[$s/$tr]}" "${IDLE[$s]}" "${RSS[$s]}" "${ANON[$s]}" "$ratio"
    if ((${ERRS[$s/$tr]:-0} > 0)); then
      printf '%-8s %-9s %s errors in %s runs: %s\n' "$s" "$tr" "${ERRS[$s/$tr]}" "$RUNS" "${NOTE[$s/$tr/errors]:-}"
    fi
  done
done
echo "(median of $RUNS runs of ${DURATION}s; server on core $SERVER_CPU, load on core $LOAD_CPU; dnsperf -c $CLIENTS -q $OUTSTANDING${shim:+ with TCP_NODELAY}; h2load -c $CLIENTS -m $STREAMS, GET ?dns=;"
echo " doq, doh-h3, dot-go, doh-h2-go: bench/dnsload (Go, quic-go) with $CLIENTS connections x $STREAMS in flight, answers checked;"
echo " echlab: metrics on, query log $([[ ${QUERYLOG:-0} == 1 ]] && echo on || echo off), queries unpadded; dnsdist: packet cache, echlab behind it on core $LOAD_CPU)"
