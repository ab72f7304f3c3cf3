//! The logical content of a header: enums and entries, as parsed and as
//! written. Fixed-size records are described with binrw.

use binrw::binrw;
use serde::Serialize;

/// How a section's stored bytes become its decoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Raw = 0,
    Zstd = 1,
    Brotli = 2,
    /// Added in format 1.1.
    Rans = 3,
}

impl Codec {
    pub fn from_u8(v: u8) -> Option<Codec> {
        match v {
            0 => Some(Codec::Raw),
            1 => Some(Codec::Zstd),
            2 => Some(Codec::Brotli),
            3 => Some(Codec::Rans),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::Zstd => "zstd",
            Codec::Brotli => "brotli",
            Codec::Rans => "rans",
        }
    }
}

/// What a tensor entry stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Integer codes with fp16 scales.
    Quantized = 0,
    F16 = 1,
    Bf16 = 2,
    F32 = 3,
    /// Integer codes with fp16 scales plus a low-rank correction `A·B` of
    /// two quantized factors (format 1.2, spec §4.8 and §6.8).
    LowRank = 4,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Kind> {
        match v {
            0 => Some(Kind::Quantized),
            1 => Some(Kind::F16),
            2 => Some(Kind::Bf16),
            3 => Some(Kind::F32),
            4 => Some(Kind::LowRank),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Quantized => "quantized",
            Kind::F16 => "f16",
            Kind::Bf16 => "bf16",
            Kind::F32 => "f32",
            Kind::LowRank => "lowrank",
        }
    }
    /// Whether the tensor has codes and scales (kinds 0 and 4).
    pub fn is_quantized(self) -> bool {
        matches!(self, Kind::Quantized | Kind::LowRank)
    }
    /// Bytes per element of a passthrough kind (None for quantized).
    pub fn element_width(self) -> Option<u64> {
        match self {
            Kind::Quantized | Kind::LowRank => None,
            Kind::F16 | Kind::Bf16 => Some(2),
            Kind::F32 => Some(4),
        }
    }
}

/// How the codes of a quantized tensor are laid out in their region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One two's-complement code per byte. Best under a compressor.
    Bytes = 0,
    /// Codes as `bits`-bit two's-complement fields in an LSB-first bit
    /// stream (int6: 4 codes in 3 bytes; int7: 8 in 7). Best when raw.
    Packed = 1,
}

impl Layout {
    pub fn from_u8(v: u8) -> Option<Layout> {
        match v {
            0 => Some(Layout::Bytes),
            1 => Some(Layout::Packed),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Layout::Bytes => "bytes",
            Layout::Packed => "packed",
        }
    }
}

/// The scale dtype code of v1: fp16 (IEEE binary16) only.
pub const SCALE_DTYPE_F16: u8 = 1;

/// The 16 bytes that open every file.
#[binrw]
#[brw(little)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preamble {
    pub magic: [u8; 8],
    pub major: u16,
    pub minor: u16,
    pub header_len: u32,
}

/// The three counts that open the header body.
#[binrw]
#[brw(little)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub sections: u32,
    pub tensors: u32,
    pub metadata: u32,
}

/// One 32-byte entry of the section table, as stored.
#[binrw]
#[brw(little)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SectionEntry {
    pub codec: u8,
    pub reserved: [u8; 3],
    /// CRC-32 (zlib's) of the decoded bytes.
    pub crc32: u32,
    /// Absolute file offset of the stored bytes.
    pub offset: u64,
    pub stored_len: u64,
    pub decoded_len: u64,
}

/// Where a run of bytes lives: a byte range of a section's decoded bytes.
#[binrw]
#[brw(little)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Region {
    pub section: u32,
    pub offset: u64,
    pub len: u64,
}

/// The 8 bytes after the shape of a quantized tensor, as stored.
#[binrw]
#[brw(little)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantFields {
    pub bits: u8,
    pub layout: u8,
    pub scale_dtype: u8,
    pub reserved: u8,
    pub group_size: u32,
}

/// The 8 bytes that describe one factor of a low-rank correction, as
/// stored (spec §4.8).
#[binrw]
#[brw(little)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactorFields {
    pub bits: u8,
    pub layout: u8,
    pub scale_dtype: u8,
    pub range: u8,
    pub group: u32,
}

/// Which codes of a width are valid (spec §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeRange {
    /// `[-(2^(b-1) - 1), 2^(b-1) - 1]`: every tensor's own codes.
    Symmetric = 0,
    /// `[-2^(b-1), 2^(b-1) - 1]`: a correction factor's, when asked for
    /// (the records' int2 `-2..1` and int4 `-8..7` factors).
    Full = 1,
}

impl CodeRange {
    pub fn from_u8(v: u8) -> Option<CodeRange> {
        match v {
            0 => Some(CodeRange::Symmetric),
            1 => Some(CodeRange::Full),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CodeRange::Symmetric => "symmetric",
            CodeRange::Full => "full",
        }
    }
}

/// A typed metadata value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
}

impl MetaValue {
    pub fn type_code(&self) -> u8 {
        match self {
            MetaValue::U64(_) => 1,
            MetaValue::I64(_) => 2,
            MetaValue::F64(_) => 3,
            MetaValue::Str(_) => 4,
            MetaValue::Bytes(_) => 5,
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U64(_) => "u64",
            MetaValue::I64(_) => "i64",
            MetaValue::F64(_) => "f64",
            MetaValue::Str(_) => "string",
            MetaValue::Bytes(_) => "bytes",
        }
    }
}

/// How a quantized tensor is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuantInfo {
    pub bits: u8,
    pub layout: Layout,
    /// 0 = one scale per row; otherwise columns per group.
    pub group_size: u32,
    pub codes: Region,
    pub scales: Region,
}

