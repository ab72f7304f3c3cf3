#!/usr/bin/env python3
"""Independent float64 NumPy reference of pgq's GPTQ (Frantar et al. 2022).

Written from the published algorithm and pgq's specification, not from the
Rust code, so that `quantizer/tests/gptq_parity.rs` can check one against the
other. Deliberately straightforward: explicit inverse, then the upper
Cholesky factor of the inverse, as `torch.linalg.cholesky(Hinv, upper=True)`
in the reference implementations.

Algorithm (W: rows x cols, rows = output features; H: cols x cols = X^T X/n):

 1. H = (H + H^T) / 2. Dead columns (H_jj == 0): H_jj = 1, W[:, j] = 0.
 2. Scales, before the sweep, from that W: per row (group_size 0) or per
    (row, group), group g = ORIGINAL columns [g*G, (g+1)*G). Clip: SDClip
    c = k * std(ddof=1) (a single value: |x|), or absmax (k == 0).
    scale = float16(max(float32(c) / qmax, 1e-7)) (float32 arithmetic).
 3. Act-order: perm = stable argsort of diag(H), descending.
 4. H += d * mean(diag H) * I, d = damp; when a Cholesky fails, d = 10 d
    (or 0.01 when d == 0), at most 6 attempts.
 5. Hinv = H^-1 (via its Cholesky factor), U = upper Cholesky factor of Hinv.
 6. Sweep over blocks of block_size columns, lazy updates between blocks:
    q = clip(rint(float32(w) / float32(scale)), -qmax, qmax) (round half to
    even, float32 division: pgq's code definition), err = (w - q s) / U_ii,
    update the block's later columns with err * U[i, i+1:end], and after the
    block, W[:, end:] -= Err @ U[start:end, end:].
 7. Codes in the original column order; hess_err = tr(E H E^T) / tr(W H W^T)
    with E = W - Q on the original, undamped H and original W.

Usage: gptq_ref.py IN OUT
  IN:  an .npz file, or a folder of .npy files, holding W (float32
       [rows, cols]), H (float32 [cols, cols]) and the scalars bits,
       group_size, k (0 = absmax), damp, act_order, block_size.
  OUT: an .npz file, or a folder (created) to receive .npy files: codes
       (int8 [rows, cols]), scales (float16 [rows, groups]), hess_err
       (float64), damp_used (float64), damp_attempts (int64).
Exit status 2 when the damped Hessian is never positive definite.
"""

import os
import sys

import numpy as np

MAX_ATTEMPTS = 6
SCALE_FLOOR = np.float32(1e-7)


class NotPositiveDefinite(Exception):
    pass


