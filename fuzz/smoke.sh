#!/usr/bin/env bash
# Smoke-fuzz the .pgq reader: build the `read` target and run it for N
# seconds (default 60) over the conformance vectors, on one core.
# Exits non-zero if the build fails or libFuzzer reports a crash, a timeout
# or an out-of-memory; the failing input is left in fuzz/artifacts/read/ and
# printed in hex.
#
#   fuzz/smoke.sh [SECONDS]
#
# Environment:
#   PGQ_FUZZ_SANITIZER  address (default) or none (faster, catches panics
#                       only; the reader is safe Rust, but zstd is C)
#   PGQ_FUZZ_ARGS       extra libFuzzer flags, e.g. "-seed=1"
#
# Works on stable Rust: cargo-fuzz needs nightly-only flags (-Zsanitizer,
# sancov), which RUSTC_BOOTSTRAP=1 unlocks.
set -euo pipefail

seconds="${1:-60}"
sanitizer="${PGQ_FUZZ_SANITIZER:-address}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

mkdir -p corpus/read
cp ../spec/vectors/positive/*.pgq ../spec/vectors/negative/*.pgq corpus/read/

cargo fuzz build -s "$sanitizer" read

rm -rf artifacts/read
status=0
# shellcheck disable=SC2086 # PGQ_FUZZ_ARGS is a list of flags
cargo fuzz run -s "$sanitizer" read corpus/read -- \
    -dict=pgq.dict \
    -max_total_time="$seconds" \
    -timeout=25 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    ${PGQ_FUZZ_ARGS:-} || status=$?

if [ "$status" -ne 0 ]; then
    echo "smoke.sh: the fuzzer failed (exit $status)" >&2
    for f in artifacts/read/*; do
        [ -f "$f" ] || continue
        echo "smoke.sh: $f ($(wc -c <"$f") bytes):" >&2
        od -An -tx1 -v "$f" | head -64 >&2
    done
    exit "$status"
fi
echo "smoke.sh: ${seconds}s without a crash"
