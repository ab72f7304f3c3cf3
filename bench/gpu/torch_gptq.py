"""The peer to beat: GPTQ written straightforwardly in PyTorch, on the GPU.

The same algorithm as quantizer/src/gptq.rs and the same recipe as
recipes/default.toml (int6 SDClip k 12.85 for matrices, int8 k 20 for the
embedding, one fp16 scale per row, act-order, damping 0.01 x mean(diag H)
retried x10 up to 6 times, 128-column blocks with lazy trailing updates),
in float32 as the reference GPTQ code (IST-DASLab gptq.py) does: one matrix
after another, torch.linalg for the factorizations.

    python3 torch_gptq.py demo.safetensors demo-hessians.safetensors \
        [--reference cpu.pgq] [--runs 5] [--json out.json]

Times the whole model warm (one run first, then --runs timed with CUDA
events around the run; the median is reported) with weights and Hessians
already on the GPU, and with --reference compares its dequantized weights
with a pgq artifact's (spec/reference/pgq_decode.py).
"""
import argparse
import json
import os
import statistics
import sys

import torch
from safetensors.torch import load_file


def fp16_scale(clip, qmax):
    return (clip / qmax).clamp_min(1e-7).half().float()


def gptq(W, H, bits, k, damp=0.01, block=128):
    """Codes (int8, original column order) and scales (f32 of fp16) of W."""
    qmax = float(2 ** (bits - 1) - 1)
    W = W.float().clone()
    H = ((H + H.T) / 2).float()
    n = H.shape[0]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    # SDClip scales (unbiased std per row, in f64 as pgq), before the sweep.
    std = W.double().std(dim=1, unbiased=True)
    scale = fp16_scale((k * std).float(), qmax)
    perm = torch.argsort(torch.diag(H), descending=True, stable=True)
    W = W[:, perm]
    H = H[perm][:, perm]
    mean = torch.mean(torch.diag(H))
    d = damp
    for _ in range(6):
        Hd = H + d * mean * torch.eye(n, device=H.device)
        L, info = torch.linalg.cholesky_ex(Hd)
        if int(info) == 0:
            Hinv = torch.cholesky_inverse(L)
            U, info = torch.linalg.cholesky_ex(Hinv, upper=True)
            if int(info) == 0 and torch.isfinite(U).all():
                break
        d = d * 10 if d > 0 else 0.01
    else:
        raise RuntimeError("not positive definite")
    Q = torch.zeros_like(W)
    s = scale[:, None]
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        W1 = W[:, b0:b1].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        U1 = U[b0:b1, b0:b1]
        for i in range(b1 - b0):
            w = W1[:, i]
            q = torch.clamp(torch.round(w / scale), -qmax, qmax)
            Q1[:, i] = q
            e = (w - q * scale) / U1[i, i]
            W1[:, i:] -= e[:, None] * U1[i, i:][None, :]
            E1[:, i] = e
        Q[:, b0:b1] = Q1
        W[:, b1:] -= E1 @ U[b0:b1, b1:]
    codes = torch.empty_like(Q)
    codes[:, perm] = Q
    return codes.to(torch.int8), scale


def recipe(name):
    return (8, 20.0) if "emb" in name else (6, 12.85)


def run_model(weights, hessians):
    out = {}
    for name, H in hessians.items():
        bits, k = recipe(name)
        out[name] = gptq(weights[name], H, bits, k)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("hessians")
    ap.add_argument("--reference")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    hess = {n: h.to(dev) for n, h in load_file(a.hessians).items()}
    model = load_file(a.model)
    weights = {n: model[n].to(dev) for n in hess}
    torch.cuda.synchronize()
    result = run_model(weights, hess)  # warm-up (also the compared run)
    times = []
    for _ in range(a.runs):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        run_model(weights, hess)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    doc = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "matrices": len(hess),
        "runs": a.runs,
        "ms_median": statistics.median(times),
        "ms_all": times,
    }
    if a.reference:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "spec", "reference"))
        from pgq_decode import load

        ref = load(a.reference)
        worst = 1.0
        for name, (codes, scale) in result.items():
            mine = (codes.float() * scale[:, None]).cpu().numpy().ravel()
            theirs = ref[name].ravel()
            worst = min(worst, float((mine == theirs).mean()))
        doc["worst_agreement_with_reference"] = worst
    print(json.dumps(doc, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
