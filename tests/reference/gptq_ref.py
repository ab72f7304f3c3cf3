#!/usr/bin/env python3
"""Independent float64 NumPy reference of pgq's GPTQ (Frantar et al. 2022)
and round-to-nearest (RTN), with SDClip, absmax or percentile-search scales.

Written from the published algorithm and pgq's specification, not from the
Rust code, so that `quantizer/tests/gptq_parity.rs` can check one against the
other. Deliberately straightforward: explicit inverse, then the upper
Cholesky factor of the inverse, as `torch.linalg.cholesky(Hinv, upper=True)`
in the reference implementations.

GPTQ (method 0; W: rows x cols, rows = output features; H: cols x cols =
X^T X/n):

 1. H = (H + H^T) / 2. Dead columns (H_jj == 0): H_jj = 1, W[:, j] = 0.
 2. Scales, before the sweep, from that W: per row (group_size 0) or per
    (row, group), group g = ORIGINAL columns [g*G, (g+1)*G) (the last one
    may be partial). Clip: SDClip c = k * std(ddof=1) (a single value: |x|),
    or absmax (k == 0), or the percentile search below (when `percentiles`
    is given; k is then ignored).
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
    With rdo > 0 (rate-distortion GPTQ): bits(q) = -log2 p(q), p(q) =
    (count(q) + 1/2) / (N + L/2) over the RTN codes of step 2's W at its
    scales (L = 2 qmax + 1); a non-zero q becomes q - sign(q) when
    (t - q')^2 + rdo bits(q') < (t - q)^2 + rdo bits(q), t = float32(w) /
    float32(scale) (strictly smaller; ties keep q), before err is taken.
 7. Codes in the original column order; hess_err = tr(E H E^T) / tr(W H W^T)
    with E = W - Q on the original, undamped H and original W.

RTN (method 1): H = (H + H^T) / 2 (used only for the Hessian objective and
hess_err); scales as in step 2 but from the ORIGINAL W (no dead-column
zeroing); codes q = clip(rint(float32(w) / float32(scale)), -qmax, qmax) in
the original order; hess_err as in step 7. No damping and no Cholesky (an
indefinite H is fine): damp_used = 0.0, damp_attempts = 0.

Percentile search (when `percentiles` is present and non-empty), for each
row/group with values v (length n; the values step 2 uses) and each
candidate p (in list order):
  - clip: a = sorted(|v|) ascending (float64). n == 0: clip = 0. p == 1.0:
    clip = max|v|. Otherwise t = p (n - 1), lo = floor(t),
    hi = min(lo + 1, n - 1), frac = t - lo,
    clip = a[lo] + (a[hi] - a[lo]) * frac (float64, exactly this formula,
    not np.quantile's), then float32; scale as in step 2.
  - score: q = clip(rint(float32(v) / float32(scale)), -qmax, qmax),
    e_j = float64(v_j) - q_j * float64(scale),
    score = sum_j w_j * e_j^2 (float64), w_j = 1 (objective 0, MSE) or
    w_j = H_jj of the symmetrized, original, undamped H (objective 1,
    Hessian; dead columns weigh 0).
  - selection, scope 0: each (row, group) takes the candidate with the
    smallest score, ties to the earlier candidate (strict less-than).
    Scope 1: each candidate's scores are summed over all rows and groups;
    the smallest total wins (ties to the earlier candidate) and every
    row/group uses that candidate's scale.

Usage: gptq_ref.py IN OUT
  IN:  an .npz file, or a folder of .npy files, holding W (float32
       [rows, cols]), H (float32 [cols, cols]) and the scalars bits,
       group_size, k (0 = absmax), damp, act_order, block_size (the last
       three are not read by RTN). Optional: method (int64, 0 = GPTQ
       default, 1 = RTN), percentiles (float64 1-D, candidates p in (0, 1],
       used as given), objective (int64, 0 = MSE default, 1 = Hessian),
       scope (int64, 0 = per row/group default, 1 = whole tensor), rdo
       (float64, GPTQ's rate-distortion weight, 0 = plain GPTQ default).
  OUT: an .npz file, or a folder (created) to receive .npy files: codes
       (int8 [rows, cols]), scales (float16 [rows, groups]), hess_err
       (float64), damp_used (float64), damp_attempts (int64), choices
       (int64 [rows, groups]: the 0-based index into percentiles used by
       each row/group; all -1 when no percentile search ran).
Exit status 2 when the damped Hessian is never positive definite (GPTQ), 64
on a bad command line or an invalid optional input.
"""

import os
import sys

import numpy as np

MAX_ATTEMPTS = 6
SCALE_FLOOR = np.float32(1e-7)


class NotPositiveDefinite(Exception):
    pass


