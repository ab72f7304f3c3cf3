//! The validating reader: header, sections, then every value.

use std::borrow::Cow;

use half::{bf16, f16};

use crate::codec::decode;
use crate::error::{ErrorKind, FormatError, Result};
use crate::header::parse_header;
use crate::pack::{first_out_of_range_in, from_planes, unpack_codes_in, Bits, UnpackError};
use crate::tensor::{Factor, LowRank, Tensor, TensorData};
use crate::types::{CodeRange, FactorInfo, Header, Kind, Layout, Region, Section, TensorEntry};

/// Limits a reader applies on top of the spec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest file accepted.
    pub max_file_bytes: u64,
    /// Largest sum of decoded section lengths accepted; bounds memory use.
    pub max_decoded_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        // 4 GiB on 64-bit targets; 1 GiB where the address space is 32-bit
        // (wasm32).
        let cap: u64 = if usize::BITS >= 64 { 4 << 30 } else { 1 << 30 };
        ReadOptions {
            max_file_bytes: cap,
            max_decoded_bytes: cap,
        }
    }
}

/// A fully validated file: its header and every tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Archive {
    pub header: Header,
    /// In the order of the tensor table.
    pub tensors: Vec<Tensor>,
}

impl Archive {
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Reads and validates a whole file held in memory.
pub fn read(bytes: &[u8], options: &ReadOptions) -> Result<Archive> {
    let header = parse_header(bytes, options)?;
    // Sections decode independently: on all cores, largest first.
    let decoded = crate::parallel::map_largest_first(
        &header.sections.iter().enumerate().collect::<Vec<_>>(),
        |(_, s)| s.decoded_len as usize,
        |&(i, s)| {
            // parse_header checked offset + stored_len <= file length.
            let stored = &bytes[s.offset as usize..(s.offset + s.stored_len) as usize];
            decode(stored, s, i)
        },
    )
    .into_iter()
    .collect::<Result<Vec<Cow<[u8]>>>>()?;
    let tensors = header
        .tensors
        .iter()
        .enumerate()
        .map(|(i, entry)| decode_tensor(i, entry, &header.sections, &decoded))
        .collect::<Result<Vec<_>>>()?;
    Ok(Archive { header, tensors })
}

/// Reads and validates the header only: no section is decompressed.
pub fn read_header(bytes: &[u8], options: &ReadOptions) -> Result<Header> {
    parse_header(bytes, options)
}

fn region_bytes<'a>(decoded: &'a [Cow<[u8]>], r: Region) -> &'a [u8] {
    // parse_header checked the region lies inside its section, and decode()
    // checked the section decoded to exactly its declared length.
    &decoded[r.section as usize][r.offset as usize..(r.offset + r.len) as usize]
}

fn value_error(
    kind: ErrorKind,
    field: String,
    section: &Section,
    region: Region,
    detail: String,
) -> FormatError {
    FormatError::new(
        kind,
        field,
        section.offset,
        format!(
            "{detail} (in the region at decoded byte {} of section {})",
            region.offset, region.section
        ),
    )
}

/// The `n` codes of a region (a tensor's or a factor's; `field` names its
/// owner), checked against their width's range (spec §9 steps 25, 26, 29).
fn decode_codes(
    decoded: &[Cow<[u8]>],
    sections: &[Section],
    field: &str,
    (bits, layout, range): (u8, Layout, CodeRange),
    region: Region,
    n: usize,
) -> Result<Vec<i8>> {
    let raw = region_bytes(decoded, region);
    let section = &sections[region.section as usize];
    // The header checked the width (§9); a width it let through is still
    // refused here rather than trusted.
    let width = Bits::new(bits).ok_or_else(|| {
        value_error(
            ErrorKind::InvalidField,
            format!("{field}.bits"),
            section,
            region,
            format!("bits {bits} outside 2..=8"),
        )
    })?;
    match layout {
        Layout::Bytes => {
            let codes: Vec<i8> = raw.iter().map(|&b| b as i8).collect();
            if let Some(at) = first_out_of_range_in(&codes, width, range) {
                return Err(value_error(
                    ErrorKind::InvalidCode,
                    format!("{field}.codes"),
                    section,
                    region,
                    format!(
                        "code {} at index {at} is outside the {} {bits}-bit range",
                        codes[at],
                        range.name()
                    ),
                ));
            }
            Ok(codes)
        }
        Layout::Packed => unpack_codes_in(raw, width, n, range).map_err(|e| {
            let (at, what) = match e {
                UnpackError::OutOfRange(at) => (
                    at,
                    format!("code {at} is -2^{}, outside the symmetric range", bits - 1),
                ),
                UnpackError::NonZeroPadding => {
                    (n, "padding bits after the last code are not zero".into())
                }
            };
            FormatError::new(
                ErrorKind::InvalidCode,
                format!("{field}.codes"),
                section.offset,
                format!(
                    "{what} (packed stream at decoded byte {} of section {}, bit {})",
                    region.offset,
                    region.section,
                    at * bits as usize
                ),
            )
        }),
    }
}

