// The GPTQ sweep (gptq.rs step 6) for a whole batch of matrices in one
// launch. Rows are independent given U, so each block owns a tile of
// PGQ_TILE_ROWS rows of one matrix (a task: descriptor, first row) and walks
// every block of columns, its in-block updates and its trailing update,
// with no synchronisation beyond its own barriers.
//
// Per column block [b0, b1): U's diagonal block goes to shared memory; each
// warp sweeps 4 rows at once, a row's block of columns held in registers
// (lane l holds columns b0 + l + 32 k), the column being rounded broadcast
// by a shuffle; the errors (w - q s) / U_ii go to shared memory; then the
// block updates its rows' later columns, W[:, b1:] -= E U[b0:b1, b1:], tile
// by tile of 128 columns of U. Weights live in a permuted working copy in
// global memory (sweep order, dead columns zeroed); codes go straight to
// their original columns. Precision: f32 (the CPU reference is f64).
//
// Dynamic shared memory: (PGQ_MAX_BLOCK + PGQ_TILE_ROWS) * PGQ_MAX_BLOCK
// floats (80 KB). tasks: pairs (descriptor, first row).
#define PGQ_ROWS_PER_WARP (PGQ_TILE_ROWS / (PGQ_SWEEP_THREADS / 32))
#define PGQ_SLOTS (PGQ_MAX_BLOCK / 32)

extern "C" __global__ void __launch_bounds__(PGQ_SWEEP_THREADS)
    pgq_gptq_sweep(const MatDesc* mats, const u32* tasks, const float* weights, float* work,
                   const float* ufac, const float* scales, const u32* perm, const u8* dead,
                   signed char* codes) {
    extern __shared__ float smem[];
    float* ub = smem;                                  // [MAX_BLOCK][MAX_BLOCK]
    float* err = smem + PGQ_MAX_BLOCK * PGQ_MAX_BLOCK; // [TILE_ROWS][MAX_BLOCK]
    const MatDesc m = mats[tasks[2 * blockIdx.x]];
    const u64 r0 = tasks[2 * blockIdx.x + 1];
    const u64 n = m.cols;
    const u64 tr = min((u64)PGQ_TILE_ROWS, m.rows - r0);
    const float qmax = (float)m.qmax;
    const u32 width = (u32)m.group_width;
    const u32* pm = perm + m.perm_off;
    const float* U = ufac + m.u_off;
    float* wk = work + m.work_off + r0 * n;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;

    for (u64 idx = threadIdx.x; idx < tr * n; idx += blockDim.x) {
        const u64 r = idx / n, pos = idx % n;
        wk[idx] = pgq_start_value(m, weights, dead, r0 + r, pm[pos]);
    }
    for (u32 i = threadIdx.x; i < PGQ_TILE_ROWS * PGQ_MAX_BLOCK; i += blockDim.x) err[i] = 0.0f;
    __syncthreads();

    const u64 bs = m.block_size;
    for (u64 b0 = 0; b0 < n; b0 += bs) {
        const u64 b1 = min(b0 + bs, n);
        const int bw = (int)(b1 - b0);
        for (int idx = threadIdx.x; idx < bw * bw; idx += blockDim.x) {
            const int i = idx / bw, j = idx % bw;
            ub[i * PGQ_MAX_BLOCK + j] = U[(b0 + i) * n + b0 + j];
        }
        __syncthreads();

        // In-block sweep: warp w owns tile rows w + 8 t.
        float x[PGQ_ROWS_PER_WARP][PGQ_SLOTS];
#pragma unroll
        for (int t = 0; t < PGQ_ROWS_PER_WARP; ++t) {
            const u64 r = warp + 8 * t;
#pragma unroll
            for (int k = 0; k < PGQ_SLOTS; ++k) {
                const int j = lane + 32 * k;
                x[t][k] = (r < tr && j < bw) ? wk[r * n + b0 + j] : 0.0f;
            }
        }
        for (int i = 0; i < bw; ++i) {
            const int slot = i >> 5, owner = i & 31;
            const u32 col = pm[b0 + i];
            const float uii = ub[i * PGQ_MAX_BLOCK + i];
#pragma unroll
            for (int t = 0; t < PGQ_ROWS_PER_WARP; ++t) {
                const u64 r = warp + 8 * t;
                float mine = x[t][0];
#pragma unroll
                for (int k = 1; k < PGQ_SLOTS; ++k)
                    if (slot == k) mine = x[t][k];
                const float xi = __shfl_sync(0xffffffffu, mine, owner);
                if (r < tr) {
                    const float s = scales[m.scale_off + (r0 + r) * m.groups + col / width];
                    const int q = pgq_quantize(xi, s, qmax);
                    const float e = (xi - (float)q * s) / uii;
                    if (lane == 0) {
                        codes[m.code_off + (r0 + r) * n + col] = (signed char)q;
                        err[r * PGQ_MAX_BLOCK + i] = e;
                    }
#pragma unroll
                    for (int k = 0; k < PGQ_SLOTS; ++k) {
                        const int j = lane + 32 * k;
                        if (j > i && j < bw) x[t][k] -= e * ub[i * PGQ_MAX_BLOCK + j];
                    }
                }
            }
        }
        __syncthreads();

        // Trailing update of the later columns, 128 at a time.
        for (u64 c0 = b1; c0 < n; c0 += PGQ_MAX_BLOCK) {
            const int cw = (int)min((u64)PGQ_MAX_BLOCK, n - c0);
            for (int idx = threadIdx.x; idx < bw * PGQ_MAX_BLOCK; idx += blockDim.x) {
                const int i = idx / PGQ_MAX_BLOCK, j = idx % PGQ_MAX_BLOCK;
                ub[idx] = j < cw ? U[(b0 + i) * n + c0 + j] : 0.0f;
            }
            __syncthreads();
            const int j = threadIdx.x % PGQ_MAX_BLOCK;
            const int rbase = threadIdx.x / PGQ_MAX_BLOCK;
            const int rstep = PGQ_SWEEP_THREADS / PGQ_MAX_BLOCK;
            float acc[PGQ_TILE_ROWS / (PGQ_SWEEP_THREADS / PGQ_MAX_BLOCK)];
#pragma unroll
            for (int t = 0; t < PGQ_TILE_ROWS / rstep; ++t) acc[t] = 0.0f;
            for (int i = 0; i < bw; ++i) {
                const float u = ub[i * PGQ_MAX_BLOCK + j];
#pragma unroll
                for (int t = 0; t < PGQ_TILE_ROWS / rstep; ++t)
                    acc[t] += err[(rbase + rstep * t) * PGQ_MAX_BLOCK + i] * u;
            }
            if (j < cw) {
#pragma unroll
                for (int t = 0; t < PGQ_TILE_ROWS / rstep; ++t) {
                    const u64 r = rbase + rstep * t;
                    if (r < tr) wk[r * n + c0 + j] -= acc[t];
                }
            }
            __syncthreads();
        }
    }
}
