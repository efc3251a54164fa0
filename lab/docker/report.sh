#!/usr/bin/env bash
# report.sh: wait for the client runner to finish and the observer to
# close the capture, then run `echlab compare` on it with every key the
# observer archived, the client's keylog and scenario map. Writes
# report.md, flows.jsonl, flows.csv and compare.txt into the output folder;
# with the adversary's adversary.jsonl there (ADVERSARY=), also
# adversary-report.md, adversary-flows.jsonl/.csv and adversary-compare.txt
# from the client's leg.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
wait_s=${1:-300}
log "waiting (up to ${wait_s}s) for the client runner"
timeout "$wait_s" bash -c 'until [ -s "$0/client.done" ]; do sleep 1; done' "$ECHLAB_OUT"
log "client runner: $(cat "$ECHLAB_OUT/client.done")"
obs=$(dc ps -q observer)
[ -n "$obs" ] && timeout 60 docker wait "$obs" >/dev/null
out=$ECHLAB_OUT
"$BIN" compare "$out/capture.pcapng" --keys "$out/keys-seen" --keylog "$out/sslkeylog.txt" \
	--scenario-map "$out/scenarios.jsonl" --markdown "$out/report.md" --json "$out/flows.jsonl" \
	--csv "$out/flows.csv" >"$out/compare.txt"
log "report: $out/report.md (table: $out/compare.txt)"
# With ADVERSARY set, the observer logged its decisions and captured the
# client's leg (client -> relays, on lo): compare that capture with the
# log, each flow marked with what the adversary did to it.
if [ -s "$out/adversary.jsonl" ] && [ -s "$out/capture-client.pcapng" ]; then
	keys=()
	[ -d "$out/keys-seen" ] && keys=(--keys "$out/keys-seen")
	"$BIN" compare "$out/capture-client.pcapng" "${keys[@]}" --adversary-log "$out/adversary.jsonl" \
		--markdown "$out/adversary-report.md" --json "$out/adversary-flows.jsonl" --csv "$out/adversary-flows.csv" \
		>"$out/adversary-compare.txt"
	log "adversary: $out/adversary-report.md (what it did, flow by flow)"
fi
