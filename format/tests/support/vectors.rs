//! The conformance vectors of spec/vectors/, built deterministically.
//!
//! Shared by `examples/gen_vectors.rs` (which writes them) and
//! `tests/conformance.rs` (which checks that the committed bytes equal the
//! regenerated ones and that the reader treats each as documented).

#![allow(dead_code)]

use std::collections::BTreeMap;

use pgq_format::half::{bf16, f16};
use pgq_format::rans::{self, raw_stream as rans_stream, Part};
use pgq_format::raw::RawFile;
use pgq_format::types::{CodeRange, Counts, QuantFields, Region};
use pgq_format::{
    encode_section, write, write_raw, Compression, ErrorKind, Factor, Grouping, LayoutChoice,
    LowRank, MetaValue, Tensor, TensorData, WriteOptions,
};

pub struct Positive {
    pub name: &'static str,
    pub about: &'static str,
    pub tensors: Vec<Tensor>,
    pub metadata: BTreeMap<String, MetaValue>,
    pub bytes: Vec<u8>,
}

pub struct Negative {
    pub name: &'static str,
    pub about: &'static str,
    pub error: ErrorKind,
    pub bytes: Vec<u8>,
}

const ZSTD: Compression = Compression::Zstd(19);
const BROTLI: Compression = Compression::Brotli {
    quality: 11,
    lgwin: 22,
};

/// The writer's options with `compression` and the 8 MiB split the
/// vectors were first made with (so that they stay byte for byte).
fn opts(compression: Compression) -> WriteOptions {
    WriteOptions {
        compression,
        split_bytes: pgq_format::DEFAULT_SPLIT_BYTES,
        ..WriteOptions::default()
    }
}

// Whoever includes this file declares `rng` beside it (support/mod.rs,
// examples/gen_vectors.rs).
use super::rng;

