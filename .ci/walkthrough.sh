#!/usr/bin/env bash
# Runs README.md's "## The lab by hand" walkthrough verbatim: every ```sh
# block of that section (up to the next "## " heading), in order, as one
# bash script under `set -euo pipefail`, from the repository's root, with a
# fresh temporary HOME, GOPATH and TMPDIR (the walkthrough cds into a
# `mktemp -d` folder, so nothing lands in the work tree). The blocks are not
# edited: between them the runner only records which block is running, so a
# failure names it (block number and README.md line). Background jobs left
# over are killed on exit; the whole run is bounded by WALKTHROUGH_TIMEOUT
# (default 300 s).
#
# Needs go (1.26), dig, kdig and curl; a block whose first line is
# "# needs root" is skipped, with a message, when not run as root (under
# CI=true that is a failure instead).
#
#   bash .ci/walkthrough.sh           run it
#   bash .ci/walkthrough.sh --print   print the generated script, run nothing
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
readme=${WALKTHROUGH_README:-$repo/README.md} # another file only for walkthrough_test.go
export PATH="$PATH:/usr/local/go/bin"

mode=run
case "${1:-}" in
  "") ;;
  --print) mode=print ;;
  *) echo "usage: bash .ci/walkthrough.sh [--print]" >&2; exit 2 ;;
esac

work=$(mktemp -d /tmp/echlab-walkthrough.XXXXXX)
pgid=""
# stop_group ends whatever is left of the run's own process group (timeout
# makes one: every daemon the script started) and waits, up to 5 s, until
# none of it is alive, so that nothing it prints late lands after the
# runner's own messages.
stop_group() {
  [ -n "$pgid" ] || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  local i
  for i in $(seq 50); do
    # Zombies do not count: an orphan's parent may never reap it here.
    ps -e -o pgid=,stat= | awk -v g="$pgid" '$1 == g && $2 !~ /^Z/ { n++ } END { exit !n }' || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
}
cleanup() {
  stop_group
  rm -rf "$work"
}
trap cleanup EXIT

# Extract the blocks: $work/blocks/index has the number and README line of
# each ```sh fence, $work/blocks/N the body of block N.
mkdir -p "$work/blocks"
awk -v dir="$work/blocks" '
  /^## / { insec = ($0 == "## The lab by hand"); if (insec) found = 1; next }
  !insec { next }
  inblk && /^```[ \t]*$/ { inblk = 0; close(f); next }
  inblk { print > f; next }
  /^```sh[ \t]*$/ { n++; inblk = 1; f = dir "/" n; printf "" > f; print n, NR > (dir "/index"); next }
  END {
    if (!found) { print "README.md has no \"## The lab by hand\" section" > "/dev/stderr"; exit 1 }
    if (inblk) { print "README.md: unterminated ```sh block in \"## The lab by hand\"" > "/dev/stderr"; exit 1 }
    if (!n) { print "README.md: no ```sh blocks in \"## The lab by hand\"" > "/dev/stderr"; exit 1 }
  }' "$readme"
nblocks=$(wc -l <"$work/blocks/index")

root=yes
[ "$(id -u)" = 0 ] || root=no

# The generated script: the runner's own lines are the __wt_* ones.
script=$work/walkthrough.bash
{
  echo 'set -euo pipefail'
  echo '__wt_block=0 __wt_line=0'
  echo '__wt_exit() {'
  echo '  local rc=$?'
  echo '  trap - EXIT TERM INT'
  echo '  { [ -z "$(jobs -p)" ] || kill $(jobs -p); } 2>/dev/null || true'
  echo '  if [ "$rc" != 0 ]; then echo "walkthrough: FAILED in block $__wt_block (README.md line $__wt_line), exit status $rc" >&2; fi'
  echo '  exit "$rc"'
  echo '}'
  echo 'trap __wt_exit EXIT'
  echo 'trap "exit 143" TERM INT'
  while read -r n line; do
    first=$(head -n 1 "$work/blocks/$n")
    echo "__wt_block=$n __wt_line=$line"
    if [[ $first == "# needs root"* ]] && [ "$root" = no ]; then
      echo "echo '== block $n/$nblocks (README.md line $line): SKIPPED, needs root'"
      continue
    fi
    echo "echo '== block $n/$nblocks (README.md line $line)'"
    # Show the block as the reader sees it, then run it as written.
    printf 'cat <<%s\n' "'__WT_BLOCK_${n}_END'"
    sed 's/^/| /' "$work/blocks/$n"
    echo "__WT_BLOCK_${n}_END"
    cat "$work/blocks/$n"
  done <"$work/blocks/index"
  echo '__wt_block=end'
  echo "echo '== walkthrough: all $nblocks blocks passed'"
} >"$script"

if [ "$mode" = print ]; then
  cat "$script"
  exit 0
fi

missing=()
for tool in go dig kdig curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "walkthrough: missing ${missing[*]} (Go 1.26; apt-get install -y bind9-dnsutils knot-dnsutils curl)" >&2
  exit 1
fi
if [ "$root" = no ]; then
  if [ "${CI:-}" = true ]; then
    echo "walkthrough: not root under CI=true: the capture blocks (# needs root) would be skipped" >&2
    exit 1
  fi
  echo "walkthrough: not root: the blocks marked '# needs root' (the capture) are skipped" >&2
fi

# A fresh HOME, GOPATH and TMPDIR; the Go caches stay shared (no downloads).
gocache=$(go env GOCACHE) gomodcache=$(go env GOMODCACHE)
mkdir -p "$work/home" "$work/tmp"
cd "$repo"
set +e
env -u SSLKEYLOGFILE -u GOBIN HOME="$work/home" GOPATH="$work/home/go" GOCACHE="$gocache" \
  GOMODCACHE="$gomodcache" TMPDIR="$work/tmp" timeout --kill-after=10 "${WALKTHROUGH_TIMEOUT:-300}" bash "$script" &
pgid=$! # timeout leads its own process group: every daemon the script started
wait "$pgid"
rc=$?
set -e
if [ "$rc" = 124 ]; then
  echo "walkthrough: timed out after ${WALKTHROUGH_TIMEOUT:-300} s" >&2
fi
stop_group
if [ "$rc" != 0 ]; then
  # The daemons' logs, from the walkthrough's scratch folder (mktemp -d).
  for f in "$work"/tmp/*/*.log; do
    [ -f "$f" ] || continue
    echo "-- last lines of ${f##*/}" >&2
    tail -n 20 "$f" >&2
  done
fi
exit "$rc"
