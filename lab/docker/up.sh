#!/usr/bin/env bash
# up.sh: build the binary and the image, make a fresh lab CA and key sets,
# and start the lab (resolver, shared, split + backend, baseline, client
# runner, observer). The client runner starts playing once the observer
# captures; report.sh waits for it and writes the report.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_docker
build
dc down -v --remove-orphans >/dev/null 2>&1 || true
rm -rf "$ECHLAB_STATE" "$ECHLAB_OUT"
mkdir -p "$ECHLAB_STATE" "$ECHLAB_OUT"
log "lab CA, key sets and the split's front secret into $ECHLAB_STATE"
for svc in pki keys-shared keys-split; do
	dct 60 run --rm "$svc" >/dev/null
done
# The split front and its backend share this secret (--front-secret); the
# state folder is fresh, so every run gets a new one.
(umask 077 && head -c 32 /dev/urandom >"$ECHLAB_STATE/front.secret")
log "starting the stack"
dct 120 up -d resolver shared split backend baseline client observer
log "up: Do53 127.0.0.1:${ECHLAB_DNS_PORT:-15353}, DoT/DoQ :${ECHLAB_DOT_PORT:-15853}, DoH/DoH3 :${ECHLAB_DOH_PORT:-15443}, shared :${ECHLAB_SHARED_PORT:-16443}, split :${ECHLAB_SPLIT_PORT:-16444}, baseline :${ECHLAB_BASELINE_PORT:-16445}; CA $ECHLAB_STATE/pki/ca.crt"
