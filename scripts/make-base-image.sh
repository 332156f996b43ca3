#!/usr/bin/env bash
# A local base image with Debian's Python, for machines that reach no registry (CI here, an air
# gap): debootstrap a minimal bookworm with python3 and python3-venv, and import it.
#
#   scripts/make-base-image.sh [IMAGE]      # default localhost/wheelhouse-base:bookworm
#
# Needs root, debootstrap and podman (apt-get install debootstrap podman). Does nothing when the
# image exists already.
set -euo pipefail
image=${1:-localhost/wheelhouse-base:bookworm}
if podman image exists "$image"; then
  echo "$image exists"
  exit 0
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" >/dev/null
# Files in the image get fixed times so that two imports of the same packages differ less.
tar --sort=name --numeric-owner -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$image"
echo "made $image"
