#!/usr/bin/env bash
# make container-test: build the image from a clean export of HEAD and run every pipeline stage in
# it the way Nextflow's docker profile runs a task. Needs root on a Debian/Ubuntu machine with
# network access to a package index; takes several minutes (the first time: ~3 min more for the
# local base image). Not part of `make test`.
#
#   1. a Docker daemon: reuse a running one, else start `dockerd` (overlay2, no iptables/bridge),
#      installing docker.io and debootstrap with apt-get first when they are missing;
#   2. the base image: $BASE_IMAGE if present or pullable, else a local stand-in made once with
#      debootstrap (bookworm + python3, the host's CA bundle and local wheels) and cached as
#      deepgami-base:bookworm-local;
#   3. `git archive HEAD` into a temporary folder, `docker build` from there;
#   4. tests/container/run_stages.py: every module's rendered script in the image as uid 4321,
#      --network none, --read-only with a tmpfs /tmp, task dirs with symlinked inputs; predictions
#      compared with the same script run on the host.
#
# Environment: BASE_IMAGE (default python:3.11.7-slim-bookworm), IMAGE (default
# deepgami:container-test), TORCH_INDEX_URL (default https://pypi.org/simple: the pytorch.org index
# is not reachable on every machine), PYTHON (the host Python with deepgami installed; default
# python3), KEEP=1 keeps the work folder.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BASE_IMAGE=${BASE_IMAGE:-python:3.11.7-slim-bookworm}
LOCAL_BASE=deepgami-base:bookworm-local
IMAGE=${IMAGE:-deepgami:container-test}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://pypi.org/simple}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/deepgami-container-test.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

log() { printf '[container-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || docker info >/dev/null 2>&1 || die "run as root (or as a user of a running Docker daemon)"

install_tools() {
    if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        || die "install Docker and debootstrap (Debian/Ubuntu: apt-get install -y docker.io debootstrap)"
    log "installing docker.io and debootstrap (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap \
        >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; die "apt-get install failed"; }
}

ensure_daemon() {
    if docker info >/dev/null 2>&1; then
        log "Docker daemon: running"
        return
    fi
    install_tools
    log "Docker daemon: starting dockerd (overlay2, --iptables=false --bridge=none)"
    nohup dockerd --storage-driver=overlay2 --iptables=false --bridge=none \
        >/var/log/deepgami-dockerd.log 2>&1 &
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return
        sleep 1
    done
    die "dockerd did not start (see /var/log/deepgami-dockerd.log)"
}

# A stand-in for the registry base: Debian bookworm's python3 (3.11) with `python` on PATH, the
# host's CA bundle (pip inside the build must reach the index) and the host's pip find-links wheels
# (the CPU torch wheel) with an /etc/pip.conf pointing at them.
make_local_base() {
    install_tools
    local root="$WORK/rootfs"
    log "base image: $BASE_IMAGE not available; debootstrap bookworm (about 3 minutes)"
    debootstrap --variant=minbase --include=python3,python3-venv,passwd,ca-certificates,procps \
        bookworm "$root" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
    ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    local links
    links=$(pip config get global.find-links 2>/dev/null || true)
    if [ -n "$links" ] && [ -d "$links" ]; then
        mkdir -p "$root/opt/wheels"
        cp "$links"/*.whl "$root/opt/wheels/" 2>/dev/null || true
        printf '[global]\nfind-links = /opt/wheels\ncert = /etc/ssl/certs/ca-certificates.crt\n' \
            >"$root/etc/pip.conf"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python"]' - "$LOCAL_BASE" >/dev/null
    rm -rf "$root"
}

ensure_base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image: $BASE_IMAGE (present)"
        return
    fi
    if timeout 30 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image: $BASE_IMAGE (pulled)"
        return
    fi
    if docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
        log "base image: $LOCAL_BASE (cached stand-in for $BASE_IMAGE)"
    else
        make_local_base
    fi
    BASE_IMAGE=$LOCAL_BASE
}

build_image() {
    local context="$WORK/context"
    mkdir -p "$context"
    git -C "$REPO" archive HEAD | tar -x -C "$context"
    log "build: $IMAGE from HEAD $(git -C "$REPO" rev-parse --short HEAD), base $BASE_IMAGE"
    local start=$SECONDS
    DOCKER_BUILDKIT=0 docker build --network host --quiet \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
        -t "$IMAGE" -f "$context/containers/Dockerfile" "$context" >"$WORK/build.log" 2>&1 \
        || { tail -30 "$WORK/build.log"; die "docker build failed"; }
    log "build: $((SECONDS - start)) s"
    log "image size: $(docker image inspect "$IMAGE" | "$PYTHON" -c \
        'import json, sys; n = json.load(sys.stdin)[0]["Size"]; print(f"{n / 1e9:.2f} GB ({n} bytes)")')"
}

ensure_daemon
ensure_base
build_image
log "stages: the rendered module scripts, in the image and on the host"
"$PYTHON" "$REPO/tests/container/run_stages.py" --image "$IMAGE" --work "$WORK/tasks"
log "PASSED"
