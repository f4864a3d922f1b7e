#!/usr/bin/env bash
# The lab against cargo-lambda's `watch`, the tool a Rust developer would
# reach for: module 2's reference, GET /health, the same open-loop load
# (`cargo workshop load`) at rising rates, one target after the other on
# this machine. Prints, per rate, throughput, p99 and errors for both.
#
#   workshop/bench/compare-cargo-lambda.sh            # rates 500 1000 1500 2000 3000 4000
#   RATES="1000 2000" SECONDS_PER_RATE=10 workshop/bench/compare-cargo-lambda.sh
#
# Needs cargo-lambda (`pip install cargo-lambda`). A rate counts as
# sustained when every request got a 2xx and the answers kept pace.
set -euo pipefail
cd "$(dirname "$0")/../.."

rates=${RATES:-"500 1000 1500 2000 3000 4000"}
seconds=${SECONDS_PER_RATE:-10}
lab_port=${LAB_PORT:-3480}
watch_port=${WATCH_PORT:-9480}
command -v cargo-lambda >/dev/null || { echo "cargo-lambda is not installed: pip install cargo-lambda" >&2; exit 1; }

cargo build --quiet --release -p workshop -p module-2-solution
pids=()
cleanup() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

cargo workshop serve 2 --solution --port "$lab_port" >/dev/null 2>&1 &
pids+=($!)
(cd solutions/module-2 && exec cargo lambda watch --release --quiet --ignore-changes \
    --invoke-port "$watch_port" --bin module-2-solution) >/dev/null 2>&1 &
pids+=($!)

for url in "http://127.0.0.1:$lab_port/health" "http://127.0.0.1:$watch_port/health"; do
  for _ in $(seq 1 120); do
    curl -fs -o /dev/null "$url" && break
    sleep 1
  done
  curl -fs -o /dev/null "$url" || { echo "no answer from $url" >&2; exit 1; }
done

run() { # target url rate
  # A short warm-up at the same rate lets each target scale before measuring.
  cargo workshop load --url "$2" --rate "$3" --duration 3s --json >/dev/null
  cargo workshop load --url "$2" --rate "$3" --duration "${seconds}s" --json
}

printf '%-6s %-22s %10s %10s %10s %8s\n' rate target 'answers/s' 'p50 ms' 'p99 ms' errors
for rate in $rates; do
  for target in lab watch; do
    if [ "$target" = lab ]; then url="http://127.0.0.1:$lab_port/health"; name="lab (serve 2)"; else url="http://127.0.0.1:$watch_port/health"; name="cargo lambda watch"; fi
    run "$target" "$url" "$rate" | python3 -c '
import json, sys
r = json.load(sys.stdin)
ok = sum(n for s, n in r["by_status"].items() if s.startswith("2"))
errors = r["sent"] - ok + r["dropped"]
print("{:<6} {:<22} {:>10.0f} {:>10.2f} {:>10.2f} {:>8}".format(
    sys.argv[1], sys.argv[2], r["throughput"], r["p50_ms"], r["p99_ms"], errors))
' "$rate" "$name"
  done
done
