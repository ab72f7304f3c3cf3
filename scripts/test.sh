#!/usr/bin/env bash
# The project's test command (README.md): set-up, formatting, lints, every
# Rust test, the Python reference decoder against the conformance vectors
# and against `pgq export`, the wasm32 build of the decoder and verifier, and
# the CUDA kernels compiled to PTX by NVRTC (scripts/fetch-nvrtc.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "set-up"
bash scripts/setup.sh
export PGQ_MINILM="${PGQ_MINILM:-$(bash scripts/fetch-minilm.sh | tail -n 1)}"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (workspace)"
cargo test --workspace

step "reference decoder: $(wc -c < spec/reference/pgq_decode.py) bytes; vectors vs expected values and vs pgq export"
cargo build --release -p pgq
python3 spec/reference/check_vectors.py --pgq target/release/pgq

step "examples/pytorch compiles (PyTorch itself is not installed here)"
python3 -m py_compile examples/pytorch/pgq_hessians.py

step "decoder and verifier for wasm32-unknown-unknown (what the browser viewer runs)"
cargo build -p pgq-format -p pgq-verifier --target wasm32-unknown-unknown

step "CUDA kernels compile to PTX for sm_90 through NVRTC (no GPU needed; NVRTC from PyPI)"
nvrtc_dir=$(bash scripts/fetch-nvrtc.sh | tail -n 1)
LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PGQ_REQUIRE_NVRTC=1 \
  cargo test -p pgq-quantizer --test cuda_kernels
doctor=$(LD_LIBRARY_PATH="$nvrtc_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" target/release/pgq doctor --require-nvrtc)
printf '%s\n' "$doctor"
grep -q "kernels compiled for sm_90" <<<"$doctor"

if [ "${PGQ_FUZZ_SECONDS:-0}" != 0 ]; then
  step "fuzz smoke run (${PGQ_FUZZ_SECONDS} s)"
  bash fuzz/smoke.sh "$PGQ_FUZZ_SECONDS"
fi

step "all checks passed"
