#!/usr/bin/env bash
# Benchmark (not a test) of a cold `create-wheelhouse` against the ways people do it without the
# tool, every figure measured side by side in one run:
#
#   tool, --resolver pip        4 targets (linux/amd64, linux/arm64 x Python 3.11, 3.12), cold
#   tool, --resolver uv         the same, when uv is found ($XTASK_UV, else PATH)
#   Makefile way                one serial `pip download` per requirements file per target
#   hand-parallel script        scripts/bench/hand_parallel.sh: one `pip download` per target, all at once
#   raw transfer                the URLs of the tool's manifest, `curl --parallel --parallel-max 16`
#   tool, download phase        from the tool's own summary line (see download_seconds)
#   tool, 12 targets            amd64/arm64/ppc64le x Python 3.10-3.13, cold
#   tool, no-op re-run          the 4-target wheelhouse again, median of 5
#   from pylock.toml            the 4 targets from uv's universal locks of both files: no resolution
#   many targets, uv and raw    8 targets with --resolver uv (uv has no ppc64le), and the 12-target URLs by curl, for scale
#
# pip is the one of the first `python3` on PATH, for the tool and for the ways without it alike: put
# a virtual environment's bin/ first to choose it. pip before 23.3 downloads every wheel in full
# during `install --dry-run --report` even when the index serves PEP 658 metadata; the figures in
# docs/benchmarks.md use pip 26.
#
# Modes:
#   --hermetic (default)  scripts/bench/realistic_index.py (~90 files, ~200 MB for 4 targets,
#                         numpy/pandas-sized) served on 127.0.0.1 by scripts/bench/throttled_server.py
#                         with a latency per request and capped bandwidth, so that network-bound
#                         behaviour shows with no internet (see that script for the figures chosen)
#   --live                pip's configured index, with a realistic set of real pins; needs the network
#   --small               sizes / 10, for a quick smoke run of the script itself
#
#   scripts/bench-create.sh                          # builds the release binary first
#   WHEELGAP=/path/to/wheelgap scripts/bench-create.sh --small
#
# Every contender starts with an empty pip cache (and uv cache) of its own and sees no PIP_*
# index settings of the host (find-links, index URLs). The table goes to stdout and, as markdown,
# to ${BENCH_OUT:-/tmp/bench-create.md}; progress goes to stderr. A contender that fails or is not
# available gets "n/a" and the run goes on. BENCH_KEEP=1 keeps the work directory (logs included).
# Latency and bandwidth of the hermetic server: BENCH_LATENCY_MS, BENCH_CONN_MBPS, BENCH_TOTAL_MBPS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bench="$repo/scripts/bench"

mode=hermetic small=0
for arg in "$@"; do
  case $arg in
    --hermetic) mode=hermetic ;;
    --live) mode=live ;;
    --small) small=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' && exit 0 ;;
    *) echo "bench-create: unknown argument '$arg' (see --help)" >&2 && exit 2 ;;
  esac
done
out_md=${BENCH_OUT:-/tmp/bench-create.md}

say() { printf 'bench-create: %s\n' "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v end="$(now)" -v start="$1" 'BEGIN { printf "%.3f", end - start }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-create.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/logs" "$work/tmp" "$work/cache"

# --- the binary and the tools ------------------------------------------------------------------

if [ -n "${WHEELGAP:-}" ]; then
  [ -x "$WHEELGAP" ] || { say "WHEELGAP=$WHEELGAP is not an executable"; exit 2; }
  wheelgap=$WHEELGAP
else
  say "building the release binary"
  if ! cargo build --release -p xtask >"$work/logs/cargo-build.log" 2>&1; then
    tail -n 30 "$work/logs/cargo-build.log" >&2
    exit 1
  fi
  # A copy, so that a concurrent `cargo build` cannot swap the binary under the benchmark.
  cp target/release/wheelgap "$work/wheelgap"
  wheelgap="$work/wheelgap"
fi

# Every way sees only the benchmark's index: no find-links, index URLs or config file of the host
# (certificate settings such as PIP_CERT stay, for --live behind a proxy).
unset PIP_FIND_LINKS PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_NO_INDEX PIP_REQUIRE_VIRTUALENV
unset UV_INDEX_URL UV_EXTRA_INDEX_URL UV_DEFAULT_INDEX UV_INDEX UV_FIND_LINKS UV_NO_INDEX
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "$mode" = hermetic ]; then export PIP_CONFIG_FILE=/dev/null UV_NO_CONFIG=1; fi
export TMPDIR="$work/tmp"

