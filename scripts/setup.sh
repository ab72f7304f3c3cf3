#!/usr/bin/env bash
# Installs what pgq needs beyond a Rust toolchain, idempotently (each step
# checks first, so a warm machine spends a second here).
#
#   bash scripts/setup.sh          everything the tests need (scripts/test.sh)
#   bash scripts/setup.sh viewer   only what the browser viewer's bundle needs
#                                  (`cargo xtask web`; `cargo xtask demo` runs this)
#
# viewer: clang (the zstd crate's C code for wasm32), the wasm32 target and
# the wasm-bindgen CLI at the version web/ pins (Cargo.lock).
# tests: also clippy and rustfmt, Chromium and ChromeDriver (the viewer's
# browser tests), Python's numpy/brotli/zstandard (the reference decoder),
# selenium (web/e2e), torch, transformers, pytest and maturin (the Python
# package's suite), and the MiniLM checkpoint (into .cache/, ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_install() {
  echo "setup: installing $*" >&2
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
  as_root "${apt[@]}" >/dev/null 2>&1 || { as_root apt-get update -q >/dev/null && as_root "${apt[@]}" >/dev/null; }
}

viewer_tools() {
  command -v clang >/dev/null || apt_install clang
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  # The wasm-bindgen CLI must be the very version of the wasm-bindgen crate
  # that web/ is built with (Cargo.lock; web/Cargo.toml pins it exactly).
  local wasm_bindgen
  wasm_bindgen=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  if [ -n "$wasm_bindgen" ] && [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wasm_bindgen" ]; then
    echo "setup: installing wasm-bindgen-cli $wasm_bindgen (a few minutes, once)" >&2
    # Built at opt-level 1 without LTO: it post-processes one 1.4 MB module,
    # so its own speed does not matter; its build took 4 min 19 s of CPU here.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false \
      CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0 \
      cargo install -q wasm-bindgen-cli --version "$wasm_bindgen" --locked
  fi
}

test_tools() {
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  { command -v chromium && command -v chromedriver; } >/dev/null || apt_install chromium chromium-driver
  python3 -c 'import numpy, brotli, zstandard, selenium' 2>/dev/null || python3 -m pip install -q numpy brotli zstandard selenium
  # The Python package's suite (python/tests): PyTorch (the default PyPI
  # wheel, about 4.4 GB with its CUDA libraries; it runs on the CPU),
  # transformers for MiniLM, safetensors, pytest, maturin to build it, and
  # matplotlib for bench/golf's plot. --no-cache-dir: the wheels are not
  # kept a second time in pip's cache (about 4 GB of disk).
  python3 -c 'import torch, transformers, safetensors, pytest, maturin, matplotlib' 2>/dev/null ||
    python3 -m pip install -q --no-cache-dir torch transformers safetensors pytest maturin matplotlib
  bash scripts/fetch-minilm.sh >/dev/null
}

case "${1:-tests}" in
  viewer) viewer_tools ;;
  tests) viewer_tools; test_tools ;;
  *) echo "usage: bash scripts/setup.sh [tests | viewer]" >&2; exit 2 ;;
esac
