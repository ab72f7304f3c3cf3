// Bit-packing of codes (pgq_format::pack_codes, spec/FORMAT.md): code i
// occupies stream bits [i*bits, (i+1)*bits) as two's complement, LSB first,
// stream bit j being bit j % 8 of byte j / 8; unused bits of the last byte
// are zero. One thread per output byte, so no atomics.
struct PackDesc {  // mirrored by quantizer/src/cuda/layout.rs (PackDesc)
    u64 code_off;  // i8 codes
    u64 count;     // codes
    u64 bits;      // 2..=8
    u64 out_off;   // packed bytes, ceil(count * bits / 8)
};

extern "C" __global__ void pgq_pack_codes(const PackDesc* descs, const signed char* codes,
                                          u8* out) {
    const PackDesc d = descs[blockIdx.y];
    const u64 bytes = (d.count * d.bits + 7) / 8;
    const u32 mask = (1u << d.bits) - 1u;
    for (u64 b = (u64)blockIdx.x * blockDim.x + threadIdx.x; b < bytes;
         b += (u64)gridDim.x * blockDim.x) {
        const u64 bit0 = b * 8;
        const u64 first = bit0 / d.bits;
        const u64 last = min((bit0 + 7) / d.bits, d.count - 1);
        u32 byte = 0;
        for (u64 i = first; i <= last; ++i) {
            const u32 field = (u32)(u8)codes[d.code_off + i] & mask;
            const long long shift = (long long)(i * d.bits) - (long long)bit0;
            byte |= shift >= 0 ? field << shift : field >> (-shift);
        }
        out[d.out_off + b] = (u8)(byte & 0xFFu);
    }
}
