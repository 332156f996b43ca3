#!/usr/bin/env bash
# Benchmark (not a test) of delta archives on a generated ~300 MB wheelhouse: one package upgraded,
# `pack-wheelhouse --since` the previous archive, then the delta's size against the full archive and
# against the bytes that changed, and the time to apply it against the time to verify (and to
# unpack) the full wheelhouse. See docs/benchmarks.md, "Delta archives".
#
#   scripts/bench-delta.sh            # about 4 minutes on 2 CPUs, 1.5 GB in $TMPDIR; as root, with
#                                     # cold-cache figures too
#   ROUNDS=9 scripts/bench-delta.sh   # more timed rounds of each (default 5)
#   INDEX=0 scripts/bench-delta.sh    # without `index` (the index adds a page per project and a
#                                     # .metadata per wheel: about 600 more files to link)
#
# Needs what scripts/bench.sh needs: bash, coreutils, tar, python3 with pip, a Rust toolchain.

set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bench="$repo/scripts/bench"
rounds=${ROUNDS:-5}
with_index=${INDEX:-1}
index() { if [ "$with_index" = 1 ]; then "$xtask" -C "$proj" index >>"$work/logs/index.log" 2>&1; fi; }
say() { printf 'bench-delta: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/xtask-bench-delta.XXXXXX")
[ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/logs" "$work/tmp"
say "building the release binary"
cargo build --release -p xtask >"$work/logs/build.log" 2>&1 || { tail -n 30 "$work/logs/build.log" >&2; exit 1; }
cp target/release/wheelgap "$work/xtask"
xtask="$work/xtask"
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^PIP_' || true)
export PIP_CONFIG_FILE=/dev/null
export TMPDIR="$work/tmp"
# The archives' entries carry this time, so that the same inputs give the same bytes.
export SOURCE_DATE_EPOCH=1700000000

say "generating the index"
python3 "$bench/gen_index.py" --out "$work/index" --scale 1 >"$work/logs/gen-index.log"
proj="$work/project"
mkdir -p "$proj"
cp "$work/index/requirements-api.txt" "$work/index/requirements-worker.txt" "$proj/"
# One pure project with an older release (every project is a dependency of the top-level ones,
# which ask for `>=MAJOR.0`): the base pins the older release in both files, the update the newer.
read -r upgraded older newer < <(python3 - "$work/index" <<'EOF'
import collections, os, sys
versions = collections.defaultdict(list)
for name in sorted(os.listdir(os.path.join(sys.argv[1], "files"))):
    if name.endswith("-py3-none-any.whl"):
        stem, version = name.split("-")[:2]
        versions[stem].append(version)
for stem, found in versions.items():
    if len(found) == 2:
        older, newer = sorted(found, key=lambda v: [int(p) for p in v.split(".")])
        print(stem, older, newer)
        break
EOF
)
[ -n "$upgraded" ] || { say "no project with an older release in the index"; exit 1; }
pin() { for file in "$proj"/requirements-*.txt; do sed -i "/^$upgraded==/d" "$file" && echo "$upgraded==$1" >>"$file"; done; }
url="file://$work/index/simple/"
targets=(--platform linux/amd64 --platform linux/arm64 --python 3.11 --python 3.12)
create() { "$xtask" -C "$proj" create-wheelhouse --index-url "$url" "${targets[@]}" >>"$work/logs/create.log" 2>&1; }

say "the base: $upgraded==$older"
pin "$older"
create
index
"$xtask" -C "$proj" pack-wheelhouse --output "$work/base.tgz" >>"$work/logs/pack.log" 2>&1
"$xtask" -C "$proj" unpack-wheelhouse "$work/base.tgz" --wheelhouse "$work/far-base" >>"$work/logs/unpack.log" 2>&1

say "the update: $upgraded==$newer"
pin "$newer"
create
index
"$xtask" -C "$proj" pack-wheelhouse --output "$work/full.tgz" >>"$work/logs/pack.log" 2>&1
"$xtask" -C "$proj" pack-wheelhouse --since "$work/base.tgz" --output "$work/delta.tgz" >>"$work/logs/pack.log" 2>&1
"$xtask" -C "$proj" diff "$work/base.tgz" >"$work/diff.txt" || [ $? -eq 1 ]

W="$proj/wheelhouse"
wheelhouse_bytes=$(find "$W" -maxdepth 1 -type f -name '*.whl' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
n_wheels=$(find "$W" -maxdepth 1 -type f -name '*.whl' | wc -l)
full=$(stat -c %s "$work/full.tgz")
delta=$(stat -c %s "$work/delta.tgz")
# What changed: the entries the delta carries, each at its size. The new wheel and its .metadata,
# the pages of its project and the root pages, manifest.json, SHA256SUMS and the delta record.
tar tvzf "$work/delta.tgz" | awk '{ print $3, $6 }' >"$work/delta-entries.txt"
carried=$(awk '{ s += $1 } END { print s + 0 }' "$work/delta-entries.txt")
n_entries=$(wc -l <"$work/delta-entries.txt")
new_wheel=$(awk '/\.whl$/ { s += $1 } END { print s + 0 }' "$work/delta-entries.txt")
overhead=$((delta - carried))

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# seconds COMMAND...: wall seconds of one run
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" >>"$work/logs/timed.log" 2>&1
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}
# The far side starts at the base each time: a tree of hard links to it, made and synced untimed
# (else the first fsync of the run being timed would write the links out).
reset_far() { rm -rf "$work/far" "$work/.wheelgap"; cp -al "$work/far-base" "$work/far"; }
apply_delta() { "$xtask" -C "$proj" unpack-wheelhouse "$work/delta.tgz" --wheelhouse "$work/far" --accept-foreign; }
unpack_full() { "$xtask" -C "$proj" unpack-wheelhouse "$work/full.tgz" --wheelhouse "$work/far" --accept-foreign; }
verify_full() { "$xtask" -C "$proj" verify-wheelhouse --no-install-check --wheelhouse "$W"; }
sha256sum_full() { (cd "$W" && sha256sum --quiet -c SHA256SUMS); }

# cold: the page cache dropped before each timed run (root only), as on the far side's first look
# at a wheelhouse; hot: the files already in memory, where only the CPU work shows.
drop() { sync && echo 3 >/proc/sys/vm/drop_caches; }
modes=hot
if [ -w /proc/sys/vm/drop_caches ]; then modes="hot cold"; fi
reset_far && apply_delta >/dev/null 2>&1 && verify_full >/dev/null 2>&1 # warm the page cache
for mode in $modes; do
  say "timing ($mode): apply the delta, unpack the full archive, verify the wheelhouse, sha256sum -c ($rounds rounds, in turn)"
  : >"$work/apply" && : >"$work/unpack" && : >"$work/verify" && : >"$work/sums"
  before() { if [ "$mode" = cold ]; then drop; else sync; fi; }
  for ((i = 1; i <= rounds; i++)); do
    reset_far && before && seconds apply_delta >>"$work/apply"
    reset_far && before && seconds unpack_full >>"$work/unpack"
    before && seconds verify_full >>"$work/verify"
    before && seconds sha256sum_full >>"$work/sums"
  done
  apply=$(median <"$work/apply") unpack=$(median <"$work/unpack") verify=$(median <"$work/verify") sums=$(median <"$work/sums")
  printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$apply" "$unpack" "$verify" "$sums" >>"$work/times.tsv"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

cat <<EOF
# delta benchmark: $n_wheels wheels $([ "$with_index" = 1 ] && echo "with an index" || echo "without an index"), $(awk -v b="$wheelhouse_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB; $upgraded $older -> $newer
full archive                  $full bytes
delta archive                 $delta bytes ($(awk -v d="$delta" -v f="$full" 'BEGIN { printf "%.3f", 100 * d / f }') % of the full archive), $n_entries entries
  entries' bytes              $carried (the new wheel $new_wheel; metadata, pages, manifest, SHA256SUMS, record $((carried - new_wheel)))
  tar and gzip framing        $overhead bytes
medians of $rounds runs each     apply the delta / unpack the full archive / verify / sha256sum -c
EOF
while IFS=$'\t' read -r mode apply unpack verify sums; do
  printf '%-5s page cache           %s s / %s s / %s s / %s s: apply %sx verify, %sx full unpack\n' \
    "$mode" "$apply" "$unpack" "$verify" "$sums" "$(ratio "$apply" "$verify")" "$(ratio "$apply" "$unpack")"
done <"$work/times.tsv"
echo
sed -n '1,20p' "$work/diff.txt"
echo
cat "$work/delta-entries.txt"
