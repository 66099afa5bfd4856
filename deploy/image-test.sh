#!/usr/bin/env bash
# Build the ric image from deploy/Dockerfile with podman and exercise it: `ric --help` in the
# image, then the runtime container against `ric sim` on the host until it is ready and an xApp's
# control is acknowledged, its health check, a graceful stop and the audit chain it wrote.
# Called by `make image-test`; deploy/README.md ("Building and testing the image") explains it.
#
# Everything this starts binds 127.0.0.1 (host network, loopback addresses) and is stopped and
# removed on exit, failure or Ctrl-C included; the images it builds are kept (that is the
# product, and the layers are the cache of the next build).
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: deploy/image-test.sh [OPTIONS]

Build the ric image with podman (docker format, so the HEALTHCHECK is kept) and test it:
  1. podman (and debootstrap, when needed) installed from apt when missing;
  2. the base image: --base, else docker.io/library/python:3.11-slim-bookworm, else, when that
     cannot be pulled, localhost/ric-base:bookworm built from Debian's packages (debootstrap);
  3. the build, with the dependencies from requirements.lock (pip --require-hashes);
  4. `ric --help` and the user (not root) in the image; the HEALTHCHECK in its config;
  5. the runtime container (host network, 127.0.0.1, protect_reads on) against `ric sim` on the
     host: /readyz, three nodes, an acknowledged control in /api/v1/controls and in
     ric_control_requests_total, the health check; then SIGTERM: exit 0 and an intact audit log;
  6. the image size against the budget.

Options:
  --image NAME       the image to build (default: $RIC_IMAGE or localhost/ric:latest, the
                     name deploy/docker-compose.yml runs)
  --base IMAGE       the base image (build argument PYTHON_IMAGE; default: $PYTHON_IMAGE, else
                     as in step 2)
  --rebuild-base     build localhost/ric-base:bookworm again even if it exists
  --budget-mb N      fail when the image is larger than N MB (default: $RIC_IMAGE_BUDGET_MB or 450)
  --timeout SECONDS  how long to wait for each of readiness and the first acknowledged control
                     (default 120; a guard against hangs, not a measurement)
  -h, --help         this help

Environment:
  RIC_BUILD_CA       a CA bundle the builder stage trusts when it downloads from PyPI (a
                     TLS-inspecting proxy); default: pip's `cert` setting on this host, if any.
                     Passed as a build secret: it is in no layer of the image.
  DEBIAN_MIRROR      the mirror debootstrap uses (default http://deb.debian.org/debian)
  RIC_PODMAN_OPTS    extra global podman options (e.g. "--runtime runc"); when empty and a
                     container cannot start with podman's defaults, runc and the host's limits
                     are tried (see deploy/README.md)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=${RIC_IMAGE:-localhost/ric:latest}
BASE=${PYTHON_IMAGE:-}
OFFICIAL_BASE=docker.io/library/python:3.11-slim-bookworm
DEBIAN_BASE=localhost/ric-base:bookworm
REBUILD_BASE=0
BUDGET_MB=${RIC_IMAGE_BUDGET_MB:-450}
TIMEOUT=120
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY=$ROOT/.venv/bin/python
RIC=$ROOT/.venv/bin/ric

say() { printf 'image-test: %s\n' "$*"; }
die() {
	printf 'image-test: FAILED: %s\n' "$*" >&2
	exit 1
}

# A usage error: exit 2, as for any command line mistake.
bad_usage() {
	printf 'image-test: %s (try --help)\n' "$*" >&2
	exit 2
}
# need OPTION "$@": the option's value, or a usage error when it has none.
need() { if [ $# -lt 2 ] || [ -z "$2" ]; then bad_usage "$1 needs a value"; fi; }

while [ $# -gt 0 ]; do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--image) need "$@"; IMAGE=$2; shift 2 ;;
	--base) need "$@"; BASE=$2; shift 2 ;;
	--rebuild-base) REBUILD_BASE=1; shift ;;
	--budget-mb) need "$@"; BUDGET_MB=$2; shift 2 ;;
	--timeout) need "$@"; TIMEOUT=$2; shift 2 ;;
	*) bad_usage "unknown argument '$1'" ;;
	esac
done
case $BUDGET_MB in
'' | *[!0-9]*) bad_usage "--budget-mb (or RIC_IMAGE_BUDGET_MB) must be a whole number of MB, got '$BUDGET_MB'" ;;
esac
case $TIMEOUT in
'' | *[!0-9]* | 0) bad_usage "--timeout must be a positive whole number of seconds, got '$TIMEOUT'" ;;
esac
[ -x "$RIC" ] || die "$RIC is missing: run 'make run' or 'make test' once to create .venv"

