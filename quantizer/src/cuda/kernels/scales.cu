// Fixed-rule scales (SDClip, absmax) of every (row, group) of every matrix in
// the batch, one warp per (row, group); also checks every weight is finite
// (for all clip modes, so a search's matrices are checked here too).
// Grid: x strides over (row, group) units, y = descriptor.

extern "C" __global__ void pgq_scales_fixed(const MatDesc* mats, const float* weights,
                                            const u8* dead, float* scales, u16* scale_bits,
                                            u32* flags) {
    const MatDesc m = mats[blockIdx.y];
    const int lane = threadIdx.x & 31;
    const u64 warps = blockDim.x >> 5;
    const u64 units = m.rows * m.groups;
    const float qmax = (float)m.qmax;
    for (u64 unit = blockIdx.x * warps + (threadIdx.x >> 5); unit < units;
         unit += gridDim.x * warps) {
        const u64 row = unit / m.groups, g = unit % m.groups;
        const u64 c0 = g * m.group_width;
        const u64 c1 = min(c0 + m.group_width, m.cols);
        const u64 n = c1 - c0;
        double sum = 0.0;
        float amax = 0.0f;
        int bad = 0;
        for (u64 c = c0 + lane; c < c1; c += 32) {
            float x = pgq_start_value(m, weights, dead, row, c);
            if (!isfinite(x)) bad = 1;
            sum += (double)x;
            amax = fmaxf(amax, fabsf(x));
        }
        bad = __any_sync(0xffffffffu, bad);
        if (bad) {
            if (lane == 0) atomicOr(&flags[m.id], PGQ_FLAG_NONFINITE_W);
            continue;
        }
        if (m.clip_mode == 2) continue;  // a search chooses these scales
        sum = pgq_warp_sum(sum);
        amax = pgq_warp_max(amax);
        float clip;
        if (m.clip_mode == 1) {
            clip = amax;
        } else if (n == 0) {
            clip = 0.0f;
        } else if (n == 1) {
            clip = amax;  // |x|: std is undefined for one value
        } else {
            // Two-pass unbiased std in f64, as scale.rs.
            const double mean = sum / (double)n;
            double squares = 0.0;
            for (u64 c = c0 + lane; c < c1; c += 32) {
                double d = (double)pgq_start_value(m, weights, dead, row, c) - mean;
                squares += d * d;
            }
            squares = pgq_warp_sum(squares);
            clip = (float)(m.k * sqrt(squares / (double)(n - 1)));
        }
        if (lane == 0) {
            u16 bits = 0;
            if (!pgq_fp16_scale(clip, qmax, &bits)) {
                atomicOr(&flags[m.id], PGQ_FLAG_SCALE_OVERFLOW);
                bits = 0x3C00u;  // 1.0: the tensor goes back to the CPU anyway
            }
            scale_bits[m.scale_off + unit] = bits;
            scales[m.scale_off + unit] = pgq_f16_value(bits);
        }
    }
}
