#!/usr/bin/env bash
# e2e.sh: the docker lab end to end. Installs docker.io, docker-compose
# and the DNS tools if missing, starts dockerd if needed, builds the binary
# and the image, brings the stack up, queries the published ports with dig,
# kdig, curl, echlab query and echlab client, waits for the client runner,
# checks the observer's report, runs the fault case (the resolver stopped
# mid-run), and always tears the stack down. One line per check; exit
# status 1 on any failure. Bounded: every wait has a timeout.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Host ports: the documented ones (README.md), unless one is taken, then a
# free-looking block; ECHLAB_*_PORT set by the caller always win.
port_busy() { command -v ss >/dev/null && ss -Htuln | awk '{print $5}' | grep -q "[:.]$1\$"; }
base=15000
for try in 1 2 3 4 5 6 7 8; do
	busy=0
	for off in 353 853 443; do port_busy $((base + off)) && busy=1; done
	for off in 1443 1444 1445 4153; do port_busy $((base + off)) && busy=1; done
	[ "$busy" = 0 ] && break
	base=$((20000 + RANDOM % 400 * 100))
done
export ECHLAB_DNS_PORT=${ECHLAB_DNS_PORT:-$((base + 353))} ECHLAB_DOT_PORT=${ECHLAB_DOT_PORT:-$((base + 853))}
export ECHLAB_DOH_PORT=${ECHLAB_DOH_PORT:-$((base + 443))} ECHLAB_SHARED_PORT=${ECHLAB_SHARED_PORT:-$((base + 1443))}
export ECHLAB_SPLIT_PORT=${ECHLAB_SPLIT_PORT:-$((base + 1444))} ECHLAB_BASELINE_PORT=${ECHLAB_BASELINE_PORT:-$((base + 1445))}
export ECHLAB_METRICS_PORT=${ECHLAB_METRICS_PORT:-$((base + 4153))}
OUT=$ECHLAB_OUT STATE=$ECHLAB_STATE
fails=0
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
check() { # check "what" command...: ok when the command succeeds
	local what=$1; shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
die() { bad "$*"; exit 1; }

cleanup() {
	local rc=$?
	if [ "$fails" -gt 0 ] || [ "$rc" -ne 0 ]; then
		log "failure: last container logs"
		dct 60 logs --tail 30 >&2 || true
	fi
	log "tearing the stack down"
	dct 120 down -v --remove-orphans >/dev/null 2>&1 || true
	if [ "$fails" -gt 0 ]; then rc=1; fi
	log "e2e: $fails failed check(s)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- tools and docker -----------------------------------------------------
tools=()
command -v dig >/dev/null || tools+=(bind9-dnsutils)
command -v kdig >/dev/null || tools+=(knot-dnsutils)
command -v jq >/dev/null || tools+=(jq)
command -v curl >/dev/null || tools+=(curl)
if [ ${#tools[@]} -gt 0 ]; then
	log "installing ${tools[*]}"
	timeout 120 apt-get update >/dev/null; timeout 300 apt-get install -y "${tools[@]}" >/dev/null || die "apt-get install ${tools[*]}"
fi
ensure_docker || die "docker is not available"
ok "docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), compose: $( (docker compose version --short 2>/dev/null) || docker-compose version --short)"

# --- build and start ------------------------------------------------------
timeout 900 "$HERE/up.sh" || die "up.sh: build and start the stack"
ok "image built FROM scratch ($(docker image inspect -f '{{.Size}}' "$ECHLAB_IMAGE") bytes) and stack up"
for svc in resolver shared split backend baseline client observer; do
	[ -n "$(dc ps -q "$svc")" ] || bad "service $svc has no container"
done

ports_loopback() {
	local p s
	p=$(for s in resolver shared split baseline; do docker port "$(dc ps -q "$s")"; done)
	echo "$p" | grep -q . && ! echo "$p" | grep -qv -- '-> 127\.0\.0\.1:'
}
check "published ports are bound on 127.0.0.1 only ($(for s in resolver shared split baseline; do docker port "$(dc ps -q "$s")"; done | wc -l) mappings)" ports_loopback

# --- DNS on the published ports -------------------------------------------
ech_of() { grep -o 'ech="\?[A-Za-z0-9+/=]*' | head -1 | sed 's/^ech="\?//'; }
pubkeys() { "$BIN" ech inspect "$1" 2>/dev/null | awk '/public_key:/ {print $NF}' | sort -u; }
timeout 60 bash -c "until dig +time=1 +tries=1 @127.0.0.1 -p $ECHLAB_DNS_PORT secret.lab.test HTTPS | grep -q 'ech='; do sleep 1; done" \
	|| die "resolver answers HTTPS secret.lab.test with ech= on 127.0.0.1:$ECHLAB_DNS_PORT"
ech_start=$(timeout 10 dig +time=2 @127.0.0.1 -p "$ECHLAB_DNS_PORT" secret.lab.test HTTPS 2>/dev/null | ech_of)
# the ech= of each tool must decode to a published key of the stack's key
# set (read right after; a rotation in between is retried)
ech_matches() { # ech_matches KEYSETDIR command...
	local dir=$1 i val; shift
	for i in 1 2 3; do
		val=$("$@" 2>/dev/null | ech_of)
		if [ -n "$val" ] && [ -n "$(pubkeys "$val")" ] && [ "$(pubkeys "$val")" = "$(pubkeys "$dir")" ]; then
			return 0
		fi
		sleep 1
	done
	echo "    got ech=$val; key set $dir publishes: $(pubkeys "$dir" | tr '\n' ' ')" >&2
	return 1
}
check "dig Do53 (udp 127.0.0.1:$ECHLAB_DNS_PORT): ech= of secret.lab.test decodes to the shared key set" \
	ech_matches "$STATE/keys/shared" timeout 10 dig +time=2 @127.0.0.1 -p "$ECHLAB_DNS_PORT" secret.lab.test HTTPS
check "dig +tcp Do53: ech= of hidden.lab.test decodes to the split key set" \
	ech_matches "$STATE/keys/split" timeout 10 dig +tcp +time=2 @127.0.0.1 -p "$ECHLAB_DNS_PORT" hidden.lab.test HTTPS
check "dig +https DoH (127.0.0.1:$ECHLAB_DOH_PORT): ech= decodes to the shared key set" \
	ech_matches "$STATE/keys/shared" timeout 10 dig +https +time=2 @127.0.0.1 -p "$ECHLAB_DOH_PORT" secret.lab.test HTTPS
check "kdig +tls DoT (127.0.0.1:$ECHLAB_DOT_PORT, lab CA verified): ech= decodes to the shared key set" \
	ech_matches "$STATE/keys/shared" timeout 10 kdig +tls-ca="$STATE/pki/ca.crt" +tls-hostname=resolver.lab.test @127.0.0.1 -p "$ECHLAB_DOT_PORT" secret.lab.test HTTPS
check "kdig +https DoH: ech= decodes to the shared key set" \
	ech_matches "$STATE/keys/shared" timeout 10 kdig +https @127.0.0.1 -p "$ECHLAB_DOH_PORT" secret.lab.test HTTPS
check "echlab query DoQ (quic://127.0.0.1:$ECHLAB_DOT_PORT): ech= decodes to the shared key set" \
	ech_matches "$STATE/keys/shared" timeout 10 "$BIN" query --ca "$STATE/pki/ca.crt" --sni resolver.lab.test "@quic://127.0.0.1:$ECHLAB_DOT_PORT" secret.lab.test HTTPS
check "echlab query DoH3 (h3://127.0.0.1:$ECHLAB_DOH_PORT): ech= decodes to the shared key set" \
	ech_matches "$STATE/keys/shared" timeout 10 "$BIN" query --ca "$STATE/pki/ca.crt" --sni resolver.lab.test "@h3://127.0.0.1:$ECHLAB_DOH_PORT/dns-query" secret.lab.test HTTPS
json_doh() {
	timeout 10 curl -sf --cacert "$STATE/pki/ca.crt" --resolve "resolver.lab.test:$ECHLAB_DOH_PORT:127.0.0.1" \
		-H 'accept: application/dns-json' "https://resolver.lab.test:$ECHLAB_DOH_PORT/dns-query?name=secret.lab.test&type=HTTPS" \
		| jq -e '.Status == 0 and ([.Answer[]? | select(.type == 65) | .data | test("ech=")] | any)' >/dev/null
}
check "curl JSON DoH (application/dns-json, lab CA): Status 0 and an HTTPS answer with ech=" json_doh

# (read whole first: with pipefail, `curl | grep -q` fails when grep quits
# early and curl gets SIGPIPE on the rest of a long page)
metrics() { local m; m=$(timeout 10 curl -sf "http://127.0.0.1:$ECHLAB_METRICS_PORT/metrics") && grep -q '^# TYPE' <<<"$m"; }
check "resolver metrics (Prometheus text) on 127.0.0.1:$ECHLAB_METRICS_PORT" metrics

# --- ECH from the host ----------------------------------------------------
host_client() {
	timeout 40 "$BIN" client --json --dns "udp://127.0.0.1:$ECHLAB_DNS_PORT" --ca "$STATE/pki/ca.crt" \
		--connect-to "127.0.0.1:$ECHLAB_SHARED_PORT" --timeout 30s https://secret.lab.test/api/conn >"$OUT/host-client.json" &&
		jq -e '.ech == "accepted" and .outer_sni == "public.lab.test" and .status == 200' "$OUT/host-client.json" >/dev/null
}
check "echlab client from the host (--connect-to 127.0.0.1:$ECHLAB_SHARED_PORT): ECH accepted, outer SNI public.lab.test" host_client

# --- the client runner and the observer's report --------------------------
timeout 420 "$HERE/report.sh" 400 || bad "report.sh: client runner finished and echlab compare wrote the report"
check "client runner: every case did what its scenario expects (client.done says ok)" grep -qx ok "$OUT/client.done"
C=$OUT/client.jsonl F=$OUT/flows.jsonl
[ -s "$F" ] || die "no flows.jsonl from echlab compare"
jqc() { jq -e -s "$1" "$2" >/dev/null; }
check "client.jsonl: $(jq -s length "$C") cases, none failed" jqc 'length > 0 and all(.outcome == "ok")' "$C"
ech_flows='[.[] | select((.scenario | startswith("ech-")) and .client_hello_len > 0 and (.server | test("^10\\.203\\.1\\.(10|11):")))]'
check "observer: ECH scenarios' ClientHellos (shared and split) carry only public.lab.test in the SNI" \
	jqc "$ech_flows | length >= 7 and all(.sni == \"public.lab.test\")" "$F"
check "observer: no ECH-scenario TLS flow shows secret.lab.test or hidden.lab.test in the clear SNI" \
	jqc '[.[] | select((.scenario | startswith("ech-")) and ((.sni // "") | test("secret|hidden")))] | length == 0' "$F"
check "observer with the archived keys: inner SNI secret.lab.test (shared) and hidden.lab.test (split), accepted" \
	jqc "$ech_flows | (map(select(.inner_sni == \"secret.lab.test\" and .ech_accepted == true)) | length > 0) and (map(select(.inner_sni == \"hidden.lab.test\" and .ech_accepted == true)) | length > 0)" "$F"
B=$OUT/server-backend.jsonl
check "split backend (same --front-secret as the front): ECH the front opened logged accepted, outer SNI public.lab.test, header verified" \
	jqc '[.[] | select(.ech == "accepted" and .inner_sni == "hidden.lab.test" and .outer_sni == "public.lab.test" and .front == "verified")] | length > 0' "$B"
check "split backend: no connection logged as inner-in-clear or with an invalid front header" \
	jqc '[.[] | select(.ech == "inner-in-clear" or .front == "invalid")] | length == 0' "$B"
check "front secret: $STATE/front.secret is 32 bytes, mode 0600" test "$(stat -c '%a %s' "$STATE/front.secret")" = "600 32"
check "observer: ECH over HTTP/3 (QUIC) seen with the public name only" \
	jqc '[.[] | select((.scenario | startswith("ech-shared-h3")) and .transport == "quic" and .client_hello_len > 0)] | length > 0 and all(.sni == "public.lab.test")' "$F"
check "shared server: its HTTP/3 connections logged with the config id and HPKE suite read from the client's Initials, as its TCP ones" \
	jqc '[.[] | select(.transport == "quic" and .ech == "accepted")] | length > 0 and all(.config_id != null and .hpke_suite != null and .outer_sni == "public.lab.test")' "$OUT/server-shared.jsonl"
check "observer: the baseline shows the real name secret.lab.test in the clear SNI" \
	jqc '[.[] | select((.scenario | startswith("baseline")) and .sni == "secret.lab.test" and (.ech // "none") == "none")] | length > 0' "$F"
check "rotation: the shared server rotated (the observer archived $(ls "$OUT/keys-seen" | grep -c '\.pem$') keys)" \
	test "$(ls "$OUT/keys-seen" | grep -c '\.pem$')" -ge 3
check "rotation: the stale config was rejected, retry configs used, and the retry accepted (client)" \
	jqc '[.[] | select(.scenario == "stale-retry" and .outcome == "ok" and .result.retried == true and .result.ech == "accepted")] | length == 1' "$C"
check "rotation: the observer saw the stale config rejected and the retry accepted" \
	jqc '[.[] | select((.scenario | startswith("stale-retry")) and .client_hello_len > 0 and (.server | startswith("10.203.1.10:")))] | (map(select(.ech_accepted == false)) | length > 0) and (map(select(.ech_accepted == true)) | length > 0)' "$F"
# the server rotates every ${ECHLAB_ROTATE:-20s}: the resolver, polling the
# shared volume, must publish the new key set (bounded wait)
republished() {
	local i val
	for i in $(seq 1 60); do
		val=$(timeout 5 dig +time=2 @127.0.0.1 -p "$ECHLAB_DNS_PORT" secret.lab.test HTTPS 2>/dev/null | ech_of)
		if [ -n "$val" ] && [ "$val" != "$ech_start" ] && [ "$(pubkeys "$val")" = "$(pubkeys "$STATE/keys/shared")" ]; then
			return 0
		fi
		sleep 1
	done
	echo "    ech= at start: $ech_start; now: $val; key set publishes: $(pubkeys "$STATE/keys/shared" | tr '\n' ' ')" >&2
	return 1
}
check "rotation: the resolver republished the rotated key set (dig: ech= changed since start, decodes to the shared key set)" republished

# --- the fault case: the resolver stops mid-run ---------------------------
play() { dct "$1" exec -T client /echlab play --resolver 10.203.1.53 --ca /lab/pki/ca.crt \
	--fallback 10.203.1.10:443 --baseline 10.203.1.13:443 "${@:2}"; }
dct 60 stop -t 5 resolver >/dev/null 2>&1 || bad "docker stop resolver"
t0=$(date +%s)
check "fault: resolver stopped; ECH fails closed with a DNS error, and falls back when told to (bounded)" \
	play 90 --out /out/fault-down --ready-timeout 0 --case-timeout 10s --scenarios resolver-down,resolver-down-fallback
check "fault: nothing hung ($(($(date +%s) - t0)) s for both cases)" test $(($(date +%s) - t0)) -lt 60
check "fault: the fail-closed record names the DNS failure" \
	jqc '[.[] | select(.scenario == "resolver-down") | .result.error_class] | .[0] == "dns" or .[0] == "timeout"' "$OUT/fault-down/client.jsonl"
dct 60 start resolver >/dev/null 2>&1 || bad "docker start resolver"
check "fault: resolver back; ECH accepted again over all five DNS transports" \
	play 150 --out /out/fault-up --ready-timeout 60s --scenarios ech-shared

# --- the adversary: the observer on the client's path (ADVERSARY=) --------
# The observer is started again with ADVERSARY set and its /out in a
# subfolder (the run's capture stays): nftables rules in the client's
# namespace send its traffic through the adversary's relays.
adversary_up() { # adversary_up SPEC SUBFOLDER: recreate the observer; wait until it is on the path
	mkdir -p "$OUT/$2"
	ECHLAB_OUT=$OUT/$2 ADVERSARY=$1 dct 90 up -d --no-deps observer >/dev/null 2>&1 &&
		timeout 30 bash -c 'until [ -s "$0/observer.ready" ]; do sleep 0.5; done' "$OUT/$2"
}
adversary_down() { # adversary_down SUBFOLDER: stop the observer (SIGTERM); it says it removed its rules
	dct 30 stop -t 5 observer >/dev/null 2>&1 && dct 30 logs --no-color observer >"$OUT/$1/observer.log" 2>&1 &&
		grep -q "interception removed" "$OUT/$1/observer.log"
}
fetch() { # fetch SUBFOLDER/NAME.json echlab-client-args...: one fetch from the client container
	local name=$1; shift
	dct 60 exec -T client /echlab client --json --ca /lab/pki/ca.crt --timeout 15s "$@" https://secret.lab.test/api/conn >"$OUT/$name"
}
doh=https://10.203.1.53/dns-query do53=udp://10.203.1.53:53
A=$OUT/adversary S=$OUT/adversary-strip
fails_closed() { ! fetch "$1" "${@:3}" && jq -e "(.fallback == false) and ((.status // 0) == 0) and $2" "$OUT/$1" >/dev/null; }
fetch_ok() { fetch "$1" "${@:3}" && jq -e "$2" "$OUT/$1" >/dev/null; }
t0=$(date +%s)
check "adversary: observer restarted with ADVERSARY='block-ech rst', on the client's path" adversary_up 'block-ech rst' adversary
check "adversary block-ech rst: the ECH fetch fails closed: a reset in the TLS handshake (exit status, no fallback, no response)" \
	fails_closed adversary/ech.json '.error_class == "tls-handshake" and (.error | test("reset"))' --dns "$doh"
check "adversary block-ech rst: a fetch without ECH (baseline server) still succeeds" \
	fetch_ok adversary/plain.json '.status == 200' --mode baseline --dns "$doh" --connect-to 10.203.1.13:443
check "adversary block-ech rst: observer stopped, interception removed (its log)" adversary_down adversary
check "adversary log: the ECH ClientHello to the shared server (SNI public.lab.test, ECH) was reset by 'block-ech rst'" \
	jqc '[.[] | select(.action == "rst" and .policy == "block-ech rst" and .sni == "public.lab.test" and .ech == true and .flow.backend == "10.203.1.10:443")] | length > 0' "$A/adversary.jsonl"
check "adversary log: the ClientHello without ECH (SNI secret.lab.test) to the baseline server passed" \
	jqc '[.[] | select(.action == "pass" and .sni == "secret.lab.test" and (.ech // false) == false and .flow.backend == "10.203.1.13:443")] | length > 0' "$A/adversary.jsonl"
"$BIN" compare "$A/capture-client.pcapng" --json "$A/flows.jsonl" >"$A/compare.txt" 2>&1 || bad "echlab compare on the client-leg capture"
check "adversary capture (client's leg, lo): the reset ClientHello is there, SNI public.lab.test with an ECH extension" \
	jqc '[.[] | select(.sni == "public.lab.test" and .client_hello_len > 0 and (.ech // "none") != "none")] | length > 0' "$A/flows.jsonl"
check "adversary: observer restarted with ADVERSARY=strip-ech" adversary_up strip-ech adversary-strip
check "adversary strip-ech: ECH with Do53 discovery fails closed with a DNS-class error" \
	fails_closed adversary-strip/do53.json '.error_class == "dns"' --dns "$do53"
check "adversary strip-ech: ECH with DoH discovery still accepted" \
	fetch_ok adversary-strip/doh.json '.ech == "accepted" and .outer_sni == "public.lab.test"' --dns "$doh"
check "adversary strip-ech: observer stopped, interception removed (its log)" adversary_down adversary-strip
check "adversary log: strip-ech rewrote the Do53 HTTPS answer of secret.lab.test" \
	jqc '[.[] | select(.action == "rewrite" and .policy == "strip-ech" and ((.qname // "") | ascii_downcase | rtrimstr(".")) == "secret.lab.test")] | length > 0' "$S/adversary.jsonl"
check "adversary: rules gone with the observer: ECH with Do53 discovery accepted again" \
	fetch_ok adversary-strip/after.json '.ech == "accepted"' --dns "$do53"
check "adversary: the two runs took $(($(date +%s) - t0)) s (bounded)" test $(($(date +%s) - t0)) -lt 150
exit 0
