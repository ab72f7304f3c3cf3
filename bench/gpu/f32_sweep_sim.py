"""How much does an f32 GPTQ sweep (the CUDA kernel's precision) disagree
with the f64 sweep (the CPU reference)? A NumPy emulation, no GPU needed.

Same algorithm and update order as kernels/sweep.cu: U (f64 factor rounded
to f32), blocks of 128 columns, in-block updates column by column, the
trailing update as one f32 product per block; the f64 run is the CPU path.
Inputs: heavy-tailed weights and the Hessian of correlated activations
(a few shared factors plus noise), int6 SDClip k 12.85 per-row scales,
act-order, damping 0.01.

    python3 bench/gpu/f32_sweep_sim.py [rows] [cols ...]
"""
import sys
import numpy as np


def sweep(W, U, scale, qmax, dtype, block=128):
    W = W.astype(dtype).copy()
    U = U.astype(dtype)
    s = scale.astype(dtype)
    rows, n = W.shape
    Q = np.zeros((rows, n), dtype=np.int8)
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        E = np.zeros((rows, b1 - b0), dtype=dtype)
        for i in range(b0, b1):
            x = W[:, i]
            q = np.clip(np.rint(x.astype(np.float32) / scale), -qmax, qmax)
            Q[:, i] = q
            e = (x - q.astype(dtype) * s) / U[i, i]
            E[:, i - b0] = e
            W[:, i + 1:b1] -= e[:, None] * U[i, i + 1:b1][None, :]
        W[:, b1:] -= E @ U[b0:b1, b1:]
    return Q


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    widths = [int(c) for c in sys.argv[2:]] or [512, 2048]
    rng = np.random.default_rng(0)
    qmax = 31
    for n in widths:
        samples = 4 * n
        X = rng.standard_normal((samples, 8)) @ rng.standard_normal((8, n))
        X = X * (0.5 + rng.random(n)) + 0.3 * rng.standard_normal((samples, n))
        H = X.T @ X / samples
        W = rng.standard_normal((rows, n)) * 0.02
        W *= np.where(rng.random((rows, n)) < 0.01, 6.0, 1.0)
        W = W.astype(np.float32).astype(np.float64)
        std = W.std(axis=1, ddof=1)
        scale = np.maximum((12.85 * std).astype(np.float32) / np.float32(qmax),
                           np.float32(1e-7)).astype(np.float16).astype(np.float32)
        perm = np.argsort(-np.diag(H), kind="stable")
        Hp = H[perm][:, perm] + 0.01 * np.mean(np.diag(H)) * np.eye(n)
        U = np.linalg.cholesky(np.linalg.inv(Hp)).T
        Wp = W[:, perm]
        q64 = sweep(Wp, U, scale[:, None].ravel(), qmax, np.float64)
        q32 = sweep(Wp, U, scale[:, None].ravel(), qmax, np.float32)
        agree = (q64 == q32).mean(axis=1)

        def herr(Q):
            E = Wp - Q * scale[:, None].astype(np.float64)
            return np.einsum("ij,jk,ik->", E, Hp, E) / np.einsum("ij,jk,ik->", Wp, Hp, Wp)

        e64, e32 = herr(q64), herr(q32)
        print(f"{rows}x{n}: codes equal {100 * agree.mean():.4f}% (worst row "
              f"{100 * agree.min():.2f}%), H-weighted error {e64:.5e} vs {e32:.5e} "
              f"({100 * abs(e32 - e64) / e64:.3f}% apart)")


if __name__ == "__main__":
    main()
