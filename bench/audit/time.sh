#!/usr/bin/env bash
# Times `pgq audit` on the twelve real record folders of tests/records and
# on a hostile folder built to cost the most a folder can (docs/BENCHMARKS.md,
# "pgq audit"). Usage: bash bench/audit/time.sh [PGQ_BINARY]
# (default target/release/pgq; build it with `cargo build --release -p pgq`).
set -euo pipefail
cd "$(dirname "$0")/../.."
pgq="${1:-target/release/pgq}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Median of 5 runs of a command, in milliseconds, process start included.
median_ms() {
  local times=()
  for _ in 1 2 3 4 5; do
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null || true
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

echo "folder | median ms (5 runs, process start included) | verdict"
echo "--- | ---: | ---"
for dir in tests/records/*/; do
  status=$("$pgq" audit "$dir" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  echo "$(basename "$dir") | $(median_ms "$pgq" audit "$dir" --json) | $status"
done

# The hostile folder: five 100 MB text logs of near-miss lines (every
# 20 bytes a candidate for "Total submission size"), which the read budget
# (8 MiB a log, 32 MiB a folder) bounds, a 100 MB binary and a FIFO.
hostile="$scratch/hostile"
mkdir -p "$hostile"
python3 - "$hostile" <<'PY'
import os, sys
folder = sys.argv[1]
line = "total submission siz" * 50 + "\n"
with open(os.path.join(folder, "a.log"), "w") as f:
    for _ in range((100 << 20) // len(line)):
        f.write(line)
with open(os.path.join(folder, "model.ptz"), "wb") as f:
    f.write(bytes(range(256)) * ((100 << 20) // 256))
PY
for i in 1 2 3 4; do cp "$hostile/a.log" "$hostile/b$i.log"; done
mkfifo "$hostile/train_seed1.log"
echo "hostile: 5 x 100 MB near-miss logs, a 100 MB binary, a FIFO | $(median_ms "$pgq" audit "$hostile") | read in part"
