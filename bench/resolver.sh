#!/usr/bin/env bash
# bench/resolver.sh — load-test `echlab resolver` with dnsperf (Debian's
# dnsperf 2.x) on loopback over UDP, TCP, DoT and DoH, and print queries per
# second and latency per transport.
#
#   bench/resolver.sh                # 5 s per transport, 4 clients
#   DURATION=10 CLIENTS=8 bench/resolver.sh
#   ECHLAB_BIN=/path/to/echlab bench/resolver.sh   # skip the build
#
# DoH and dnsperf 2.10: its DoH mode keeps one response buffer per
# connection and drops a response whose HTTP/2 DATA arrives in the same
# read as another stream's (dnsperf counts the HTTP 200 but never the DNS
# answer, so the query times out and holds its slot). Any server that packs
# several responses into one TLS record triggers it: Go's HTTP/2 server
# does, and so does dnsdist (h2o). So the doh rows run with one query
# outstanding per connection (-c = -q = DOH_CLIENTS), the setting under
# which dnsperf measures DoH correctly; they are per-connection-serial
# figures, not comparable with the pipelined udp/tcp/dot rows. The
# "go-doh" rows come from our own client (BenchmarkDoHLoad in resolver/:
# one HTTP/2 connection, many multiplexed streams, in-process server).
#
#   DOH_CLIENTS=64 bench/resolver.sh    # dnsperf connections for DoH
#   GO_BENCH=0 bench/resolver.sh        # skip the go-doh rows
#
# It builds the binary, makes a key set and a lab CA in a temporary
# directory, starts the resolver on 127.0.0.1 with free ports, and stops it
# at the end. Every run is bounded by -l DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}
DOH_CLIENTS=${DOH_CLIENTS:-32}
GO_BENCH=${GO_BENCH:-1}

command -v dnsperf >/dev/null || { echo "bench: dnsperf not installed (apt-get install dnsperf)" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${ECHLAB_BIN:-} ]]; then   # a prebuilt binary
  cp "$ECHLAB_BIN" "$work/echlab"
else
  go build -o "$work/echlab" ./cmd/echlab
fi
"$work/echlab" keygen --keys "$work/keys" >/dev/null
"$work/echlab" resolver \
  --zone resolver/testdata/lab.test.zone \
  --keyset "main=$work/keys" --publish "secret.lab.test,keyset=main,alpn=h2,alpn=h3" \
  --udp 127.0.0.1:0 --tcp 127.0.0.1:0 --dot 127.0.0.1:0 --doh 127.0.0.1:0 --doh3 '' --doq '' \
  --metrics '' --pki "$work/ca" >"$work/addrs" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do
  grep -q '^doh ' "$work/addrs" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; exit 1; }
  sleep 0.1
done
port() { awk -v t="$1" '$1 == t { n = split($2, a, ":"); sub("/.*", "", a[n]); print a[n] }' "$work/addrs"; }

# A mix of what the lab asks: HTTPS with ech=, A/AAAA, a CNAME chain, a
# wildcard, and negative answers.
cat >"$work/queries" <<'EOF'
secret.lab.test HTTPS
secret.lab.test A
public.lab.test AAAA
www.lab.test A
svc.lab.test HTTPS
x.wild.lab.test TXT
nope.lab.test A
public.lab.test MX
EOF

printf '%-9s %12s %14s %14s %14s %8s\n' transport "queries/s" "avg lat (ms)" "min lat (ms)" "max lat (ms)" "lost"
for row in udp tcp dot doh-get doh-post; do
  mode=${row%-*}
  p=$(port "$mode")
  extra=(-c "$CLIENTS" -q "$OUTSTANDING")
  if [[ $mode == doh ]]; then   # one query outstanding per connection: see above
    method=${row#doh-}
    extra=(-c "$DOH_CLIENTS" -q "$DOH_CLIENTS" -O "doh-uri=https://127.0.0.1:$p/dns-query" -O "doh-method=${method^^}")
  fi
  out=$(dnsperf -m "$mode" -s 127.0.0.1 -p "$p" -d "$work/queries" -l "$DURATION" \
    "${extra[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
  qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
  read -r avg mn mx < <(awk '/Average Latency/ { gsub(/[(),]/, ""); print $4*1000, $6*1000, $8*1000 }' <<<"$out")
  lost=$(awk '/Queries lost:/ { print $3 }' <<<"$out")
  printf '%-9s %12s %14.3f %14.3f %14.3f %8s\n' "$row" "$qps" "$avg" "$mn" "$mx" "$lost"
done
echo "(udp/tcp/dot: $CLIENTS clients, $OUTSTANDING outstanding; doh: $DOH_CLIENTS connections, 1 outstanding each, as dnsperf 2.10 loses pipelined DoH answers)"

if [[ $GO_BENCH == 1 ]] && command -v go >/dev/null; then
  out=$(go test -run '^$' -bench '^BenchmarkDoHLoad$' -benchtime "${DURATION}s" -count 1 ./resolver/ 2>&1) || { echo "$out" >&2; exit 1; }
  awk '/^BenchmarkDoHLoad\// { split($1, a, "/"); sub("-[0-9]+$", "", a[2]); for (i = 2; i < NF; i++) if ($(i+1) == "queries/s") q = $i
    printf "%-9s %12s %14s %14s %14s %8s\n", "go-doh-" tolower(a[2]), q, "-", "-", "-", 0 }' <<<"$out"
  echo "(go-doh: resolver.Client, one HTTP/2 connection, 8*GOMAXPROCS concurrent queries, in-process server; see BenchmarkDoHLoad)"
fi
