#!/bin/sh
# The way the old Makefile built the wheelhouse, for scripts/bench.sh: one serial `pip download`
# per requirements file per target, plus one for the build tools per target, all into one
# directory. pip re-resolves everything on every run.
#
#   makefile_way.sh INDEX_URL PROJECT_DIR DOWNLOAD_DIR
#
# PROJECT_DIR holds requirements-api.txt and requirements-worker.txt. The targets are the tool's:
# linux/amd64 and linux/arm64 x Python 3.11 and 3.12, glibc 2.28 floor (the same tags the old
# script passed). pip here evaluates environment markers against the host, so for foreign targets
# the set of files can differ from the tool's; the benchmark compares only times.
set -eu
index_url=$1 project=$2 dest=$3

for arch in x86_64 aarch64; do
  for python in 3.11 3.12; do
    abi=cp$(echo "$python" | tr -d .)
    for job in requirements-api.txt requirements-worker.txt build-tools; do
      if [ "$job" = build-tools ]; then
        set -- pip setuptools wheel
      else
        set -- -r "$project/$job"
      fi
      python3 -m pip download --disable-pip-version-check --only-binary=:all: \
        --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
        --python-version "$python" --implementation cp --abi "$abi" \
        --index-url "$index_url" -d "$dest" "$@"
    done
  done
done
