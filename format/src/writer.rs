//! The canonical writer: one logical content and one set of options give
//! one byte string.

use std::collections::{BTreeMap, HashSet};

use crate::codec::{encode_section_content, Compression, SectionContent};
use crate::error::WriteError;
use crate::limits::*;
use crate::pack::{first_out_of_range, first_out_of_range_in, pack_codes, to_planes, Bits};
use crate::rans::Part;
use crate::raw::{RawCorrection, RawFile, RawMeta, RawSection, RawTensor};
use crate::tensor::{Factor, LowRank, Tensor, TensorData};
use crate::types::{
    groups_per_row, rows_cols, Codec, FactorFields, Layout, MetaValue, QuantFields, Region,
    SectionEntry, SCALE_DTYPE_F16,
};
use half::f16;

/// Which tensors share a section. Sharing lets the compressor see more of
/// one distribution; separating streams of different statistics (codes of
/// each bit width, scales, passthrough) helps it more than it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    /// One section per stream: codes of each bit width, all scales, all
    /// passthrough values. The default.
    #[default]
    ByStream,
    /// One section per tensor.
    PerTensor,
    /// Everything in one section.
    Single,
}

/// How codes of fewer than 8 bits are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayoutChoice {
    /// Packed when the codec is raw (25% fewer bytes), one code per byte
    /// under a compressor (which then compresses 14% better).
    #[default]
    Auto,
    Bytes,
    Packed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    pub compression: Compression,
    pub grouping: Grouping,
    pub layout: LayoutChoice,
    /// A section is closed before it would exceed this many decoded bytes
    /// (at a tensor boundary; 0 = never), so that large streams are
    /// compressed in parallel. Costs a few hundred bytes per extra section.
    pub split_bytes: u64,
}

/// The default of [`WriteOptions::split_bytes`] for brotli, zstd and raw:
/// 8 MiB, which splits the int6 codes of a 36M-parameter model into four
/// sections that brotli-11 compresses in parallel.
pub const DEFAULT_SPLIT_BYTES: u64 = 8 << 20;

/// The default of [`WriteOptions::split_bytes`] for rANS and auto: 64 MiB.
/// rANS codes 100+ MB/s on one core, so it needs no parallelism, and a
/// decoder vectorised over lanes (the Python reference) takes a number of
/// steps per section, not per byte: fewer, larger sections decode faster.
pub const RANS_SPLIT_BYTES: u64 = 64 << 20;

impl WriteOptions {
    /// The default options with `compression` and its default split.
    pub fn with_compression(compression: Compression) -> WriteOptions {
        WriteOptions {
            compression,
            split_bytes: match compression {
                Compression::Rans | Compression::Auto { .. } => RANS_SPLIT_BYTES,
                _ => DEFAULT_SPLIT_BYTES,
            },
            ..WriteOptions::default()
        }
    }
}

impl Default for WriteOptions {
    /// Auto compression (rANS, brotli-11 or zstd-19 per section), streams
    /// grouped, auto layout, 64 MiB sections.
    fn default() -> Self {
        WriteOptions {
            compression: crate::codec::DEFAULT_COMPRESSION,
            grouping: Grouping::ByStream,
            layout: LayoutChoice::Auto,
            split_bytes: RANS_SPLIT_BYTES,
        }
    }
}

fn invalid(name: &str, reason: impl Into<String>) -> WriteError {
    WriteError::InvalidTensor {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!("holds the control character U+{:04X}", c as u32));
    }
    Ok(())
}

