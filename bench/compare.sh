#!/bin/sh
# bench/compare.sh — echlab compare throughput beside tshark on one large
# capture of TLS connections (half of them with ECH).
#
#   bench/compare.sh [PAIRS] [APPDATA]
#
# PAIRS: connection pairs (default 10000 = 20000 ClientHellos, a 105 MB
# capture; 100000 makes a ~1 GB one). APPDATA: bytes of TLS application
# data after each handshake (default 0), 50 pairs open at a time; e.g.
# `bench/compare.sh 500 102400` writes a ~115 MB capture. Writes the
# capture with the lab package's recorder, then times `echlab compare`
# (median of RUNS=3 runs, with the highest peak RSS when /usr/bin/time is
# there) and `tshark -r` reading the SNI of every ClientHello (median of
# TSHARK_RUNS=1 runs; set TSHARK_RUNS=0 to skip it, e.g. for the 1 GB
# capture). echlab streams its flows (--stream) from 256 MiB up, so the
# 1 GB case shows the streaming mode's memory; set STREAM=1 or STREAM=0
# to force either mode. CPUS=1 runs both readers under `taskset -c 1`
# (one core each, the same for both: tshark is single-threaded, echlab's
# collector would otherwise use the other core).
set -eu
cd "$(dirname "$0")/.."
pairs=${1:-10000}
app=${2:-0}
runs=${RUNS:-3}
tshark_runs=${TSHARK_RUNS:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cap=$dir/bench.pcapng
ECHLAB_BENCH_CAPTURE=$cap ECHLAB_BENCH_PAIRS=$pairs ECHLAB_BENCH_APPDATA=$app go test ./lab/observe/ -run '^TestWriteBenchCapture$' -count=1 >/dev/null
go build -o "$dir/echlab" ./cmd/echlab
hellos=$((pairs * 2))
echo "capture: $(du -h "$cap" | cut -f1), $hellos ClientHellos, $app bytes of application data each"
pin=
if [ -n "${CPUS:-}" ]; then
	pin="taskset -c $CPUS"
fi
stream=
case ${STREAM:-} in
1) stream=--stream ;;
0) stream=--stream=false ;;
esac

now() { date +%s.%N; }
# median prints the middle of its arguments (numbers).
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

times=
rss_max=0
i=0
while [ "$i" -lt "$runs" ]; do
	t0=$(now)
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%M' -o "$dir/rss" $pin "$dir/echlab" compare "$cap" $stream --csv "$dir/flows.csv" >/dev/null
		rss_kb=$(tail -n 1 "$dir/rss")
		[ "$rss_kb" -gt "$rss_max" ] && rss_max=$rss_kb
	else
		$pin "$dir/echlab" compare "$cap" $stream --csv "$dir/flows.csv" >/dev/null
	fi
	t1=$(now)
	times="$times $(echo "$t1 - $t0" | bc)"
	i=$((i + 1))
done
echlab_s=$(median $times)
echo "echlab compare: ${echlab_s}s median of $runs (${times# }), $(echo "$hellos / $echlab_s" | bc) ClientHellos/s ($(($(wc -l <"$dir/flows.csv") - 1)) flows)"
if [ "$rss_max" -gt 0 ]; then
	echo "echlab compare peak RSS: $((rss_max / 1024)) MB"
fi

if [ "$tshark_runs" -gt 0 ] && command -v tshark >/dev/null 2>&1; then
	times=
	i=0
	while [ "$i" -lt "$tshark_runs" ]; do
		t0=$(now)
		n=$($pin tshark -r "$cap" -Y 'tls.handshake.type==1' -T fields -e tls.handshake.extensions_server_name 2>/dev/null | wc -l)
		t1=$(now)
		times="$times $(echo "$t1 - $t0" | bc)"
		i=$((i + 1))
	done
	tshark_s=$(median $times)
	echo "tshark -r:      ${tshark_s}s median of $tshark_runs (${times# }), $(echo "$hellos / $tshark_s" | bc) ClientHellos/s ($n ClientHellos)"
	echo "ratio (tshark time / echlab time): $(echo "scale=1; $tshark_s / $echlab_s" | bc)"
elif [ "$tshark_runs" -gt 0 ]; then
	echo "tshark not installed; skipping the comparison"
fi
