// pgq CUDA kernels: what every kernel shares. The arithmetic here must match
// quantizer/src/scale.rs bit for bit (fp16 scales with the 1e-7 floor, codes
// rounded half to even and clamped), since CPU and CUDA codes are compared
// entry by entry. No headers: NVRTC compiles this without a CUDA toolkit.

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

// An absent offset (no Hessian, no dead-column mask, ...).
#define PGQ_NONE 0xFFFFFFFFFFFFFFFFull
#define PGQ_SCALE_FLOOR 1e-7f
// Widest GPTQ block the sweep kernel holds (columns per lazy-update block).
#define PGQ_MAX_BLOCK 128
// Rows per sweep task; threads per sweep block (8 warps of 4 rows each).
#define PGQ_TILE_ROWS 32
#define PGQ_SWEEP_THREADS 256

// Per-matrix flags (atomicOr into flags[desc.id]). Any flag sends the
// tensor back to the CPU path, which reports the exact typed error.
#define PGQ_FLAG_NONFINITE_W 1u
#define PGQ_FLAG_SCALE_OVERFLOW 2u
#define PGQ_FLAG_BAD_HESSIAN 4u
#define PGQ_FLAG_NOT_PD 8u

// One matrix of the batch. Every field is 8 bytes, so the layout has no
// padding; quantizer/src/cuda/layout.rs (MatDesc) mirrors it field by field.
// Offsets count elements of the arena they index.
struct MatDesc {
    u64 id;          // index into flags
    u64 rows;
    u64 cols;
    u64 groups;      // scales per row
    u64 group_width; // columns per group (cols when one scale per row)
    u64 qmax;
    u64 method;      // 0 RTN, 1 GPTQ
    u64 clip_mode;   // 0 SDClip, 1 absmax, 2 percentile search
    u64 objective;   // search: 0 MSE, 1 Hessian diagonal
    u64 scope;       // search: 0 per row (group), 1 per tensor
    u64 cands;       // search: candidate count
    u64 block_size;  // GPTQ: columns per block, 1..=PGQ_MAX_BLOCK
    u64 w_off;       // f32 weights, rows x cols, original order
    u64 code_off;    // i8 codes, rows x cols, original order
    u64 scale_off;   // f32 scales and their fp16 bits, rows x groups
    u64 h_off;       // f32 Hessian, cols x cols, or PGQ_NONE
    u64 dead_off;    // u8 dead-column mask by original column, or PGQ_NONE
    u64 perm_off;    // u32 sweep position -> original column (GPTQ)
    u64 work_off;    // f32 permuted working weights, rows x cols (GPTQ)
    u64 f_off;       // f64 factor then inverse, 2 x cols x cols (GPTQ)
    u64 u_off;       // f32 upper factor U of H^-1, cols x cols (GPTQ)
    u64 pct_off;     // f32 candidate percentiles (search)
    u64 score_off;   // f64 scores and u16 scale bits, rows x groups x cands
    u64 choice_off;  // u8 chosen candidate, rows x groups (search)
    double k;        // SDClip k
    double damp_add; // GPTQ: damp * mean(diag H) of this attempt
};

// IEEE round-to-nearest-even f32 -> fp16 (what half::f16::from_f32 does).
__device__ __forceinline__ u16 pgq_f16_bits(float x) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}

__device__ __forceinline__ float pgq_f16_value(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// scale.rs fp16_scale: max(clip / qmax, 1e-7) rounded to fp16; false when
// it overflows fp16; a zero rounding becomes the smallest subnormal.
__device__ __forceinline__ bool pgq_fp16_scale(float clip, float qmax, u16* bits) {
    float s = fmaxf(clip / qmax, PGQ_SCALE_FLOOR);
    u16 h = pgq_f16_bits(s);
    if ((h & 0x7C00u) == 0x7C00u) return false;
    if ((h & 0x7FFFu) == 0) h = 1;
    *bits = h;
    return true;
}

// scale.rs quantize_value: round_half_to_even(x / scale), clamped.
__device__ __forceinline__ int pgq_quantize(float x, float scale, float qmax) {
    float q = rintf(x / scale);
    return (int)fminf(fmaxf(q, -qmax), qmax);
}

// The value a matrix's scales and codes start from: dead columns read 0.
__device__ __forceinline__ float pgq_start_value(const MatDesc& m, const float* weights,
                                                 const u8* dead, u64 row, u64 col) {
    if (m.dead_off != PGQ_NONE && dead[m.dead_off + col]) return 0.0f;
    return weights[m.w_off + row * m.cols + col];
}

__device__ __forceinline__ double pgq_warp_sum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float pgq_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