# -- clean-up: whatever this run started goes, however it ends ---------------------------------

WORK=$(mktemp -d /var/tmp/ric-image-test.XXXXXX)
CONTAINER=ric-image-test-$$
SIM_PID=
STARTED=0
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [ "$status" -ne 0 ] && [ "$STARTED" = 1 ]; then
		say "the runtime container's last log lines:"
		podman "${GLOBAL[@]}" logs --tail 20 "$CONTAINER" 2>&1 | sed 's/^/  | /' || true
		if [ -s "$WORK/sim.log" ]; then
			say "ric sim's last log lines:"
			tail -n 20 "$WORK/sim.log" | sed 's/^/  | /'
		fi
	fi
	if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
		kill "$SIM_PID" 2>/dev/null || true
		wait "$SIM_PID" 2>/dev/null || true
	fi
	if [ "$STARTED" = 1 ]; then
		podman "${GLOBAL[@]}" rm --force --time 5 "$CONTAINER" >/dev/null 2>&1 || true
	fi
	rm -rf "$WORK"
	exit "$status"
}
GLOBAL=()
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# -- tools ---------------------------------------------------------------------------------------

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "'$*' needs root (no sudo here)"
	fi
}

apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "install $* (not a Debian-like system: no apt-get)"
	say "installing $* from apt (waiting up to 5 minutes for another apt to finish)"
	as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
		--no-install-recommends "$@"
}

command -v podman >/dev/null 2>&1 || apt_install podman
say "$(podman --version)"

# Filters podman's complaint that it cannot schedule the health check with systemd (a host
# without systemd); the check is still in the container and `podman healthcheck run` runs it.
quiet_systemd() { grep -v 'unable to get systemd connection' >&2 || true; }

# -- the base image ------------------------------------------------------------------------------

build_debian_base() {
	command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
	local rootfs=$WORK/rootfs started=$SECONDS
	say "building $DEBIAN_BASE from Debian's packages (debootstrap bookworm from $MIRROR)"
	# python-is-python3: the Dockerfile and the health check call `python`; ca-certificates:
	# TLS to PyPI in the builder, and the system CAs the runtime's TLS clients default to.
	as_root debootstrap --variant=minbase \
		--include=python3,python3-venv,python-is-python3,ca-certificates \
		bookworm "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
	# What a slim base leaves out: apt's caches and lists, manuals, translations; the copyright
	# files stay.
	as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
	as_root find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
		-exec rm -rf {} +
	as_root find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
	as_root tar -C "$rootfs" -c . | podman "${GLOBAL[@]}" import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'CMD ["python3"]' \
		--message "debootstrap --variant=minbase bookworm + python3 (deploy/image-test.sh)" \
		--quiet - "$DEBIAN_BASE" >/dev/null
	as_root rm -rf "$rootfs"
	say "built $DEBIAN_BASE in $((SECONDS - started)) s"
}

if [ -n "$BASE" ]; then
	podman image exists "$BASE" || podman pull "$BASE" || die "cannot pull the base image $BASE"
elif podman image exists "$OFFICIAL_BASE"; then
	BASE=$OFFICIAL_BASE
elif [ "$REBUILD_BASE" = 0 ] && podman image exists "$DEBIAN_BASE"; then
	BASE=$DEBIAN_BASE
	say "using $DEBIAN_BASE built earlier (--rebuild-base builds it again)"
elif say "pulling $OFFICIAL_BASE" && timeout 180 podman pull -q "$OFFICIAL_BASE" >"$WORK/pull.log" 2>&1; then
	BASE=$OFFICIAL_BASE
else
	say "cannot pull $OFFICIAL_BASE ($(tail -n 1 "$WORK/pull.log" 2>/dev/null || echo timed out))"
	build_debian_base
	BASE=$DEBIAN_BASE
fi
say "base image: $BASE"

# -- can containers start here? ----------------------------------------------------------------

# Some hosts (a container-in-a-VM sandbox, cgroups v1 with a hybrid v2 tree) refuse crun's
# cgroup setup or podman's default limits (RLIMIT_NOFILE 1048576 above the host's hard limit);
# runc with the host's own limits starts there.
read -r -a GLOBAL <<<"${RIC_PODMAN_OPTS:-}"
LIMITS=()
probe() { podman "${GLOBAL[@]}" run --rm --network host "${LIMITS[@]}" "$BASE" python3 -c 'print("ok")'; }
if ! probe >"$WORK/probe.log" 2>&1; then
	[ -z "${RIC_PODMAN_OPTS:-}" ] || die "a container does not start with RIC_PODMAN_OPTS='$RIC_PODMAN_OPTS': $(tail -n 1 "$WORK/probe.log")"
	say "a container does not start with podman's defaults here: $(tail -n 1 "$WORK/probe.log")"
	command -v runc >/dev/null 2>&1 || apt_install runc
	GLOBAL=(--runtime runc)
	LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
	say "retrying with: podman ${GLOBAL[*]} run ${LIMITS[*]}"
	probe >"$WORK/probe.log" 2>&1 || die "containers do not start here either: $(tail -n 1 "$WORK/probe.log")"
