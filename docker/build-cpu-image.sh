#!/usr/bin/env bash
# Builds docker/Dockerfile.cpu with podman, where no Docker engine runs (CI's machine), and by
# default runs its test stage, which exercises the image inside the build (podman run needs
# cgroups that such a machine does not give).
#
#   docker/build-cpu-image.sh [test|runtime] [podman build options...]
#
# The base image: docker.io/library/debian:bookworm-slim cannot be pulled here, so a minimal
# Debian bookworm (debootstrap --variant=minbase, from the mirror apt already uses) is imported
# under that name. Its tarball is kept in build/docker/ and the image in podman's store, so a
# rerun skips both; podman's layer cache makes the apt steps of a rerun free too.
#
# Environment: MLC_DEBIAN_MIRROR overrides the mirror; MLC_IMAGE (default mlc-bench:cpu-test
# for the test stage, mlc-bench:cpu for the runtime stage) names the result.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-test}
[ $# -gt 0 ] && shift
case "$target" in
    test | runtime) ;;
    *) echo "build-cpu-image.sh: target '$target' (test, runtime)" >&2; exit 2 ;;
esac
cache=build/docker
base=docker.io/library/debian:bookworm-slim
sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
t0=$(date +%s)
say() { printf '  [%3ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }

# podman (and its chroot isolation through buildah), debootstrap for the base image.
need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    $sudo_ apt-get update -qq
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${need[@]}" uidmap >/dev/null
fi

# The Debian mirror apt uses for bookworm: deb822 .sources stanzas (URIs + Suites) or
# one-line 'deb URI bookworm ...' entries.
mirror_of_apt() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk '/^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i=="bookworm") s=1}
             /^$/ {if (s && u!="") print u; u=""; s=0}
             END {if (s && u!="") print u}' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk '$1=="deb" {i=2; if ($2 ~ /^\[/) {while ($i !~ /\]$/) i++; i++}
                        if ($(i+1)=="bookworm") print $i}' "$f"
    done
}
mirror=${MLC_DEBIAN_MIRROR:-$(mirror_of_apt | sed -n 1p)}
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
# Builds run with chroot isolation: no user namespace or cgroup set-up. Podman's default
# ulimits (nproc, nofile) cannot be applied from inside such a sandbox: drop them.
conf=$cache/containers.conf
printf '[containers]\ndefault_ulimits = []\n' > "$conf"
# podman as root (sudo when not root: debootstrap needs it anyway, and the store is then one)
podman_() { $sudo_ env CONTAINERS_CONF="$PWD/$conf" podman "$@"; }

# The base image, made once per mirror and labelled with it: kept in podman's store (which
# outlives a checkout: CI's fresh clones on one machine share it) and as a tarball in
# build/docker/ (which outlives a podman reset). debootstrap runs only when neither has it.
tarball=$cache/debian-bookworm-minbase.tar
stamp=$cache/debian-bookworm-minbase.mirror
label=org.mlc-bench.debootstrap-mirror
have_mirror=$(podman_ image inspect --format "{{index .Labels \"$label\"}}" "$base" 2>/dev/null || true)
if [ "$have_mirror" != "$mirror" ]; then
    if [ ! -s "$tarball" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$mirror" ]; then
        say "debootstrap --variant=minbase bookworm from $mirror"
        root=$cache/rootfs
        $sudo_ rm -rf "$root"
        $sudo_ debootstrap --variant=minbase bookworm "$root" "$mirror" > "$cache/debootstrap.log" 2>&1 || {
            tail -n 20 "$cache/debootstrap.log" >&2; echo "debootstrap failed (log: $cache/debootstrap.log)" >&2; exit 1; }
        # what debian:bookworm-slim leaves out too: downloaded packages and package lists
        $sudo_ rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
        $sudo_ tar -C "$root" --numeric-owner -cf "$tarball.part" .
        $sudo_ rm -rf "$root"
        mv "$tarball.part" "$tarball"
        echo "$mirror" > "$stamp"
    fi
    say "podman import $tarball as $base"
    podman_ rmi -f "$base" >/dev/null 2>&1 || true
    podman_ import --quiet --change 'CMD ["bash"]' --change "LABEL $label=$mirror" "$tarball" "$base" >/dev/null
fi

version=$(sed -n 's/^VERSION *:= *//p' Makefile)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
image=mlc-bench:cpu
[ "$target" = runtime ] || image=mlc-bench:cpu-$target
image=${MLC_IMAGE:-$image}
say "podman build --target $target -t $image (version $version, revision $revision)"
# --format docker: the OCI image format has no SHELL instruction. The whole log goes to
# build/docker/podman-build.log; the console leaves out apt's and dpkg's per-package lines.
log=$cache/podman-build.log
# The build stage is tagged too (mlc-bench:cpu-build), so that its cached layers are never
# dangling: the prune at the end drops what earlier builds left (their compile layers), never
# the layers with the apt installs that the next build reuses.
build_stage() {
    podman_ build --pull=never --isolation=chroot --layers --format docker \
        -f docker/Dockerfile.cpu --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
        "$@" . 2>&1 | tee -a "$log" |
        grep --line-buffered -Ev '^(Get:[0-9]|Selecting previously|Preparing to unpack|Unpacking |Setting up |Processing triggers|\(Reading database)'
    local codes=("${PIPESTATUS[@]}")
    [ "${codes[0]}" = 0 ] || { echo "podman build failed, exit ${codes[0]} (log: $log)" >&2; return 1; }
    [ "${codes[1]}" = 0 ] || { echo "could not write $log" >&2; return 1; }
}
: > "$log"
build_stage --target build -t mlc-bench:cpu-build "$@"
# TEST_RUN: the test stage's checks run on every call, also when nothing changed since the last build.
build_stage --target "$target" -t "$image" --build-arg "TEST_RUN=$(date +%s)" "$@"
say "built $image ($(podman_ image inspect --format '{{.Size}}' "$image") bytes)"
podman_ image prune -f > /dev/null
