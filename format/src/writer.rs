//! The canonical writer: one logical content and one set of options give
//! one byte string.

use std::collections::{BTreeMap, HashSet};

use crate::codec::{encode, Compression};
use crate::error::WriteError;
use crate::limits::*;
use crate::pack::{first_out_of_range, pack_codes, to_planes};
use crate::raw::{RawFile, RawMeta, RawSection, RawTensor};
use crate::tensor::{Tensor, TensorData};
use crate::types::{
    groups_per_row, rows_cols, Codec, Layout, MetaValue, QuantFields, Region, SectionEntry,
    SCALE_DTYPE_F16,
};

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
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Brotli {
                quality: 11,
                lgwin: 24,
            },
            grouping: Grouping::ByStream,
            layout: LayoutChoice::Auto,
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
        } => {
            if t.shape.is_empty() {
                return Err(invalid(name, "a quantized tensor needs rank 1 or more"));
            }
            if !(MIN_BITS..=MAX_BITS).contains(bits) {
                return Err(invalid(
                    name,
                    format!("bits {bits} outside {MIN_BITS}..={MAX_BITS}"),
                ));
            }
            if *group_size as u64 > cols {
                return Err(invalid(
                    name,
                    format!("group size {group_size} exceeds {cols} columns"),
                ));
            }
            let want = rows * groups_per_row(cols, *group_size);
            if scales.len() as u64 != want {
                return Err(invalid(
                    name,
                    format!("{} scales, the shape needs {want}", scales.len()),
                ));
            }
            if let Some(i) = first_out_of_range(codes, *bits) {
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
    Tensor(usize),
    All,
}

struct SectionBuilder {
    keys: Vec<StreamKey>,
    decoded: Vec<Vec<u8>>,
}

impl SectionBuilder {
    /// Appends `bytes` to the section for `key`, returning its region.
    fn push(&mut self, key: StreamKey, bytes: &[u8]) -> Region {
        let index = match self.keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key);
                self.decoded.push(Vec::new());
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
        region
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
    };
    let mut raw_tensors = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let key = |stream: StreamKey| match options.grouping {
            Grouping::ByStream => stream,
            Grouping::PerTensor => StreamKey::Tensor(i),
            Grouping::Single => StreamKey::All,
        };
        let (quant, regions) = match &t.data {
            TensorData::Quantized {
                bits,
                group_size,
                codes,
                scales,
            } => {
                let layout = if packed && *bits < 8 {
                    Layout::Packed
                } else {
                    Layout::Bytes
                };
                let code_bytes = match layout {
                    Layout::Packed => pack_codes(codes, *bits),
                    Layout::Bytes => codes.iter().map(|&c| c as u8).collect(),
                };
                let scale_bytes: Vec<u8> = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                let codes_region = sections.push(key(StreamKey::Codes(*bits)), &code_bytes);
                let scales_region =
                    sections.push(key(StreamKey::Scales), &to_planes(&scale_bytes, 2));
                let q = QuantFields {
                    bits: *bits,
                    layout: layout as u8,
                    scale_dtype: SCALE_DTYPE_F16,
                    reserved: 0,
                    group_size: *group_size,
                };
                (Some(q), vec![codes_region, scales_region])
            }
            TensorData::F16(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (
                    None,
                    vec![sections.push(key(StreamKey::Passthrough), &to_planes(&bytes, 2))],
                )
            }
            TensorData::Bf16(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (
                    None,
                    vec![sections.push(key(StreamKey::Passthrough), &to_planes(&bytes, 2))],
                )
            }
            TensorData::F32(v) => {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                (
                    None,
                    vec![sections.push(key(StreamKey::Passthrough), &to_planes(&bytes, 4))],
                )
            }
        };
        raw_tensors.push(RawTensor {
            name: t.name.as_bytes().to_vec(),
            kind: t.data.kind() as u8,
            shape: t.shape.clone(),
            quant,
            regions,
        });
    }
    if sections.decoded.len() > MAX_SECTIONS as usize {
        return Err(WriteError::Limit(format!(
            "{} sections exceed {MAX_SECTIONS}",
            sections.decoded.len()
        )));
    }

    let stored = compress_all(&sections.decoded, options.compression)?;
    let codec: Codec = options.compression.codec();
    let mut file = RawFile {
        sections: sections
            .decoded
            .iter()
            .zip(stored)
            .map(|(decoded, stored)| RawSection {
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

/// Compresses sections on all cores, largest first. Each section is
/// compressed on its own, so the bytes do not depend on the thread count.
fn compress_all(decoded: &[Vec<u8>], compression: Compression) -> Result<Vec<Vec<u8>>, WriteError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(decoded.len());
    if compression == Compression::Raw || workers < 2 {
        return decoded.iter().map(|d| encode(d, compression)).collect();
    }
    let mut order: Vec<usize> = (0..decoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(decoded[i].len()));
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((i, encode(&decoded[i], compression)));
        }
        done
    };
    let mut slots: Vec<Option<Vec<u8>>> = vec![None; decoded.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
        for handle in handles {
            let done = handle
                .join()
                .map_err(|_| WriteError::Codec("a compression thread panicked".into()))?;
            for (i, result) in done {
                slots[i] = Some(result?);
            }
        }
        Ok::<(), WriteError>(())
    })?;
    slots
        .into_iter()
        .map(|s| s.ok_or_else(|| WriteError::Codec("a section was not compressed".into())))
        .collect()
}