fi

# -- build ---------------------------------------------------------------------------------------

BUILD=(--format docker --network host --file deploy/Dockerfile
	--ignorefile deploy/Dockerfile.dockerignore --build-arg "PYTHON_IMAGE=$BASE" --tag "$IMAGE")
[ ${#LIMITS[@]} -eq 0 ] || BUILD+=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)")
CA=${RIC_BUILD_CA:-${PIP_CERT:-$("$PY" -m pip config get global.cert 2>/dev/null || true)}}
if [ -n "$CA" ]; then
	[ -s "$CA" ] || die "the CA bundle for PyPI '$CA' (RIC_BUILD_CA, PIP_CERT or pip's cert) is not a readable file"
	say "the builder trusts $CA for PyPI (a build secret, in no layer of the image)"
	BUILD+=(--secret "id=pip-ca,src=$CA")
fi
say "building $IMAGE (log: podman's output below)"
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
started=$SECONDS
if ! (cd "$ROOT" && podman "${GLOBAL[@]}" build "${BUILD[@]}" .) 2>&1 | sed 's/^/  | /'; then
	die "podman build failed (output above)"
fi
BUILD_S=$((SECONDS - started))
say "built $IMAGE in $BUILD_S s"
# The image this one replaced, untagged now: removed unless a container still uses it. (The
# unchanged layers it shares stay: they are the cache of the next build.)
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
	if podman image rm "$previous" >/dev/null 2>&1; then
		say "removed the previous $IMAGE (${previous:0:12})"
	fi
fi

# -- the image as built ----------------------------------------------------------------------------

healthcheck=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
case $healthcheck in
*/healthz*) say "HEALTHCHECK kept in the image: $healthcheck" ;;
*) die "the image has no HEALTHCHECK on /healthz (got $healthcheck): was it built in the OCI format?" ;;
esac

RUN=(podman "${GLOBAL[@]}" run --rm --network host "${LIMITS[@]}")
help=$("${RUN[@]}" "$IMAGE" --help 2> >(quiet_systemd)) || die "'ric --help' failed in the image"
case $help in
*"usage: ric"*) say "ric --help in the image: $(printf '%s\n' "$help" | head -n 1)" ;;
*) die "'ric --help' printed no usage: $help" ;;
esac
user=$("${RUN[@]}" --entrypoint id "$IMAGE" -u 2> >(quiet_systemd))
[ "$user" != 0 ] || die "the image runs as root"
say "runs as uid $user"

# -- the runtime against ric sim -----------------------------------------------------------------

