#!/usr/bin/env bash
# The GPU check of the CUDA backend, in one call on the device machine
# (docs/CUDA.md says how to run it with the `run` tool):
#
#   bash bench/gpu/check.sh PGQ_BINARY
#
# PGQ_BINARY is a prebuilt release `pgq` (the device machine has no Rust):
# build it here, copy it into an ignored folder that the call carries, e.g.
#   cargo build --release -p pgq && mkdir -p gpu-carry && cp target/release/pgq gpu-carry/
#
# Steps, everything logged under $OUT (./gpu-out when $OUT is unset):
#  1. pgq doctor --self-test: the kernels compiled by NVRTC for the device,
#     every kernel run on a small model, CUDA vs CPU codes, packing;
#  2. compute-sanitizer memcheck (and racecheck) over that self-test, which
#     launches every kernel;
#  3. the demo model (36M parameters) and its synthetic Hessians;
#  4. pgq quantize with recipes/default.toml on the CPU and on CUDA (outputs
#     poisoned before each run, codes checked written), each repeated warm
#     in one process (CPU 3 times, CUDA 20): median times;
#  5. parity: pgq compare (>= 99.9% codes equal per tensor) and the
#     Hessian-weighted error of every tensor (within 1% of the CPU's);
#  6. the same GPTQ in plain PyTorch on the same GPU (bench/gpu/torch_gptq.py),
#     warm, CUDA events, median of 5;
#  7. a table, printed last.
# Exits 1 when a check fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
PGQ=${1:?usage: bench/gpu/check.sh PGQ_BINARY}
PGQ=$(cd "$(dirname "$PGQ")" && pwd)/$(basename "$PGQ")
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
WORK=${PGQ_GPU_WORK:-/tmp/pgq-gpu}
mkdir -p "$WORK"
LOG=$OUT/check.log
: >"$LOG"
export PYTHONUNBUFFERED=1
say() { printf '\n==> %s\n' "$*" | tee -a "$LOG"; }
run() { "$@" 2>&1 | tee -a "$LOG"; return "${PIPESTATUS[0]}"; }

# The CUDA libraries: the toolkit's, and the pip wheels PyTorch brought.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c 'import glob, nvidia, os; [print(p) for b in nvidia.__path__ for p in glob.glob(os.path.join(b, "*", "lib"))]' 2>/dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
done
export LD_LIBRARY_PATH
chmod +x "$PGQ" 2>/dev/null || true

fail=0
say "machine"
run nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
run "$PGQ" --version

say "1. pgq doctor --self-test"
run "$PGQ" doctor --self-test || fail=1
"$PGQ" doctor --self-test --json >"$OUT/doctor.json" 2>>"$LOG" || true

say "2. compute-sanitizer over the self-test (every kernel)"
SAN=$OUT/sanitizer.log
: >"$SAN"
memcheck=unknown racecheck=unknown
if command -v compute-sanitizer >/dev/null; then
    compute-sanitizer --tool memcheck --error-exitcode 17 --print-limit 20 \
        "$PGQ" doctor --self-test >>"$SAN" 2>&1
    rc=$?; memcheck=$([ $rc = 0 ] && echo "0 errors" || echo "FAILED (rc $rc)")
    compute-sanitizer --tool racecheck --error-exitcode 17 --print-limit 20 \
        "$PGQ" doctor --self-test >>"$SAN" 2>&1
    rc=$?; racecheck=$([ $rc = 0 ] && echo "0 hazards" || echo "FAILED (rc $rc)")
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|kernels compiled" "$SAN" | tee -a "$LOG"
    case "$memcheck $racecheck" in *FAILED*) fail=1 ;; esac
else
    echo "compute-sanitizer not found" | tee -a "$LOG"; fail=1
fi

say "3. the demo model and its Hessians"
run "$PGQ" demo --model-only --write-hessians --out "$WORK" || fail=1
MODEL=$WORK/demo.safetensors
HESS=$WORK/demo-hessians.safetensors
COMMON=(--recipe recipes/default.toml --hessians "$HESS" --codec raw --json)

say "4. pgq quantize on the CPU (repeat 3) and on CUDA (repeat 20)"
"$PGQ" quantize "$MODEL" -o "$WORK/cpu.pgq" "${COMMON[@]}" --device cpu --repeat 3 \
    >"$OUT/cpu.json" 2>>"$LOG" || fail=1
"$PGQ" quantize "$MODEL" -o "$WORK/cuda.pgq" "${COMMON[@]}" --device cuda --repeat 20 \
    >"$OUT/cuda.json" 2>>"$LOG" || fail=1