/// The vectors' generator (SplitMix64), with the draws they need.
struct Rng(rng::SplitMix64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(rng::SplitMix64(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    /// A code in [-max, max], small values more likely (like real codes).
    fn code(&mut self, bits: u8) -> i8 {
        let max = (1i32 << (bits - 1)) - 1;
        let a = (self.next() % (2 * max as u64 + 1)) as i32 - max;
        let b = (self.next() % (2 * max as u64 + 1)) as i32 - max;
        (if self.next() % 4 == 0 { a } else { (a + b) / 2 }) as i8
    }
    fn scale(&mut self) -> f16 {
        f16::from_f32(0.001 + (self.next() % 1000) as f32 * 1e-4)
    }
    fn value(&mut self) -> f32 {
        ((self.next() % 20001) as f32 - 10000.0) * 1e-4
    }
}

fn quantized(rng: &mut Rng, name: &str, shape: &[u64], bits: u8, group_size: u32) -> Tensor {
    let n: u64 = shape.iter().product();
    let cols = *shape.last().unwrap_or(&1);
    let rows = n / cols;
    let groups = if group_size == 0 {
        1
    } else {
        cols.div_ceil(group_size as u64)
    };
    Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        data: TensorData::Quantized {
            bits,
            group_size,
            codes: (0..n).map(|_| rng.code(bits)).collect(),
            scales: (0..rows * groups).map(|_| rng.scale()).collect(),
            correction: None,
        },
    }
}

fn f16s(rng: &mut Rng, name: &str, shape: &[u64]) -> Tensor {
    let n: u64 = shape.iter().product();
    Tensor {
        name: name.into(),
        shape: shape.to_vec(),
        data: TensorData::F16((0..n).map(|_| f16::from_f32(rng.value())).collect()),
    }
}

fn positive(
    name: &'static str,
    about: &'static str,
    tensors: Vec<Tensor>,
    metadata: BTreeMap<String, MetaValue>,
    options: WriteOptions,
) -> Positive {
    let bytes = write(&tensors, &metadata, &options).expect("positive vectors are valid content");
    Positive {
        name,
        about,
        tensors,
        metadata,
        bytes,
    }
}

pub fn positives() -> Vec<Positive> {
    let mut rng = Rng::new(0x5EED_0001);
    let none = BTreeMap::new;
    let mut v = Vec::new();
    v.push(positive(
        "empty",
        "no tensors, no sections, no metadata: the smallest valid file",
        vec![],
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "int8_per_row_zstd",
        "int8 codes, one scale per row, bytes layout, zstd",
        vec![quantized(&mut rng, "emb", &[6, 8], 8, 0)],
        none(),
        opts(ZSTD),
    ));
    v.push(positive(
        "int6_groupwise_partial_brotli",
        "int6, group size 4 over 10 columns (groups of 4, 4, 2), bytes layout, brotli",
        vec![quantized(
            &mut rng,
            "blocks.0.mlp.fc.weight",
            &[3, 10],
            6,
            4,
        )],
        none(),
        opts(BROTLI),
    ));
    v.push(positive(
        "int6_packed_raw",
        "int6 bit-packed 4 codes in 3 bytes, raw section, per-row scales",
        vec![quantized(&mut rng, "w", &[4, 8], 6, 0)],
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "int7_packed_raw_partial",
        "int7 bit-packed 8 codes in 7 bytes, 15 codes (a partial last byte), groupwise 2 over 5 columns",
        vec![quantized(&mut rng, "w", &[3, 5], 7, 2)],
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "low_bits_packed_raw",
        "bit widths 2, 3, 4 and 5, packed, raw",
        (2..=5u8)
            .map(|b| {
                quantized(
                    &mut rng,
                    ["b2", "b3", "b4", "b5"][b as usize - 2],
                    &[3, 7],
                    b,
                    0,
                )
            })
            .collect(),
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "int6_packed_zstd",
        "int6 packed under zstd (a writer may choose packing under a compressor)",
        vec![quantized(&mut rng, "w", &[5, 9], 6, 4)],
        none(),
        WriteOptions {
            compression: ZSTD,
            layout: LayoutChoice::Packed,
            ..WriteOptions::default()
        },
    ));
    v.push(positive(
        "int6_bytes_raw",
        "int6 one code per byte in a raw section",
        vec![quantized(&mut rng, "w", &[2, 6], 6, 0)],
        none(),
        WriteOptions {
            compression: Compression::Raw,
            layout: LayoutChoice::Bytes,
            ..WriteOptions::default()
        },
    ));
    let passthrough = |rng: &mut Rng| {
        vec![
            f16s(rng, "norm.f16", &[5]),
            Tensor {
                name: "gain.bf16".into(),
                shape: vec![2, 3],
                data: TensorData::Bf16((0..6).map(|_| bf16::from_f32(rng.value())).collect()),
            },
            Tensor {
                name: "bias.f32".into(),
                shape: vec![3, 1, 2],
                data: TensorData::F32((0..6).map(|_| rng.value()).collect()),
            },
            Tensor {
                name: "scalar".into(),
                shape: vec![],
                data: TensorData::F32(vec![-0.0]),
            },
        ]
    };
    v.push(positive(
        "passthrough_raw",
        "f16, bf16, f32 passthrough (byte planes), a rank-0 scalar, raw",
        passthrough(&mut rng),
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "passthrough_brotli",
        "f16, bf16, f32 passthrough, brotli",
        passthrough(&mut rng),
        none(),
        opts(BROTLI),
    ));
    v.push(positive(
        "ranks_1_to_4",
        "quantized tensors of rank 1, 2, 3 and 4 (rows = product of all but the last dimension)",
        vec![
            quantized(&mut rng, "r1", &[7], 6, 3),
            quantized(&mut rng, "r2", &[2, 7], 7, 0),
            quantized(&mut rng, "r3", &[2, 3, 4], 8, 3),
            quantized(&mut rng, "r4", &[2, 2, 2, 3], 6, 2),
        ],
        none(),
        opts(ZSTD),
    ));
    let mut meta = BTreeMap::new();
    meta.insert(
        "pgq.producer".to_string(),
        MetaValue::Str("pgq conformance vectors".into()),
    );
    meta.insert("count".to_string(), MetaValue::U64(u64::MAX));
    meta.insert("delta".to_string(), MetaValue::I64(-42));
    meta.insert("k".to_string(), MetaValue::F64(12.85));
    meta.insert("digest".to_string(), MetaValue::Bytes(vec![0, 1, 2, 0xFF]));
    meta.insert("name.ünïcode".to_string(), MetaValue::Str("värde ✓".into()));
    v.push(positive(
        "metadata_all_types",
        "one metadata entry of each type, keys in byte order",
        vec![f16s(&mut rng, "x", &[2])],
        meta,
        opts(Compression::Raw),
    ));
    let model = |rng: &mut Rng| {
        vec![
            quantized(rng, "tok_emb.weight", &[16, 8], 8, 0),
            quantized(rng, "blocks.0.attn.c_q.weight", &[8, 8], 6, 0),
            quantized(rng, "blocks.0.mlp.fc.weight", &[16, 8], 6, 4),
            f16s(rng, "blocks.0.attn_scale", &[8]),
            quantized(rng, "blocks.1.attn.c_q.weight", &[8, 8], 7, 0),
            f16s(rng, "skip_weights", &[1, 8]),
        ]
    };
    v.push(positive(
        "model_by_stream_brotli",
        "a miniature model, default grouping (codes per bit width, scales, passthrough), brotli",
        model(&mut rng),
        none(),
        opts(BROTLI),
    ));
    v.push(positive(
        "model_per_tensor_zstd",
        "the same shape of model, one section per tensor, zstd",
        model(&mut rng),
        none(),
        WriteOptions {
            compression: ZSTD,
            grouping: Grouping::PerTensor,
            ..WriteOptions::default()
        },
    ));
    v.push(positive(
        "model_single_section_raw",
        "one section holding every region, raw with packing",
        model(&mut rng),
        none(),
        WriteOptions {
            compression: Compression::Raw,
            grouping: Grouping::Single,
            ..WriteOptions::default()
        },
    ));
    v.push(positive(
        "extreme_values",
        "codes at +-max, a zero scale, a subnormal scale, the largest fp16 scale, subnormal and signed-zero passthrough",
        vec![
            Tensor {
                name: "edge".into(),
                shape: vec![4, 3],
                data: TensorData::Quantized {
                    bits: 6,
                    group_size: 0,
                    codes: vec![31, -31, 0, 1, -1, 31, -31, 31, 5, 0, 0, 0],
                    scales: vec![f16::from_f32(0.0), f16::from_bits(1), f16::MAX, f16::from_f32(1e-7)],
                    correction: None,
                },
            },
            Tensor { name: "tiny".into(), shape: vec![3], data: TensorData::F16(vec![f16::from_bits(1), f16::from_bits(0x8001), f16::NEG_ZERO]) },
        ],
        none(),
        opts(ZSTD),
    ));
    v.push(positive(
        "passthrough_extremes",
        "the largest finite f16, bf16 and f32 of each sign (one step from infinity), their smallest subnormals, -0.0",
        vec![
            Tensor { name: "f16".into(), shape: vec![4], data: TensorData::F16([0x7BFF, 0xFBFF, 0x0001, 0x8000].map(f16::from_bits).to_vec()) },
            Tensor { name: "bf16".into(), shape: vec![4], data: TensorData::Bf16([0x7F7F, 0xFF7F, 0x0001, 0x8000].map(bf16::from_bits).to_vec()) },
            Tensor { name: "f32".into(), shape: vec![4], data: TensorData::F32([0x7F7F_FFFF, 0xFF7F_FFFF, 0x0000_0001, 0x8000_0000].map(f32::from_bits).to_vec()) },
        ],
        none(),
        opts(BROTLI),
    ));
    v.push(with_frames(
        "zstd_checksum",
        "zstd frames that carry a content checksum (XXH64), content size declared",
        model(&mut rng),
        |d| zstd_frame(d, true, true),
    ));
    v.push(with_frames(
        "zstd_without_content_size",
        "zstd frames that do not declare their content size (the reader counts it), with a checksum",
        model(&mut rng),
        |d| zstd_frame(d, false, true),
    ));
    v.push(positive(
        "large_sections_brotli",
        "a 4.5 MiB section of int8 codes and a 256 KiB one of int6 codes, brotli with a 4 MiB window: back-references reach 48 KiB and more",
        large_model(&mut rng),
        none(),
        opts(Compression::Brotli { quality: 9, lgwin: 22 }),
    ));
    v.push(with_frames(
        "large_sections_zstd",
        "the same shape of model as large_sections_brotli, in zstd frames of many 128 KiB blocks, with a checksum",
        large_model(&mut rng),
        |d| zstd_frame(d, true, true),
    ));
    rans_positives(&mut rng, &mut v);
    lowrank_positives(&mut v);
    v
}

// ------------------------------------------------------------ rANS (§5.5)

/// A matrix of codes whose columns differ in spread: narrow columns hold
/// -1..=1, wide ones the whole range, so the writer gives classes of
/// columns tables of their own (a map of period `cols`).
fn columned(rng: &mut Rng, name: &str, rows: u64, cols: u64, bits: u8) -> Tensor {
    let max = (1i64 << (bits - 1)) - 1;
    let codes = (0..rows * cols)
        .map(|i| {
            let spread = 1 + (i % cols * 7 % cols) * max as u64 / cols;
            ((rng.next() % (2 * spread + 1)) as i64 - spread as i64) as i8
        })
        .collect();
    per_row_matrix(rng, name, rows, cols, bits, codes)
}

/// A `rows x cols` tensor of `codes` with a random scale per row.
fn per_row_matrix(
    rng: &mut Rng,
    name: &str,
    rows: u64,
    cols: u64,
    bits: u8,
    codes: Vec<i8>,
) -> Tensor {
    Tensor {
        name: name.into(),
        shape: vec![rows, cols],
        data: TensorData::Quantized {
            bits,
            group_size: 0,
            codes,
            scales: (0..rows).map(|_| rng.scale()).collect(),
            correction: None,
        },
    }
}

/// A matrix of int6 codes drawn uniformly from `-spread..=spread`.
fn spread(rng: &mut Rng, name: &str, rows: u64, cols: u64, spread: u64) -> Tensor {
    let mut t = quantized(rng, name, &[rows, cols], 6, 0);
    if let TensorData::Quantized { codes, .. } = &mut t.data {
        for c in codes.iter_mut() {
            *c = (rng.next() % (2 * spread + 1)) as i8 - spread as i8;
        }
    }
    t
}

/// Tensors whose every code is `code`: a rANS table of one symbol, which
/// costs no words at all.
fn constant(rng: &mut Rng, name: &str, shape: &[u64], bits: u8, code: i8) -> Tensor {
    let mut t = quantized(rng, name, shape, bits, 0);
    if let TensorData::Quantized { codes, .. } = &mut t.data {
        codes.iter_mut().for_each(|c| *c = code);
    }
    t
}

/// `tensors` written with every section in rANS with `lanes` lanes, one
/// segment per section and one table (the writer's own rule gives fewer
/// lanes to small sections; these exercise what any encoder may choose).
fn rans_with_lanes(tensors: &[Tensor], lanes: usize) -> RawFile {
    recoded(tensors, 3, 1, |d| {
        rans::encode(
            d,
            &[Part {
                len: d.len(),
                cols: 0,
            }],
            lanes,
        )
    })
}

fn rans_positives(rng: &mut Rng, v: &mut Vec<Positive>) {
    let none = BTreeMap::new;
    let rans = WriteOptions::with_compression(Compression::Rans);
    v.push(positive(
        "rans_tables_per_tensor",
        "rANS for every section (minor version 1): int6 tensors of different spreads share a section of codes; the two large ones get tables of their own, the two small ones share a pooled table (one segment); scales and f16 values are rANS too",
        vec![
            spread(rng, "narrow", 64, 64, 1),
            spread(rng, "wide", 64, 64, 31),
            quantized(rng, "small.a", &[8, 40], 6, 16),
            quantized(rng, "small.b", &[4, 40], 6, 0),
            f16s(rng, "norm", &[40]),
        ],
        none(),
        rans,
    ));
    v.push(positive(
        "rans_column_classes",
        "a 256 x 512 int6 matrix whose columns differ in spread: its segment has a map of period 512 naming column-class tables",
        vec![columned(rng, "mlp.fc.weight", 256, 512, 6)],
        none(),
        rans,
    ));
    v.push(positive(
        "rans_one_symbol",
        "every code the same: tables of one symbol with frequency 2^16, no words",
        vec![
            constant(rng, "zeros", &[8, 16], 6, 0),
            constant(rng, "ones", &[3, 5], 8, -1),
        ],
        none(),
        rans,
    ));
    let all: Vec<f32> = (0..2000u32)
        .map(|i| f32::from_bits(0x3000_0000 | (i.wrapping_mul(2654435761) & 0x0FFF_FFFF)))
        .collect();
    v.push(positive(
        "rans_all_symbols",
        "f32 values whose byte planes use all 256 byte values: the largest alphabet",
        vec![Tensor {
            name: "f32".into(),
            shape: vec![2000],
            data: TensorData::F32(all),
        }],
        none(),
        rans,
    ));
    let model = vec![quantized(rng, "w", &[10, 10], 8, 0), f16s(rng, "b", &[3])];
    let f = rans_with_lanes(&model, 7);
    v.push(from_file(
        "rans_lanes_not_dividing",
        "7 lanes over sections of 100 codes (lanes 2 to 6 code one byte fewer), 20 scale bytes and 6 value bytes (lane 6 codes nothing)",
        model,
        f,
    ));
    let model = vec![quantized(rng, "w", &[1, 3], 6, 0)];
    let f = rans_with_lanes(&model, 1);
    v.push(from_file(
        "rans_one_lane",
        "a single lane: plain (non-interleaved) rANS",
        model,
        f,
    ));
    v.push(positive(
        "auto_mixed_codecs",
        "the default codec, auto: rANS for the codes, brotli where it is smaller (a small, repetitive section)",
        vec![
            spread(rng, "w", 128, 128, 12),
            Tensor { name: "ln".into(), shape: vec![256], data: TensorData::F16(vec![f16::ONE; 256]) },
        ],
        none(),
        WriteOptions::default(),
    ));
    v.push(positive(
        "rans_row_runs",
        "a 2048 x 128 int6 matrix whose first 1024 rows centre each column on an offset of its own (as an embedding's untrained rows do) and whose last 1024 rows are alike: one region, two segments, the first with a map of period 128 naming column-class tables, the second with one table",
        vec![drifting(rng, "tok_emb.weight", 2048, 128)],
        none(),
        rans,
    ));
}

/// Rows that change their column statistics halfway: the first half has a
/// per-column offset, the second half none.
fn drifting(rng: &mut Rng, name: &str, rows: u64, cols: u64) -> Tensor {
    let codes = (0..rows * cols)
        .map(|i| {
            let noise = (rng.next() % 7) as i64 - 3;
            let offset = if i / cols < rows / 2 {
                (i % cols % 8) as i64 * 6 - 21
            } else {
                0
            };
            (offset + noise) as i8
        })
        .collect();
    per_row_matrix(rng, name, rows, cols, 6, codes)
}

/// Codes that repeat a block of a little over 48 KiB, changing a few codes
/// in each repeat: cheap to store, yet every repeat is decoded through
/// back-references longer than a 32 KiB window.
fn large_quantized(rng: &mut Rng, name: &str, rows: u64, cols: u64, bits: u8) -> Tensor {
    const PERIOD: usize = (48 << 10) + 5;
    let n = (rows * cols) as usize;
    let block: Vec<i8> = (0..PERIOD).map(|_| rng.code(bits)).collect();
    let mut codes = Vec::with_capacity(n + PERIOD);
    while codes.len() < n {
        let start = codes.len();
        codes.extend_from_slice(&block);
        for _ in 0..32 {
            let at = start + (rng.next() as usize % PERIOD);
            codes[at] = rng.code(bits);
        }
    }
    codes.truncate(n);
    per_row_matrix(rng, name, rows, cols, bits, codes)
}

fn large_model(rng: &mut Rng) -> Vec<Tensor> {
    vec![
        large_quantized(rng, "tok_emb.weight", 1152, 4096, 8),
        large_quantized(rng, "blocks.0.mlp.fc.weight", 256, 1024, 6),
    ]
}

/// A zstd frame of `data` made here rather than by the writer, which never
/// writes a checksum (FORMAT.md §11).
fn zstd_frame(data: &[u8], content_size: bool, checksum: bool) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(3).expect("zstd context");
    c.include_contentsize(content_size).expect("zstd parameter");
    c.include_checksum(checksum).expect("zstd parameter");
    c.compress(data).expect("zstd")
}

