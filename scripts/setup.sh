#!/usr/bin/env bash
# Installs what the tests need beyond a Rust toolchain, idempotently:
# clang (the zstd crate's C code for wasm32), the wasm32 target, clippy and
# rustfmt, Python's numpy/brotli/zstandard (the reference decoder), the
# MiniLM checkpoint used by the real-weights test (into .cache/, ignored),
# Chromium (the viewer's end-to-end test, cli/tests/view.rs) and the
# wasm-bindgen CLI at the version web/ pins (`cargo xtask web`).
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
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "setup: installing chromium and chromium-driver" >&2
  apt_chromium() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; }
  apt_chromium 2>/dev/null || { as_root apt-get update -q >/dev/null && apt_chromium; }
fi
# The wasm-bindgen CLI must be the very version of the wasm-bindgen crate
# that web/ is built with (Cargo.lock; web/Cargo.toml pins it exactly).
wasm_bindgen=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -n "$wasm_bindgen" ] && [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen" ]; then
  echo "setup: installing wasm-bindgen-cli $wasm_bindgen (a few minutes, once)" >&2
  cargo install -q wasm-bindgen-cli --version "$wasm_bindgen" --locked
fi
python3 -c 'import numpy, brotli, zstandard' 2>/dev/null || python3 -m pip install -q numpy brotli zstandard
bash scripts/fetch-minilm.sh >/dev/null
