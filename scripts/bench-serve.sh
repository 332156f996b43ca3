#!/usr/bin/env bash
# Benchmark (not a test) of `serve` against nginx (Debian's package) serving `index`'s static
# tree of the same wheelhouse, in the same run: the load test of xtask/tests/it/serve.rs (32
# keep-alive clients on 127.0.0.1, a mix of index pages, .metadata files and wheels, the fixture's
# 2 MiB wheel among them), built in release mode, run ROUNDS times (each round loads serve, then
# nginx) with REQUESTS requests per server. Prints the medians as a markdown table.
#
#   scripts/bench-serve.sh                 # ROUNDS=5 REQUESTS=50000
#   ROUNDS=3 REQUESTS=10000 scripts/bench-serve.sh
#   ACCESS_LOG=1 scripts/bench-serve.sh    # both servers log every request (off by default)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
requests=${REQUESTS:-50000}
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }
binary=$(cargo test --release --locked --test it --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and message["target"]["name"] == "it":
        print(message["executable"])')
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  WHEELGAP_LOAD_ACCESS_LOG=${ACCESS_LOG:-0} WHEELGAP_LOAD_REQUESTS=$requests "$binary" serve::load --nocapture --test-threads 1 2>&1 | grep -oE '(serve|nginx): Load.*' >>"$log"
done
python3 - "$log" "$requests" <<'PY'
import re, statistics, sys
rows = {"serve": [], "nginx": []}
for line in open(sys.argv[1]):
    name = line.split(":")[0]
    figures = dict(re.findall(r"(\w+): ([0-9.]+)", line))
    rows[name].append({"rps": float(figures["requests"]) / float(figures["seconds"]), "p50": float(figures["p50_ms"]), "p99": float(figures["p99_ms"]), "errors": int(figures["errors"])})
median = lambda name, key: statistics.median(row[key] for row in rows[name])
print(f"| server | requests/s (median of {len(rows['serve'])}) | p50 ms | p99 ms | errors |")
print("| --- | --- | --- | --- | --- |")
for name in ("serve", "nginx"):
    print(f"| {name} | {median(name, 'rps'):.0f} | {median(name, 'p50'):.2f} | {median(name, 'p99'):.2f} | {sum(row['errors'] for row in rows[name])} |")
ratios = [s["rps"] / n["rps"] for s, n in zip(rows["serve"], rows["nginx"])]
print(f"\nserve / nginx throughput, per round: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x ({sys.argv[2]} requests per server per round)")
PY
