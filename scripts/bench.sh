#!/usr/bin/env bash
# Benchmark (not a test) of create-, verify- and pack-wheelhouse against the plain-tool ways, on a
# generated local index served as file://. Everything happens in one run in a temporary directory
# that is removed at the end. See docs/benchmarks.md for what each line compares.
#
#   scripts/bench.sh                  # scale 1: a ~320 MB wheelhouse (and two ~630 MB ones for the
#                                     # memory check); about 6 minutes on 2 CPUs, 2 GB in $TMPDIR
#   BENCH_SCALE=2 scripts/bench.sh    # twice the projects at every step
#
# Needs only what a fresh Debian has (bash, coreutils, tar, gzip, awk) plus python3 with pip and a
# Rust toolchain. Progress goes to stderr, the table to stdout.

# The `sh -c '...' sh ARGS` commands below expand their arguments in the inner shell on purpose.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bench="$repo/scripts/bench"

scale=${BENCH_SCALE:-1}
case $scale in '' | *[!0-9]* | 0*) echo "bench: BENCH_SCALE must be a positive integer, not '$scale'" >&2; exit 2 ;; esac
scale2=$((scale * 2))

say() { printf 'bench: %s\n' "$*" >&2; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d "${TMPDIR:-/tmp}/xtask-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/logs" "$work/tmp"
say "building the release binary"
if ! cargo build --release -p xtask >"$work/logs/cargo-build-release.log" 2>&1; then
  tail -n 30 "$work/logs/cargo-build-release.log" >&2
  exit 1
fi
# A copy, so that a concurrent `cargo build` elsewhere in the workspace cannot swap the binary
# under the benchmark. It is the same release binary, called directly.
cp target/release/wheelgap "$work/xtask"
xtask="$work/xtask"

# pip sees nothing of the host's configuration: no PIP_* variables, no config file. Its cache
# (set per contender below) and every temporary file of every command stay in $work.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^PIP_' || true)
export PIP_CONFIG_FILE=/dev/null
export TMPDIR="$work/tmp"

# --- helpers ---------------------------------------------------------------------------------

# measure LABEL COMMAND...: runs it once through measure.py; sets SEC and RSS (KiB). Output goes to
# $work/logs/LABEL.log; a failure stops the benchmark with the end of that log. Dirty pages left by
# the previous step are written out first (untimed), so that no command pays for another's
# writeback: create- and pack-wheelhouse fsync, and on ext4 an fsync can wait for other files.
measure() {
  local label=$1
  shift
  sync
  if ! python3 "$bench/measure.py" "$work/result" "$@" >"$work/logs/$label.log" 2>&1; then
    say "$label failed: $*"
    tail -n 30 "$work/logs/$label.log" >&2
    exit 1
  fi
  read -r SEC RSS _ <"$work/result"
}

# best_of N WARM LABEL COMMAND...: WARM untimed runs first (0 or 1: to warm the page cache), then
# N timed ones; SEC is the best time, RSS the largest peak of the N.
best_of() {
  local n=$1 warm=$2 label=$3 best="" rss=0 i
  shift 3
  if [ "$warm" -gt 0 ]; then measure "$label.warm" "$@"; fi
  for ((i = 1; i <= n; i++)); do
    measure "$label.$i" "$@"
    best=$(awk -v a="$best" -v b="$SEC" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }')
    if [ "$RSS" -gt "$rss" ]; then rss=$RSS; fi
  done
  SEC=$best RSS=$rss
}
best_of_3() { best_of 3 1 "$@"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
# verdict ALT_SECONDS TOOL_SECONDS GOAL: "met" or "MISSED", on the unrounded ratio
verdict() { awk -v a="$1" -v t="$2" -v g="$3" 'BEGIN { print (a / t >= g) ? "met" : "MISSED" }'; }
bytes_in() { find "$1" -maxdepth 1 -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
size_of() { stat -c %s "$1"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# row WHAT SECONDS BYTES RSS_KIB VS NOTE: one line of the table (BYTES "" for no MB/s, RSS_KIB ""
# for none, SECONDS "-" for a line that was skipped).
row() {
  local mbps="-" rss="-"
  if [ -n "$3" ]; then mbps=$(awk -v b="$3" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'); fi
  if [ -n "$4" ]; then rss=$(awk -v k="$4" 'BEGIN { printf "%.1f", k / 1024 }'); fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$mbps" "$rss" "${5:--}" "${6:-}" >>"$work/rows.tsv"
}
section() { printf '#\t%s\n' "$1" >>"$work/rows.tsv"; }

# make_project DIR INDEX: a project holding the index's two requirements files.
make_project() {
  mkdir -p "$1"
  cp "$2/requirements-api.txt" "$2/requirements-worker.txt" "$1/"
}
index_url() { printf 'file://%s/simple/' "$1"; }
targets=(--platform linux/amd64 --platform linux/arm64 --python 3.11 --python 3.12)

# --- 1. the index ----------------------------------------------------------------------------

say "generating the index at scale $scale"
measure gen-index python3 "$bench/gen_index.py" --out "$work/index" --scale "$scale"
gen_sec=$SEC
index_wheels=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["wheels"])' "$work/index/summary.json")
index_bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$work/index/summary.json")
proj="$work/project"
make_project "$proj" "$work/index"
url=$(index_url "$work/index")
W="$proj/wheelhouse"

# --- 2. create-wheelhouse vs the Makefile way -------------------------------------------------

# Cold runs start from nothing each time: a new project, wheelhouse and pip cache. The first
# tool run's project is kept for everything that follows.
say "create-wheelhouse: cold (3 times), then unchanged"
create_cold="" create_cold_rss=0
for i in 1 2 3; do
  dir=$proj
  if [ "$i" -gt 1 ]; then dir="$work/cold-$i" && make_project "$dir" "$work/index"; fi
  export PIP_CACHE_DIR="$work/pip-cache-tool-$i"
  measure "create.cold.$i" "$xtask" -C "$dir" create-wheelhouse --index-url "$url" "${targets[@]}"
  create_cold=$(awk -v a="$create_cold" -v b="$SEC" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }')
  if [ "$RSS" -gt "$create_cold_rss" ]; then create_cold_rss=$RSS; fi
  rm -rf "$work/cold-$i" "$work/pip-cache-tool-$i"
done
export PIP_CACHE_DIR="$work/pip-cache-tool"
w_files=$(find "$W" -maxdepth 1 -name '*.whl' | wc -l)
w_bytes=$(bytes_in "$W")
best_of 3 0 create.again "$xtask" -C "$proj" create-wheelhouse --index-url "$url" "${targets[@]}"
create_again=$SEC create_again_rss=$RSS
grep -q 'up to date' "$work/logs/create.again.1.log" || { say "the re-run was not 'up to date'"; exit 1; }

say "create-wheelhouse through cargo xtask (after an untimed build and run)"
# `cargo xtask` builds the debug profile of the workspace as it is now. If that does not build (the
# tree is being edited), the line is skipped rather than the whole benchmark.
create_cargo=""
if cargo build --quiet -p xtask >"$work/logs/cargo-build.log" 2>&1 &&
  cargo xtask -C "$proj" create-wheelhouse --index-url "$url" "${targets[@]}" >"$work/logs/create.cargo-warm.log" 2>&1; then
  best_of 3 0 create.cargo cargo xtask -C "$proj" create-wheelhouse --index-url "$url" "${targets[@]}"
  create_cargo=$SEC
else
  say "skipped: cargo xtask does not build or run right now (see below)"
  tail -n 5 "$work/logs/cargo-build.log" "$work/logs/create.cargo-warm.log" 2>/dev/null >&2 || true
fi

say "create-wheelhouse: unchanged with --full-check, then --refresh"
best_of 3 0 create.full-check "$xtask" -C "$proj" create-wheelhouse --index-url "$url" "${targets[@]}" --full-check
create_full=$SEC create_full_rss=$RSS
best_of 3 0 create.refresh "$xtask" -C "$proj" create-wheelhouse --index-url "$url" "${targets[@]}" --refresh
create_refresh=$SEC create_refresh_rss=$RSS

say "the Makefile way: cold (3 times), then again"
make_cold="" make_cold_rss=0
for i in 1 2 3; do
  rm -rf "$work/make"
  export PIP_CACHE_DIR="$work/pip-cache-make-$i"
  measure "make.cold.$i" sh "$bench/makefile_way.sh" "$url" "$proj" "$work/make"
  make_cold=$(awk -v a="$make_cold" -v b="$SEC" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }')
  if [ "$RSS" -gt "$make_cold_rss" ]; then make_cold_rss=$RSS; fi
done
make_bytes=$(bytes_in "$work/make")
best_of 3 0 make.again sh "$bench/makefile_way.sh" "$url" "$proj" "$work/make"
make_again=$SEC make_again_rss=$RSS
rm -rf "$work/make" "$work/index" "$work"/pip-cache-make-*
export PIP_CACHE_DIR="$work/pip-cache-tool"

r_create_again=$(ratio "$make_again" "$create_again")
r_create_cold=$(ratio "$make_cold" "$create_cold")
section "create-wheelhouse: $w_files files, $(mb "$w_bytes") MB, 4 targets, 2 requirements files + build tools"
row "create-wheelhouse, cold" "$create_cold" "$w_bytes" "$create_cold_rss" "${r_create_cold}x" "Makefile way / tool"
row "create-wheelhouse, unchanged re-run" "$create_again" "" "$create_again_rss" "${r_create_again}x" "goal >= 60x: $(verdict "$make_again" "$create_again" 60)"
if [ -n "$create_cargo" ]; then
  row "same re-run through cargo xtask" "$create_cargo" "" "" "-" "cargo adds $(awk -v a="$create_cargo" -v b="$create_again" 'BEGIN { printf "%.3f", a - b }') s (freshness check, debug build)"
else
  row "same re-run through cargo xtask" "-" "" "" "-" "skipped: the workspace's debug build failed"
fi
row "unchanged re-run --full-check (sha256 of all)" "$create_full" "$w_bytes" "$create_full_rss" "$(ratio "$make_again" "$create_full")x" "also hashes every file"
row "re-run --refresh (resolves all again)" "$create_refresh" "" "$create_refresh_rss" "$(ratio "$make_again" "$create_refresh")x" "like the Makefile re-run, reuses files"
row "Makefile way, cold (12 serial pip download)" "$make_cold" "$make_bytes" "$make_cold_rss" "1x" "alternative"
row "Makefile way, re-run (resolves again)" "$make_again" "" "$make_again_rss" "1x" "alternative"

# --- 3. hashing: verify-wheelhouse vs sha256sum ---------------------------------------------------

say "verify-wheelhouse (directory) vs sha256sum"
best_of_3 verify.dir "$xtask" verify-wheelhouse --no-install-check --accept-foreign --wheelhouse "$W"
verify_dir=$SEC verify_dir_rss=$RSS
best_of_3 sha256sum sh -c 'sha256sum "$1"/* >/dev/null' sh "$W"
sha_dir=$SEC sha_dir_rss=$RSS
r_verify_dir=$(ratio "$sha_dir" "$verify_dir")
section "hash every file of the wheelhouse (warm page cache, best of 3)"
row "verify-wheelhouse --no-install-check" "$verify_dir" "$w_bytes" "$verify_dir_rss" "${r_verify_dir}x" "goal >= 3x: $(verdict "$sha_dir" "$verify_dir" 3)"
row "sha256sum W/*" "$sha_dir" "$w_bytes" "$sha_dir_rss" "1x" "alternative"

# --- 4. pack-wheelhouse vs tar | gzip ---------------------------------------------------------

say "pack-wheelhouse vs tar | gzip -6"
X="$work/X.tgz"
best_of_3 pack.0 "$xtask" pack-wheelhouse --wheelhouse "$W" --output "$X"
pack0=$SEC pack0_rss=$RSS
x_bytes=$(size_of "$X")
best_of_3 tar-gzip sh -c 'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -c . | gzip -6 -n >"$2"' sh "$W" "$work/Y.tgz"
targz=$SEC targz_rss=$RSS
y_bytes=$(size_of "$work/Y.tgz")
rm -f "$work/Y.tgz"
r_pack=$(ratio "$targz" "$pack0")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }
section "pack the wheelhouse into one .tgz (best of 3; input $(mb "$w_bytes") MB)"
row "pack-wheelhouse (default --level 0)" "$pack0" "$w_bytes" "$pack0_rss" "${r_pack}x" "goal >= 5x: $(verdict "$targz" "$pack0" 5); $(mb "$x_bytes") MB"
for level in 1 6; do
  best_of_3 "pack.$level" "$xtask" pack-wheelhouse --wheelhouse "$W" --output "$work/L$level.tgz" --level "$level"
  l_bytes=$(size_of "$work/L$level.tgz")
  rm -f "$work/L$level.tgz" "$work/L$level.tgz.sha256"
  row "pack-wheelhouse --level $level" "$SEC" "$w_bytes" "$RSS" "$(ratio "$targz" "$SEC")x" "$(mb "$l_bytes") MB, $(pct "$l_bytes" "$x_bytes") of level 0"
done
row "tar --sort=name ... | gzip -6 -n" "$targz" "$w_bytes" "$targz_rss" "1x" "alternative; $(mb "$y_bytes") MB, $(pct "$y_bytes" "$x_bytes") of level 0"

# --- 5. verify the archive vs sha256sum + tar tzf ------------------------------------------------

say "verify-wheelhouse --archive vs sha256sum + tar tzf"
best_of_3 verify.archive "$xtask" verify-wheelhouse --archive "$X" --no-install-check --accept-foreign
verify_arc=$SEC verify_arc_rss=$RSS
best_of_3 sha-tar sh -c 'sha256sum "$1" >/dev/null && tar tzf "$1" >/dev/null' sh "$X"
shatar=$SEC shatar_rss=$RSS
r_verify_arc=$(ratio "$shatar" "$verify_arc")
section "check the archive (level 0, $(mb "$x_bytes") MB; best of 3)"
row "verify-wheelhouse --archive --no-install-check" "$verify_arc" "$x_bytes" "$verify_arc_rss" "${r_verify_arc}x" "goal >= 1x: $(verdict "$shatar" "$verify_arc" 1)"
row "sha256sum X.tgz && tar tzf X.tgz" "$shatar" "$x_bytes" "$shatar_rss" "1x" "alternative"

# --- 6. peak RSS at twice the size -------------------------------------------------------------

rm -f "$X" "$X.sha256"
# size_point NAME SCALE PAYLOAD_FACTOR: an index and its wheelhouse of that size; pack and verify
# it (best of 3) and add rows that compare time and peak RSS with the scale-$scale figures.
size_point() {
  local name=$1 at_scale=$2 factor=$3 files bytes arc_bytes
  say "generating the index at scale $at_scale with payloads x$factor, and its wheelhouse"
  measure "$name.gen-index" python3 "$bench/gen_index.py" --out "$work/$name-index" --scale "$at_scale" --payload-factor "$factor"
  make_project "$work/$name" "$work/$name-index"
  measure "$name.create" "$xtask" -C "$work/$name" create-wheelhouse --index-url "$(index_url "$work/$name-index")" "${targets[@]}"
  local create=$SEC create_rss=$RSS
  rm -rf "$work/$name-index"
  files=$(find "$work/$name/wheelhouse" -maxdepth 1 -name '*.whl' | wc -l)
  bytes=$(bytes_in "$work/$name/wheelhouse")
  say "pack and verify it"
  best_of_3 "$name.pack" "$xtask" pack-wheelhouse --wheelhouse "$work/$name/wheelhouse" --output "$work/$name.tgz"
  local pack=$SEC pack_rss=$RSS
  arc_bytes=$(size_of "$work/$name.tgz")
  best_of_3 "$name.verify-dir" "$xtask" verify-wheelhouse --no-install-check --accept-foreign --wheelhouse "$work/$name/wheelhouse"
  local vdir=$SEC vdir_rss=$RSS
  best_of_3 "$name.verify-archive" "$xtask" verify-wheelhouse --archive "$work/$name.tgz" --no-install-check --accept-foreign
  local varc=$SEC varc_rss=$RSS
  rm -rf "${work:?}/$name" "$work/$name.tgz" "$work/$name.tgz.sha256"
  section "scale $at_scale, payloads x$factor: $files files, $(mb "$bytes") MB (vs scale $scale: $w_files files, $(mb "$w_bytes") MB)"
  row "create-wheelhouse, cold (one run)" "$create" "$bytes" "$create_rss" "-" "time x$(ratio "$create" "$create_cold") of the best cold run at scale $scale"
  row "pack-wheelhouse (--level 0)" "$pack" "$bytes" "$pack_rss" "-" "$(rss_growth "$pack0_rss" "$pack_rss")"
  row "verify-wheelhouse --no-install-check" "$vdir" "$bytes" "$vdir_rss" "-" "$(rss_growth "$verify_dir_rss" "$vdir_rss")"
  row "verify-wheelhouse --archive --no-install-check" "$varc" "$arc_bytes" "$varc_rss" "-" "$(rss_growth "$verify_arc_rss" "$varc_rss")"
}
# "flat": under 1.25 times the scale-1 peak, where growing with the bytes would mean about 2 times.
rss_growth() {
  awk -v a="$1" -v b="$2" -v s="$scale" 'BEGIN {
    r = b / a; d = (b - a) / 1024; if (d < 0.05 && d > -0.05) d = 0
    printf "peak RSS x%.2f (%+.1f MiB) of scale %s: %s", r, d, s, (r < 1.25 ? "flat" : "GROWS")
  }'
}
# Twice the projects: twice the files and twice the bytes.
size_point double "$scale2" 1
# The same projects and files as the first index (same seed), each payload twice as big: twice
# the bytes only. Tells a per-file cost in memory from a per-byte one.
size_point bigger "$scale" 2

# --- 7. the table and the machine ------------------------------------------------------------

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
# shellcheck disable=SC1091
os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}" || echo unknown)
fs=$(df -T "$work" | awk 'NR == 2 { print $2 }')

echo
echo "xtask wheelhouse benchmark, BENCH_SCALE=$scale"
echo "index: $index_wheels wheels, $(mb "$index_bytes") MB (generated in $(printf '%.1f' "$gen_sec") s); file:// index, PEP 658 metadata"
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $mem RAM, $os, kernel $(uname -r), temp dir on $fs"
echo "load average (1, 5, 15 min): $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "tools: $(rustc --version), $(python3 --version 2>&1), $(python3 -m pip --version | awk '{ print $1, $2 }')," \
  "$(sha256sum --version | awk 'NR == 1 { print "sha256sum", $4 }'), $(tar --version | awk 'NR == 1 { print "tar", $4 }'), $(gzip --version | awk 'NR == 1 { print "gzip", $2 }')"
echo "seconds: wall time, best of 3 (after an untimed warm-up from 'hash' on; cold runs each from nothing);"
echo "MB/s: input MB (1e6 bytes) / s;"
echo "peak RSS: max RSS of the command and its children, MiB; vs alternative: alternative's time / this time"
echo
awk -F'\t' '
  function line() { printf "%s\n", "-------------------------------------------------------------------------------------------------------------------------------" }
  BEGIN { printf "%-48s %9s %7s %9s %8s  %s\n", "what", "seconds", "MB/s", "peak RSS", "vs alt", "note"; line() }
  $1 == "#" { printf "%s\n", $2; next }
  { printf "  %-46s %9s %7s %9s %8s  %s\n", $1, ($2 == "-" ? "-" : sprintf("%.3f", $2)), $3, $4, $5, $6 }
' "$work/rows.tsv"
echo
echo "goals: re-run Makefile/tool ${r_create_again}x (>= 60x: $(verdict "$make_again" "$create_again" 60));" \
  "hashing ${r_verify_dir}x (>= 3x: $(verdict "$sha_dir" "$verify_dir" 3)); pack ${r_pack}x (>= 5x: $(verdict "$targz" "$pack0" 5));" \
  "verify archive ${r_verify_arc}x (>= 1x: $(verdict "$shatar" "$verify_arc" 1))"
say "done; removing $work"
