#!/usr/bin/env bash
# bench/handshakes.sh — ECH handshakes per second of echlab's servers beside
# a minimal crypto/tls server (issue 15), on loopback, in one run.
#
#   bench/handshakes.sh                    # 3 rounds of 3 s per row
#   DURATION=5 RUNS=5 bench/handshakes.sh
#   CONNS=8 bench/handshakes.sh            # concurrent clients (default 8)
#   LOG=0 bench/handshakes.sh              # echlab without its connection log
#   ECHLAB_BIN=/path/to/echlab bench/handshakes.sh   # skip the build
#   BASE_BIN=/path/to/old/echlab bench/handshakes.sh  # also rows "base:…" of
#                                          # another build, in the same rounds
#
# Rows (every server a separate process, all started first, pinned to
# core 0 with taskset, so each has GOMAXPROCS=1; the load generator on
# core 1):
#   minimal/ECH        bench/minitls serve: tls.Listen with
#                      EncryptedClientHelloKeys + net/http, no peek, no log
#   minimal/noECH      the same without keys, clients without ECH
#   shared/ECH         echlab server --keys (shared mode), ECH clients
#   shared/noECH       the same process, clients without ECH
#   baseline/noECH     echlab server --baseline
#   shared/ECH-rotated echlab server on a key set rotated once (new key
#                      first), clients still on the pre-rotation config,
#                      as for a DNS TTL after every rotation
#   split/ECH          echlab split --front-secret before
#                      echlab server --baseline --front-secret (both on
#                      core 0), ECH clients
#   split-unix/ECH     the same with the front's hop to its backend over
#                      a Unix socket (--route '*=unix:PATH', echlab
#                      server --addr unix:PATH); this build only, not
#                      BASE_BIN's
# Clients: CONNS crypto/tls clients (bench/minitls load), each doing full
# handshakes one after another (no session cache, no tickets), checking
# ECHAccepted on every one. Rows are measured in rounds (every row once per
# round) so that load from elsewhere hits them alike; each cell is the
# median of RUNS rounds. Columns: handshakes/s, and us/hs, the CPU
# (user + system, from /proc) of the row's server processes per handshake.
# When the load generator's core is the limit (its clients do more work
# per handshake than a server), handshakes/s come out alike and us/hs is
# the fair figure: the ratios are printed both ways, "capacity" being the
# inverse ratio of us/hs.
# echlab writes its connection log to a file unless LOG=0.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-3}
RUNS=${RUNS:-3}
CONNS=${CONNS:-8}
LOG=${LOG:-1}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

