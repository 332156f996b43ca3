#!/usr/bin/env bash
# Benchmark of `create-wheelhouse` against the Makefile way (one serial `pip download` per
# requirements file per target), in one run, on the example requirements and four targets.
# It reaches pip's configured index: run it where that is reachable. Not a test.
#
#   scripts/bench-create.sh            # prints a table of seconds and ratios
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet -p xtask
xtask="$PWD/target/release/wheelgap"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

platforms=(linux/amd64 linux/arm64)
pythons=(3.11 3.12)
requirements=(requirements-api.txt requirements-worker.txt)

now() { date +%s.%N; }
elapsed() { awk -v end="$(now)" -v start="$1" 'BEGIN { printf "%.3f", end - start }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

# The tool: cold (empty wheelhouse and pip cache), then unchanged.
export PIP_CACHE_DIR="$work/cache-tool"
start=$(now)
"$xtask" create-wheelhouse --wheelhouse "$work/tool" 2>/dev/null
tool_cold=$(elapsed "$start")
start=$(now)
"$xtask" create-wheelhouse --wheelhouse "$work/tool" 2>/dev/null
tool_again=$(elapsed "$start")
start=$(now)
cargo xtask create-wheelhouse --wheelhouse "$work/tool" 2>/dev/null
cargo_again=$(elapsed "$start")

# The Makefile way: serial pip download per file per target, plus the build tools per target.
# (It also gets environment markers wrong for foreign targets; only its time is compared here.)
make_way() {
  for platform in "${platforms[@]}"; do
    case $platform in
      linux/amd64) tag=manylinux2014_x86_64 ;;
      linux/arm64) tag=manylinux2014_aarch64 ;;
    esac
    for python in "${pythons[@]}"; do
      abi=cp${python/./}
      for file in "${requirements[@]}" build-tools; do
        if [ "$file" = build-tools ]; then inputs=(pip setuptools wheel); else inputs=(-r "$file"); fi
        python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
          --platform "$tag" --platform manylinux_2_28_"${tag#manylinux2014_}" \
          --python-version "$python" --implementation cp --abi "$abi" \
          -d "$work/make" "${inputs[@]}"
      done
    done
  done
}
export PIP_CACHE_DIR="$work/cache-make"
start=$(now)
make_way
make_cold=$(elapsed "$start")
start=$(now)
make_way
make_again=$(elapsed "$start")

n_files=$(find "$work/tool" -name '*.whl' | wc -l)
printf '%-44s %8s\n' "create-wheelhouse ($n_files files, 4 targets)" seconds
printf '%-44s %8.2f\n' "tool, cold (empty cache)" "$tool_cold"
printf '%-44s %8.2f\n' "tool, unchanged re-run (binary)" "$tool_again"
printf '%-44s %8.2f\n' "tool, unchanged re-run (cargo xtask)" "$cargo_again"
printf '%-44s %8.2f\n' "Makefile way, cold (12 serial pip calls)" "$make_cold"
printf '%-44s %8.2f\n' "Makefile way, re-run" "$make_again"
printf '%-44s %8sx\n' "cold: Makefile way / tool" "$(ratio "$make_cold" "$tool_cold")"
printf '%-44s %8sx\n' "re-run: Makefile way / tool (binary)" "$(ratio "$make_again" "$tool_again")"