/// How one factor of a low-rank correction is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FactorInfo {
    pub bits: u8,
    pub layout: Layout,
    pub range: CodeRange,
    /// Consecutive elements (row-major) per scale; divides the factor's
    /// element count.
    pub group: u32,
    pub codes: Region,
    pub scales: Region,
}

/// The correction of a [`Kind::LowRank`] tensor: `A` (`rows x rank`) and
/// `B` (`rank x cols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CorrectionInfo {
    pub rank: u32,
    pub a: FactorInfo,
    pub b: FactorInfo,
}

/// A validated tensor entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorEntry {
    pub name: String,
    pub kind: Kind,
    pub shape: Vec<u64>,
    /// Present for [`Kind::Quantized`] and [`Kind::LowRank`].
    pub quant: Option<QuantInfo>,
    /// Present for [`Kind::LowRank`].
    pub correction: Option<CorrectionInfo>,
    /// The data region of a passthrough tensor.
    pub data: Option<Region>,
    /// Absolute offset and length of this entry in the header.
    pub entry_offset: u64,
    pub entry_len: u64,
}

impl TensorEntry {
    pub fn elements(&self) -> u64 {
        // Validated at parse time not to overflow; saturating all the same,
        // since the fields are public.
        self.shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX)
    }
    /// Rows and columns of the matrix view: columns are the last dimension,
    /// rows the product of the others (1 for rank 0 and 1).
    pub fn rows_cols(&self) -> (u64, u64) {
        rows_cols(&self.shape)
    }
    /// The regions this tensor owns, codes before scales, then a
    /// correction's (`A`'s codes and scales, `B`'s).
    pub fn regions(&self) -> Vec<Region> {
        let mut out = match (&self.quant, &self.data) {
            (Some(q), _) => vec![q.codes, q.scales],
            (None, Some(d)) => vec![*d],
            (None, None) => Vec::new(),
        };
        if let Some(c) = &self.correction {
            out.extend([c.a.codes, c.a.scales, c.b.codes, c.b.scales]);
        }
        out
    }
    pub fn bits(&self) -> Option<u8> {
        self.quant.map(|q| q.bits)
    }
}

/// Rows and columns of a shape's matrix view.
pub fn rows_cols(shape: &[u64]) -> (u64, u64) {
    match shape.split_last() {
        None => (1, 1),
        // Saturating: the reader and writer refuse shapes that overflow.
        Some((cols, rest)) => (
            rest.iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .unwrap_or(u64::MAX),
            *cols,
        ),
    }
}

/// Number of scale groups per row.
pub fn groups_per_row(cols: u64, group_size: u32) -> u64 {
    if group_size == 0 {
        1
    } else {
        cols.div_ceil(group_size as u64)
    }
}

/// Columns covered by each group: `group_size`, or all columns for 0.
pub fn effective_group(cols: u64, group_size: u32) -> u64 {
    if group_size == 0 {
        cols.max(1)
    } else {
        group_size as u64
    }
}

/// A validated section entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Section {
    pub codec: Codec,
    pub crc32: u32,
    pub offset: u64,
    pub stored_len: u64,
    pub decoded_len: u64,
}

/// A validated header: everything but the section payloads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    pub major: u16,
    pub minor: u16,
    /// Bytes of the header body (excluding preamble and CRC).
    pub header_len: u32,
    pub sections: Vec<Section>,
    /// Sorted by key, keys unique.
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorEntry>,
    /// Total bytes of the file.
    pub file_len: u64,
}

impl Header {
    /// Offset of the first section's stored bytes.
    pub fn data_start(&self) -> u64 {
        crate::limits::PREAMBLE_LEN + self.header_len as u64 + crate::limits::HEADER_CRC_LEN
    }
    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.iter().find(|t| t.name == name)
    }
    /// About the most memory a program holds to read this file and use
    /// its weights, in bytes, from the declared sizes alone (nothing is
    /// decoded): the decoded sections, every tensor's values as [`read`]
    /// returns them (one byte a code, two a scale, the passthrough
    /// values), and, with `f32_weights`, the largest tensor's weights as
    /// f32 twice over, for a program that dequantizes one tensor at a time
    /// (export and verify's digest hold one copy; compare holds the same
    /// tensor of two files).
    /// Saturating. A tool compares it with its memory budget before
    /// reading, so that a small file declaring a billion weights is refused
    /// rather than aborting the process.
    ///
    /// [`read`]: crate::read
    pub fn memory_needed(&self, f32_weights: bool) -> u64 {
        let decoded = self
            .sections
            .iter()
            .fold(0u64, |n, s| n.saturating_add(s.decoded_len));
        let values = self.tensors.iter().fold(0u64, |n, t| {
            let owned = t
                .regions()
                .iter()
                .fold(0u64, |m, r| m.saturating_add(r.len));
            // Packed codes take a byte each once unpacked.
            let codes = if t.quant.is_some() { t.elements() } else { 0 };
            // A correction's codes, one byte each, and its factors as f32
            // while it is applied.
            let factors = t.correction.map_or(0, |c| {
                let (rows, cols) = t.rows_cols();
                (c.rank as u64)
                    .saturating_mul(rows.saturating_add(cols))
                    .saturating_mul(5)
            });
            let codes = codes.saturating_add(factors);
            n.saturating_add(owned).saturating_add(codes)
        });
        let largest = self.tensors.iter().map(|t| t.elements()).max().unwrap_or(0);
        let f32s = if f32_weights {
            largest.saturating_mul(8)
        } else {
            0
        };
        decoded.saturating_add(values).saturating_add(f32s)
    }

    pub fn metadata_value(&self, key: &str) -> Option<&MetaValue> {
        self.metadata
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.metadata[i].1)
    }
}