/// Checks one tensor against every rule the reader enforces.
fn check_tensor(t: &Tensor) -> Result<(), WriteError> {
    let name = t.name.as_str();
    check_name(name).map_err(|r| invalid(name, format!("name {r}")))?;
    if t.name.len() > MAX_NAME_LEN as usize {
        return Err(invalid(name, "name longer than 1024 bytes"));
    }
    if t.shape.len() > MAX_RANK as usize {
        return Err(invalid(
            name,
            format!("rank {} exceeds {MAX_RANK}", t.shape.len()),
        ));
    }
    if t.shape.contains(&0) {
        return Err(invalid(name, "a dimension is zero"));
    }
    let elements = t
        .shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| invalid(name, "element count overflows"))?;
    if elements != t.data.len() as u64 {
        return Err(invalid(
            name,
            format!("shape holds {elements} elements, data {}", t.data.len()),
        ));
    }
    let (rows, cols) = rows_cols(&t.shape);
    match &t.data {
        TensorData::Quantized {
            bits,
            group_size,
            codes,
            scales,
            correction,
        } => {
            if let Some(c) = correction {
                check_correction(name, c, rows, cols)?;
            }
            if t.shape.is_empty() {
                return Err(invalid(name, "a quantized tensor needs rank 1 or more"));
            }
            let Some(width) = Bits::new(*bits) else {
                return Err(invalid(
                    name,
                    format!("bits {bits} outside {MIN_BITS}..={MAX_BITS}"),
                ));
            };
            if *group_size as u64 > cols {
                return Err(invalid(
                    name,
                    format!("group size {group_size} exceeds {cols} columns"),
                ));
            }
            let want = rows.saturating_mul(groups_per_row(cols, *group_size));
            if scales.len() as u64 != want {
                return Err(invalid(
                    name,
                    format!("{} scales, the shape needs {want}", scales.len()),
                ));
            }
            if let Some(i) = first_out_of_range(codes, width) {
                return Err(invalid(
                    name,
                    format!("code {} at {i} outside the {bits}-bit range", codes[i]),
                ));
            }
            if let Some(s) = scales
                .iter()
                .find(|s| !s.is_finite() || s.is_sign_negative())
            {
                return Err(invalid(
                    name,
                    format!("scale {s} is not finite and non-negative"),
                ));
            }
        }
        TensorData::F16(v) => check_finite(name, v.iter().map(|x| x.is_finite()))?,
        TensorData::Bf16(v) => check_finite(name, v.iter().map(|x| x.is_finite()))?,
        TensorData::F32(v) => check_finite(name, v.iter().map(|x| x.is_finite()))?,
    }
    Ok(())
}

/// A correction's rank, factor sizes, widths, groups, codes and scales
/// (spec §4.8, §9 steps 15.11 and 29).
fn check_correction(name: &str, c: &LowRank, rows: u64, cols: u64) -> Result<(), WriteError> {
    let most = rows.min(cols).min(MAX_LOW_RANK as u64);
    if c.rank == 0 || c.rank as u64 > most {
        return Err(invalid(
            name,
            format!(
                "correction rank {} outside 1..={MAX_LOW_RANK} and min(rows, cols) = {}",
                c.rank,
                rows.min(cols)
            ),
        ));
    }
    let rank = c.rank as u64;
    for (which, f, want) in [("A", &c.a, rows * rank), ("B", &c.b, rank * cols)] {
        let bad = |reason: String| invalid(name, format!("correction factor {which}: {reason}"));
        let Some(width) = Bits::new(f.bits) else {
            return Err(bad(format!(
                "bits {} outside {MIN_BITS}..={MAX_BITS}",
                f.bits
            )));
        };
        if f.codes.len() as u64 != want {
            return Err(bad(format!(
                "{} codes, the shape needs {want}",
                f.codes.len()
            )));
        }
        let group = f.group as u64;
        if group == 0 || want % group != 0 {
            return Err(bad(format!("group {group} does not divide {want} codes")));
        }
        if f.scales.len() as u64 != want / group {
            return Err(bad(format!(
                "{} scales, groups of {group} need {}",
                f.scales.len(),
                want / group
            )));
        }
        if let Some(i) = first_out_of_range_in(&f.codes, width, f.range) {
            return Err(bad(format!(
                "code {} at {i} outside the {} {}-bit range",
                f.codes[i],
                f.range.name(),
                f.bits
            )));
        }
        if let Some(s) = f
            .scales
            .iter()
            .find(|s| !s.is_finite() || s.is_sign_negative())
        {
            return Err(bad(format!("scale {s} is not finite and non-negative")));
        }
    }
    Ok(())
}

fn check_finite(name: &str, mut finite: impl Iterator<Item = bool>) -> Result<(), WriteError> {
    match finite.position(|f| !f) {
        Some(i) => Err(invalid(name, format!("value {i} is NaN or infinite"))),
        None => Ok(()),
    }
}

fn encode_meta(key: &str, value: &MetaValue) -> Result<RawMeta, WriteError> {
    let bad = |reason: String| WriteError::InvalidMetadata {
        key: key.to_owned(),
        reason,
    };
    check_name(key).map_err(|r| bad(format!("key {r}")))?;
    if key.len() > MAX_KEY_LEN as usize {
        return Err(bad(format!("key longer than {MAX_KEY_LEN} bytes")));
    }
    let value_bytes = match value {
        MetaValue::U64(v) => v.to_le_bytes().to_vec(),
        MetaValue::I64(v) => v.to_le_bytes().to_vec(),
        MetaValue::F64(v) => v.to_bits().to_le_bytes().to_vec(),
        MetaValue::Str(s) => length_prefixed(s.as_bytes()).map_err(bad)?,
        MetaValue::Bytes(b) => length_prefixed(b).map_err(bad)?,
    };
    Ok(RawMeta {
        key: key.as_bytes().to_vec(),
        ty: value.type_code(),
        value: value_bytes,
    })
}

