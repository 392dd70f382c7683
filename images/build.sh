#!/usr/bin/env bash
# `make images`: build mlapi-api, mlapi-worker and mlapi-feedback from the repository root.
#
#   IMAGE_TAG   tag of the three images (default: dev)
#   IMAGE_REPO  registry prefix, e.g. ghcr.io/acme/ (default: none, local names)
#   BASE_IMAGE  the Python base (default: python:3.12-slim). When it cannot be pulled and this
#               machine can build one (root, debootstrap, podman), images/local-base.sh makes
#               localhost/python:3.11-bookworm-local and the build uses that instead.
#   ENGINE      docker | podman | buildah (default: docker when its engine answers, else podman,
#               else buildah)
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${IMAGE_TAG:-dev}
repo=${IMAGE_REPO:-}
base=${BASE_IMAGE:-python:3.12-slim}
local_base=localhost/python:3.11-bookworm-local

engine=${ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
    elif command -v podman >/dev/null; then engine=podman
    elif command -v buildah >/dev/null; then engine=buildah
    else
        echo "make images: no container engine; install Docker, or podman (apt-get install podman)" >&2
        exit 2
    fi
fi

have_image() {
    case $engine in
        buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
        *) "$engine" image inspect "$1" >/dev/null 2>&1 ;;
    esac
}

if ! have_image "$base"; then
    echo "pulling $base ..."
    if ! timeout 120 "$engine" pull -q "$base" >/dev/null 2>&1; then
        if [ -z "${BASE_IMAGE:-}" ] && [ "$engine" != docker ] && [ "$(id -u)" = 0 ] \
                && command -v debootstrap >/dev/null; then
            echo "$base cannot be pulled here; building on $local_base (Debian bookworm's Python 3.11)"
            base=$local_base
            have_image "$base" || images/local-base.sh "$base"
        else
            echo "make images: cannot pull $base; set BASE_IMAGE to a Python 3.11+ image you have," \
                 "or build one with images/local-base.sh (root, debootstrap, podman)" >&2
            exit 2
        fi
    fi
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
args=(--build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version"
      --build-arg "REVISION=$revision" --build-arg "SOURCE_DATE_EPOCH=$epoch")
if [ "$engine" != docker ] && [ -d /etc/ssl/certs ]; then
    # The host's CA bundle, at build time only: a build behind a TLS-inspecting proxy (as on
    # our CI machines) reaches PyPI. Mounts are not part of any layer.
    args+=(-v /etc/ssl/certs:/etc/ssl/certs:ro)
fi
build=("$engine" build)
[ "$engine" = buildah ] && build=(buildah bud)

for name in api worker feedback; do
    image="${repo}mlapi-$name:$tag"
    echo "building $image ($engine, base $base) ..."
    started=$(date +%s)
    "${build[@]}" "${args[@]}" -f "images/$name/Dockerfile" -t "$image" . >"${TMPDIR:-/tmp}/mlapi-build-$name.log" 2>&1 || {
        tail -40 "${TMPDIR:-/tmp}/mlapi-build-$name.log" >&2
        echo "make images: building $image failed (whole log: ${TMPDIR:-/tmp}/mlapi-build-$name.log)" >&2
        exit 1
    }
    echo "  built in $(( $(date +%s) - started )) s"
done

size() {
    case $engine in
        buildah) buildah inspect --type image --format '{{.Docker.Size}}' "$1" 2>/dev/null || echo 0 ;;
        *) "$engine" image inspect --format '{{.Size}}' "$1" ;;
    esac
}
base_size=$(size "$base")
printf '\n%-34s %10s %14s\n' image size "added to base"
for name in api worker feedback; do
    image="${repo}mlapi-$name:$tag"
    s=$(size "$image")
    printf '%-34s %7d MB %11d MB\n' "$image" $(( s / 1000000 )) $(( (s - base_size) / 1000000 ))
done
printf '%-34s %7d MB\n' "$base (base)" $(( base_size / 1000000 ))
