#!/usr/bin/env bash
# The project's test command (README.md): set-up, formatting, lints, the
# browser viewer's bundle (built before the tests, so that `pgq view` embeds
# it and its end-to-end test in Chromium runs), every Rust test, the Python
# reference decoder against the conformance vectors and against `pgq
# export`, the Python package installed into a fresh virtual environment and
# its suite run with real torch (python/tests) and the PyTorch example, the
# viewer's component test and interaction checks in headless Chromium, and
# the CUDA kernels compiled to PTX by NVRTC
# (scripts/fetch-nvrtc.sh; no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }

disk() { df -h --output=avail,target . | tail -n 1 | awk '{print "disk: " $1 " free on " $2}'; }

step "set-up"
disk
bash scripts/setup.sh
export PGQ_MINILM="${PGQ_MINILM:-$(bash scripts/fetch-minilm.sh | tail -n 1)}"
# NVRTC from PyPI, so that `cargo test` compiles every CUDA kernel to PTX
# (quantizer/tests/cuda_kernels.rs; PGQ_REQUIRE_NVRTC=1 makes a missing
# libnvrtc a failure, not a skip). No GPU or driver is needed.
nvrtc_dir=$(bash scripts/fetch-nvrtc.sh | tail -n 1)
export LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PGQ_REQUIRE_NVRTC=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "feature subsets: pgq-quantizer without its CUDA backend and fixtures, pgq-metrics without faer (the viewer's build)"
cargo clippy -p pgq-quantizer --no-default-features -- -D warnings
cargo clippy -p pgq-metrics --no-default-features --all-targets -- -D warnings
cargo test -q -p pgq-metrics --no-default-features
cargo test -q -p pgq-quantizer --no-default-features --features demo --lib backend

step "the browser viewer: cargo xtask web -> web/dist (pgq-format and pgq-verifier for wasm32; embedded in pgq, whose end-to-end test runs Chromium)"
cargo xtask web

step "cargo test (workspace; the CUDA kernels compile through NVRTC)"
cargo test --workspace
# The binary the tests built (test profile): the steps below drive it.
pgq=target/debug/pgq

step "reference decoder: $(wc -c < spec/reference/pgq_decode.py) bytes; vectors vs expected values and vs pgq export"
python3 spec/reference/check_vectors.py --pgq "$pgq"

step "the viewer's component test in headless Chromium (wasm-bindgen-test, web/tests/browser.rs)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p pgq-web --target wasm32-unknown-unknown --profile wasm-release --test browser

step "the viewer's interactions end to end (web/e2e/check.py): MiniLM, compared with the tiny demo"
e2e=target/e2e && rm -rf "$e2e" && mkdir -p "$e2e"
"$pgq" demo --tiny --out "$e2e/tiny" >/dev/null
"$pgq" quantize "$PGQ_MINILM" --drop-non-float --codec zstd -o "$e2e/minilm.pgq" >/dev/null
python3 web/e2e/check.py "$e2e/minilm.pgq" "$e2e/tiny/demo.pgq" --pgq "$pgq"

step "the Python package: pip install ./python into a fresh virtual environment, then its suite with real torch (python/tests)"
venv=target/python-venv && rm -rf "$venv"
# System site packages: torch and transformers come from the machine's
# Python (installed once by setup.sh), the package from this checkout.
python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check ./python
(cd target && "../$venv/bin/python" -c "import pgq, pgq.torch; print('import pgq:', pgq.__version__, pgq.__file__)")
PGQ="$pgq" PGQ_MINILM_DIR="$(dirname "$PGQ_MINILM")" "$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests

step "examples/pytorch runs (one-shot and sequential GPTQ through pgq.torch on a small GPT)"
"$venv/bin/python" examples/pytorch/quantize_gpt.py --out-dir target/example-out

step "pgq doctor: the CUDA kernels compiled for sm_90 through NVRTC (no GPU needed)"
doctor=$("$pgq" doctor --require-nvrtc)
printf '%s\n' "$doctor"
grep -q "kernels compiled for sm_90" <<<"$doctor"

if [ "${PGQ_FUZZ_SECONDS:-0}" != 0 ]; then
  step "fuzz smoke run (${PGQ_FUZZ_SECONDS} s)"
  bash fuzz/smoke.sh "$PGQ_FUZZ_SECONDS"
fi

disk
step "all checks passed"
