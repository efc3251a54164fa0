# Shared by up.sh, down.sh, report.sh and e2e.sh: paths, the compose
# command (docker-compose 1.29 or `docker compose` v2), docker set-up and
# the image build. Source it; it defines functions only.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-echlab}
export ECHLAB_STATE=${ECHLAB_STATE:-$HERE/state}
export ECHLAB_OUT=${ECHLAB_OUT:-$HERE/out}
export ECHLAB_IMAGE=${ECHLAB_IMAGE:-echlab-lab:latest}
BIN=$HERE/.build/echlab

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# compose prints the compose command that exists: `docker compose` (v2)
# or docker-compose (1.29).
compose() {
	if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi
}

# dc runs compose on this folder's compose file; dct SECONDS does the same
# under a timeout.
dc() { $(compose) -f "$HERE/docker-compose.yml" "$@"; }
dct() {
	local t=$1
	shift
	timeout "$t" $(compose) -f "$HERE/docker-compose.yml" "$@"
}

# ensure_docker installs docker.io and docker-compose when missing and
# starts dockerd when `docker info` fails.
ensure_docker() {
	local need=()
	command -v docker >/dev/null || need+=(docker.io)
	if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
		need+=(docker-compose)
	fi
	if [ ${#need[@]} -gt 0 ]; then
		log "installing ${need[*]}"
		timeout 300 apt-get install -y "${need[@]}" >/dev/null || { timeout 120 apt-get update >/dev/null && timeout 300 apt-get install -y "${need[@]}" >/dev/null; }
	fi
	if ! timeout 20 docker info >/dev/null 2>&1; then
		log "starting dockerd (log: /tmp/echlab-dockerd.log)"
		(dockerd >/tmp/echlab-dockerd.log 2>&1 &)
		local i
		for i in $(seq 1 60); do
			timeout 5 docker info >/dev/null 2>&1 && return 0
			sleep 1
		done
		log "dockerd did not come up"; tail -20 /tmp/echlab-dockerd.log >&2; return 1
	fi
}

# build makes the static binary on the host and the FROM-scratch image.
build() {
	mkdir -p "$HERE/.build"
	log "building the static echlab binary"
	(cd "$ROOT" && CGO_ENABLED=0 timeout 600 go build -trimpath -o "$BIN" ./cmd/echlab)
	cp "$HERE/Dockerfile" "$HERE/.build/Dockerfile"
	log "building image $ECHLAB_IMAGE"
	timeout 300 docker build -q -t "$ECHLAB_IMAGE" "$HERE/.build" >"$HERE/.build/docker-build.log" 2>&1 ||
		{ cat "$HERE/.build/docker-build.log" >&2; return 1; }
}