fn length_prefixed(b: &[u8]) -> Result<Vec<u8>, String> {
    if b.len() > MAX_METADATA_VALUE_LEN as usize {
        return Err(format!("value longer than {MAX_METADATA_VALUE_LEN} bytes"));
    }
    let mut out = (b.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(b);
    Ok(out)
}

/// The section a stream goes to, by grouping; sections are numbered in
/// order of first use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum StreamKey {
    Codes(u8),
    Scales,
    Passthrough,
    Corrections,
    Tensor(usize),
    All,
}

struct SectionBuilder {
    /// For each section: the stream it holds.
    keys: Vec<StreamKey>,
    decoded: Vec<Vec<u8>>,
    /// For each section: its regions, as the rANS model sees them.
    content: Vec<SectionContent>,
    /// A stream's section is closed before it would exceed this many
    /// decoded bytes (0 = never), at a tensor boundary.
    split_bytes: u64,
}

impl SectionBuilder {
    /// Appends `bytes` to the open section of `key` (opening one if there
    /// is none, or if the open one is full), returning its region.
    /// `cols` is the row length of one-byte codes, 0 for anything else.
    fn push(&mut self, key: StreamKey, bytes: &[u8], cols: Option<u64>) -> Region {
        let open = self.keys.iter().rposition(|k| *k == key);
        let index = match open {
            Some(i) if !self.is_full(i, bytes.len()) => i,
            _ => {
                self.keys.push(key);
                self.decoded.push(Vec::new());
                self.content.push(SectionContent {
                    parts: Vec::new(),
                    all_codes: true,
                });
                self.keys.len() - 1
            }
        };
        let buf = &mut self.decoded[index];
        let region = Region {
            section: index as u32,
            offset: buf.len() as u64,
            len: bytes.len() as u64,
        };
        buf.extend_from_slice(bytes);
        let content = &mut self.content[index];
        content.all_codes &= cols.is_some();
        content.parts.push(Part {
            len: bytes.len(),
            cols: cols.map_or(0, |c| usize::try_from(c).unwrap_or(0)),
        });
        region
    }

    fn is_full(&self, section: usize, adding: usize) -> bool {
        let len = self.decoded[section].len() as u64;
        self.split_bytes > 0 && len > 0 && len + adding as u64 > self.split_bytes
    }
}

/// Serialises `tensors` (in the given order) and `metadata` (stored sorted
/// by key) into a `.pgq` file.
pub fn write(
    tensors: &[Tensor],
    metadata: &BTreeMap<String, MetaValue>,
    options: &WriteOptions,
) -> Result<Vec<u8>, WriteError> {
    Ok(write_raw(tensors, metadata, options)?.to_bytes())
}

