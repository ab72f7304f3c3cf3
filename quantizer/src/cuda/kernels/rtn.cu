// Round to nearest (rtn.rs): code = round_half_to_even(x / scale), clamped,
// with the scale of the element's (row, group). RTN descriptors only.
// Grid: x strides over elements, y = descriptor.
extern "C" __global__ void pgq_rtn_codes(const MatDesc* mats, const float* weights,
                                         const float* scales, signed char* codes) {
    const MatDesc m = mats[blockIdx.y];
    if (m.method != 0) return;
    const u64 total = m.rows * m.cols;
    const u32 width = (u32)m.group_width;
    const float qmax = (float)m.qmax;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (u64)gridDim.x * blockDim.x) {
        const u64 row = i / m.cols, col = i % m.cols;
        const float s = scales[m.scale_off + row * m.groups + (u32)col / width];
        codes[m.code_off + i] = (signed char)pgq_quantize(weights[m.w_off + i], s, qmax);
    }
}