uv_bin=${XTASK_UV:-$(command -v uv || true)}
if [ -n "$uv_bin" ]; then export XTASK_UV="$uv_bin"; fi
have_curl=$(command -v curl || true)

# --- measuring -----------------------------------------------------------------------------------

# measure LABEL COMMAND...: runs it once with stdin from /dev/null and its output in
# logs/LABEL.log. Sets SEC (wall seconds), RSS_MAX (KiB: the largest peak of the command and the
# descendants it waited for, e.g. pip) and RSS_SELF (KiB: the command's own process, read from
# /proc every 0.1 s, so a lower bound), and OK (1 or 0). A failure prints the end of the log.
# Dirty pages of the previous step are written out first (untimed), so no one pays another's.
measure() {
  local label=$1 log="$work/logs/$1.log" rusage="$work/logs/$1.rusage" start pid child key value rc
  shift
  sync
  RSS_SELF=0 RSS_MAX="" OK=1
  start=$(now)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$rusage" "$@" >"$log" 2>&1 </dev/null &
  else
    python3 "$bench/measure.py" "$rusage" "$@" >"$log" 2>&1 </dev/null &
  fi
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    child=""
    read -r child _ 2>/dev/null <"/proc/$pid/task/$pid/children" || true
    if [ -n "$child" ]; then
      while read -r key value _; do
        if [ "$key" = VmHWM: ] && [ "$value" -gt "$RSS_SELF" ]; then RSS_SELF=$value; fi
      done 2>/dev/null <"/proc/$child/status" || true
    fi
    sleep 0.1
  done
  if wait "$pid"; then rc=0; else rc=$?; fi
  SEC=$(elapsed "$start")
  if [ -x /usr/bin/time ]; then
    RSS_MAX=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$rusage" 2>/dev/null || true)
  else
    RSS_MAX=$(awk '{ print $2 }' "$rusage" 2>/dev/null || true)
  fi
  if [ "$rc" -ne 0 ]; then
    OK=0
    say "$label failed (exit $rc): $*"
    tail -n 15 "$log" | sed 's/^/    /' >&2
  fi
}

# download_seconds LOG: the seconds of the tool's download step, from its summary line on stderr,
# `downloaded 87 files in 12.3s` (pip download batches) or `downloaded 87 files (195.4 MB) in 3.9s`
# (the native downloader). Empty when there is no such line. The one place to adjust
# when that line changes shape.
download_seconds() {
  sed -nE 's/.*downloaded [0-9]+ files?.* in ([0-9]+(\.[0-9]+)?) ?s\b.*/\1/p' "$1" | tail -n 1
}

# Server counters (hermetic only): requests, body bytes and GETs of wheels served so far.
stats() {
  if [ -n "${base_url:-}" ] && [ -n "$have_curl" ]; then
    curl -s "$base_url/_stats" | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["requests"], s["bytes"], s["wheel_gets"])'
  else
    echo "0 0 0"
  fi
}

# --- the table -----------------------------------------------------------------------------------

# row KEY WHAT SECONDS FILES BYTES REQUESTS WHEEL_GETS SERVED_BYTES RSS_SELF RSS_MAX NOTE ("" for unknown)
rows="$work/rows.tsv"
: >"$rows"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$rows"; }
# skip KEY WHAT NOTE: a row with no figures.
skip() { row "$1" "$2" "" "" "" "" "" "" "" "" "$3"; }
declare -A secs=() rss_self=()

