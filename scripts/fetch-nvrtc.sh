#!/usr/bin/env bash
# Fetch NVRTC (NVIDIA's run-time CUDA C compiler, libnvrtc.so.13) for the
# kernel compile test (quantizer/tests/cuda_kernels.rs) and `pgq doctor` on
# machines without a CUDA toolkit or GPU: CI compiles every kernel of the
# CUDA backend to PTX for sm_90 with it. No driver or GPU is needed.
#
#   scripts/fetch-nvrtc.sh             # -> <repo>/.cache/nvrtc/nvidia/cu13/lib
#   PGQ_CACHE=/data/pgq scripts/fetch-nvrtc.sh
#
# Source: the PyPI wheel nvidia-cuda-nvrtc, pinned to 13.0.88, the CUDA 13.0
# of the device machines (driver 580), so the PTX CI checks is the PTX those
# drivers load. Idempotent: nothing is downloaded when the library is
# already there. Progress goes to stderr; the last line on stdout is the
# folder holding libnvrtc.so.13, so
#   export LD_LIBRARY_PATH=$(scripts/fetch-nvrtc.sh | tail -n 1)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# works. Needs python3 with pip (and network access the first time).
#
# Environment:
#   PGQ_CACHE         cache folder (default: <repo>/.cache, git-ignored)
#   PGQ_NVRTC_WHEEL   use this already-downloaded wheel instead of pip
set -euo pipefail

PACKAGE=nvidia-cuda-nvrtc
VERSION=13.0.88

log() { printf 'fetch-nvrtc: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 is required"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PGQ_CACHE:-$repo_root/.cache}
mkdir -p "$cache/nvrtc"
dir=$(cd "$cache/nvrtc" && pwd)
lib=$dir/nvidia/cu13/lib

present() { [ -f "$lib/libnvrtc.so.13" ] && [ -f "$lib/libnvrtc-builtins.so.13.0" ]; }

if present; then
    log "already present, skipping download"
    printf '%s\n' "$lib"
    exit 0
fi

wheel=${PGQ_NVRTC_WHEEL:-}
if [ -z "$wheel" ]; then
    log "downloading $PACKAGE==$VERSION from PyPI (~90 MB) into $dir"
    python3 -m pip download --no-deps --disable-pip-version-check \
        --only-binary=:all: --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
        "$PACKAGE==$VERSION" -d "$dir" >&2 ||
        die "pip download of $PACKAGE==$VERSION failed"
    for w in "$dir"/nvidia_cuda_nvrtc-"$VERSION"-*.whl; do
        [ -f "$w" ] && wheel=$w
    done
    [ -n "$wheel" ] || die "pip download left no nvidia_cuda_nvrtc-$VERSION-*.whl in $dir"
fi
[ -f "$wheel" ] || die "no such wheel: $wheel"
log "extracting the libraries from $wheel"
python3 - "$wheel" "$dir" <<'PY' >&2
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith("nvidia/cu13/lib/")]
    if not members:
        sys.exit(f"fetch-nvrtc: no nvidia/cu13/lib/ in {wheel}")
    for m in members:
        z.extract(m, out)
        print(f"fetch-nvrtc: {m}")
PY
present || die "the wheel held no libnvrtc.so.13 and libnvrtc-builtins.so.13.0"
if [ -z "${PGQ_NVRTC_WHEEL:-}" ]; then
    rm -f "$wheel"
fi
printf '%s\n' "$lib"
