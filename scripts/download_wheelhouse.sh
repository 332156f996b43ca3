#!/bin/sh
# Kept for old callers: builds the wheelhouse with `cargo xtask create-wheelhouse`, passing every
# argument on (see docs/create-wheelhouse.md). It runs from the repository root, so relative paths
# in the arguments are taken from there.
set -eu
cd "$(dirname "$0")/.."
exec cargo xtask create-wheelhouse "$@"