def group_layout(cols, group_size):
    """(width, groups): columns per group and number of groups."""
    width = cols if group_size == 0 else group_size
    groups = 1 if group_size == 0 else -(-cols // group_size)
    return width, groups


def scales_from_clips(clip, qmax):
    """float16 scales from float32 clips: max(clip / qmax, 1e-7) in float32."""
    s32 = np.maximum(clip / np.float32(qmax), SCALE_FLOOR).astype(np.float32)
    with np.errstate(over="ignore"):
        s16 = s32.astype(np.float16)
    if not np.all(np.isfinite(s16)):
        raise OverflowError("a scale exceeds the float16 range")
    return s16


def choose_scales(W, qmax, group_size, k):
    """float16 scales [rows, groups] from float64 W (values exact in f32)."""
    rows, cols = W.shape
    width, groups = group_layout(cols, group_size)
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
        scales[:, g] = scales_from_clips(clip, qmax)
    return scales


def percentile_clip(sorted_abs, p):
    """float32 clips [rows] at quantile p of each row of sorted |v| [rows, n]."""
    rows, n = sorted_abs.shape
    if n == 0:
        return np.zeros(rows, dtype=np.float32)
    if p == 1.0:
        clip = sorted_abs[:, n - 1]
    else:
        t = p * (n - 1)
        lo = int(np.floor(t))
        hi = min(lo + 1, n - 1)
        frac = t - lo
        a_lo = sorted_abs[:, lo]
        a_hi = sorted_abs[:, hi]
        clip = a_lo + (a_hi - a_lo) * frac
    return clip.astype(np.float32)


def quantize(values, scales16, qmax):
    """Codes (float64 [rows, n]): clip(rint(float32(v) / float32(s)), ±qmax)."""
    s32 = scales16.astype(np.float32)[:, None]
    return np.clip(np.rint(values.astype(np.float32) / s32), -qmax, qmax)


def candidate_scores(block, weights, scales16, qmax):
    """Per-row score sum_j w_j (v_j - q_j s)^2 (float64 [rows])."""
    q = quantize(block, scales16, qmax)
    e = block - q * scales16.astype(np.float64)[:, None]
    return np.sum(weights[None, :] * (e * e), axis=1)


def first_minimum(scores):
    """Index of the smallest of scores[c] along axis 0; ties to the earlier c."""
    best = scores[0].copy()
    choice = np.zeros(best.shape, dtype=np.int64)
    for c in range(1, scores.shape[0]):
        better = scores[c] < best
        choice[better] = c
        best = np.where(better, scores[c], best)
    return choice


def search_scales(W, qmax, group_size, percentiles, weights, scope):
    """(scales float16 [rows, groups], choices int64 [rows, groups]) chosen
    by the percentile search; weights (float64 [cols]) weigh each column's
    squared error."""
    rows, cols = W.shape
    width, groups = group_layout(cols, group_size)
    n_cand = len(percentiles)
    cand_scales = np.empty((n_cand, rows, groups), dtype=np.float16)
    scores = np.empty((n_cand, rows, groups), dtype=np.float64)
    for g in range(groups):
        block = W[:, g * width:(g + 1) * width]
        w = weights[g * width:(g + 1) * width]
        sorted_abs = np.sort(np.abs(block), axis=1)
        for c, p in enumerate(percentiles):
            s16 = scales_from_clips(percentile_clip(sorted_abs, float(p)), qmax)
            cand_scales[c, :, g] = s16
            scores[c, :, g] = candidate_scores(block, w, s16, qmax)
    if scope == 0:
        choices = first_minimum(scores)
    else:
        totals = np.array([np.sum(scores[c]) for c in range(n_cand)])
        choices = np.full((rows, groups), first_minimum(totals), dtype=np.int64)
    scales = np.take_along_axis(cand_scales, choices[None], axis=0)[0]
    return scales, choices


def pick_scales(W, H_sym, qmax, group_size, k, percentiles, objective, scope):
    """(scales, choices): the percentile search when percentiles is
    non-empty, SDClip / absmax otherwise (choices all -1)."""
    if percentiles is None or len(percentiles) == 0:
        scales = choose_scales(W, qmax, group_size, k)
        return scales, np.full(scales.shape, -1, dtype=np.int64)
    if objective == 0:
        weights = np.ones(W.shape[1])
    else:
        weights = np.diag(H_sym).copy()
    return search_scales(W, qmax, group_size, percentiles, weights, scope)


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


def hessian_error(W_orig, H_orig, codes, scales, width):
    """tr(E H E^T) / tr(W H W^T), E = W - Q, Q dequantized in original order."""
    cols = W_orig.shape[1]
    Q = codes.astype(np.float64) * np.repeat(scales.astype(np.float64), width, axis=1)[:, :cols]
    E = W_orig - Q
    num = np.sum((E @ H_orig) * E)
    den = np.sum((W_orig @ H_orig) * W_orig)
    hess_err = num / den if den != 0 else (0.0 if num == 0 else np.inf)
    return float(hess_err)


def rate_bits(W, scales, qmax, width):
    """bits(q) = -log2 p(q) for q = -qmax..qmax (index q + qmax), with
    p(q) = (count(q) + 1/2) / (N + L/2) over the round-to-nearest codes of W
    (the values the scales were chosen from) at those scales, L = 2 qmax + 1
    codes."""
    cols = W.shape[1]
    col_scales32 = scales.astype(np.float32)[:, np.arange(cols) // width]
    q = quantize_cols(W, col_scales32, qmax).astype(np.int64)
    counts = np.bincount((q + qmax).ravel(), minlength=2 * qmax + 1).astype(np.float64)
    total = counts.sum() + (2 * qmax + 1) / 2.0
    return np.log2(total) - np.log2(counts + 0.5)


def quantize_cols(W, col_scales32, qmax):
    return np.clip(np.rint(W.astype(np.float32) / col_scales32), -qmax, qmax)


def gptq(W_in, H_in, bits, group_size, k, damp, act_order, block_size,
         percentiles=None, objective=0, scope=0, rdo=0.0):
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

    scales, choices = pick_scales(W, H_orig, qmax, group_size, k,
                                  percentiles, objective, scope)
    width, _ = group_layout(cols, group_size)
    bits_of = rate_bits(W, scales, qmax, width) if rdo > 0 else None

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
            if rdo > 0:
                # Rate-distortion: one step toward zero where
                # (t - q)^2 + rdo * bits(q) is strictly smaller.
                t = (w.astype(np.float32) / s32).astype(np.float64)
                toward = q - np.sign(q)
                cost = lambda c: (t - c) ** 2 + rdo * bits_of[(c + qmax).astype(np.int64)]
                q = np.where((q != 0) & (cost(toward) < cost(q)), toward, q)
            codes[:, perm[col]] = q.astype(np.int8)
            err = (w - q.astype(np.float64) * s32.astype(np.float64)) / U[col, col]
            W1[:, i:] -= np.outer(err, U[col, col:end])
            Err[:, i] = err
        W[:, end:] -= Err @ U[start:end, end:]

    hess_err = hessian_error(W_orig, H_orig, codes, scales, width)
    return codes, scales, hess_err, damp_used, attempts, choices


def rtn(W_in, H_in, bits, group_size, k, percentiles=None, objective=0, scope=0):
    W_orig = np.asarray(W_in, dtype=np.float64)
    H_orig = np.asarray(H_in, dtype=np.float64)
    H_orig = (H_orig + H_orig.T) / 2.0
    cols = W_orig.shape[1]
    qmax = 2 ** (bits - 1) - 1

    scales, choices = pick_scales(W_orig, H_orig, qmax, group_size, k,
                                  percentiles, objective, scope)
    width, _ = group_layout(cols, group_size)
    # Every column uses the scale of its group; float32 division, half to even.
    col_scales32 = np.repeat(scales.astype(np.float32), width, axis=1)[:, :cols]
    q = np.clip(np.rint(W_orig.astype(np.float32) / col_scales32), -qmax, qmax)
    codes = q.astype(np.int8)

    hess_err = hessian_error(W_orig, H_orig, codes, scales, width)
    return codes, scales, hess_err, 0.0, 0, choices


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


def optional_choice(data, name, default):
    """An optional int64 scalar input that must be 0 or 1."""
    value = int(data[name]) if name in data else default
    if value not in (0, 1):
        raise ValueError(f"{name} must be 0 or 1, got {value}")
    return value


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 64
    data = load(argv[1])
    try:
        method = optional_choice(data, "method", 0)
        objective = optional_choice(data, "objective", 0)
        scope = optional_choice(data, "scope", 0)
        percentiles = None
        if "percentiles" in data:
            percentiles = [float(p) for p in np.asarray(data["percentiles"], dtype=np.float64).ravel()]
            if not all(0.0 < p <= 1.0 for p in percentiles):
                raise ValueError(f"percentiles must lie in (0, 1], got {percentiles}")
    except ValueError as e:
        sys.stderr.write(f"gptq_ref: {e}\n")
        return 64
    bits = int(data["bits"])
    group_size = int(data["group_size"])
    k = float(data["k"])
    try:
        if method == 1:
            codes, scales, hess_err, damp_used, attempts, choices = rtn(
                data["W"], data["H"], bits=bits, group_size=group_size, k=k,
                percentiles=percentiles, objective=objective, scope=scope,
            )
        else:
            codes, scales, hess_err, damp_used, attempts, choices = gptq(
                data["W"], data["H"], bits=bits, group_size=group_size, k=k,
                damp=float(data["damp"]),
                act_order=bool(data["act_order"]),
                block_size=int(data["block_size"]),
                percentiles=percentiles, objective=objective, scope=scope,
                rdo=float(data["rdo"]) if "rdo" in data else 0.0,
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
        "choices": choices,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