/// A positive vector whose sections are the frames `frame` makes of each
/// section's decoded bytes (bytes layout, as the writer uses under zstd).
fn with_frames(
    name: &'static str,
    about: &'static str,
    tensors: Vec<Tensor>,
    frame: impl Fn(&[u8]) -> Vec<u8>,
) -> Positive {
    let f = recoded(&tensors, 1, 0, frame);
    from_file(name, about, tensors, f)
}

/// `tensors` written raw (bytes layout), then every section's decoded
/// bytes re-encoded by `encode` and marked as `codec`, with `minor`.
fn recoded(
    tensors: &[Tensor],
    codec: u8,
    minor: u16,
    encode: impl Fn(&[u8]) -> Vec<u8>,
) -> RawFile {
    let options = WriteOptions {
        compression: Compression::Raw,
        layout: LayoutChoice::Bytes,
        ..WriteOptions::default()
    };
    let mut f = write_raw(tensors, &BTreeMap::new(), &options).expect("valid content");
    for s in &mut f.sections {
        s.stored = encode(&s.stored); // a raw section stores its decoded bytes
        s.entry.codec = codec;
        s.entry.stored_len = s.stored.len() as u64;
    }
    f.minor = minor;
    f.place_sections();
    f
}

/// A positive vector of `tensors`, without metadata, as the bytes of `f`.
fn from_file(
    name: &'static str,
    about: &'static str,
    tensors: Vec<Tensor>,
    f: RawFile,
) -> Positive {
    Positive {
        name,
        about,
        tensors,
        metadata: BTreeMap::new(),
        bytes: f.to_bytes(),
    }
}

// ---------------------------------------------------------------- negatives

/// The base of most negative vectors: a raw file with an int6 tensor in the
/// bytes layout (group size 4 over 8 columns) and an f16 tensor, and one
/// metadata entry. Sections: 0 = codes, 1 = scales, 2 = passthrough.
fn base() -> RawFile {
    let mut rng = Rng::new(0xBAD_0001);
    let tensors = vec![
        quantized(&mut rng, "w", &[2, 8], 6, 4),
        f16s(&mut rng, "b", &[3]),
    ];
    let mut meta = BTreeMap::new();
    meta.insert("pgq.producer".to_string(), MetaValue::Str("neg".into()));
    let options = WriteOptions {
        compression: Compression::Raw,
        layout: LayoutChoice::Bytes,
        ..WriteOptions::default()
    };
    write_raw(&tensors, &meta, &options).expect("base is valid")
}

/// The base with its int6 codes bit-packed (12 bytes in section 0).
fn base_packed() -> RawFile {
    let mut rng = Rng::new(0xBAD_0002);
    let tensors = vec![quantized(&mut rng, "w", &[2, 8], 6, 4)];
    write_raw(&tensors, &BTreeMap::new(), &opts(Compression::Raw)).expect("valid")
}

fn with_codec(compression: Compression) -> RawFile {
    let mut rng = Rng::new(0xBAD_0003);
    let tensors = vec![quantized(&mut rng, "w", &[4, 16], 8, 0)];
    write_raw(&tensors, &BTreeMap::new(), &opts(compression)).expect("valid")
}

fn quant(f: &mut RawFile) -> &mut QuantFields {
    f.tensors[0].quant.as_mut().expect("tensor 0 is quantized")
}

/// Replaces section `i`'s decoded bytes (raw codec) and fixes its CRC.
fn set_raw_section(f: &mut RawFile, i: usize, decoded: Vec<u8>) {
    let s = &mut f.sections[i];
    s.entry.crc32 = crc32fast::hash(&decoded);
    s.entry.stored_len = decoded.len() as u64;
    s.entry.decoded_len = decoded.len() as u64;
    s.stored = decoded;
}

/// Replaces section `i` with `stored` bytes of a compressed stream that
/// claims to decode to `decoded_len` bytes with the given CRC.
fn set_stored(f: &mut RawFile, i: usize, stored: Vec<u8>) {
    f.sections[i].entry.stored_len = stored.len() as u64;
    f.sections[i].stored = stored;
}

fn neg(
    name: &'static str,
    error: ErrorKind,
    about: &'static str,
    mut f: RawFile,
    place: bool,
) -> Negative {
    if place {
        f.place_sections();
    }
    Negative {
        name,
        about,
        error,
        bytes: f.to_bytes(),
    }
}

fn bytes_neg(
    name: &'static str,
    error: ErrorKind,
    about: &'static str,
    bytes: Vec<u8>,
) -> Negative {
    Negative {
        name,
        about,
        error,
        bytes,
    }
}

/// Offset in the header body where tensor entry `t` of `f` starts.
fn tensor_entry_at(f: &RawFile, t: usize) -> usize {
    let mut g = f.clone();
    g.tensors.truncate(t);
    g.truncate_body = None;
    g.header_body().len()
}

