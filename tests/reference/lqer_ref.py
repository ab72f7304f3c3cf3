#!/usr/bin/env python3
"""LQER (low-rank correction of the quantization error) in NumPy, written
from the records' description (2026-04-27, PR #1797) and pgq's
documentation (quantizer/src/lqer.rs, spec/FORMAT.md 6.8), not from the
Rust.

For tensors i = 0..count-1 with weights W_i (float32, rows x cols) and
codes Q_i with one float16 scale per row S_i:

1. E_i = W_i - Q_i * S_i in float32; rank the tensors by ||E_i||_F
   (largest first, ties by index) and keep the first top_k; each takes
   rank r = min(rank, rows, cols), as the record's min(rank, S.numel()).
2. For each kept tensor: numpy.linalg.svd of E_i in float64,
   A = U[:, :r] * s[:r], B = Vt[:r]; for each k, if the largest-magnitude
   entry of B[k] (the first among equals) is negative, negate A[:, k] and
   B[k]. Then A and B are cast to float32.
3. When b_group divides r * cols (the record's _lqer_pack_asym): each
   factor in the full b-bit range [-2^(b-1), 2^(b-1)-1] (A: a_bits, B:
   b_bits), one scale per group of g consecutive elements of the
   flattened factor (A: g = its size; B: g = b_group), scale =
   float16(max(max|group|, 1e-10) / ((2^b - 1) / 2)). Otherwise (the
   record's _lqer_pack): both factors b_bits in the symmetric range
   [-(2^(b-1)-1), 2^(b-1)-1], one scale per row, scale =
   float16(max(max|row|, 1e-10) / (2^(b-1) - 1)). Scales computed in
   float32; codes = clip(rint(x / float32(scale))) (half to even), zero
   where the scale is 0.
4. error_after = ||W - (Q*S + A*B)||_F with the quantized factors, the
   correction summed as FORMAT.md 6.8 says (a0*b0, then an exact fused
   multiply-add per k).

usage: lqer_ref.py IN_DIR OUT_DIR
IN_DIR: count.npy, top_k.npy, rank.npy, a_bits.npy, b_bits.npy,
        b_group.npy, and W{i}.npy, Q{i}.npy, S{i}.npy for each tensor.
OUT_DIR: chosen.npy (int64 indexes, in index order) and, for each chosen
         tensor i: A{i}_codes.npy, A{i}_scales.npy, B{i}_codes.npy,
         B{i}_scales.npy (int8 / float16), err{i}.npy (float64).
"""
import os
import sys

import numpy as np


def fma32(x, y, z):
    """float32 fused multiply-add, exact: x*y is exact in float64 (the
    factors have at most 19 significant bits); TwoSum gives the error of
    the float64 sum, which decides a float32 tie."""
    p = x.astype(np.float64) * y
    s = p + z
    t = s - p
    e = (p - (s - t)) + (z - t)
    r = s.astype(np.float32)
    d = s - r
    n = np.nextafter(r, np.where(d > 0, np.inf, -np.inf).astype(np.float32))
    tie = (d != 0) & (2 * d == n.astype(np.float64) - r)
    return np.where(tie & (e * d > 0), n, r)


def quantize_factor(x, bits, group, symmetric=False):
    top = 2 ** (bits - 1) - 1
    flat = x.reshape(-1, group)
    peak = np.maximum(np.abs(flat).max(axis=1), np.float32(1e-10))
    divisor = top if symmetric else (2 ** bits - 1) / 2
    scales = (peak / np.float32(divisor)).astype(np.float16)
    s = scales.astype(np.float32)[:, None]
    low = -top if symmetric else -top - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(s == 0, 0, np.clip(np.rint(flat / s), low, top))
    return q.astype(np.int8).reshape(-1), scales


def dequantize_factor(codes, scales, group):
    return (codes.reshape(-1, group).astype(np.float32)
            * scales.astype(np.float32)[:, None]).reshape(-1)


def main(inp, out):
    load = lambda name: np.load(os.path.join(inp, name))
    count = int(load("count.npy"))
    top_k, rank = int(load("top_k.npy")), int(load("rank.npy"))
    a_bits, b_bits = int(load("a_bits.npy")), int(load("b_bits.npy"))
    b_group = int(load("b_group.npy"))
    W, base, errors = [], [], []
    for i in range(count):
        w = load(f"W{i}.npy").astype(np.float32)
        q = load(f"Q{i}.npy").astype(np.float32) * load(f"S{i}.npy").astype(np.float32)[:, None]
        W.append(w)
        base.append(q)
        e = w - q
        errors.append(np.sqrt((e.astype(np.float64) ** 2).sum()))
    order = sorted(range(count), key=lambda i: (-errors[i], i))
    chosen = sorted(order[:top_k])
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "chosen.npy"), np.array(chosen, dtype=np.int64))
    for i in chosen:
        rows, cols = W[i].shape
        r = min(rank, rows, cols)
        e = (W[i] - base[i]).astype(np.float64)
        u, s, vt = np.linalg.svd(e, full_matrices=False)
        a = u[:, :r] * s[:r]
        b = vt[:r].copy()
        for k in range(r):
            if b[k, np.argmax(np.abs(b[k]))] < 0:
                a[:, k] = -a[:, k]
                b[k] = -b[k]
        a, b = a.astype(np.float32), b.astype(np.float32)
        if (r * cols) % b_group == 0:
            ga, g = a.size, b_group
            qa, sa = quantize_factor(a, a_bits, ga)
            qb, sb = quantize_factor(b, b_bits, g)
        else:
            ga, g = r, cols
            qa, sa = quantize_factor(a, b_bits, ga, symmetric=True)
            qb, sb = quantize_factor(b, b_bits, g, symmetric=True)
        for name, arr in (("A%d_codes", qa), ("A%d_scales", sa), ("B%d_codes", qb), ("B%d_scales", sb)):
            np.save(os.path.join(out, (name % i) + ".npy"), arr)
        da = dequantize_factor(qa, sa, ga).reshape(rows, r)
        db = dequantize_factor(qb, sb, g).reshape(r, cols)
        acc = da[:, :1] * db[:1]
        for k in range(1, r):
            acc = fma32(da[:, k:k + 1], db[k:k + 1], acc)
        after = W[i] - (base[i] + acc)
        np.save(os.path.join(out, f"err{i}.npy"),
                np.float64(np.sqrt((after.astype(np.float64) ** 2).sum())))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
