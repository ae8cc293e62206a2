#!/usr/bin/env bash
# Builds local stand-ins for the Dockerfile's two base images where no image
# registry is reachable (only Debian's mirror), so that deploy/Dockerfile can be
# built with buildah exactly as written:
#   docker.io/library/debian:bookworm-slim  <- debootstrap --variant=minbase
#   docker.io/library/rust:1.95.0-bookworm  <- that + gcc/g++ + this machine's
#                                              rustup toolchain (RUST_TOOLCHAIN)
# Then, from the repository root (add -v for a TLS-intercepting proxy's CA):
#   BUILDAH_ISOLATION=chroot buildah bud --format docker --layers --pull=never \
#       -f deploy/Dockerfile -t localhost/dmtl:dev .
# Needs root, buildah and debootstrap (apt-get install buildah debootstrap).
set -euo pipefail

RUST_TOOLCHAIN=${RUST_TOOLCHAIN:-$HOME/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu}
work=${WORK:-/var/tmp/dmtl-offline-bases}
export BUILDAH_ISOLATION=chroot
path=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mkdir -p "$work"
if [ ! -e "$work/rootfs/.complete" ]; then
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/*.bin
    touch "$work/rootfs/.complete"
fi

c=$(buildah from scratch)
m=$(buildah mount "$c")
cp -a "$work/rootfs/." "$m/"
rm -f "$m/.complete"
buildah umount "$c"
buildah config --cmd /bin/bash --env PATH="${path#/usr/local/cargo/bin:}" "$c"
buildah commit --rm "$c" docker.io/library/debian:bookworm-slim

c=$(buildah from --pull=never docker.io/library/debian:bookworm-slim)
buildah run "$c" -- bash -c 'apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ libc6-dev binutils make ca-certificates pkg-config \
    && rm -rf /var/lib/apt/lists/*'
m=$(buildah mount "$c")
mkdir -p "$m/usr/local/rustup" "$m/usr/local/cargo/bin"
cp -a "$(readlink -f "$RUST_TOOLCHAIN")" "$m/usr/local/rustup/toolchain"
for tool in cargo rustc rustdoc; do
    ln -s "../../rustup/toolchain/bin/$tool" "$m/usr/local/cargo/bin/$tool"
done
buildah umount "$c"
buildah config --env CARGO_HOME=/usr/local/cargo --env PATH="$path" "$c"
buildah run "$c" -- cargo --version
buildah commit --rm "$c" docker.io/library/rust:1.95.0-bookworm
