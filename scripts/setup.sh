#!/usr/bin/env bash
# Installs what the tests need beyond a Rust toolchain, idempotently:
# clang (the zstd crate's C code for wasm32), the wasm32 target, clippy and
# rustfmt, Python's numpy/brotli/zstandard (the reference decoder), and the
# MiniLM checkpoint used by the real-weights test (into .cache/, ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

if ! command -v clang >/dev/null; then
  echo "setup: installing clang" >&2
  as_root apt-get install -y -q clang >/dev/null 2>&1 || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q clang >/dev/null; }
fi
rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
python3 -c 'import numpy, brotli, zstandard' 2>/dev/null || python3 -m pip install -q numpy brotli zstandard
bash scripts/fetch-minilm.sh >/dev/null