def choose_scales(W, qmax, group_size, k):
    """float16 scales [rows, groups] from float64 W (values exact in f32)."""
    rows, cols = W.shape
    width = cols if group_size == 0 else group_size
    groups = 1 if group_size == 0 else -(-cols // group_size)
    scales = np.empty((rows, groups), dtype=np.float16)
    for g in range(groups):
        block = W[:, g * width:(g + 1) * width]
        if block.shape[1] == 0:
            clip = np.zeros(rows, dtype=np.float32)
        elif k == 0:
            clip = np.abs(block).max(axis=1).astype(np.float32)
        elif block.shape[1] == 1:
            clip = np.abs(block[:, 0]).astype(np.float32)
        else:
            std = block.std(axis=1, ddof=1)
            clip = (np.float64(np.float32(k)) * std).astype(np.float32)
        s32 = np.maximum(clip / np.float32(qmax), SCALE_FLOOR).astype(np.float32)
        with np.errstate(over="ignore"):
            s16 = s32.astype(np.float16)
        if not np.all(np.isfinite(s16)):
            raise OverflowError("a scale exceeds the float16 range")
        scales[:, g] = s16
    return scales


def upper_factor_of_inverse(H, damp):
    """(U, damp_used, attempts) with (H + d mean(diag) I)^-1 = U^T U."""
    n = H.shape[0]
    mean_diag = np.mean(np.diag(H))
    d = float(damp)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        Hd = H + d * mean_diag * np.eye(n)
        try:
            L = np.linalg.cholesky(Hd)
            Linv = np.linalg.inv(L)
            Hinv = Linv.T @ Linv
            U = np.linalg.cholesky(Hinv).T
            if np.all(np.isfinite(U)):
                return U, d, attempt
        except np.linalg.LinAlgError:
            pass
        if attempt == MAX_ATTEMPTS:
            break
        d = d * 10.0 if d > 0 else 0.01
    raise NotPositiveDefinite(f"not positive definite after {MAX_ATTEMPTS} attempts, last damp {d}")


def gptq(W_in, H_in, bits, group_size, k, damp, act_order, block_size):
    W_orig = np.asarray(W_in, dtype=np.float64)
    H_orig = np.asarray(H_in, dtype=np.float64)
    H_orig = (H_orig + H_orig.T) / 2.0
    rows, cols = W_orig.shape
    qmax = 2 ** (bits - 1) - 1

    W = W_orig.copy()
    H = H_orig.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0

    scales = choose_scales(W, qmax, group_size, k)
    width = cols if group_size == 0 else group_size

    if act_order:
        perm = np.argsort(-np.diag(H), kind="stable")
    else:
        perm = np.arange(cols)
    W = W[:, perm]
    H = H[perm][:, perm]

    U, damp_used, attempts = upper_factor_of_inverse(H, damp)

    # Column p of the permuted matrix uses the scale of its ORIGINAL group.
    col_scales32 = scales.astype(np.float32)[:, perm // width]
    codes = np.zeros((rows, cols), dtype=np.int8)
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        W1 = W[:, start:end].copy()
        Err = np.zeros_like(W1)
        for i in range(end - start):
            col = start + i
            w = W1[:, i]
            s32 = col_scales32[:, col]
            q = np.clip(np.rint(w.astype(np.float32) / s32), -qmax, qmax)
            codes[:, perm[col]] = q.astype(np.int8)
            err = (w - q.astype(np.float64) * s32.astype(np.float64)) / U[col, col]
            W1[:, i:] -= np.outer(err, U[col, col:end])
            Err[:, i] = err
        W[:, end:] -= Err @ U[start:end, end:]

    # Dequantize in the original order with the stored scales.
    Q = codes.astype(np.float64) * np.repeat(scales.astype(np.float64), width, axis=1)[:, :cols]
    E = W_orig - Q
    num = np.sum((E @ H_orig) * E)
    den = np.sum((W_orig @ H_orig) * W_orig)
    hess_err = num / den if den != 0 else (0.0 if num == 0 else np.inf)
    return codes, scales, float(hess_err), damp_used, attempts


def load(path):
    if os.path.isdir(path):
        return {name[:-4]: np.load(os.path.join(path, name))
                for name in os.listdir(path) if name.endswith(".npy")}
    with np.load(path) as z:
        return {name: z[name] for name in z.files}


def save(path, arrays):
    if path.endswith(".npz"):
        np.savez(path, **arrays)
        return
    os.makedirs(path, exist_ok=True)
    for name, value in arrays.items():
        np.save(os.path.join(path, name + ".npy"), value)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 64
    data = load(argv[1])
    try:
        codes, scales, hess_err, damp_used, attempts = gptq(
            data["W"], data["H"],
            bits=int(data["bits"]),
            group_size=int(data["group_size"]),
            k=float(data["k"]),
            damp=float(data["damp"]),
            act_order=bool(data["act_order"]),
            block_size=int(data["block_size"]),
        )
    except NotPositiveDefinite as e:
        sys.stderr.write(f"gptq_ref: {e}\n")
        return 2
    save(argv[2], {
        "codes": codes,
        "scales": scales,
        "hess_err": np.float64(hess_err),
        "damp_used": np.float64(damp_used),
        "damp_attempts": np.int64(attempts),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