/// The f16 scales of a region, each finite and non-negative (step 27).
fn decode_scales(
    decoded: &[Cow<[u8]>],
    sections: &[Section],
    field: &str,
    region: Region,
) -> Result<Vec<f16>> {
    let scales: Vec<f16> = from_planes(region_bytes(decoded, region), 2)
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]))
        .collect();
    if let Some(at) = scales
        .iter()
        .position(|s| !s.is_finite() || s.is_sign_negative())
    {
        return Err(value_error(
            ErrorKind::InvalidValue,
            field.to_owned(),
            &sections[region.section as usize],
            region,
            format!(
                "scale {at} is {} (scales must be finite and non-negative)",
                scales[at]
            ),
        ));
    }
    Ok(scales)
}

/// One factor of a correction: codes, then scales (step 29).
fn decode_factor(
    decoded: &[Cow<[u8]>],
    sections: &[Section],
    field: &str,
    f: &FactorInfo,
    n: usize,
) -> Result<Factor> {
    let codes = decode_codes(
        decoded,
        sections,
        field,
        (f.bits, f.layout, f.range),
        f.codes,
        n,
    )?;
    let scales = decode_scales(decoded, sections, &format!("{field}.scales"), f.scales)?;
    Ok(Factor {
        bits: f.bits,
        range: f.range,
        group: f.group,
        codes,
        scales,
    })
}

fn decode_tensor(
    i: usize,
    entry: &TensorEntry,
    sections: &[Section],
    decoded: &[Cow<[u8]>],
) -> Result<Tensor> {
    let n = entry.elements() as usize;
    let data = match (entry.kind, &entry.quant, &entry.data) {
        (kind, Some(q), _) if kind.is_quantized() => {
            let field = format!("tensors[{i}]");
            let codes = decode_codes(
                decoded,
                sections,
                &field,
                (q.bits, q.layout, CodeRange::Symmetric),
                q.codes,
                n,
            )?;
            let scales = decode_scales(decoded, sections, &format!("{field}.scales"), q.scales)?;
            let correction = match &entry.correction {
                Some(c) => {
                    let (rows, cols) = entry.rows_cols();
                    let rank = c.rank as usize;
                    Some(LowRank {
                        rank: c.rank,
                        a: decode_factor(
                            decoded,
                            sections,
                            &format!("{field}.a"),
                            &c.a,
                            rows as usize * rank,
                        )?,
                        b: decode_factor(
                            decoded,
                            sections,
                            &format!("{field}.b"),
                            &c.b,
                            cols as usize * rank,
                        )?,
                    })
                }
                None => None,
            };
            TensorData::Quantized {
                bits: q.bits,
                group_size: q.group_size,
                codes,
                scales,
                correction,
            }
        }
        (kind, None, Some(r)) => {
            let width = kind.element_width().unwrap_or(1) as usize;
            let bytes = from_planes(region_bytes(decoded, *r), width);
            let (data, bad) = match kind {
                Kind::F16 => {
                    let v: Vec<f16> = bytes
                        .chunks_exact(2)
                        .map(|b| f16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    let bad = v.iter().position(|x| !x.is_finite());
                    (TensorData::F16(v), bad)
                }
                Kind::Bf16 => {
                    let v: Vec<bf16> = bytes
                        .chunks_exact(2)
                        .map(|b| bf16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    let bad = v.iter().position(|x| !x.is_finite());
                    (TensorData::Bf16(v), bad)
                }
                _ => {
                    let v: Vec<f32> = bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    let bad = v.iter().position(|x| !x.is_finite());
                    (TensorData::F32(v), bad)
                }
            };
            if let Some(at) = bad {
                return Err(value_error(
                    ErrorKind::InvalidValue,
                    format!("tensors[{i}].data"),
                    &sections[r.section as usize],
                    *r,
                    format!("value {at} is NaN or infinite"),
                ));
            }
            data
        }
        // parse_header gives quantized entries quant info and others a data
        // region; anything else cannot be built by it.
        _ => {
            return Err(FormatError::new(
                ErrorKind::InvalidField,
                format!("tensors[{i}]"),
                entry.entry_offset,
                "entry has neither quantization fields nor a data region",
            ))
        }
    };
    Ok(Tensor {
        name: entry.name.clone(),
        shape: entry.shape.clone(),
        data,
    })
}