pub fn negatives() -> Vec<Negative> {
    use ErrorKind::*;
    let mut v = Vec::new();
    let good = base().to_bytes();

    // --- preamble
    v.push(bytes_neg("empty_file", Truncated, "zero bytes", vec![]));
    let mut b = good.clone();
    b[1] = b'X';
    v.push(bytes_neg(
        "bad_magic",
        BadMagic,
        "second magic byte changed",
        b,
    ));
    v.push(bytes_neg(
        "bad_magic_pickle",
        BadMagic,
        "a torch pickle's first bytes",
        vec![
            0x80, 0x02, 0x7D, 0x71, 0x00, 0x28, 0x58, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    ));
    let mut b = good.clone();
    b.remove(4);
    v.push(bytes_neg(
        "bad_magic_crlf_converted",
        BadMagic,
        "CR LF in the magic turned into LF by a text-mode transfer",
        b,
    ));
    v.push(bytes_neg(
        "truncated_preamble",
        Truncated,
        "the magic and 4 more bytes of the 16-byte preamble",
        good[..12].to_vec(),
    ));
    let mut f = base();
    f.major = 0;
    v.push(neg(
        "version_0",
        UnsupportedVersion,
        "major version 0",
        f,
        false,
    ));
    let mut f = base();
    f.major = 2;
    v.push(neg(
        "version_future",
        UnsupportedVersion,
        "major version 2",
        f,
        false,
    ));
    let mut b = good.clone();
    b[12..16].copy_from_slice(&(17u32 * 1024 * 1024).to_le_bytes());
    v.push(bytes_neg(
        "header_len_over_limit",
        LimitExceeded,
        "header_len of 17 MiB",
        b,
    ));
    let mut b = good.clone();
    b[12..16].copy_from_slice(&100_000u32.to_le_bytes());
    v.push(bytes_neg(
        "header_len_past_eof",
        Truncated,
        "header_len runs past the end of the file",
        b,
    ));
    let mut f = base();
    f.header_crc_override = Some(0xDEAD_BEEF);
    v.push(neg(
        "header_crc",
        HeaderCrc,
        "header CRC does not match",
        f,
        false,
    ));
    let mut b = good.clone();
    b[30] ^= 0x01;
    v.push(bytes_neg(
        "header_bit_flip",
        HeaderCrc,
        "one bit flipped inside the section table",
        b,
    ));

    // --- counts and the section table
    let mut f = base();
    f.truncate_body = Some(7);
    v.push(neg(
        "truncated_counts",
        Truncated,
        "header body ends inside the counts",
        f,
        true,
    ));
    let mut f = base();
    f.counts_override = Some(Counts {
        sections: 5000,
        tensors: 2,
        metadata: 1,
    });
    v.push(neg(
        "section_count_over_limit",
        LimitExceeded,
        "5000 sections",
        f,
        false,
    ));
    let mut f = base();
    f.counts_override = Some(Counts {
        sections: 3,
        tensors: 100_000,
        metadata: 1,
    });
    v.push(neg(
        "tensor_count_over_limit",
        LimitExceeded,
        "100000 tensors",
        f,
        false,
    ));
    let mut f = base();
    f.counts_override = Some(Counts {
        sections: 3,
        tensors: 2,
        metadata: 5000,
    });
    v.push(neg(
        "metadata_count_over_limit",
        LimitExceeded,
        "5000 metadata entries",
        f,
        false,
    ));
    let mut f = base();
    f.counts_override = Some(Counts {
        sections: 3,
        tensors: 2,
        metadata: 1,
    });
    f.truncate_body = Some(12 + 32 + 20);
    v.push(neg(
        "truncated_section_table",
        Truncated,
        "header body ends inside the second section entry",
        f,
        true,
    ));
    let mut f = base();
    f.sections[1].entry.codec = 7;
    v.push(neg(
        "section_unknown_codec",
        InvalidField,
        "codec 7",
        f,
        false,
    ));
    let mut f = base();
    f.sections[0].entry.reserved = [0, 1, 0];
    v.push(neg(
        "section_reserved_nonzero",
        InvalidField,
        "a reserved byte of a section entry is 1",
        f,
        false,
    ));
    let mut f = base();
    f.sections[0].entry.decoded_len += 1;
    v.push(neg(
        "raw_length_mismatch",
        SizeMismatch,
        "a raw section declares one decoded byte more than it stores",
        f,
        false,
    ));
    let mut f = base();
    f.place_sections();
    f.sections[1].entry.offset -= 2;
    v.push(neg(
        "sections_overlap",
        SectionLayout,
        "section 1 starts 2 bytes inside section 0",
        f,
        false,
    ));
    let mut f = base();
    f.place_sections();
    f.sections[2].entry.offset += 1;
    v.push(neg(
        "sections_hole",
        SectionLayout,
        "one unclaimed byte between sections 1 and 2",
        f,
        false,
    ));
    let mut f = base();
    f.trailing = vec![0, 0, 0, 0];
    v.push(neg(
        "trailing_bytes",
        SectionLayout,
        "4 bytes after the last section",
        f,
        true,
    ));
    let mut b = good.clone();
    b.truncate(b.len() - 3);
    v.push(bytes_neg(
        "truncated_section_data",
        Truncated,
        "the file ends 3 bytes before the last section does",
        b,
    ));
    let mut f = base();
    f.place_sections();
    f.sections[0].entry.offset = u64::MAX - 2;
    v.push(neg(
        "section_offset_overflow",
        SectionLayout,
        "a section offset near 2^64",
        f,
        false,
    ));

    // --- metadata
    let mut f = base();
    f.metadata[0].ty = 9;
    v.push(neg(
        "metadata_unknown_type",
        InvalidField,
        "metadata type 9",
        f,
        true,
    ));
    let mut f = base();
    f.metadata[0].value = vec![200, 0, 0, 0, b'x'];
    v.push(neg(
        "metadata_value_truncated",
        Truncated,
        "a string value declares 200 bytes, 1 follows before the tensor table ends",
        f,
        true,
    ));
    let mut f = base();
    let m = f.metadata[0].clone();
    f.metadata.push(m);
    v.push(neg(
        "metadata_duplicate_key",
        DuplicateName,
        "the same key twice",
        f,
        true,
    ));
    let mut f = base();
    let mut m = f.metadata[0].clone();
    m.key = b"a.first".to_vec();
    f.metadata.push(m);
    v.push(neg(
        "metadata_unsorted",
        InvalidField,
        "keys out of byte order",
        f,
        true,
    ));
    let mut f = base();
    f.metadata[0].key = Vec::new();
    v.push(neg(
        "metadata_empty_key",
        InvalidName,
        "an empty key",
        f,
        true,
    ));
    let mut f = base();
    f.metadata[0].ty = 4;
    f.metadata[0].value = vec![2, 0, 0, 0, 0xC3, 0x28];
    v.push(neg(
        "metadata_string_not_utf8",
        InvalidField,
        "a string value that is not UTF-8",
        f,
        true,
    ));

    // --- tensor entries
    let mut f = base();
    f.tensors[1].name = Vec::new();
    v.push(neg(
        "tensor_name_empty",
        InvalidName,
        "an empty tensor name",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].name = b"bias\nx".to_vec();
    v.push(neg(
        "tensor_name_control",
        InvalidName,
        "a newline inside a tensor name",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].name = vec![b'b', 0xFF, 0xFE];
    v.push(neg(
        "tensor_name_not_utf8",
        InvalidName,
        "a tensor name that is not UTF-8",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].name = vec![b'n'; 1100];
    v.push(neg(
        "tensor_name_too_long",
        InvalidName,
        "a 1100-byte tensor name",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].name = b"w".to_vec();
    v.push(neg(
        "tensor_duplicate_name",
        DuplicateName,
        "two tensors named w",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].kind = 4;
    v.push(neg(
        "tensor_unknown_kind",
        InvalidField,
        "tensor kind 4",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].shape = vec![1; 9];
    v.push(neg("tensor_rank_9", InvalidField, "rank 9", f, true));
    let mut f = base();
    f.tensors[0].shape = vec![0, 8];
    v.push(neg(
        "tensor_zero_dim",
        InvalidField,
        "a zero dimension",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].shape = vec![1 << 32, 1 << 32, 2];
    v.push(neg(
        "shape_product_overflow",
        ShapeOverflow,
        "dimensions whose product overflows 64 bits",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].shape = vec![1 << 63];
    v.push(neg(
        "shape_bytes_overflow",
        ShapeOverflow,
        "2^63 f16 elements: the byte size overflows 64 bits",
        f,
        true,
    ));
    let mut f = base();
    quant(&mut f).bits = 9;
    v.push(neg("bits_9", InvalidField, "9-bit codes", f, true));
    let mut f = base();
    quant(&mut f).bits = 1;
    v.push(neg("bits_1", InvalidField, "1-bit codes", f, true));
    let mut f = base();
    quant(&mut f).group_size = 9;
    v.push(neg(
        "group_size_exceeds_columns",
        InvalidField,
        "group size 9 over 8 columns",
        f,
        true,
    ));
    let mut f = base();
    quant(&mut f).layout = 2;
    v.push(neg(
        "unknown_layout",
        InvalidField,
        "code layout 2",
        f,
        true,
    ));
    let mut f = with_codec(Compression::Raw);
    quant(&mut f).layout = 1;
    v.push(neg(
        "packed_8bit",
        InvalidField,
        "8-bit codes in the packed layout",
        f,
        true,
    ));
    let mut f = base();
    quant(&mut f).scale_dtype = 2;
    v.push(neg(
        "scale_dtype_bf16",
        InvalidField,
        "scale dtype 2 (only fp16 in v1)",
        f,
        true,
    ));
    let mut f = base();
    quant(&mut f).reserved = 1;
    v.push(neg(
        "quant_reserved_nonzero",
        InvalidField,
        "the reserved byte of a quantized entry is 1",
        f,
        true,
    ));
    let mut f = base();
    let at = tensor_entry_at(&f, 0) + 2 + 1 + 1 + 1 + 8;
    f.truncate_body = Some(at);
    v.push(neg(
        "truncated_tensor_shape",
        Truncated,
        "header body ends inside a tensor's shape",
        f,
        true,
    ));
    let mut f = base();
    let at = tensor_entry_at(&f, 0) + 2 + 1 + 1 + 1 + 16 + 8 + 10;
    f.truncate_body = Some(at);
    v.push(neg(
        "truncated_region",
        Truncated,
        "header body ends inside a codes region",
        f,
        true,
    ));
    let mut f = base();
    f.truncate_body = Some(tensor_entry_at(&f, 1) + 1);
    v.push(neg(
        "truncated_tensor_name_len",
        Truncated,
        "header body ends inside a name length",
        f,
        true,
    ));

    // --- regions
    let mut f = base();
    f.tensors[1].regions[0].section = 3;
    v.push(neg(
        "region_bad_section",
        RegionLayout,
        "a region in section 3 of 3",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].regions[0].len = 8;
    v.push(neg(
        "region_length_lies",
        RegionLayout,
        "a region declares 8 bytes, the shape [3] of f16 needs 6",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].regions[0].offset = 2;
    v.push(neg(
        "region_outside_section",
        RegionLayout,
        "a region reaching past the end of its section",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].regions[0] = Region {
        section: 0,
        offset: 10,
        len: 6,
    };
    set_raw_section(&mut f, 2, vec![]);
    f.sections.truncate(2);
    v.push(neg(
        "regions_overlap",
        RegionLayout,
        "the f16 data region overlaps the int6 codes",
        f,
        true,
    ));
    let mut f = base();
    let mut bytes = f.sections[2].stored.clone();
    bytes.extend_from_slice(&[0, 0]);
    set_raw_section(&mut f, 2, bytes);
    v.push(neg(
        "region_hole",
        RegionLayout,
        "a section with 2 decoded bytes no region claims",
        f,
        true,
    ));
    let mut f = base();
    f.tensors[1].regions[0] = Region {
        section: 1,
        offset: 8,
        len: 6,
    };
    let mut bytes = f.sections[1].stored.clone();
    bytes.extend_from_slice(&f.sections[2].stored);
    set_raw_section(&mut f, 1, bytes);
    set_raw_section(&mut f, 2, vec![1, 2]);
    v.push(neg(
        "section_without_region",
        RegionLayout,
        "a section that no tensor region lies in",
        f,
        true,
    ));
    let mut f = base();
    let extra = f.tensors[1].clone();
    f.tensors.push(extra);
    f.counts_override = Some(Counts {
        sections: 3,
        tensors: 2,
        metadata: 1,
    });
    v.push(neg(
        "header_trailing_bytes",
        InvalidField,
        "header body holds a third tensor entry the counts do not announce",
        f,
        true,
    ));

    // --- section contents
    let mut f = base();
    f.sections[2].entry.crc32 ^= 1;
    v.push(neg(
        "section_crc",
        SectionCrc,
        "the CRC of section 2 does not match",
        f,
        true,
    ));
    let mut f = base();
    f.sections[0].stored[3] ^= 0x04;
    v.push(neg(
        "section_bit_flip",
        SectionCrc,
        "one bit flipped in a raw section's bytes",
        f,
        true,
    ));
    let mut f = with_codec(ZSTD);
    let decoded: Vec<u8> = (0..64u8).map(|i| i % 7).collect();
    let mut shorter = decoded.clone();
    shorter.truncate(60);
    f.sections[0].entry.crc32 = crc32fast::hash(&decoded);
    set_stored(&mut f, 0, zstd_no_size(&shorter));
    v.push(neg(
        "zstd_decoded_size_lies",
        SizeMismatch,
        "a zstd stream of 60 bytes in a section declaring 64",
        f,
        true,
    ));
    let mut f = with_codec(ZSTD);
    set_stored(&mut f, 0, zstd_no_size(&vec![0u8; 4 << 20]));
    v.push(neg(
        "zstd_bomb",
        SizeMismatch,
        "a 4 MiB zstd stream of zeros in a section declaring 64 bytes",
        f,
        true,
    ));
    let mut f = with_codec(BROTLI);
    set_stored(
        &mut f,
        0,
        encode_section(&vec![0u8; 4 << 20], BROTLI).expect("brotli"),
    );
    v.push(neg(
        "brotli_bomb",
        SizeMismatch,
        "a 4 MiB brotli stream of zeros in a section declaring 64 bytes",
        f,
        true,
    ));
    let mut f = with_codec(ZSTD);
    let mut stored = f.sections[0].stored.clone();
    stored.extend_from_slice(&[0, 0, 0]);
    set_stored(&mut f, 0, stored);
    v.push(neg(
        "zstd_trailing_bytes",
        CodecError,
        "3 bytes after the zstd frame inside its section",
        f,
        true,
    ));
    let mut f = with_codec(ZSTD);
    let mut stored = f.sections[0].stored.clone();
    stored.truncate(stored.len() - 2);
    set_stored(&mut f, 0, stored);
    v.push(neg(
        "zstd_truncated_frame",
        CodecError,
        "a zstd frame missing its last 2 bytes",
        f,
        true,
    ));
    let mut f = with_codec(BROTLI);
    let stored = vec![0xFF; 16];
    set_stored(&mut f, 0, stored);
    v.push(neg(
        "brotli_corrupt",
        CodecError,
        "16 bytes of 0xFF are not a brotli stream",
        f,
        true,
    ));
    let mut f = with_codec(BROTLI);
    let mut stored = f.sections[0].stored.clone();
    stored.push(0);
    set_stored(&mut f, 0, stored);
    v.push(neg(
        "brotli_trailing_bytes",
        CodecError,
        "a byte after the end of the brotli stream",
        f,
        true,
    ));

    // --- values
    let mut f = base();
    let mut codes = f.sections[0].stored.clone();
    codes[5] = (-32i8) as u8;
    set_raw_section(&mut f, 0, codes);
    v.push(neg(
        "code_out_of_range",
        InvalidCode,
        "an int6 code of -32 in the bytes layout",
        f,
        true,
    ));
    let mut f = base();
    let mut codes = f.sections[0].stored.clone();
    codes[0] = 100;
    set_raw_section(&mut f, 0, codes);
    v.push(neg(
        "code_far_out_of_range",
        InvalidCode,
        "an int6 code of 100",
        f,
        true,
    ));
    let mut f = base_packed();
    let mut codes = f.sections[0].stored.clone();
    codes[0] = (codes[0] & 0b1100_0000) | 0b0010_0000;
    set_raw_section(&mut f, 0, codes);
    v.push(neg(
        "packed_most_negative",
        InvalidCode,
        "a packed 6-bit field of 100000 (-32)",
        f,
        true,
    ));
    let mut rng = Rng::new(0xBAD_0004);
    let mut f = write_raw(
        &[quantized(&mut rng, "w", &[1, 3], 6, 0)],
        &BTreeMap::new(),
        &opts(Compression::Raw),
    )
    .expect("valid");
    let mut codes = f.sections[0].stored.clone();
    let last = codes.len() - 1;
    codes[last] |= 0x80;
    set_raw_section(&mut f, 0, codes);
    v.push(neg(
        "packed_padding_nonzero",
        InvalidCode,
        "a set padding bit after the last packed code",
        f,
        true,
    ));
    let mut f = base();
    let mut scales = f.sections[1].stored.clone();
    let n = scales.len() / 2;
    scales[n] |= 0x80; // high byte plane of scale 0: sign bit
    set_raw_section(&mut f, 1, scales);
    v.push(neg(
        "scale_negative",
        InvalidValue,
        "a negative scale",
        f,
        true,
    ));
    let mut f = base();
    let mut scales = f.sections[1].stored.clone();
    let n = scales.len() / 2;
    scales[1] = 0x01;
    scales[n + 1] = 0x7E; // 0x7E01: NaN
    set_raw_section(&mut f, 1, scales);
    v.push(neg("scale_nan", InvalidValue, "a NaN scale", f, true));
    let mut f = base();
    let mut data = f.sections[2].stored.clone();
    data[0] = 0x00;
    data[3] = 0x7C; // value 0 = 0x7C00: +inf
    set_raw_section(&mut f, 2, data);
    v.push(neg(
        "passthrough_inf",
        InvalidValue,
        "an infinite f16 passthrough value",
        f,
        true,
    ));
    for (name, about, tensor, bits) in [
        (
            "passthrough_f16_nan",
            "a NaN f16 passthrough value (0x7E00)",
            "f16",
            0x7E00,
        ),
        (
            "passthrough_bf16_inf",
            "an infinite bf16 passthrough value (0x7F80)",
            "bf16",
            0x7F80,
        ),
        (
            "passthrough_bf16_nan",
            "a NaN bf16 passthrough value (0x7FC0)",
            "bf16",
            0x7FC0,
        ),
        (
            "passthrough_f32_inf",
            "a negative infinite f32 passthrough value (0xFF800000)",
            "f32",
            0xFF80_0000,
        ),
        (
            "passthrough_f32_nan",
            "a NaN f32 passthrough value with a payload (0x7F800001)",
            "f32",
            0x7F80_0001,
        ),
    ] {
        v.push(neg(
            name,
            InvalidValue,
            about,
            nonfinite(tensor, bits),
            true,
        ));
    }
    for (name, about, bits) in [
        (
            "packed_most_negative_b2",
            "a packed 2-bit field of 10 (-2), the last of 11 codes",
            2u8,
        ),
        (
            "packed_most_negative_b3",
            "a packed 3-bit field of 100 (-4), the last of 11 codes",
            3,
        ),
        (
            "packed_most_negative_b4",
            "a packed 4-bit field of 1000 (-8), the last of 11 codes",
            4,
        ),
        (
            "packed_most_negative_b5",
            "a packed 5-bit field of 10000 (-16), the last of 11 codes, across a byte boundary",
            5,
        ),
        (
            "packed_most_negative_b6",
            "a packed 6-bit field of 100000 (-32), the last of 11 codes, across a byte boundary",
            6,
        ),
        (
            "packed_most_negative_b7",
            "a packed 7-bit field of 1000000 (-64), the last of 11 codes, across a byte boundary",
            7,
        ),
    ] {
        v.push(neg(
            name,
            InvalidCode,
            about,
            most_negative_packed(bits),
            true,
        ));
    }
    let mut rng = Rng::new(0xBAD_0006);
    let mut f = write_raw(
        &[quantized(&mut rng, "w", &[2, 8], 8, 0)],
        &BTreeMap::new(),
        &opts(Compression::Raw),
    )
    .expect("valid");
    let mut codes = f.sections[0].stored.clone();
    codes[11] = 0x80;
    set_raw_section(&mut f, 0, codes);
    v.push(neg(
        "code_most_negative_int8",
        InvalidCode,
        "an int8 code of -128 (bytes layout)",
        f,
        true,
    ));

    // --- zstd frames (§5.2): one frame, no skippable frames, no dictionary,
    // a window of at most 2^27 bytes, a checksum that matches, and content
    // of exactly decoded_len bytes, counted by the reader.
    let (f, decoded) = zstd_base();
    let mut stored = zstd_frame(&decoded, true, true);
    let last = stored.len() - 1;
    stored[last] ^= 0x01;
    v.push(neg(
        "zstd_checksum_mismatch",
        CodecError,
        "a zstd frame whose content checksum does not match its content (the section CRC does)",
        with_stored(f, stored),
        true,
    ));
    let (f, decoded) = zstd_base();
    let stored = [skippable_frame(), zstd_frame(&decoded, true, false)].concat();
    v.push(neg(
        "zstd_skippable_before",
        CodecError,
        "a skippable frame before the zstd frame",
        with_stored(f, stored),
        true,
    ));
    let (f, decoded) = zstd_base();
    let stored = [zstd_frame(&decoded, true, false), skippable_frame()].concat();
    v.push(neg(
        "zstd_skippable_after",
        CodecError,
        "a skippable frame after the zstd frame",
        with_stored(f, stored),
        true,
    ));
    let (f, _) = zstd_base();
    v.push(neg(
        "zstd_skippable_only",
        CodecError,
        "a section that holds only a skippable frame",
        with_stored(f, skippable_frame()),
        true,
    ));
    let (f, decoded) = zstd_base();
    let longer = [&decoded[..], &[7u8; 16][..]].concat();
    v.push(neg(
        "zstd_content_longer_than_declared",
        SizeMismatch,
        "the frame header declares the section's 64 bytes, its blocks hold 80",
        with_stored(f, with_declared_size(&longer, 64)),
        true,
    ));
    let (f, decoded) = zstd_base();
    v.push(neg(
        "zstd_content_shorter_than_declared",
        SizeMismatch,
        "the frame header declares the section's 64 bytes, its blocks hold 60",
        with_stored(f, with_declared_size(&decoded[..60], 64)),
        true,
    ));
    let (f, decoded) = zstd_base();
    let mut stored = zstd_no_size(&decoded);
    assert_eq!(stored[4] & 0xE0, 0, "a frame with a window descriptor");
    stored[5] = 18 << 3; // Window_Size 2^28
    v.push(neg(
        "zstd_window_too_large",
        CodecError,
        "a zstd frame whose window descriptor asks for 2^28 bytes (the limit is 2^27)",
        with_stored(f, stored),
        true,
    ));
    let (f, decoded) = zstd_base();
    let mut stored = zstd_no_size(&decoded);
    assert_eq!(stored[4] & 0x03, 0, "a frame without a dictionary id");
    stored[4] |= 0x01;
    stored.insert(6, 0x01); // Dictionary_ID 1, after the window descriptor
    v.push(neg(
        "zstd_dictionary",
        CodecError,
        "a zstd frame that names dictionary 1",
        with_stored(f, stored),
        true,
    ));
    let (f, decoded) = zstd_base();
    let mut stored = zstd_frame(&decoded, true, false);
    stored[4] |= 0x08;
    v.push(neg(
        "zstd_reserved_bit",
        CodecError,
        "the reserved bit of the zstd frame header descriptor is set",
        with_stored(f, stored),
        true,
    ));

    // --- the order of checks (§9): entries are checked one by one, so a
    // count the header cannot hold does not hide a fault in an earlier entry.
    let mut f = base();
    f.sections[0].entry.codec = 7;
    f.counts_override = Some(Counts {
        sections: 1000,
        tensors: 2,
        metadata: 1,
    });
    v.push(neg(
        "short_table_first_entry_invalid",
        InvalidField,
        "1000 sections declared, far more than the header holds, and the first has codec 7: the entry is checked before the bytes run out",
        f,
        false,
    ));
    let mut f = base();
    let mut later = f.metadata[0].clone();
    later.key = b"pgq.z".to_vec();
    let again = f.metadata[0].clone();
    f.metadata.push(later);
    f.metadata.push(again);
    v.push(neg(
        "metadata_key_repeated_later",
        InvalidField,
        "keys [pgq.producer, pgq.z, pgq.producer]: the repeat is not adjacent, so it breaks the order",
        f,
        true,
    ));
    rans_negatives(&mut v);
    lowrank_negatives(&mut v);
    v
}

/// A file whose section 0 (64 int8 codes, rANS) stores `stream` instead of
/// its own; the section's decoded length (64) and CRC stay those of the
/// real codes.
fn rans_neg(
    name: &'static str,
    error: ErrorKind,
    about: &'static str,
    stream: Vec<u8>,
) -> Negative {
    let mut rng = Rng::new(0xBAD_0005);
    let tensors = [quantized(&mut rng, "w", &[4, 16], 8, 0)];
    let options = WriteOptions::with_compression(Compression::Rans);
    let mut f = write_raw(&tensors, &BTreeMap::new(), &options).expect("valid");
    set_stored(&mut f, 0, stream);
    neg(name, error, about, f, true)
}

fn rans_negatives(v: &mut Vec<Negative>) {
    use ErrorKind::*;
    const L: u32 = 1 << 16;
    // One symbol (0) of frequency 16 = 2^4: 64 zeros, no words.
    let zero: &[(u8, u32)] = &[(0, 16)];
    let ok =
        |states: &[u32], words: &[u8]| rans_stream(4, 1, &[zero], &[(64, &[0])], states, words);
    let fixed_fields = |p: u8, lanes: u16, tables: u16, segments: u32| {
        let mut s = ok(&[L], &[]);
        s[0] = p;
        s[1..3].copy_from_slice(&lanes.to_le_bytes());
        s[3..5].copy_from_slice(&tables.to_le_bytes());
        s[5..9].copy_from_slice(&segments.to_le_bytes());
        s
    };
    let cases: Vec<(&'static str, ErrorKind, &'static str, Vec<u8>)> = vec![
        ("rans_short", CodecError, "a rANS stream of 8 bytes, shorter than its 9 bytes of fixed fields", ok(&[L], &[])[..8].to_vec()),
        ("rans_prob_bits_0", CodecError, "prob_bits 0 (1..=16 allowed)", fixed_fields(0, 1, 1, 1)),
        ("rans_prob_bits_17", CodecError, "prob_bits 17: frequencies out of 2^17 do not fit the 16-bit state arithmetic", fixed_fields(17, 1, 1, 1)),
        ("rans_lanes_0", CodecError, "lanes 0", fixed_fields(4, 0, 1, 1)),
        ("rans_tables_0", CodecError, "table_count 0", fixed_fields(4, 1, 0, 1)),
        ("rans_tables_257", CodecError, "table_count 257: map entries are bytes, so at most 256 tables", fixed_fields(4, 1, 257, 1)),
        ("rans_segments_0", CodecError, "segment_count 0", fixed_fields(4, 1, 1, 0)),
        ("rans_table_cut", CodecError, "the stream ends inside the first table's bitmap", ok(&[L], &[])[..20].to_vec()),
        ("rans_table_empty", CodecError, "a table whose bitmap names no symbol", rans_stream(4, 1, &[&[]], &[(64, &[0])], &[L], &[])),
        ("rans_table_sum", CodecError, "a table whose frequencies sum to 15, not 2^4", rans_stream(4, 1, &[&[(0, 15)]], &[(64, &[0])], &[L], &[])),
        ("rans_segment_cut", CodecError, "the stream ends inside the segment's length", ok(&[L], &[])[..9 + 34 + 5].to_vec()),
        ("rans_segment_empty", CodecError, "a segment of length 0", rans_stream(4, 1, &[zero], &[(0, &[0]), (64, &[0])], &[L], &[])),
        ("rans_segment_period", CodecError, "a segment of 64 bytes with period 65", rans_stream(4, 1, &[zero], &[(64, &[0; 65])], &[L], &[])),
        ("rans_segment_map", CodecError, "a map entry names table 1 of 1", rans_stream(4, 1, &[zero], &[(64, &[1])], &[L], &[])),
        ("rans_segments_long", SizeMismatch, "the segments cover 65 bytes, the section declares 64", rans_stream(4, 1, &[zero], &[(65, &[0])], &[L], &[])),
        ("rans_segments_short", SizeMismatch, "the segments cover 63 bytes, the section declares 64", rans_stream(4, 1, &[zero], &[(63, &[0])], &[L], &[])),
        ("rans_table_unused", CodecError, "two tables, only the first named by a map", rans_stream(4, 1, &[zero, zero], &[(64, &[0])], &[L], &[])),
        ("rans_state_cut", CodecError, "two lanes, the stream ends inside the second state", rans_stream(4, 2, &[zero], &[(64, &[0])], &[L], &[])),
        ("rans_state_low", CodecError, "a lane state of 65535, below 2^16", ok(&[L - 1], &[])),
        ("rans_words_odd", CodecError, "one byte left for the words: not a whole 16-bit word", ok(&[L], &[0])),
        ("rans_words_missing", CodecError, "two symbols of frequency 8/16: every byte costs a bit, so the lane needs words the stream does not have", rans_stream(4, 1, &[&[(0, 8), (1, 8)]], &[(64, &[0])], &[L], &[])),
        ("rans_words_left", CodecError, "a word follows the last decoded byte", ok(&[L], &[0, 0])),
        ("rans_final_state", CodecError, "the lane starts (and, with a table of one symbol, ends) in 2^16 + 1, not 2^16", ok(&[L + 1], &[])),
        ("rans_section_crc", SectionCrc, "a valid rANS stream of 64 zero bytes in a section whose CRC is that of the real codes", ok(&[L], &[])),
    ];
    for (name, error, about, stream) in cases {
        v.push(rans_neg(name, error, about, stream));
    }
}

/// A raw file of one passthrough tensor of 3 values of `dtype`, value 1
/// replaced by `bits` (in its byte planes).
fn nonfinite(dtype: &str, bits: u32) -> RawFile {
    let (data, width) = match dtype {
        "f16" => (TensorData::F16(vec![f16::ONE; 3]), 2),
        "bf16" => (TensorData::Bf16(vec![bf16::ONE; 3]), 2),
        _ => (TensorData::F32(vec![1.0; 3]), 4),
    };
    let tensor = Tensor {
        name: dtype.into(),
        shape: vec![3],
        data,
    };
    let mut f = write_raw(&[tensor], &BTreeMap::new(), &opts(Compression::Raw)).expect("valid");
    let mut planes = f.sections[0].stored.clone();
    for (k, byte) in bits.to_le_bytes().iter().take(width).enumerate() {
        planes[k * 3 + 1] = *byte;
    }
    set_raw_section(&mut f, 0, planes);
    f
}

/// A raw file of 11 packed codes of `bits` bits whose last field is the
/// invalid `-2^(bits-1)` (sign bit set, other bits zero).
fn most_negative_packed(bits: u8) -> RawFile {
    let mut rng = Rng::new(0xBAD_0005 + u64::from(bits));
    let mut f = write_raw(
        &[quantized(&mut rng, "w", &[1, 11], bits, 0)],
        &BTreeMap::new(),
        &opts(Compression::Raw),
    )
    .expect("valid");
    let mut codes = f.sections[0].stored.clone();
    let b = usize::from(bits);
    for bit in 10 * b..11 * b {
        let sign = bit == 11 * b - 1;
        if sign {
            codes[bit / 8] |= 1 << (bit % 8);
        } else {
            codes[bit / 8] &= !(1 << (bit % 8));
        }
    }
    set_raw_section(&mut f, 0, codes);
    f
}

/// A zstd file of one 4x16 int8 tensor (section 0, 64 decoded bytes) and
/// those decoded bytes.
fn zstd_base() -> (RawFile, Vec<u8>) {
    let f = with_codec(ZSTD);
    let decoded = zstd::bulk::decompress(&f.sections[0].stored, 1 << 16).expect("zstd");
    assert_eq!(decoded.len(), 64);
    (f, decoded)
}

fn with_stored(mut f: RawFile, stored: Vec<u8>) -> RawFile {
    set_stored(&mut f, 0, stored);
    f
}

/// A skippable frame (RFC 8878 §3.1.2) of 4 bytes of user data.
fn skippable_frame() -> Vec<u8> {
    [
        &0x184D_2A50u32.to_le_bytes()[..],
        &4u32.to_le_bytes(),
        b"pgq!",
    ]
    .concat()
}

/// A single-segment zstd frame of `content` whose header declares
/// `declared` bytes instead (the 1-byte Frame_Content_Size field).
fn with_declared_size(content: &[u8], declared: u8) -> Vec<u8> {
    let mut frame = zstd_frame(content, true, false);
    assert_eq!(
        frame[4], 0x20,
        "single segment, 1-byte content size, no checksum"
    );
    assert_eq!(usize::from(frame[5]), content.len());
    frame[5] = declared;
    frame
}

/// A zstd frame that does not record its content size, so only decoding
/// reveals the real length.
fn zstd_no_size(data: &[u8]) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(19).expect("zstd context");
    c.include_contentsize(false).expect("zstd parameter");
    c.compress(data).expect("zstd")
}

// ---------------------------------------------------------------- files

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn meta_json(v: &MetaValue) -> serde_json::Value {
    use serde_json::json;
    match v {
        MetaValue::U64(x) => json!({"type": "u64", "value": x.to_string()}),
        MetaValue::I64(x) => json!({"type": "i64", "value": x.to_string()}),
        MetaValue::F64(x) => json!({"type": "f64", "value": x}),
        MetaValue::Str(s) => json!({"type": "string", "value": s}),
        MetaValue::Bytes(b) => json!({"type": "bytes", "value": hex(b)}),
    }
}

/// Tensors of more values than this give the SHA-256 of their f32 bytes in
/// the expected `.json`, not the bytes (FORMAT.md §13).
pub const LARGEST_HEX_TENSOR: usize = 65_536;

/// The expected decoding of a positive vector: f32 bits per tensor.
pub fn expected_json(p: &Positive) -> String {
    use serde_json::json;
    let mut tensors = serde_json::Map::new();
    for t in &p.tensors {
        let values: Vec<u8> = t
            .dequantize()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut entry = json!({"shape": t.shape, "kind": t.data.kind().name()});
        // Hex of several MiB of values would dwarf the vector itself.
        if values.len() > 4 * LARGEST_HEX_TENSOR {
            use sha2::Digest;
            entry["f32_le_sha256"] = json!(hex(&sha2::Sha256::digest(&values)));
        } else {
            entry["f32_le_hex"] = json!(hex(&values));
        }
        if let TensorData::Quantized {
            bits,
            group_size,
            correction,
            ..
        } = &t.data
        {
            entry["bits"] = json!(bits);
            entry["group_size"] = json!(group_size);
            if let Some(c) = correction {
                entry["lr_rank"] = json!(c.rank);
            }
        }
        tensors.insert(t.name.clone(), entry);
    }
    let metadata: serde_json::Map<String, serde_json::Value> = p
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), meta_json(v)))
        .collect();
    let doc = json!({"about": p.about, "tensors": tensors, "metadata": metadata});
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

/// Every file of spec/vectors/, as (path relative to spec/vectors, bytes).
pub fn files() -> Vec<(String, Vec<u8>)> {
    use serde_json::json;
    let mut out = Vec::new();
    let positives = positives();
    let negatives = negatives();
    let mut readme = String::from(
        "# Conformance vectors\n\nGenerated by `cargo run -p pgq-format --example gen_vectors` (deterministic);\n\
         `cargo test -p pgq-format --test conformance` checks that these bytes equal the regenerated ones,\n\
         that the reader decodes each positive vector to its expected values and rejects each\n\
         negative vector with its expected error class. See spec/FORMAT.md.\n\n\
         ## Positive: `positive/NAME.pgq`, expected values in `positive/NAME.json`\n\n\
         Each `.json` gives, per tensor, its shape and the little-endian bytes of its decoded f32 values\n\
         in hex (`f32_le_hex`), or for a tensor of more than 65,536 values the SHA-256 of those bytes\n\
         (`f32_le_sha256`); equality is bit-for-bit.\n\n| vector | bytes | covers |\n| --- | ---: | --- |\n",
    );
    for p in &positives {
        out.push((format!("positive/{}.pgq", p.name), p.bytes.clone()));
        out.push((
            format!("positive/{}.json", p.name),
            expected_json(p).into_bytes(),
        ));
        readme += &format!("| `{}` | {} | {} |\n", p.name, p.bytes.len(), p.about);
    }
    readme +=
        "\n## Negative: `negative/NAME.pgq`, expected error class in `negative/expected.json`\n\n\
               | vector | error class | what is wrong |\n| --- | --- | --- |\n";
    let mut expected = serde_json::Map::new();
    for n in &negatives {
        out.push((format!("negative/{}.pgq", n.name), n.bytes.clone()));
        expected.insert(
            n.name.to_string(),
            json!({"error": n.error.as_str(), "about": n.about}),
        );
        readme += &format!("| `{}` | `{}` | {} |\n", n.name, n.error.as_str(), n.about);
    }
    out.push((
        "negative/expected.json".into(),
        (serde_json::to_string_pretty(&serde_json::Value::Object(expected)).expect("json") + "\n")
            .into_bytes(),
    ));
    out.push(("README.md".into(), readme.into_bytes()));
    out
}

// ------------------------------------------------ low-rank correction (§6.8)

/// A factor of `n` codes: random codes of the range, groups of `group`.
fn factor(rng: &mut Rng, n: u64, bits: u8, range: CodeRange, group: u32) -> Factor {
    let max = (1i64 << (bits - 1)) - 1;
    let min = match range {
        CodeRange::Symmetric => -max,
        CodeRange::Full => -max - 1,
    };
    let span = (max - min + 1) as u64;
    Factor {
        bits,
        range,
        group,
        codes: (0..n)
            .map(|_| (min + (rng.next() % span) as i64) as i8)
            .collect(),
        scales: (0..n / group as u64).map(|_| rng.scale()).collect(),
    }
}

/// A quantized tensor with a correction of `rank`, `a` and `b` given as
/// (bits, range, group).
fn lowrank(
    rng: &mut Rng,
    name: &str,
    (rows, cols): (u64, u64),
    bits: u8,
    rank: u32,
    a: (u8, CodeRange, u32),
    b: (u8, CodeRange, u32),
) -> Tensor {
    let mut t = quantized(rng, name, &[rows, cols], bits, 0);
    let r = rank as u64;
    let correction = LowRank {
        rank,
        a: factor(rng, rows * r, a.0, a.1, a.2),
        b: factor(rng, r * cols, b.0, b.1, b.2),
    };
    if let TensorData::Quantized { correction: c, .. } = &mut t.data {
        *c = Some(correction);
    }
    t
}

fn f16s_of(values: &[f32]) -> Vec<f16> {
    values.iter().map(|&x| f16::from_f32(x)).collect()
}

/// The worked example of §6.8, and the order of operations made visible.
fn spec_example() -> Tensor {
    Tensor {
        name: "w".into(),
        shape: vec![2, 2],
        data: TensorData::Quantized {
            bits: 6,
            group_size: 0,
            codes: vec![1, 2, 3, 4],
            scales: f16s_of(&[1.0, 0.5]),
            correction: Some(LowRank {
                rank: 1,
                a: Factor {
                    bits: 2,
                    range: CodeRange::Full,
                    group: 2,
                    codes: vec![1, -2],
                    scales: f16s_of(&[0.5]),
                },
                b: Factor {
                    bits: 4,
                    range: CodeRange::Full,
                    group: 2,
                    codes: vec![-8, 7],
                    scales: f16s_of(&[0.25]),
                },
            }),
        },
    }
}

/// Rank 1 with the extremes of a full-range int8 factor: `b` holds -128,
/// the products are 2^24 and -2^25, and `q + acc` rounds (1 - 2^25 is
/// -2^25 in binary32).
fn full_range_extremes() -> Tensor {
    Tensor {
        name: "extremes".into(),
        shape: vec![1, 2],
        data: TensorData::Quantized {
            bits: 8,
            group_size: 0,
            codes: vec![0, 1],
            scales: f16s_of(&[1.0]),
            correction: Some(LowRank {
                rank: 1,
                a: Factor {
                    bits: 8,
                    range: CodeRange::Full,
                    group: 1,
                    codes: vec![64],
                    scales: f16s_of(&[64.0]),
                },
                b: Factor {
                    bits: 8,
                    range: CodeRange::Full,
                    group: 2,
                    codes: vec![64, -128],
                    scales: f16s_of(&[64.0]),
                },
            }),
        },
    }
}

/// Rank 3 with the sum order visible: row 0 of `a` is `[4096, 1, 1]`,
/// column 0 of `b` is `[4096, 1, 1]`.
fn sum_order() -> Tensor {
    Tensor {
        name: "sum".into(),
        shape: vec![3, 3],
        data: TensorData::Quantized {
            bits: 6,
            group_size: 0,
            codes: vec![0; 9],
            scales: f16s_of(&[1.0; 3]),
            correction: Some(LowRank {
                rank: 3,
                a: Factor {
                    bits: 8,
                    range: CodeRange::Symmetric,
                    group: 1,
                    codes: vec![64, 1, 1, 0, 0, 0, 0, 0, 0],
                    scales: f16s_of(&[64.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
                },
                b: Factor {
                    bits: 8,
                    range: CodeRange::Symmetric,
                    group: 3,
                    codes: vec![64, 0, 0, 1, 0, 0, 1, 0, 0],
                    scales: f16s_of(&[64.0, 1.0, 1.0]),
                },
            }),
        },
    }
}

fn lowrank_positives(v: &mut Vec<Positive>) {
    let mut rng = Rng::new(0x5EED_0404);
    let none = BTreeMap::new;
    v.push(positive(
        "lowrank_spec_example",
        "the worked example of §6.8: int6 codes plus a rank-1 correction of an int2 and an int4 factor in the full range, raw (minor version 2)",
        vec![spec_example()],
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "lowrank_sum_order",
        "corrections whose sums round differently in any order but §6.8's: products 2^24, 1, 1 sum to 2^24 in order (2^24 + 1 ties to even) and to 2^24 + 2 from the end or in f64; a full-range int8 factor holding -128",
        vec![sum_order(), full_range_extremes()],
        none(),
        opts(Compression::Raw),
    ));
    v.push(positive(
        "lowrank_records_asym_rans",
        "as records #1797 and #1935 store their top tensors: int6 per-row codes, rank 4, A int2 full range with one scale for the whole factor, B int4 full range in groups of 64 that run across its rows (48 columns); beside a plain int6 tensor and f16 values, rANS; random factors, so that products and sums round (an unfused or f64 decoder differs)",
        vec![
            lowrank(
                &mut rng,
                "blocks.0.mlp.fc.weight",
                (96, 48),
                6,
                4,
                (2, CodeRange::Full, 96 * 4),
                (4, CodeRange::Full, 64),
            ),
            quantized(&mut rng, "blocks.0.attn.proj.weight", &[48, 48], 6, 0),
            f16s(&mut rng, "ln.weight", &[48]),
        ],
        none(),
        opts(Compression::Rans),
    ));
    v.push(positive(
        "lowrank_symmetric_packed_raw",
        "the records' symmetric form (+lqer): rank 3, A and B int4 symmetric with one scale per row (groups of 3 and of 40), bit-packed in a raw file; and a rank-1 correction of a rank-1 tensor (rows = 1)",
        vec![
            lowrank(
                &mut rng,
                "w",
                (24, 40),
                5,
                3,
                (4, CodeRange::Symmetric, 3),
                (4, CodeRange::Symmetric, 40),
            ),
            {
                let mut t = lowrank(
                    &mut rng,
                    "v",
                    (1, 16),
                    7,
                    1,
                    (3, CodeRange::Full, 1),
                    (3, CodeRange::Full, 4),
                );
                t.shape = vec![16];
                t
            },
        ],
        none(),
        opts(Compression::Raw),
    ));
}

/// The base of the low-rank negatives: a raw file, bytes layout, with one
/// tensor `w` [4, 8] int6 of rank 2: A int2 full range (one scale), B int4
/// symmetric (one scale per row). Sections: 0 = int6 codes, 1 = scales,
/// 2 = the correction: A codes (8 bytes), A scales (2), B codes (16), B
/// scales (4).
fn lowrank_base() -> RawFile {
    let mut rng = Rng::new(0xBAD_0404);
    let t = lowrank(
        &mut rng,
        "w",
        (4, 8),
        6,
        2,
        (2, CodeRange::Full, 8),
        (4, CodeRange::Symmetric, 8),
    );
    let options = WriteOptions {
        compression: Compression::Raw,
        layout: LayoutChoice::Bytes,
        ..WriteOptions::default()
    };
    write_raw(&[t], &BTreeMap::new(), &options).expect("valid")
}

fn correction(f: &mut RawFile) -> &mut pgq_format::raw::RawCorrection {
    f.tensors[0]
        .correction
        .as_mut()
        .expect("tensor 0 has a correction")
}

fn lowrank_negatives(v: &mut Vec<Negative>) {
    use ErrorKind::*;
    let mut f = lowrank_base();
    correction(&mut f).rank = 0;
    v.push(neg(
        "lowrank_rank_zero",
        InvalidField,
        "a correction of rank 0",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).rank = 5;
    v.push(neg(
        "lowrank_rank_above_rows",
        InvalidField,
        "rank 5 for a 4 x 8 tensor (at most min(rows, cols) = 4)",
        f,
        true,
    ));
    let mut f = lowrank_base();
    f.tensors[0].kind = 0;
    v.push(neg(
        "lowrank_fields_under_kind_0",
        InvalidField,
        "a kind-0 entry followed by a correction's 100 bytes: header bytes left over",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).a.0.range = 2;
    v.push(neg(
        "lowrank_range_2",
        InvalidField,
        "factor A's code range is 2",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).b.0.bits = 9;
    v.push(neg(
        "lowrank_factor_bits_9",
        InvalidField,
        "factor B of 9 bits",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).b.0.layout = 1;
    correction(&mut f).b.0.bits = 8;
    v.push(neg(
        "lowrank_factor_packed_int8",
        InvalidField,
        "factor B: 8 bits in the packed layout",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).b.0.group = 6;
    v.push(neg(
        "lowrank_group_not_dividing",
        InvalidField,
        "factor B's group of 6 does not divide its 16 codes",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).a.0.group = 0;
    v.push(neg(
        "lowrank_group_zero",
        InvalidField,
        "factor A's group is 0",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).b.1[0].len = 15;
    v.push(neg(
        "lowrank_factor_codes_length",
        RegionLayout,
        "factor B's codes region says 15 bytes; its 2 x 8 codes need 16",
        f,
        true,
    ));
    let mut f = lowrank_base();
    correction(&mut f).a.1[1].offset = 0;
    v.push(neg(
        "lowrank_factor_regions_overlap",
        RegionLayout,
        "factor A's scales region starts at byte 0 of the correction section, over A's codes",
        f,
        true,
    ));
    let mut f = lowrank_base();
    let body = f.header_body().len();
    f.truncate_body = Some(body - 30);
    v.push(neg(
        "lowrank_truncated_correction",
        Truncated,
        "the header body ends inside factor B's codes region",
        f,
        true,
    ));
    let mut f = lowrank_base();
    let mut section = f.sections[2].stored.clone();
    section[10] = 0xF8; // B's first code: -8, outside int4's symmetric range
    set_raw_section(&mut f, 2, section);
    v.push(neg(
        "lowrank_symmetric_factor_code",
        InvalidCode,
        "factor B (int4, symmetric) holds -8, which only the full range allows",
        f,
        true,
    ));
    let mut f = lowrank_base();
    let mut section = f.sections[2].stored.clone();
    section[9] |= 0x80; // A's one scale: its high byte plane, sign bit
    set_raw_section(&mut f, 2, section);
    v.push(neg(
        "lowrank_negative_factor_scale",
        InvalidValue,
        "factor A's scale has its sign bit set",
        f,
        true,
    ));
}
