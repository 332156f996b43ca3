#!/usr/bin/env bash
# The obvious parallel script a user writes instead of the tool, for scripts/bench-create.sh: one
# `pip download` per target, all targets at once (`&` and `wait`), each with every requirements
# file and the build tools, into a directory per target (parallel pips writing one directory can
# race on the files they share), then every file linked into DEST.
#
#   hand_parallel.sh [--index-url URL] --dest DIR --platform linux/amd64 ... --python 3.11 ... -r FILE ...
#
# Platforms are docker's names (linux/amd64, linux/arm64, linux/ppc64le, linux/s390x); without
# --index-url pip uses its own configuration. Tags as the old Makefile passed them: manylinux2014
# and manylinux_2_28 (pip expands both downwards), CPython of that version. pip evaluates
# environment markers against the host, so for foreign targets its set of files can differ from
# the tool's; the benchmark compares times.
set -euo pipefail

index_args=() dest="" platforms=() pythons=() requirements=()
while [ $# -gt 0 ]; do
  case $1 in
    --index-url) index_args=(--index-url "$2") && shift 2 ;;
    --dest) dest=$2 && shift 2 ;;
    --platform) platforms+=("$2") && shift 2 ;;
    --python) pythons+=("$2") && shift 2 ;;
    -r) requirements+=(-r "$2") && shift 2 ;;
    *) echo "hand_parallel.sh: unknown argument '$1'" >&2 && exit 2 ;;
  esac
done
if [ -z "$dest" ] || [ ${#platforms[@]} -eq 0 ] || [ ${#pythons[@]} -eq 0 ]; then
  echo "usage: hand_parallel.sh [--index-url URL] --dest DIR --platform P... --python X.Y... -r FILE..." >&2
  exit 2
fi

pids=()
for platform in "${platforms[@]}"; do
  case $platform in
    linux/amd64) arch=x86_64 ;;
    linux/arm64) arch=aarch64 ;;
    linux/ppc64le) arch=ppc64le ;;
    linux/s390x) arch=s390x ;;
    *) echo "hand_parallel.sh: unknown platform '$platform'" >&2 && exit 2 ;;
  esac
  for python in "${pythons[@]}"; do
    abi=cp${python/./}
    out="$dest/.per-target/$arch-$abi"
    mkdir -p "$out"
    python3 -m pip download --disable-pip-version-check --quiet --only-binary=:all: \
      --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
      --python-version "$python" --implementation cp --abi "$abi" \
      "${index_args[@]}" -d "$out" "${requirements[@]}" pip setuptools wheel &
    pids+=($!)
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ "$failed" -ne 0 ]; then
  echo "hand_parallel.sh: a pip download failed" >&2
  exit 1
fi
cp -l -n "$dest"/.per-target/*/* "$dest"/ 2>/dev/null || cp -n "$dest"/.per-target/*/* "$dest"/
rm -rf "$dest/.per-target"