# get URL [TOKEN]: print the body of a 2xx answer, else fail (stdlib only, so no curl needed).
get() {
	"$PY" - "$@" <<'EOF'
import sys, urllib.request
request = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    request.add_header("Authorization", f"Bearer {sys.argv[2]}")
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        sys.stdout.write(answer.read().decode())
except OSError:
    sys.exit(1)
EOF
}
# json EXPRESSION: evaluate a Python expression on the JSON document `d` read from stdin.
json() { "$PY" -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# wait_for WHAT COMMAND...: run COMMAND every second until it succeeds, at most $TIMEOUT s.
wait_for() {
	local what=$1 deadline=$((SECONDS + TIMEOUT))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || die "no $what within $TIMEOUT s"
		sleep 1
	done
}

read -r E2_PORT HTTP_PORT < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
TOKEN=$("$PY" -c 'import secrets; print(secrets.token_hex(24))')
printf '%s\n' "$TOKEN" >"$WORK/http-token"
chmod 0444 "$WORK/http-token"
URL=http://127.0.0.1:$HTTP_PORT

# The image's own ric.toml and CMD; only what differs from compose is set: loopback addresses on
# free ports, no MQTT broker, the token file. protect_reads stays on, as in compose.
say "starting the runtime container $CONTAINER (E2 127.0.0.1:$E2_PORT, HTTP $URL)"
STARTED=1
podman "${GLOBAL[@]}" run --detach --name "$CONTAINER" --network host "${LIMITS[@]}" \
	--volume "$WORK/http-token:/run/secrets/ric-http-token:ro" \
	--env RIC_E2__HOST=127.0.0.1 --env "RIC_E2__PORT=$E2_PORT" \
	--env RIC_HTTP__HOST=127.0.0.1 --env "RIC_HTTP__PORT=$HTTP_PORT" \
	--env RIC_HTTP__TOKEN_FILE=/run/secrets/ric-http-token --env RIC_HTTP__PROTECT_READS=true \
	--env RIC_MQTT__ENABLED=false \
	"$IMAGE" >/dev/null 2> >(quiet_systemd)
started=$SECONDS

"$RIC" sim "$ROOT/seeds/demo.toml" --connect "127.0.0.1:$E2_PORT" --log-level warning \
	>"$WORK/sim.log" 2>&1 &
SIM_PID=$!

ready() { get "$URL/readyz" >/dev/null; }
wait_for "ready runtime (GET /readyz 200)" ready
READY_S=$((SECONDS - started))
say "ready after $READY_S s: $(get "$URL/readyz" | json '", ".join(c["name"] for c in d["checks"])')"
get "$URL/api/v1/nodes" >/dev/null && die "/api/v1/nodes answered without the token (protect_reads is on)"

three_nodes() { [ "$(get "$URL/api/v1/nodes" "$TOKEN" | json 'len(d["nodes"])' 2>/dev/null)" = 3 ]; }
wait_for "three E2 nodes in /api/v1/nodes" three_nodes
say "three nodes connected: $(get "$URL/api/v1/nodes" "$TOKEN" | json '", ".join(n["id"] + " (" + n["vendor"] + ")" for n in d["nodes"])')"

acknowledged() {
	get "$URL/api/v1/controls?outcome=acknowledged" "$TOKEN" >"$WORK/controls.json" &&
		[ "$(json 'len(d["controls"])' <"$WORK/controls.json")" -gt 0 ]
}
wait_for "acknowledged control in /api/v1/controls" acknowledged
CONTROL_S=$((SECONDS - started))
say "acknowledged control after $CONTROL_S s: $(json 'd["controls"][0]["xapp"] + " " + d["controls"][0]["action"] + " on " + d["controls"][0]["node"] + ", " + str(d["controls"][0]["latency_ms"]) + " ms"' <"$WORK/controls.json")"
counted=$(get "$URL/metrics" "$TOKEN" | awk '/^ric_control_requests_total\{/ && /outcome="acknowledged"/ {n += $NF} END {print n + 0}')
[ "${counted%.*}" -gt 0 ] || die "ric_control_requests_total{outcome=\"acknowledged\"} is $counted"
say "ric_control_requests_total{outcome=\"acknowledged\"} = $counted"

podman "${GLOBAL[@]}" healthcheck run "$CONTAINER" >/dev/null 2> >(quiet_systemd) ||
	die "the image's HEALTHCHECK fails against the running runtime"
say "podman healthcheck run: healthy"

# Graceful stop: SIGTERM, exit 0, and the audit log it wrote is intact up to the anchor it logged.
kill -0 "$SIM_PID" 2>/dev/null || die "ric sim exited while the runtime ran"
kill "$SIM_PID"
wait "$SIM_PID" 2>/dev/null || true
SIM_PID=
podman "${GLOBAL[@]}" stop --time 30 "$CONTAINER" >/dev/null 2> >(quiet_systemd)
code=$(podman "${GLOBAL[@]}" inspect --format '{{.State.ExitCode}}' "$CONTAINER")
[ "$code" = 0 ] || die "the runtime exited with $code on SIGTERM"
anchor=$(podman "${GLOBAL[@]}" logs "$CONTAINER" 2>&1 | sed -n 's/.*"audit anchor \([0-9]*:[0-9a-f]*\) .*/\1/p' | tail -n 1)
[ -n "$anchor" ] || die "the runtime logged no audit anchor when it stopped"
podman "${GLOBAL[@]}" cp "$CONTAINER:/var/lib/ric/audit/controls.jsonl" "$WORK/controls.jsonl"
"$RIC" audit verify "$WORK/controls.jsonl" --anchor "$anchor" >"$WORK/verify.log" 2>&1 ||
	{ cat "$WORK/verify.log" >&2; die "ric audit verify failed on the container's audit log"; }
say "stopped on SIGTERM with exit 0; audit log verified against anchor ${anchor%%:*}:${anchor#*:}"

# -- size ----------------------------------------------------------------------------------------

bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$((bytes / 1000000))
base_mb=$(($(podman image inspect --format '{{.Size}}' "$BASE") / 1000000))
say "PASSED: $IMAGE, built in $BUILD_S s from $BASE; ready in $READY_S s, first acknowledged control at $CONTROL_S s"
say "image size: $size_mb MB ($base_mb MB of it the base), budget $BUDGET_MB MB"
[ "$size_mb" -le "$BUDGET_MB" ] || die "the image is $size_mb MB, above the budget of $BUDGET_MB MB"