# record KEY WHAT DIR NOTE: a row for the step just measured (with the files now in DIR).
record() {
  local key=$1 what=$2 dir=$3 note=${4:-} files="" bytes="" requests="" served="" wheel_gets=""
  if [ "$OK" = 1 ]; then
    secs[$key]=$SEC
    rss_self[$key]=$RSS_SELF
    if [ -d "$dir" ]; then
      files=$(find "$dir" -maxdepth 1 -type f -name '*.whl' | wc -l)
      bytes=$(find "$dir" -maxdepth 1 -type f -name '*.whl' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
    fi
    if [ -n "${base_url:-}" ]; then
      read -r requests served wheel_gets < <(stats)
      requests=$((requests - before[0])) served=$((served - before[1])) wheel_gets=$((wheel_gets - before[2]))
    fi
    row "$key" "$what" "$SEC" "$files" "$bytes" "$requests" "$wheel_gets" "$served" "$RSS_SELF" "$RSS_MAX" "$note"
  else
    skip "$key" "$what" "${note:+$note; }failed, see the log"
  fi
}
# Before each measured step: remember the server's counters.
before=(0 0 0)
mark() { read -r -a before < <(stats); }

# --- the index -----------------------------------------------------------------------------------

index_args=()
if [ "$mode" = hermetic ]; then
  size_factor=1
  if [ "$small" = 1 ]; then size_factor=0.1; fi
  say "generating the realistic index (size factor $size_factor)"
  start=$(now)
  python3 "$bench/realistic_index.py" "$work/index" --size-factor "$size_factor" >"$work/logs/index.log"
  index_summary="$(sed "s/^index: //" "$work/logs/index.log") (generated in $(elapsed "$start") s)"
  say "$index_summary"
  latency=${BENCH_LATENCY_MS:-40} conn_mbps=${BENCH_CONN_MBPS:-48} total_mbps=${BENCH_TOTAL_MBPS:-480}
  python3 "$bench/throttled_server.py" --root "$work/index" --port-file "$work/port" \
    --latency-ms "$latency" --conn-mbps "$conn_mbps" --total-mbps "$total_mbps" >"$work/logs/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || { say "the index server did not start"; cat "$work/logs/server.log" >&2; exit 1; }
  base_url="http://127.0.0.1:$(cat "$work/port")"
  index_args=(--index-url "$base_url/simple/")
  requirements_dir="$work/index"
  network="127.0.0.1, $latency ms per request, $conn_mbps Mbit/s per connection, $total_mbps Mbit/s in all"
else
  say "live mode: pip's configured index; a realistic set of real pins"
  requirements_dir="$work/live"
  mkdir -p "$requirements_dir"
  printf '%s\n' pydantic==2.9.2 orjson==3.10.11 SQLAlchemy==2.0.36 'psycopg[binary]==3.2.3' cryptography==43.0.3 \
    requests==2.32.3 >"$requirements_dir/requirements-api.txt"
  printf '%s\n' numpy==2.1.3 pandas==2.2.3 requests==2.32.3 >"$requirements_dir/requirements-worker.txt"
  index_summary="live: pip's configured index; $(cat "$requirements_dir"/requirements-*.txt | sort -u | tr '\n' ' ')"
  network="the machine's own"
fi
requirement_args=(-r "$requirements_dir/requirements-api.txt" -r "$requirements_dir/requirements-worker.txt")
# The tool runs in its project (env -C) with the project's own copies: it records requirements
# paths relative to the project root.
tool_requirement_args=(-r requirements-api.txt -r requirements-worker.txt)

platforms4=(linux/amd64 linux/arm64) pythons4=(3.11 3.12)
platforms12=(linux/amd64 linux/arm64 linux/ppc64le) pythons12=(3.10 3.11 3.12 3.13)
target_args() { # target_args "PLATFORMS..." "PYTHONS..."
  local p
  for p in $1; do printf -- '--platform\n%s\n' "$p"; done
  for p in $2; do printf -- '--python\n%s\n' "$p"; done
}
mapfile -t targets4 < <(target_args "${platforms4[*]}" "${pythons4[*]}")
mapfile -t targets12 < <(target_args "${platforms12[*]}" "${pythons12[*]}")
# uv's --python-platform has no ppc64le: its many-target run is amd64/arm64 x the four Pythons.
mapfile -t targets8 < <(target_args "linux/amd64 linux/arm64" "${pythons12[*]}")

# new_project NAME: a project directory holding the requirements files (the tool's -C).
new_project() {
  mkdir -p "$work/$1"
  cp "$requirements_dir/requirements-api.txt" "$requirements_dir/requirements-worker.txt" "$work/$1/"
  echo "$work/$1"
}
# caches NAME: env assignments for an empty pip and uv cache of that contender's own.
caches() { echo "PIP_CACHE_DIR=$work/cache/$1/pip" "UV_CACHE_DIR=$work/cache/$1/uv"; }

# The Makefile way: serial, one `pip download` per requirements file per target, plus the build
# tools per target, into one directory (as scripts/bench/makefile_way.sh, with the index optional).
# It runs in a child bash (exported), which sees the targets as the two lists below.
makefile_way() { # makefile_way DEST [INDEX_ARGS...]
  local dest=$1 platform arch python abi job inputs
  shift
  for platform in $platforms4_list; do
    case $platform in linux/amd64) arch=x86_64 ;; linux/arm64) arch=aarch64 ;; esac
    for python in $pythons4_list; do
      abi=cp${python/./}
      for job in requirements-api.txt requirements-worker.txt build-tools; do
        if [ "$job" = build-tools ]; then inputs=(pip setuptools wheel); else inputs=(-r "$requirements_dir/$job"); fi
        python3 -m pip download --quiet --only-binary=:all: \
          --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
          --python-version "$python" --implementation cp --abi "$abi" "$@" -d "$dest" "${inputs[@]}"
      done
    done
  done
}
export -f makefile_way
export requirements_dir platforms4_list="${platforms4[*]}" pythons4_list="${pythons4[*]}"

