#!/usr/bin/env bash
# Browser interop suite: headless Chromium and Firefox ESR resolve the lab
# names through echlab's DoH and connect with ECH to echlab's server, all in
# a network namespace that has only loopback. Fails if any case does not
# behave as expected. Needs root. Usage: lab/interop/browsers.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
	echo "browsers.sh: needs root (network namespace)" >&2
	exit 1
fi
for p in chromium firefox-esr certutil ethtool; do
	if ! command -v "$p" >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium firefox-esr libnss3-tools ethtool
		break
	fi
done
out=${1:-interop-out}
bin=$(mktemp -d)/echlab
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/echlab
# 8 runs of at most 45 s (+5 s kill grace) each: bounded well under 8 min.
timeout 8m "$bin" interop browsers -out "$out" -timeout 45s
echo "browsers.sh: results in $out/results.json and $out/results.txt"
