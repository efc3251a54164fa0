#!/usr/bin/env bash
# bench/resolver.sh — load-test `echlab resolver` with dnsperf (Debian's
# dnsperf 2.x) on loopback over UDP, TCP, DoT and DoH, and print queries per
# second and latency per transport.
#
#   bench/resolver.sh                # 5 s per transport, 4 clients
#   DURATION=10 CLIENTS=8 bench/resolver.sh
#   ECHLAB_BIN=/path/to/echlab bench/resolver.sh   # skip the build
#
# dnsperf 2.10's DoH mode loses most queries against Go's HTTP/2 server
# once several are outstanding (the stuck ones hold dnsperf's slots until
# its timeout), so the doh rows understate the server: resolver.NewClient
# over the same listener does thousands of queries per second. Compare the
# doh rows between runs, not with the other transports.
#
# It builds the binary, makes a key set and a lab CA in a temporary
# directory, starts the resolver on 127.0.0.1 with free ports, and stops it
# at the end. Every run is bounded by -l DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-100}

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
"$work/echlab" keygen -out "$work/keys" >/dev/null
"$work/echlab" resolver \
  -zone resolver/testdata/lab.test.zone \
  -keyset "main=$work/keys" -publish "secret.lab.test,keyset=main,alpn=h2,alpn=h3" \
  -udp 127.0.0.1:0 -tcp 127.0.0.1:0 -dot 127.0.0.1:0 -doh 127.0.0.1:0 -doh3 '' -doq '' \
  -metrics '' -ca-dir "$work/ca" >"$work/addrs" 2>"$work/log" &
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
  extra=()
  if [[ $mode == doh ]]; then
    method=${row#doh-}
    extra=(-O "doh-uri=https://127.0.0.1:$p/dns-query" -O "doh-method=${method^^}")
  fi
  out=$(dnsperf -m "$mode" -s 127.0.0.1 -p "$p" -d "$work/queries" -l "$DURATION" \
    -c "$CLIENTS" -q "$OUTSTANDING" "${extra[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
  qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
  read -r avg mn mx < <(awk '/Average Latency/ { gsub(/[(),]/, ""); print $4*1000, $6*1000, $8*1000 }' <<<"$out")
  lost=$(awk '/Queries lost:/ { print $3 }' <<<"$out")
  printf '%-9s %12s %14.3f %14.3f %14.3f %8s\n' "$row" "$qps" "$avg" "$mn" "$mx" "$lost"
done