# --- the contenders ------------------------------------------------------------------------------

tool_cmd=("$wheelgap" --color never)

say "(a) tool --resolver pip, 4 targets, cold"
projA=$(new_project tool-pip)
mark
# shellcheck disable=SC2046 # caches prints two words on purpose
measure tool-pip env -C "$projA" $(caches tool-pip) "${tool_cmd[@]}" -C "$projA" create-wheelhouse --resolver pip \
  "${targets4[@]}" "${tool_requirement_args[@]}" "${index_args[@]}"
okA=$OK
record tool-pip "tool --resolver pip, 4 targets, cold" "$projA/wheelhouse"
dl_sec=""
if [ "$okA" = 1 ]; then dl_sec=$(download_seconds "$work/logs/tool-pip.log"); fi
if [ -n "$dl_sec" ]; then
  secs[download]=$dl_sec
  row download "  its download phase (from its summary line)" "$dl_sec" "" "" "" "" "" "" "" "part of the run above"
else
  skip download "  its download phase (from its summary line)" "no 'downloaded N files in Xs' line in the log"
fi

say "(h) tool, no-op re-run of (a), 5 times"
if [ "$okA" = 1 ]; then
  noop=()
  for i in 1 2 3 4 5; do
    mark
    # shellcheck disable=SC2046
    measure "tool-noop-$i" env -C "$projA" $(caches tool-pip) "${tool_cmd[@]}" -C "$projA" create-wheelhouse --resolver pip \
      "${targets4[@]}" "${tool_requirement_args[@]}" "${index_args[@]}"
    [ "$OK" = 1 ] && noop+=("$SEC")
  done
  if [ ${#noop[@]} -gt 0 ]; then
    SEC=$(printf '%s\n' "${noop[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    OK=1
    note="median of ${#noop[@]}"
    grep -q 'up to date' "$work/logs/tool-noop-1.log" || note="$note; NOT reported 'up to date'"
    record noop "tool, no-op re-run" "" "$note"
  else
    skip noop "tool, no-op re-run" "failed, see the logs"
  fi
else
  skip noop "tool, no-op re-run" "needs (a)"
fi

# raw_transfer KEY MANIFEST LABEL: the URLs of MANIFEST fetched with curl, 16 at once.
raw_transfer() {
  local key=$1 manifest=$2 label=$3 urls="$work/$1-urls.txt" dest="$work/$1" note=""
  # resolutions[].packages[].url, one per file; without URLs, files[].filename under the index's
  # packages/ (hermetic only).
  python3 - "$manifest" "$urls" "${base_url:-}" <<'EOF'
import json, sys
manifest = json.load(open(sys.argv[1]))
urls = {}
for resolution in manifest.get("resolutions", []):
    for package in resolution.get("packages", []):
        if package.get("url", "").startswith(("http://", "https://")):
            urls[package["filename"]] = package["url"]
if not urls and sys.argv[3]:
    urls = {entry["filename"]: f"{sys.argv[3]}/packages/{entry['filename']}" for entry in manifest.get("files", [])}
with open(sys.argv[2], "w") as out:
    for filename, url in sorted(urls.items()):
        out.write(f'url = "{url}"\noutput = "{filename}"\n')
EOF
  if [ ! -s "$urls" ]; then
    skip "$key" "$label" "no URLs in the manifest"
    return
  fi
  mkdir -p "$dest"
  if curl --help all 2>/dev/null | grep -q -- '--parallel-max'; then
    mark
    measure "$key" sh -c 'cd "$1" && curl --parallel --parallel-max 16 -s -f -K "$2"' sh "$dest" "$urls"
    note="curl --parallel --parallel-max 16"
  else
    awk -F'"' '/^url/ { print $2 }' "$urls" >"$urls.list"
    mark
    measure "$key" sh -c 'cd "$1" && xargs -P 16 -n 1 curl -s -f -O <"$2"' sh "$dest" "$urls.list"
    note="xargs -P16 curl (this curl has no --parallel)"
  fi
  record "$key" "$label" "$dest" "$note"
}

say "(e) raw transfer of the manifest's URLs"
if [ "$okA" = 1 ] && [ -n "$have_curl" ]; then
  raw_transfer raw "$projA/wheelhouse/manifest.json" "raw transfer of the same URLs"
else
  skip raw "raw transfer of the same URLs" "needs (a) and curl"
fi

if [ -n "$uv_bin" ]; then
  say "(b) tool --resolver uv, 4 targets, cold ($uv_bin)"
  projB=$(new_project tool-uv)
  mark
  # shellcheck disable=SC2046
  measure tool-uv env -C "$projB" $(caches tool-uv) "${tool_cmd[@]}" -C "$projB" create-wheelhouse --resolver uv \
    "${targets4[@]}" "${tool_requirement_args[@]}" "${index_args[@]}"
  record tool-uv "tool --resolver uv, 4 targets, cold" "$projB/wheelhouse" "$("$uv_bin" --version 2>/dev/null || true)"
else
  skip tool-uv "tool --resolver uv, 4 targets, cold" "uv not found (\$XTASK_UV or PATH)"
fi

if [ -n "$uv_bin" ]; then
  say "(i) tool from PEP 751 locks, 4 targets, cold (the locks made by uv, untimed)"
  projL=$(new_project tool-lock)
  lock_ok=1
  for name in api worker; do
    # One universal lock per file, as a team commits it: every wheel of every platform, markers.
    # shellcheck disable=SC2046
    env $(caches lock-maker) "$uv_bin" pip compile "$projL/requirements-$name.txt" --universal --python-version 3.10 \
      --format pylock.toml -o "$projL/pylock.$name.toml" --only-binary :all: --no-header --quiet \
      ${index_args[@]+"${index_args[@]}"} >"$work/logs/lock-$name.log" 2>&1 || lock_ok=0
  done
  if [ "$lock_ok" = 1 ]; then
    mark
    # shellcheck disable=SC2046
    measure tool-lock env -C "$projL" $(caches tool-lock) "${tool_cmd[@]}" -C "$projL" create-wheelhouse \
      "${targets4[@]}" -r pylock.api.toml -r pylock.worker.toml "${index_args[@]}"
    record tool-lock "tool from pylock.toml, 4 targets, cold" "$projL/wheelhouse" "no resolution: uv's universal locks of both files"
  else
    skip tool-lock "tool from pylock.toml, 4 targets, cold" "uv could not write the locks, see the logs"
  fi
else
  skip tool-lock "tool from pylock.toml, 4 targets, cold" "uv not found to write the locks"
fi

say "(c) the Makefile way (12 serial pip download)"
mark
# shellcheck disable=SC2046,SC2016
measure make env $(caches make) bash -c 'makefile_way "$@"' makefile_way "$work/make" "${index_args[@]}"
record make "Makefile way: 12 serial pip download" "$work/make"

say "(d) the hand-parallel script (4 pip download at once)"
mark
# shellcheck disable=SC2046
measure hand env $(caches hand) bash "$bench/hand_parallel.sh" "${index_args[@]}" --dest "$work/hand" \
  "${targets4[@]}" "${requirement_args[@]}"
record hand "hand-parallel: 4 pip download at once" "$work/hand"

say "(g) tool --resolver pip, 12 targets, cold"
projG=$(new_project tool-12)
mark
# shellcheck disable=SC2046
measure tool-12 env -C "$projG" $(caches tool-12) "${tool_cmd[@]}" -C "$projG" create-wheelhouse --resolver pip \
  "${targets12[@]}" "${tool_requirement_args[@]}" "${index_args[@]}"
record tool-12 "tool --resolver pip, 12 targets, cold" "$projG/wheelhouse" "amd64/arm64/ppc64le x 3.10-3.13"
if [ -f "$projG/wheelhouse/manifest.json" ] && [ -n "$have_curl" ]; then
  say "(e2) raw transfer of the 12-target URLs"
  raw_transfer raw-12 "$projG/wheelhouse/manifest.json" "raw transfer of the 12-target URLs"
else
  skip raw-12 "raw transfer of the 12-target URLs" "needs (g) and curl"
fi

if [ -n "$uv_bin" ]; then
  say "(g2) tool --resolver uv, 8 targets, cold"
  projG2=$(new_project tool-12-uv)
  mark
  # shellcheck disable=SC2046
  measure tool-12-uv env -C "$projG2" $(caches tool-12-uv) "${tool_cmd[@]}" -C "$projG2" create-wheelhouse --resolver uv \
    "${targets8[@]}" "${tool_requirement_args[@]}" "${index_args[@]}"
  record tool-12-uv "tool --resolver uv, 8 targets, cold" "$projG2/wheelhouse" "amd64/arm64 x 3.10-3.13 (uv has no ppc64le)"
else
  skip tool-12-uv "tool --resolver uv, 8 targets, cold" "uv not found (\$XTASK_UV or PATH)"
fi

# --- the report ----------------------------------------------------------------------------------

# goal KEY WHAT A B GOAL KIND: a goal line comparing secs[A] with secs[B] (KIND ratio: A / B <= GOAL;
# KIND seconds: A <= GOAL) or rss_self[A] with rss_self[B] (KIND rss).
goals="$work/goals.tsv"
: >"$goals"
goal() {
  local what=$1 a=$2 b=$3 limit=$4 kind=$5 value="" shown verdict
  case $kind in
    ratio | info) if [ -n "${secs[$a]:-}" ] && [ -n "${secs[$b]:-}" ]; then value=$(awk -v x="${secs[$a]}" -v y="${secs[$b]}" 'BEGIN { if (y > 0) printf "%.3f", x / y }'); fi ;;
    seconds) value=${secs[$a]:-} ;;
    rss) if [ "${rss_self[$a]:-0}" -gt 0 ] && [ "${rss_self[$b]:-0}" -gt 0 ]; then value=$(awk -v x="${rss_self[$a]}" -v y="${rss_self[$b]}" 'BEGIN { printf "%.3f", x / y }'); fi ;;
  esac
  if [ -z "$value" ]; then
    shown=n/a verdict=n/a
  else
    case $kind in seconds) shown=$(printf '%.3f s' "$value") ;; *) shown=$(printf '%.2fx' "$value") ;; esac
    verdict=$(awk -v v="$value" -v g="$limit" 'BEGIN { print (v <= g) ? "met" : "MISSED" }')
  fi
  case $kind in seconds) limit="<= $limit s" ;; info) limit="-" verdict="(no goal)" ;; *) limit="<= ${limit}x" ;; esac
  printf '%s\t%s\t%s\t%s\n' "$what" "$shown" "$limit" "$verdict" >>"$goals"
}
goal "cold create (pip resolver) / Makefile way" tool-pip make 0.5 ratio
goal "cold create (uv resolver) / Makefile way" tool-uv make 0.5 ratio
goal "cold create (pip resolver) / hand-parallel script" tool-pip hand 0.8 ratio
goal "cold create (uv resolver) / hand-parallel script" tool-uv hand 0.8 ratio
goal "download phase / raw transfer of the same URLs" download raw 1.3 ratio
goal "cold create from pylock.toml / from requirements (pip)" tool-lock tool-pip 0.3 ratio
goal "12 targets / 4 targets (cold, pip resolver)" tool-12 tool-pip 1.6 ratio
goal "8 targets / 4 targets (cold, uv resolver)" tool-12-uv tool-uv - info
goal "for scale: raw transfer, 12-target / 4-target URLs" raw-12 raw - info
goal "12 targets, pip resolver / raw transfer of its URLs" tool-12 raw-12 - info
goal "4 targets, pip resolver / raw transfer of its URLs" tool-pip raw - info
goal "no-op re-run (median of 5)" noop "" 0.3 seconds
goal "memory flat: tool's own peak RSS, 12 targets / 4 targets" tool-12 tool-pip 1.25 rss

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
header=(
  "wheelgap create-wheelhouse benchmark, mode $mode$([ "$small" = 1 ] && echo ', --small (sizes / 10)')"
  "index: $index_summary"
  "network: $network"
  "binary: $wheelgap ($("$wheelgap" --version 2>/dev/null || echo unknown version))"
  "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $mem RAM; load average $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  "tools: $(python3 --version 2>&1), $(python3 -m pip --version | awk '{ print "pip", $2 }'), ${uv_bin:+$("$uv_bin" --version 2>/dev/null), }$(curl --version 2>/dev/null | awk 'NR == 1 { print $1, $2 }')"
  "seconds: wall time of one run (cold: from empty caches); files, MB: the .whl files it left (MB = 1e6 bytes); req, whl, MB srv: requests, GETs of wheels and body MB the index server answered (hermetic only)"
  "peak RSS MiB: self = the command's own process (the tool; sampled every 0.1 s), max = the largest of it and its children (pip)"
)

