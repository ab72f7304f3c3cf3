#!/usr/bin/env bash
# Smoke-fuzz the three targets, on one core: `read` (the .pgq reader,
# seeded with the conformance vectors under 16 KiB), `quantize_input` (the
# safetensors checkpoint, recipe and globs that `pgq quantize` reads, seeded
# with fuzz/seeds/quantize_input/) and `rans` (the rANS codec alone, seeded
# with fuzz/seeds/rans/), each for N seconds (default 60).
# Exits non-zero if the build fails or libFuzzer reports a crash, a timeout
# or an out-of-memory; the failing input is left in fuzz/artifacts/TARGET/
# and printed in hex.
#
#   fuzz/smoke.sh [SECONDS] [TARGET...]
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

shift $(( $# > 0 ? 1 : 0 ))
if [ $# -gt 0 ]; then targets=("$@"); else targets=(read quantize_input rans); fi

mkdir -p corpus/read corpus/quantize_input corpus/rans
# The multi-MiB vectors would slow every run: libFuzzer sizes inputs by the
# largest seed.
find ../spec/vectors/positive ../spec/vectors/negative -name '*.pgq' -size -16k \
    -exec cp {} corpus/read/ \;
cp seeds/quantize_input/* corpus/quantize_input/
cp seeds/rans/* corpus/rans/

cargo fuzz build -s "$sanitizer"

for target in "${targets[@]}"; do
    dict=pgq.dict
    [ "$target" = read ] || dict="$target.dict"
    dict_flag=()
    [ -f "$dict" ] && dict_flag=(-dict="$dict")
    rm -rf "artifacts/$target"
    status=0
    # shellcheck disable=SC2086 # PGQ_FUZZ_ARGS is a list of flags
    cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
        "${dict_flag[@]}" \
        -max_total_time="$seconds" \
        -timeout=25 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        ${PGQ_FUZZ_ARGS:-} || status=$?

    if [ "$status" -ne 0 ]; then
        echo "smoke.sh: the fuzzer failed on $target (exit $status)" >&2
        for f in "artifacts/$target"/*; do
            [ -f "$f" ] || continue
            echo "smoke.sh: $f ($(wc -c <"$f") bytes):" >&2
            od -An -tx1 -v "$f" | head -64 >&2
        done
        exit "$status"
    fi
    echo "smoke.sh: $target: ${seconds}s without a crash"
done
