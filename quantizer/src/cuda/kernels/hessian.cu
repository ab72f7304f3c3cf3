// GPTQ's preparation of H (gptq.rs steps 1, 4, 5) around cuSOLVER:
// check H, build the damped, permuted J H J in f64 for potrf, and turn
// M^-1 (cuBLAS trsm of the Cholesky factor M against I) into
// U = J M^-1 J, the upper Cholesky factor of H^-1 (linalg.rs explains the
// reversal: one factorization, no second Cholesky of the inverse).

// Flags Hessians with a non-finite entry or a negative diagonal (both typed
// errors on the CPU path). Grid: x strides over entries, y = descriptor.
extern "C" __global__ void pgq_hessian_check(const MatDesc* mats, const float* hessians,
                                             u32* flags) {
    const MatDesc m = mats[blockIdx.y];
    if (m.h_off == PGQ_NONE) return;
    const u64 n = m.cols, total = n * n;
    int bad = 0;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (u64)gridDim.x * blockDim.x) {
        const float v = hessians[m.h_off + i];
        if (!isfinite(v) || (i / n == i % n && v < 0.0f)) bad = 1;
    }
    if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0)
        atomicOr(&flags[m.id], PGQ_FLAG_BAD_HESSIAN);
}

// A = J P^T ((H + H^T) / 2 with dead diagonals set to 1) P J + damp_add I
// (column-major; symmetric, so also row-major), and B = I, for GPTQ
// descriptors. P is act-order's permutation. Grid: x strides over entries,
// y = descriptor.
extern "C" __global__ void pgq_hessian_prepare(const MatDesc* mats, const float* hessians,
                                               const u32* perm, double* factors) {
    const MatDesc m = mats[blockIdx.y];
    if (m.method != 1) return;
    const u64 n = m.cols, total = n * n;
    const float* h = hessians + m.h_off;
    const u32* pm = perm + m.perm_off;
    double* a = factors + m.f_off;
    double* b = a + total;
    for (u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (u64)gridDim.x * blockDim.x) {
        const u64 r = idx / n, c = idx % n;
        const u64 p = n - 1 - r, q = n - 1 - c;  // sweep positions
        const u64 i = pm[p], j = pm[q];          // original columns
        double v;
        if (p == q) {
            const double d = (double)h[i * n + i];
            v = (d == 0.0 ? 1.0 : d) + m.damp_add;
        } else {
            v = ((double)h[i * n + j] + (double)h[j * n + i]) / 2.0;
        }
        a[idx] = v;
        b[idx] = r == c ? 1.0 : 0.0;
    }
}

// U (f32, row-major, upper) from X = M^-1 (column-major, lower, in the second
// half of the factor workspace): U[i][j] = X[n-1-i][n-1-j]. Flags the
// attempt when U is not finite or its diagonal not positive (gptq.rs then
// retries with ten times the damping). Grid: x strides, y = descriptor.
extern "C" __global__ void pgq_u_from_inverse(const MatDesc* mats, const double* factors,
                                              float* ufac, u32* attempt_flags) {
    const MatDesc m = mats[blockIdx.y];
    if (m.method != 1) return;
    const u64 n = m.cols, total = n * n;
    const double* x = factors + m.f_off + total;
    float* u = ufac + m.u_off;
    int bad = 0;
    for (u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (u64)gridDim.x * blockDim.x) {
        const u64 i = idx / n, j = idx % n;
        float v = 0.0f;
        if (i <= j) {
            v = (float)x[(n - 1 - i) + (n - 1 - j) * n];
            if (!isfinite(v) || (i == j && !(v > 0.0f))) bad = 1;
        }
        u[idx] = v;
    }
    if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0)
        atomicOr(&attempt_flags[m.id], PGQ_FLAG_NOT_PD);
}