# The rows as aligned text (FORMAT text) or a markdown table (FORMAT markdown).
print_rows() {
  awk -F'\t' -v format="$1" '
    function mib(k) { return (k == "" || k == 0) ? "-" : sprintf("%.1f", k / 1024) }
    function mb(b) { return b == "" ? "-" : sprintf("%.1f", b / 1e6) }
    function dash(v) { return v == "" ? "-" : v }
    BEGIN {
      if (format == "text") {
        printf "%-46s %8s %5s %6s %5s %5s %7s %7s %7s  %s\n", "what", "seconds", "files", "MB", "req", "whl", "MB srv", "RSS slf", "RSS max", "note"
        printf "%s\n", "------------------------------------------------------------------------------------------------------------------"
      } else {
        print "| what | seconds | files | MB | requests | wheel GETs | MB served | peak RSS self (MiB) | peak RSS max (MiB) | note |"
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
      }
    }
    {
      seconds = $3 == "" ? "n/a" : sprintf("%.3f", $3)
      if (format == "text") {
        printf "%-46s %8s %5s %6s %5s %5s %7s %7s %7s  %s\n", $2, seconds, dash($4), mb($5), dash($6), dash($7), mb($8), mib($9), mib($10), $11
      } else {
        name = $2; sub(/^ +/, "… ", name)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, seconds, dash($4), mb($5), dash($6), dash($7), mb($8), mib($9), mib($10), $11
      }
    }
  ' "$rows"
}

print_text() {
  printf '%s\n' "${header[@]}"
  echo
  print_rows text
  echo
  awk -F'\t' '
    BEGIN { printf "%-58s %10s %9s  %s\n", "goal", "measured", "goal", "verdict"
            printf "%s\n", "------------------------------------------------------------------------------------------" }
    { printf "%-58s %10s %9s  %s\n", $1, $2, $3, $4 }
  ' "$goals"
}

print_markdown() {
  printf '%s\n\n' "${header[0]}"
  printf -- '- %s\n' "${header[@]:1}"
  echo
  print_rows markdown
  echo
  echo "| goal | measured | goal | verdict |"
  echo "|---|---:|---:|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$goals"
}

echo
print_text
print_markdown >"$out_md"
say "markdown table written to $out_md"
