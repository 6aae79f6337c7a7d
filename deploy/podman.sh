#!/usr/bin/env bash
# podman as every script and test of this repository runs it:
#   source deploy/podman.sh          defines `podman` (deploy/images.sh, deploy/compose.sh)
#   bash deploy/podman.sh flags      its global flags, one a line (tests/deploy reads them)
# runc, since crun fails on this kind of machine's cgroups; deploy/containers.conf; and the
# storage driver: overlay where the kernel mounts it for us (as root), else vfs, which needs
# no kernel support but copies an image's whole root filesystem for every container and
# layer (12.9 s a container against 0.47 s on the development machine).
# A store keeps the driver it was made with, so overlay has a store of its own beside the
# default one (which holds vfs images from earlier runs).
#   PODMAN_STORAGE_DRIVER=overlay|vfs  use that one instead of probing

OVERLAY_ROOT=/var/lib/containers/storage-overlay
OVERLAY_RUNROOT=/run/containers/storage-overlay
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf}

# Does an overlay mount work where the store lives? Only root can try.
overlay_mounts() {
    [ "$(id -u)" = 0 ] || return 1
    mkdir -p "$(dirname "$OVERLAY_ROOT")" || return 1
    local probe works=1
    probe=$(mktemp -d "$(dirname "$OVERLAY_ROOT")/.overlay-probe.XXXXXX") || return 1
    mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
    if mount -t overlay overlay \
        -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" \
        2>/dev/null; then
        umount "$probe/merged" && works=0
    fi
    rm -rf "$probe"
    return "$works"
}

podman_flags() {
    local driver=${PODMAN_STORAGE_DRIVER:-}
    if [ -z "$driver" ]; then
        if overlay_mounts; then driver=overlay; else driver=vfs; fi
    fi
    case "$driver" in
        overlay) PODMAN_FLAGS=(--runtime runc --storage-driver overlay
                               --root "$OVERLAY_ROOT" --runroot "$OVERLAY_RUNROOT") ;;
        vfs) PODMAN_FLAGS=(--runtime runc --storage-driver vfs) ;;
        *) echo "PODMAN_STORAGE_DRIVER must be overlay or vfs" >&2; return 2 ;;
    esac
}

podman() { command podman "${PODMAN_FLAGS[@]}" "$@"; }

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    [ "${1:-}" = flags ] || { echo "usage: bash deploy/podman.sh flags" >&2; exit 2; }
    podman_flags || exit
    printf '%s\n' "${PODMAN_FLAGS[@]}"
else
    podman_flags || return
fi
