#!/bin/sh
# bench/compare.sh — echlab compare throughput beside tshark on one large
# capture of TLS connections (half of them with ECH).
#
#   bench/compare.sh [PAIRS] [APPDATA]
#
# PAIRS: connection pairs (default 10000 = 20000 ClientHellos). APPDATA:
# bytes of TLS application data after each handshake (default 0), 50 pairs
# open at a time; e.g. `bench/compare.sh 500 102400` writes a ~115 MB
# capture. Writes the capture with the lab package's recorder, then times
# `echlab compare` (with its peak RSS when /usr/bin/time is there) and
# `tshark -r` reading the SNI of every ClientHello.
set -eu
cd "$(dirname "$0")/.."
pairs=${1:-10000}
app=${2:-0}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cap=$dir/bench.pcapng
ECHLAB_BENCH_CAPTURE=$cap ECHLAB_BENCH_PAIRS=$pairs ECHLAB_BENCH_APPDATA=$app go test ./lab/observe/ -run '^TestWriteBenchCapture$' -count=1 >/dev/null
go build -o "$dir/echlab" ./cmd/echlab
hellos=$((pairs * 2))
echo "capture: $(du -h "$cap" | cut -f1), $hellos ClientHellos, $app bytes of application data each"

now() { date +%s.%N; }
t0=$(now)
if [ -x /usr/bin/time ]; then
	/usr/bin/time -f '%M' -o "$dir/rss" "$dir/echlab" compare "$cap" --csv "$dir/flows.csv" >/dev/null
else
	"$dir/echlab" compare "$cap" --csv "$dir/flows.csv" >/dev/null
fi
t1=$(now)
echlab_s=$(echo "$t1 - $t0" | bc)
echo "echlab compare: ${echlab_s}s, $(echo "$hellos / $echlab_s" | bc) ClientHellos/s ($(($(wc -l <"$dir/flows.csv") - 1)) flows)"
if [ -f "$dir/rss" ]; then
	rss_kb=$(tail -n 1 "$dir/rss")
	echo "echlab compare peak RSS: $((rss_kb / 1024)) MB"
fi

if command -v tshark >/dev/null 2>&1; then
	t0=$(now)
	n=$(tshark -r "$cap" -Y 'tls.handshake.type==1' -T fields -e tls.handshake.extensions_server_name 2>/dev/null | wc -l)
	t1=$(now)
	tshark_s=$(echo "$t1 - $t0" | bc)
	echo "tshark -r:      ${tshark_s}s, $(echo "$hellos / $tshark_s" | bc) ClientHellos/s ($n ClientHellos)"
	echo "ratio (tshark time / echlab time): $(echo "scale=1; $tshark_s / $echlab_s" | bc)"
else
	echo "tshark not installed; skipping the comparison"
fi