/// Like [`write`], but returns the file as raw fields (sections placed),
/// for tools that derive other files from it.
pub fn write_raw(
    tensors: &[Tensor],
    metadata: &BTreeMap<String, MetaValue>,
    options: &WriteOptions,
) -> Result<RawFile, WriteError> {
    if tensors.len() > MAX_TENSORS as usize {
        return Err(WriteError::Limit(format!(
            "{} tensors exceed {MAX_TENSORS}",
            tensors.len()
        )));
    }
    if metadata.len() > MAX_METADATA as usize {
        return Err(WriteError::Limit(format!(
            "{} metadata entries exceed {MAX_METADATA}",
            metadata.len()
        )));
    }
    let mut names = HashSet::new();
    for t in tensors {
        check_tensor(t)?;
        if !names.insert(t.name.as_str()) {
            return Err(invalid(&t.name, "the name appears twice"));
        }
    }
    let raw_meta = metadata
        .iter()
        .map(|(k, v)| encode_meta(k, v))
        .collect::<Result<Vec<_>, _>>()?;

    let packed = match options.layout {
        LayoutChoice::Auto => options.compression == Compression::Raw,
        LayoutChoice::Bytes => false,
        LayoutChoice::Packed => true,
    };
    let mut sections = SectionBuilder {
        keys: Vec::new(),
        decoded: Vec::new(),
        content: Vec::new(),
        split_bytes: options.split_bytes,
    };
    let mut raw_tensors = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let key = |stream: StreamKey| match options.grouping {
            Grouping::ByStream => stream,
            Grouping::PerTensor => StreamKey::Tensor(i),
            Grouping::Single => StreamKey::All,
        };
        let mut correction_raw = None;
        let (quant, regions) = match &t.data {
            TensorData::Quantized {
                bits,
                group_size,
                codes,
                scales,
                correction,
            } => {
                let (_, cols) = rows_cols(&t.shape);
                let (layout, code_bytes) = layout_codes(codes, *bits, packed);
                // One-byte codes tell the rANS model their row length, so
                // that columns can have tables of their own.
                let row = (layout == Layout::Bytes).then_some(cols);
                let codes_region = sections.push(key(StreamKey::Codes(*bits)), &code_bytes, row);
                let scales_region =
                    sections.push(key(StreamKey::Scales), &scale_planes(scales), None);
                let q = QuantFields {
                    bits: *bits,
                    layout: layout as u8,
                    scale_dtype: SCALE_DTYPE_F16,
                    reserved: 0,
                    group_size: *group_size,
                };
                if let Some(c) = correction {
                    let mut factor = |f: &Factor, row: u64| {
                        let (layout, code_bytes) = layout_codes(&f.codes, f.bits, packed);
                        let row = (layout == Layout::Bytes).then_some(row);
                        let codes = sections.push(key(StreamKey::Corrections), &code_bytes, row);
                        let scales = sections.push(
                            key(StreamKey::Corrections),
                            &scale_planes(&f.scales),
                            None,
                        );
                        let fields = FactorFields {
                            bits: f.bits,
                            layout: layout as u8,
                            scale_dtype: SCALE_DTYPE_F16,
                            range: f.range as u8,
                            group: f.group,
                        };
                        (fields, [codes, scales])
                    };
                    let a = factor(&c.a, c.rank as u64);
                    let b = factor(&c.b, cols);
                    correction_raw = Some(RawCorrection { rank: c.rank, a, b });
                }
                (Some(q), vec![codes_region, scales_region])
            }
            TensorData::F16(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (
                    None,
                    vec![sections.push(key(StreamKey::Passthrough), &to_planes(&bytes, 2), None)],
                )
            }
            TensorData::Bf16(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (
                    None,
                    vec![sections.push(key(StreamKey::Passthrough), &to_planes(&bytes, 2), None)],
                )
            }
            TensorData::F32(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (
                    None,
                    vec![sections.push(key(StreamKey::Passthrough), &to_planes(&bytes, 4), None)],
                )
            }
        };
        raw_tensors.push(RawTensor {
            name: t.name.as_bytes().to_vec(),
            kind: t.data.kind() as u8,
            shape: t.shape.clone(),
            quant,
            regions,
            correction: correction_raw,
        });
    }
    if sections.decoded.len() > MAX_SECTIONS as usize {
        return Err(WriteError::Limit(format!(
            "{} sections exceed {MAX_SECTIONS}",
            sections.decoded.len()
        )));
    }

    let stored = compress_all(&sections.decoded, &sections.content, options.compression)?;
    let uses_rans = stored.iter().any(|(codec, _)| *codec == Codec::Rans);
    let uses_low_rank = raw_tensors.iter().any(|t| t.correction.is_some());
    let mut file = RawFile {
        // The oldest version that can read the file (spec §3.3).
        minor: if uses_low_rank {
            MINOR_VERSION_LOW_RANK
        } else if uses_rans {
            MINOR_VERSION_RANS
        } else {
            MINOR_VERSION
        },
        sections: sections
            .decoded
            .iter()
            .zip(stored)
            .map(|(decoded, (codec, stored))| RawSection {
                entry: SectionEntry {
                    codec: codec as u8,
                    reserved: [0; 3],
                    crc32: crc32fast::hash(decoded),
                    offset: 0,
                    stored_len: stored.len() as u64,
                    decoded_len: decoded.len() as u64,
                },
                stored,
            })
            .collect(),
        metadata: raw_meta,
        tensors: raw_tensors,
        ..RawFile::default()
    };
    if file.header_body().len() > MAX_HEADER_LEN as usize {
        return Err(WriteError::Limit(format!(
            "the header exceeds {MAX_HEADER_LEN} bytes"
        )));
    }
    file.place_sections();
    Ok(file)
}

