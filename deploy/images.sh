#!/usr/bin/env bash
# `make images`: build the four service images with podman on a machine without a Docker
# daemon or an image registry, each from the one Dockerfile with --build-arg SERVICE=<service>.
# The base is a Debian bookworm root filesystem with Debian's Python, made by mmdebstrap
# (cached in .local/images/) and imported, in place of the official python:slim image the
# Dockerfile defaults to.
#   IMAGE_TAG=local  BASE_IMAGE=<an image already in podman's storage to use instead>
#   `deploy/images.sh base`: only the base (deploy/compose.sh builds its stand-ins on it).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=(api-gateway pedidos-service pagamentos-service estoque-service)
CACHE=.local/images
ROOTFS=$CACHE/debian-bookworm-python.tar
BASE_IMAGE=${BASE_IMAGE:-localhost/pedidos-veloz/debian-python:bookworm}
IMAGE_TAG=${IMAGE_TAG:-local}
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# podman's flags (runc, deploy/containers.conf, overlay or vfs storage): deploy/podman.sh.
source deploy/podman.sh

need() { command -v "$1" >/dev/null || { echo "images: '$1' is not installed ($2)" >&2; exit 3; }; }
need podman "apt-get install podman runc"

ensure_base() {
    podman image exists "$BASE_IMAGE" && return
    if [ ! -s "$ROOTFS" ]; then
        need mmdebstrap "apt-get install mmdebstrap"
        mkdir -p "$CACHE"
        echo "images: building the Debian base root filesystem ($ROOTFS)"
        mmdebstrap --quiet --format=tar --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$ROOTFS.partial"
        mv "$ROOTFS.partial" "$ROOTFS"
    fi
    podman import --quiet "$ROOTFS" "$BASE_IMAGE" >/dev/null
}

ensure_base
[ "${1:-}" != base ] || exit 0

# pip inside the build reaches the package index only through this machine's CA bundle; it is
# an optional input of the build (read-only), never something the Dockerfile needs.
ca_mount=()
[ -r "$HOST_CA_BUNDLE" ] && ca_mount=(--volume "$HOST_CA_BUNDLE:$HOST_CA_BUNDLE:ro")

for service in "${SERVICES[@]}"; do
    started=$SECONDS
    podman build --quiet --format docker --layers=false --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --build-arg "SERVICE=$service" "${ca_mount[@]}" --file Dockerfile \
        --tag "localhost/pedidos-veloz/$service:$IMAGE_TAG" . >/dev/null
    echo "images: localhost/pedidos-veloz/$service:$IMAGE_TAG built in $((SECONDS - started)) s"
done

# A replaced image stays in the store (under vfs, as a full copy): drop the ones no tag
# names any more.
podman image prune --force >/dev/null