command -v taskset >/dev/null || { echo "bench: taskset not installed (util-linux)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -n ${ECHLAB_BIN:-} ]]; then
  cp "$ECHLAB_BIN" "$work/echlab"
else
  go build -o "$work/echlab" ./cmd/echlab
fi
go build -o "$work/minitls" ./bench/minitls
E=$work/echlab
M=$work/minitls

"$E" keygen --keys "$work/keys" >/dev/null
"$E" keygen --keys "$work/keys-rot" >/dev/null
cp -r "$work/keys-rot" "$work/keys-old"          # the clients' pre-rotation view
"$E" keygen --keys "$work/keys-rot" --rotate >/dev/null
"$E" keygen --keys "$work/keys-split" >/dev/null
logflag() { if [[ $LOG == 1 ]]; then echo "--log=$work/$1.jsonl"; else echo "--log="; fi; }

# start NAME PATTERN CMD...: start a pinned server, wait for its address
# line (PATTERN is a sed expression printing the address), record its pid.
declare -A addr pid
start() {
  local name=$1 pat=$2; shift 2
  : >"$work/$name.err"
  taskset -c "$SERVER_CPU" "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pid[$name]=$!
  pids+=("$!")
  for _ in $(seq 100); do
    a=$(sed -n "$pat" "$work/$name.err" | head -n 1)
    [[ -n $a ]] && { addr[$name]=$a; return 0; }
    kill -0 "${pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/$name.err" >&2
  echo "bench: $name did not start" >&2
  exit 1
}
srvpat='s/^echlab server: .*(tcp \([0-9.:]*\).*/\1/p'
start minimal-ech 's/^minitls: tcp //p' "$M" serve --pki "$work/pki" --keys "$work/keys"
start minimal 's/^minitls: tcp //p' "$M" serve --pki "$work/pki"
rows=(
  "minimal/ECH minimal-ech ${pid[minimal-ech]} $work/keys"
  "minimal/noECH minimal ${pid[minimal]} -"
)
# echlab_rows PREFIX BINARY: start one build's servers and add its rows
# (row NAME SERVER PIDS CLIENT-KEYS).
echlab_rows() {
  local x=$1 bin=$2
  start "${x}shared" "$srvpat" "$bin" server --addr 127.0.0.1:0 --pki "$work/pki" --keys "$work/keys" "$(logflag "${x}shared")"
  start "${x}baseline" "$srvpat" "$bin" server --addr 127.0.0.1:0 --pki "$work/pki" --baseline "$(logflag "${x}baseline")"
  start "${x}rotated" "$srvpat" "$bin" server --addr 127.0.0.1:0 --pki "$work/pki" --keys "$work/keys-rot" \
    "$(logflag "${x}rotated")"
  start "${x}backend" "$srvpat" "$bin" server --addr 127.0.0.1:0 --pki "$work/pki" --baseline \
    --front-secret "$work/front.secret" "$(logflag "${x}backend")"
  start "${x}split" 's/^echlab split: \([0-9.:]*\),.*/\1/p' "$bin" split --addr 127.0.0.1:0 --pki "$work/pki" \
    --keys "$work/keys-split" --route "*=${addr[${x}backend]}" --front-secret "$work/front.secret" \
    "$(logflag "${x}split")"
  rows+=(
    "${x}shared/ECH ${x}shared ${pid[${x}shared]} $work/keys"
    "${x}shared/noECH ${x}shared ${pid[${x}shared]} -"
    "${x}baseline/noECH ${x}baseline ${pid[${x}baseline]} -"
    "${x}shared/ECH-rotated ${x}rotated ${pid[${x}rotated]} $work/keys-old"
    "${x}split/ECH ${x}split ${pid[${x}split]},${pid[${x}backend]} $work/keys-split"
  )
  if [[ -z $x ]]; then
    start backend-unix 's/^echlab server: .*(\(unix:[^,)]*\).*/\1/p' "$bin" server --addr "unix:$work/backend.sock" \
      --pki "$work/pki" --baseline --front-secret "$work/front.secret" "$(logflag backend-unix)"
    start split-unix 's/^echlab split: \([0-9.:]*\),.*/\1/p' "$bin" split --addr 127.0.0.1:0 --pki "$work/pki" \
      --keys "$work/keys-split" --route "*=${addr[backend-unix]}" --front-secret "$work/front.secret" \
      "$(logflag split-unix)"
    rows+=("split-unix/ECH split-unix ${pid[split-unix]},${pid[backend-unix]} $work/keys-split")
  fi
}
echlab_rows "" "$E"
if [[ -n ${BASE_BIN:-} ]]; then
  cp "$BASE_BIN" "$work/echlab-base"
  echlab_rows base: "$work/echlab-base"
fi
load() { # load SERVER PIDS KEYS SECONDS
  local k=()
  [[ $3 != - ]] && k=(--keys "$3")
  taskset -c "$LOAD_CPU" "$M" load --addr "${addr[$1]}" --pki "$work/pki" "${k[@]}" \
    --conns "$CONNS" --duration "$4s" --pids "$2"
}
echo "warm-up (1 s per row)…" >&2
for r in "${rows[@]}"; do set -- $r; load "$2" "$3" "$4" 1 >/dev/null; done
for i in $(seq "$RUNS"); do
  for r in "${rows[@]}"; do
    set -- $r
    line=$(load "$2" "$3" "$4" "$DURATION")
    echo "round $i $1: $line" >&2
    echo "$1 $line" >>"$work/results"
  done
done

# median COLUMN ROW: the median of a key=value column over the rounds
median() {
  grep "^$2 " "$work/results" | tr ' ' '\n' | sed -n "s/^$1=//p" | sort -n |
    awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}
errs() { grep "^$1 " "$work/results" | tr ' ' '\n' | sed -n 's/^errors=//p' | awk '{s+=$1} END {print s+0}'; }
echo
echo "load: $CONNS crypto/tls clients on core $LOAD_CPU; servers on core $SERVER_CPU; medians of $RUNS x ${DURATION}s; echlab log $([[ $LOG == 1 ]] && echo on || echo off)"
printf '%-25s %12s %8s %7s\n' row handshakes/s us/hs errors
for r in "${rows[@]}"; do
  set -- $r
  printf '%-25s %12s %8s %7s\n' "$1" "$(median rate "$1")" "$(median cpu_us "$1")" "$(errs "$1")"
done
ratio() { echo "scale=2; $(median rate "$1") / $(median rate "$2")" | bc; }
cpuratio() { echo "scale=2; $(median cpu_us "$2") / $(median cpu_us "$1")" | bc; }
ratios() { # ratios PREFIX
  local x=$1
  echo
  echo "${x:-echlab}: ratio of handshakes/s, and of capacity (inverse us/hs)"
  printf '  %-34s %6s %9s\n' "" rate capacity
  r() { printf '  %-34s %6s %9s   %s\n' "$1 / $2" "$(ratio "$1" "$2")" "$(cpuratio "$1" "$2")" "${3:-}"; }
  r "${x}shared/ECH" "${x}shared/noECH" "(goal >= 0.95)"
  r "${x}shared/noECH" minimal/noECH "(goal >= 0.95)"
  r "${x}baseline/noECH" minimal/noECH "(goal >= 0.95)"
  r "${x}shared/ECH" minimal/ECH
  r "${x}shared/ECH-rotated" "${x}shared/ECH"
  r "${x}split/ECH" "${x}shared/ECH" "(goal >= 0.9)"
  [[ -z $x ]] && r split-unix/ECH shared/ECH "(goal >= 0.9)"
  true
}
ratios ""
[[ -n ${BASE_BIN:-} ]] && ratios base:
true
