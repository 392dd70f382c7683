#!/usr/bin/env bash
# Build a Python base image from Debian packages, for machines that cannot pull python:3.12-slim
# (no registry reachable, as on our CI). Users with a registry never need this.
#
#   images/local-base.sh [IMAGE]      default IMAGE: localhost/python:3.11-bookworm-local
#
# Needs root, debootstrap and podman (or docker). Uses the machine's Debian mirror.
set -euo pipefail
image=${1:-localhost/python:3.11-bookworm-local}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
engine=$(command -v podman || command -v docker || true)
[ -n "$engine" ] || { echo "local-base.sh: needs podman (apt-get install podman) or docker" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "local-base.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "local-base.sh: debootstrap needs root" >&2; exit 2; }

rootfs=$(mktemp -d /tmp/mlapi-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm (python3, python3-venv) into $rootfs ..."
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
# What a runtime stage never needs: apt caches, docs, man pages, locales.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
# The official python images put python3 at /usr/local/bin/python3; so does this one, so one
# Dockerfile fits both bases.
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python3"
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
tar -C "$rootfs" -c . | "$engine" import \
    --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV=LANG=C.UTF-8' --change 'CMD=["python3"]' - "$image" >/dev/null 2>&1
echo "built $image"