say "5. parity: codes per tensor"
"$PGQ" compare "$WORK/cpu.pgq" "$WORK/cuda.pgq" --min-agreement 0.999 --json \
    >"$OUT/compare.json" 2>>"$LOG" || fail=1
"$PGQ" compare "$WORK/cpu.pgq" "$WORK/cuda.pgq" --min-agreement 0.999 >>"$LOG" 2>&1

say "6. the PyTorch reference on the same GPU"
run python3 bench/gpu/torch_gptq.py "$MODEL" "$HESS" --reference "$WORK/cpu.pgq" \
    --runs 5 --json "$OUT/torch.json" || fail=1

say "7. summary"
python3 - "$OUT" "$memcheck" "$racecheck" <<'PY' 2>&1 | tee -a "$LOG" "$OUT/summary.txt"
import json, os, sys
out, memcheck, racecheck = sys.argv[1:4]
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception as e:
        return {"error": str(e)}
doc, cpu, cuda, cmp_, torch_ = (load(n) for n in
    ["doctor.json", "cpu.json", "cuda.json", "compare.json", "torch.json"])
ok = True
rows = []
def row(what, value, good=None):
    global ok
    if good is False:
        ok = False
    rows.append((what, value, "" if good is None else ("ok" if good else "FAIL")))
k = doc.get("kernels") or {}
row("device", f"{(doc.get('cuda') or {}).get('devices', [{}])[0].get('name', '?')}")
row("kernels compiled (NVRTC)", f"{k.get('count')} for {k.get('arch')}", bool(k.get("compiled")))
st = doc.get("self_test") or {}
row("self-test (every kernel, CUDA vs CPU, packing)", "pass" if doc.get("passed") else "FAIL", bool(doc.get("passed")))
row("compute-sanitizer memcheck", memcheck, memcheck == "0 errors")
row("compute-sanitizer racecheck", racecheck, racecheck == "0 hazards")
fb = (cuda.get("backend") or {}).get("fallbacks")
row("CUDA tensors left to the CPU", str(len(fb)) if fb is not None else "?", fb == [])
worst = cmp_.get("worst_agreement")
row("worst tensor: codes equal, CUDA vs CPU", f"{100*worst:.4f}%" if worst is not None else "?",
    worst is not None and worst >= 0.999)
deltas = []
for a, b in zip(cpu.get("tensors", []), cuda.get("tensors", [])):
    x, y = a.get("hessian_error"), b.get("hessian_error")
    if a.get("name") == b.get("name") and x and y is not None:
        deltas.append((abs(y - x) / x, a["name"]))
if deltas:
    d, name = max(deltas)
    row("worst Hessian-weighted error difference", f"{100*d:.3f}% ({name})", d < 0.01)
else:
    row("worst Hessian-weighted error difference", "?", False)
cr = cuda.get("repeat") or {}
pr = cpu.get("repeat") or {}
t = torch_.get("ms_median")
host, dev = cr.get("codes_ms_median"), cr.get("device_ms_median")
row("CUDA, whole model, warm: GPU work, data resident (median)",
    f"{dev:.1f} ms over {cr.get('runs')} runs" if dev is not None else "?",
    dev is not None and dev < 100)
row("CUDA, whole model, warm: host to host, uploads included", f"{host:.1f} ms" if host else "?")
row("CUDA codes identical on every run", str(cr.get("identical")), cr.get("identical") is True)
cpu_ms = pr.get("codes_ms_median")
row("CPU path (all cores), same codes (median)", f"{cpu_ms:.0f} ms over {pr.get('runs')} runs" if cpu_ms else "?")
row("PyTorch GPTQ, same GPU, data resident, warm (median)", f"{t:.1f} ms" if t else "?")
if t and dev:
    row("speed-up vs PyTorch (both data resident)", f"{t / dev:.1f}x", t / dev >= 20)
if t and host:
    row("speed-up vs PyTorch (pgq host to host)", f"{t / host:.1f}x")
if cpu_ms and host:
    row("speed-up vs the CPU path (host to host)", f"{cpu_ms / host:.1f}x")
if torch_.get("worst_agreement_with_reference") is not None:
    row("PyTorch vs CPU: worst tensor equal", f"{100*torch_['worst_agreement_with_reference']:.3f}%")
w = max(len(r[0]) for r in rows)
print(f"{'check':<{w}}  {'value':<34}  verdict")
for r in rows:
    print(f"{r[0]:<{w}}  {r[1]:<34}  {r[2]}")
print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
sys.exit(0 if ok else 1)
PY
[ "${PIPESTATUS[0]}" = 0 ] || fail=1
exit $fail
