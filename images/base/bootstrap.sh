#!/usr/bin/env bash
# The base image without a registry: debootstrap Debian bookworm with the
# packages listed beside this file, trim it as the Dockerfile does, and
# `docker import` it. Needs root (debootstrap makes device nodes and chroots).
#
#   images/base/bootstrap.sh TAG [MIRROR]
set -euo pipefail

tag=$1
mirror=${2:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")" && pwd)
packages=$(grep -v '^#' "$here/packages" | paste -sd, -)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/socklab-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "debootstrap: Debian bookworm (minbase + $packages) from $mirror"
# debootstrap prints a line per package; show each phase once, keep the rest
# in a log that is printed only if it fails.
if ! debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >"$work/log" 2>&1; then
  tail -n 30 "$work/log" >&2
  echo "debootstrap failed (above: the end of its log)" >&2
  exit 1
fi
awk '$1 == "I:" && !seen[$2]++ { print "debootstrap: " $0 }' "$work/log"

rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
       "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/locale/*
tar -C "$work/rootfs" --numeric-owner -c . \
  | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' --change 'LABEL org.socklab.image=base' - "$tag" >/dev/null
echo "docker import: $tag"
