// The percentile clip search (search.rs): for each (row, group), candidate p
// clips at the linear interpolation of the sorted |w| at t = p (n - 1); its
// scale is rounded to fp16 and scored by sum_j w_j (x_j - q_j s)^2 in f64,
// w_j = 1 (MSE) or H_jj (Hessian objective). Then the best candidate per
// (row, group) or per tensor; ties keep the earlier candidate.

// One block per (row, group): |w| sorted in shared memory (bitonic, padded
// with +inf to sort_len, a power of two >= the group's width), then every
// candidate scored with a block reduction. Grid: x strides over units,
// y = descriptor. Dynamic shared memory: sort_len floats.
extern "C" __global__ void pgq_clip_candidates(const MatDesc* mats, const float* weights,
                                               const u8* dead, const float* hessians,
                                               const float* percentiles, double* scores,
                                               u16* cand_bits, u32* flags, u32 sort_len) {
    extern __shared__ float sorted[];
    __shared__ double partial[32];
    const MatDesc m = mats[blockIdx.y];
    if (m.clip_mode != 2) return;
    const u32 tid = threadIdx.x, threads = blockDim.x;
    const u64 units = m.rows * m.groups;
    const float qmax = (float)m.qmax;
    for (u64 unit = blockIdx.x; unit < units; unit += gridDim.x) {
        const u64 row = unit / m.groups, g = unit % m.groups;
        const u64 c0 = g * m.group_width;
        const u64 c1 = min(c0 + m.group_width, m.cols);
        const u64 n = c1 - c0;
        u32 len = 1;
        while (len < n) len <<= 1;
        if (len > sort_len) {  // the host never launches such a matrix
            if (tid == 0) atomicOr(&flags[m.id], PGQ_FLAG_NONFINITE_W);
            return;
        }
        for (u32 i = tid; i < len; i += threads)
            sorted[i] = i < n ? fabsf(pgq_start_value(m, weights, dead, row, c0 + i))
                              : __int_as_float(0x7f800000);
        __syncthreads();
        for (u32 k = 2; k <= len; k <<= 1) {
            for (u32 j = k >> 1; j > 0; j >>= 1) {
                for (u32 i = tid; i < len; i += threads) {
                    const u32 other = i ^ j;
                    if (other > i) {
                        const float a = sorted[i], b = sorted[other];
                        const bool up = (i & k) == 0;
                        if (up ? a > b : a < b) {
                            sorted[i] = b;
                            sorted[other] = a;
                        }
                    }
                }
                __syncthreads();
            }
        }
        for (u64 c = 0; c < m.cands; ++c) {
            const float p = percentiles[m.pct_off + c];
            float clip = 0.0f;
            if (n > 0) {
                if (p >= 1.0f) {
                    clip = sorted[n - 1];
                } else {
                    const double t = (double)p * (double)(n - 1);
                    const u64 lo = min((u64)floor(t), n - 1);
                    const u64 hi = min(lo + 1, n - 1);
                    const double a = sorted[lo], b = sorted[hi];
                    clip = (float)(a + (b - a) * (t - (double)lo));
                }
            }
            u16 bits = 0;
            const bool ok = pgq_fp16_scale(clip, qmax, &bits);
            const float step = ok ? pgq_f16_value(bits) : 1.0f;
            const double s = (double)step;
            double part = 0.0;
            for (u64 j = c0 + tid; j < c1; j += threads) {
                const float x = pgq_start_value(m, weights, dead, row, j);
                const int q = pgq_quantize(x, step, qmax);
                const double e = (double)x - (double)q * s;
                const double w =
                    m.objective == 1 ? (double)hessians[m.h_off + j * m.cols + j] : 1.0;
                part += w * e * e;
            }
            part = pgq_warp_sum(part);
            if ((tid & 31) == 0) partial[tid >> 5] = part;
            __syncthreads();
            if (tid == 0) {
                double total = 0.0;
                for (u32 w = 0; w < (threads + 31) / 32; ++w) total += partial[w];
                scores[m.score_off + unit * m.cands + c] = total;
                cand_bits[m.score_off + unit * m.cands + c] = bits;
                if (!ok) atomicOr(&flags[m.id], PGQ_FLAG_SCALE_OVERFLOW);
            }
            __syncthreads();
        }
    }
}

// Picks each search matrix's candidates: per (row, group), or one for the
// whole tensor (scores summed over units in order by one thread per
// candidate, as search.rs does). One block per descriptor (grid: y).
extern "C" __global__ void pgq_clip_pick(const MatDesc* mats, const double* scores,
                                         const u16* cand_bits, float* scales, u16* scale_bits,
                                         u8* choices) {
    __shared__ double totals[64];
    __shared__ u32 best_all;
    const MatDesc m = mats[blockIdx.y];
    if (m.clip_mode != 2) return;
    const u64 units = m.rows * m.groups;
    const double* sc = scores + m.score_off;
    if (m.scope == 1) {
        for (u64 c = threadIdx.x; c < m.cands; c += blockDim.x) {
            double t = 0.0;
            for (u64 u = 0; u < units; ++u) t += sc[u * m.cands + c];
            totals[c] = t;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            u32 best = 0;
            for (u32 c = 1; c < m.cands; ++c)
                if (totals[c] < totals[best]) best = c;
            best_all = best;
        }
        __syncthreads();
    }
    for (u64 u = threadIdx.x; u < units; u += blockDim.x) {
        u32 best = 0;
        if (m.scope == 1) {
            best = best_all;
        } else {
            for (u32 c = 1; c < m.cands; ++c)
                if (sc[u * m.cands + c] < sc[u * m.cands + best]) best = c;
        }
        const u16 bits = cand_bits[m.score_off + u * m.cands + best];
        scale_bits[m.scale_off + u] = bits;
        scales[m.scale_off + u] = pgq_f16_value(bits);
        choices[m.choice_off + u] = (u8)best;
    }
}