/// The layout auto or forced `packed` gives codes of a width, and their
/// bytes: one decision for both, so that the header can never describe
/// bytes it does not hold.
fn layout_codes(codes: &[i8], bits: u8, packed: bool) -> (Layout, Vec<u8>) {
    match Bits::new(bits) {
        Some(width) if packed && bits < 8 => (Layout::Packed, pack_codes(codes, width)),
        _ => (Layout::Bytes, codes.iter().map(|&c| c as u8).collect()),
    }
}

/// f16 scales as byte planes.
fn scale_planes(scales: &[f16]) -> Vec<u8> {
    let bytes: Vec<u8> = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
    to_planes(&bytes, 2)
}

/// Compresses sections on all cores, largest first. Each section is
/// compressed on its own, so the bytes do not depend on the thread count.
fn compress_all(
    decoded: &[Vec<u8>],
    content: &[SectionContent],
    compression: Compression,
) -> Result<Vec<(Codec, Vec<u8>)>, WriteError> {
    let jobs: Vec<(&Vec<u8>, &SectionContent)> = decoded.iter().zip(content).collect();
    let one = |(d, c): &(&Vec<u8>, &SectionContent)| encode_section_content(d, c, compression);
    if compression == Compression::Raw {
        return jobs.iter().map(one).collect();
    }
    crate::parallel::map_largest_first(&jobs, |(d, _)| d.len(), one)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{read, ReadOptions};
    use half::f16;

    fn int6(name: &str, rows: u64, cols: u64) -> Tensor {
        let n = (rows * cols) as usize;
        Tensor {
            name: name.into(),
            shape: vec![rows, cols],
            data: TensorData::Quantized {
                bits: 6,
                group_size: 0,
                codes: (0..n).map(|i| (i % 7) as i8 - 3).collect(),
                scales: vec![f16::from_f32(0.01); rows as usize],
                correction: None,
            },
        }
    }

    #[test]
    fn streams_split_at_tensor_boundaries_and_still_read_back() {
        let tensors: Vec<Tensor> = (0..5).map(|i| int6(&format!("t{i}"), 10, 10)).collect();
        let options = WriteOptions {
            compression: Compression::Zstd(1),
            split_bytes: 250,
            ..WriteOptions::default()
        };
        let bytes = write(&tensors, &BTreeMap::new(), &options).unwrap();
        let archive = read(&bytes, &ReadOptions::default()).unwrap();
        assert_eq!(archive.tensors, tensors);
        // 100-byte code regions: 2 per code section (250 bytes max) -> 3
        // code sections; 5 x 20 bytes of scales fit in one.
        let code_sections: Vec<u32> = archive
            .header
            .tensors
            .iter()
            .map(|t| t.quant.unwrap().codes.section)
            .collect();
        assert_eq!(code_sections, vec![0, 0, 2, 2, 3]);
        assert_eq!(archive.header.sections.len(), 4);
        // Unsplit: one code section.
        let whole = write(
            &tensors,
            &BTreeMap::new(),
            &WriteOptions {
                split_bytes: 0,
                ..options
            },
        )
        .unwrap();
        assert_eq!(
            read(&whole, &ReadOptions::default())
                .unwrap()
                .header
                .sections
                .len(),
            2
        );
    }

    #[test]
    fn same_content_and_options_give_the_same_bytes() {
        let tensors: Vec<Tensor> = (0..3).map(|i| int6(&format!("t{i}"), 64, 64)).collect();
        for compression in [
            Compression::Raw,
            Compression::Zstd(5),
            Compression::Brotli {
                quality: 5,
                lgwin: 20,
            },
        ] {
            let options = WriteOptions {
                compression,
                split_bytes: 5000,
                ..WriteOptions::default()
            };
            let a = write(&tensors, &BTreeMap::new(), &options).unwrap();
            let b = write(&tensors, &BTreeMap::new(), &options).unwrap();
            assert_eq!(a, b, "{compression:?}");
        }
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would_reject() {
        let mut bad = int6("w", 2, 3);
        if let TensorData::Quantized { codes, .. } = &mut bad.data {
            codes[0] = -32;
        }
        assert!(write(&[bad], &BTreeMap::new(), &WriteOptions::default()).is_err());
        let twice = [int6("w", 1, 2), int6("w", 1, 2)];
        assert!(write(&twice, &BTreeMap::new(), &WriteOptions::default()).is_err());
        let mut nan = BTreeMap::new();
        nan.insert("".to_string(), MetaValue::U64(1));
        assert!(write(&[], &nan, &WriteOptions::default()).is_err());
    }
}
