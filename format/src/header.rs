//! Parsing and validation of everything before the section payloads.
//!
//! The order of the checks is the order of spec/FORMAT.md, "Validation":
//! a conforming reader raises the first failing check's class. Nothing is
//! allocated from a declared count before that count has been checked
//! against the bytes that are actually present.

use std::collections::{BTreeMap, HashSet};

use crate::cursor::Cursor;
use crate::error::{ErrorKind, FormatError, Result};
use crate::limits::*;
use crate::types::*;
use crate::ReadOptions;

fn err(
    kind: ErrorKind,
    field: impl Into<String>,
    offset: u64,
    detail: impl Into<String>,
) -> FormatError {
    FormatError::new(kind, field, offset, detail)
}

/// Checks magic, version and the header CRC, and returns the preamble.
fn parse_preamble(bytes: &[u8]) -> Result<Preamble> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(err(
            ErrorKind::BadMagic,
            "magic",
            0,
            "not a .pgq file: the first bytes are not \\x89PGQ\\r\\n\\x1a\\n",
        ));
    }
    let mut c = Cursor::new(bytes, 0, bytes.len());
    let p: Preamble = c.record(PREAMBLE_LEN, &|| "preamble".into())?;
    if p.major != MAJOR_VERSION {
        return Err(err(
            ErrorKind::UnsupportedVersion,
            "major",
            8,
            format!(
                "major version {} (this reader implements {MAJOR_VERSION})",
                p.major
            ),
        ));
    }
    if p.header_len > MAX_HEADER_LEN {
        return Err(err(
            ErrorKind::LimitExceeded,
            "header_len",
            12,
            format!(
                "{} bytes exceeds the limit of {MAX_HEADER_LEN}",
                p.header_len
            ),
        ));
    }
    let body_end = PREAMBLE_LEN + p.header_len as u64;
    let crc_end = body_end + HEADER_CRC_LEN;
    if crc_end > bytes.len() as u64 {
        return Err(err(
            ErrorKind::Truncated,
            "header",
            PREAMBLE_LEN,
            format!(
                "header_len {} needs {crc_end} bytes with its CRC, the file has {}",
                p.header_len,
                bytes.len()
            ),
        ));
    }
    let (body_end, crc_end) = (body_end as usize, crc_end as usize);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&bytes[body_end..crc_end]);
    let stored = u32::from_le_bytes(stored);
    let actual = crc32fast::hash(&bytes[..body_end]);
    if stored != actual {
        return Err(err(
            ErrorKind::HeaderCrc,
            "header_crc",
            body_end as u64,
            format!("stored {stored:#010x}, computed {actual:#010x} over bytes 0..{body_end}"),
        ));
    }
    Ok(p)
}

fn check_count(value: u32, limit: u32, field: &str, offset: u64) -> Result<()> {
    if value > limit {
        return Err(err(
            ErrorKind::LimitExceeded,
            field,
            offset,
            format!("{value} exceeds the limit of {limit}"),
        ));
    }
    Ok(())
}

/// Validates a tensor name or metadata key.
fn parse_name(raw: &[u8], field: &str, offset: u64) -> Result<String> {
    if raw.is_empty() {
        return Err(err(ErrorKind::InvalidName, field, offset, "empty"));
    }
    let s = std::str::from_utf8(raw).map_err(|e| {
        err(
            ErrorKind::InvalidName,
            field,
            offset,
            format!("not UTF-8: {e}"),
        )
    })?;
    if let Some(ch) = s.chars().find(|c| c.is_control()) {
        return Err(err(
            ErrorKind::InvalidName,
            field,
            offset,
            format!("holds the control character U+{:04X}", ch as u32),
        ));
    }
    Ok(s.to_owned())
}

fn parse_sections(
    c: &mut Cursor,
    count: u32,
    data_start: u64,
    file_len: u64,
) -> Result<Vec<Section>> {
    // Never allocate from the declared count alone: at most what the bytes
    // left could hold. Reading entry by entry then reports a truncation
    // inside the exact entry where the bytes end.
    let mut out =
        Vec::with_capacity((count as usize).min(c.remaining() / SECTION_ENTRY_LEN as usize));
    let mut expected_offset = data_start;
    for i in 0..count {
        let at = c.offset();
        let e: SectionEntry = c.record(SECTION_ENTRY_LEN, &|| format!("sections[{i}]"))?;
        let f = |name: &str| format!("sections[{i}].{name}");
        let codec = Codec::from_u8(e.codec).ok_or_else(|| {
            err(
                ErrorKind::InvalidField,
                f("codec"),
                at,
                format!("unknown codec {}", e.codec),
            )
        })?;
        if e.reserved != [0; 3] {
            return Err(err(
                ErrorKind::InvalidField,
                f("reserved"),
                at + 1,
                "reserved bytes are not zero",
            ));
        }
        if e.decoded_len > MAX_DECODED_TOTAL {
            return Err(err(
                ErrorKind::LimitExceeded,
                f("decoded_len"),
                at + 24,
                format!("{} exceeds the limit of {MAX_DECODED_TOTAL}", e.decoded_len),
            ));
        }
        if codec == Codec::Raw && e.stored_len != e.decoded_len {
            return Err(err(
                ErrorKind::SizeMismatch,
                f("decoded_len"),
                at + 24,
                format!(
                    "a raw section stores {} bytes but declares {} decoded",
                    e.stored_len, e.decoded_len
                ),
            ));
        }
        if e.offset != expected_offset {
            let what = if e.offset < expected_offset {
                "overlaps the bytes before it"
            } else {
                "leaves a hole before it"
            };
            return Err(err(
                ErrorKind::SectionLayout,
                f("offset"),
                at + 8,
                format!(
                    "starts at {} but must start at {expected_offset}: it {what}",
                    e.offset
                ),
            ));
        }
        let end = e
            .offset
            .checked_add(e.stored_len)
            .filter(|&end| end <= file_len)
            .ok_or_else(|| {
                err(
                    ErrorKind::Truncated,
                    f("stored_len"),
                    at + 16,
                    format!(
                        "{} bytes from offset {} run past the end of the file ({file_len} bytes)",
                        e.stored_len, e.offset
                    ),
                )
            })?;
        expected_offset = end;
        out.push(Section {
            codec,
            crc32: e.crc32,
            offset: e.offset,
            stored_len: e.stored_len,
            decoded_len: e.decoded_len,
        });
    }
    if expected_offset != file_len {
        return Err(err(
            ErrorKind::SectionLayout,
            "sections",
            expected_offset,
            format!(
                "{} trailing bytes after the last section",
                file_len - expected_offset
            ),
        ));
    }
    Ok(out)
}

fn parse_metadata(c: &mut Cursor, count: u32) -> Result<Vec<(String, MetaValue)>> {
    // The smallest entry is 2 (key_len) + 1 (key) + 1 (type) + 4 (an empty
    // string's length) bytes.
    let mut out: Vec<(String, MetaValue)> =
        Vec::with_capacity((count as usize).min(c.remaining() / 8));
    for i in 0..count {
        let f = |name: &str| format!("metadata[{i}].{name}");
        let key_at = c.offset();
        let key_len = c.u16(&|| f("key_len"))?;
        if key_len > MAX_KEY_LEN {
            return Err(err(
                ErrorKind::InvalidName,
                f("key"),
                key_at,
                format!("{key_len} bytes exceeds the limit of {MAX_KEY_LEN}"),
            ));
        }
        let raw = c.take(key_len as u64, &|| f("key"))?;
        let key = parse_name(raw, &f("key"), key_at + 2)?;
        if let Some((prev, _)) = out.last() {
            if *prev == key {
                return Err(err(
                    ErrorKind::DuplicateName,
                    f("key"),
                    key_at + 2,
                    format!("key {key:?} appears twice"),
                ));
            }
            if prev.as_bytes() > key.as_bytes() {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("key"),
                    key_at + 2,
                    format!("key {key:?} after {prev:?}: keys must be in ascending byte order"),
                ));
            }
        }
        let type_at = c.offset();
        let ty = c.u8(&|| f("type"))?;
        let value = match ty {
            1 => MetaValue::U64(c.u64(&|| f("value"))?),
            2 => MetaValue::I64(c.u64(&|| f("value"))? as i64),
            3 => MetaValue::F64(f64::from_bits(c.u64(&|| f("value"))?)),
            4 | 5 => {
                let len_at = c.offset();
                let len = c.u32(&|| f("value_len"))?;
                if len > MAX_METADATA_VALUE_LEN {
                    return Err(err(
                        ErrorKind::LimitExceeded,
                        f("value_len"),
                        len_at,
                        format!("{len} bytes exceeds the limit of {MAX_METADATA_VALUE_LEN}"),
                    ));
                }
                let raw = c.take(len as u64, &|| f("value"))?;
                if ty == 5 {
                    MetaValue::Bytes(raw.to_vec())
                } else {
                    let s = std::str::from_utf8(raw).map_err(|e| {
                        err(
                            ErrorKind::InvalidField,
                            f("value"),
                            len_at + 4,
                            format!("string is not UTF-8: {e}"),
                        )
                    })?;
                    MetaValue::Str(s.to_owned())
                }
            }
            other => {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("type"),
                    type_at,
                    format!("unknown metadata type {other}"),
                ));
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// A region reference as read, with where it was read from, for the
/// tiling check at the end.
struct RegionRef {
    region: Region,
    field: String,
    at: u64,
}

fn parse_region(
    c: &mut Cursor,
    field: String,
    expected_len: u64,
    sections: &[Section],
    refs: &mut Vec<RegionRef>,
) -> Result<Region> {
    let at = c.offset();
    let r: Region = c.record(REGION_LEN, &|| field.clone())?;
    let section = sections.get(r.section as usize).ok_or_else(|| {
        err(
            ErrorKind::RegionLayout,
            format!("{field}.section"),
            at,
            format!(
                "section {} does not exist ({} sections)",
                r.section,
                sections.len()
            ),
        )
    })?;
    if r.len != expected_len {
        return Err(err(
            ErrorKind::RegionLayout,
            format!("{field}.length"),
            at + 12,
            format!("declares {} bytes, the shape implies {expected_len}", r.len),
        ));
    }
    if r.offset
        .checked_add(r.len)
        .is_none_or(|end| end > section.decoded_len)
    {
        return Err(err(
            ErrorKind::RegionLayout,
            format!("{field}.offset"),
            at + 4,
            format!(
                "bytes {}..+{} lie outside section {} ({} decoded bytes)",
                r.offset, r.len, r.section, section.decoded_len
            ),
        ));
    }
    refs.push(RegionRef {
        region: r,
        field,
        at,
    });
    Ok(r)
}

fn overflow(field: String, at: u64, what: &str) -> FormatError {
    err(
        ErrorKind::ShapeOverflow,
        field,
        at,
        format!("{what} overflows 64 bits"),
    )
}

fn parse_tensors(
    c: &mut Cursor,
    count: u32,
    sections: &[Section],
    refs: &mut Vec<RegionRef>,
) -> Result<Vec<TensorEntry>> {
    // The smallest entry: name_len 2 + name 1 + kind 1 + rank 1 + region 20.
    let cap = (count as usize).min(c.remaining() / 25);
    let mut out = Vec::with_capacity(cap);
    let mut names: HashSet<String> = HashSet::with_capacity(cap);
    for i in 0..count {
        let f = |name: &str| format!("tensors[{i}].{name}");
        let entry_at = c.offset();
        let name_len = c.u16(&|| f("name_len"))?;
        if name_len > MAX_NAME_LEN {
            return Err(err(
                ErrorKind::InvalidName,
                f("name"),
                entry_at,
                format!("{name_len} bytes exceeds the limit of {MAX_NAME_LEN}"),
            ));
        }
        let raw = c.take(name_len as u64, &|| f("name"))?;
        let name = parse_name(raw, &f("name"), entry_at + 2)?;
        if !names.insert(name.clone()) {
            return Err(err(
                ErrorKind::DuplicateName,
                f("name"),
                entry_at + 2,
                format!("tensor {name:?} appears twice"),
            ));
        }
        let kind_at = c.offset();
        let kind_raw = c.u8(&|| f("kind"))?;
        let kind = Kind::from_u8(kind_raw).ok_or_else(|| {
            err(
                ErrorKind::InvalidField,
                f("kind"),
                kind_at,
                format!("unknown kind {kind_raw}"),
            )
        })?;
        let rank_at = c.offset();
        let rank = c.u8(&|| f("rank"))?;
        if rank > MAX_RANK || (kind.is_quantized() && rank == 0) {
            return Err(err(
                ErrorKind::InvalidField,
                f("rank"),
                rank_at,
                format!("rank {rank} (allowed: 0..={MAX_RANK}, quantized tensors at least 1)"),
            ));
        }
        let mut shape = Vec::with_capacity(rank as usize);
        let mut elements: u64 = 1;
        for d in 0..rank {
            let dim_at = c.offset();
            let dim = c.u64(&|| f(&format!("shape[{d}]")))?;
            if dim == 0 {
                return Err(err(
                    ErrorKind::InvalidField,
                    f(&format!("shape[{d}]")),
                    dim_at,
                    "a dimension is zero",
                ));
            }
            elements = elements
                .checked_mul(dim)
                .ok_or_else(|| overflow(f("shape"), rank_at, "the element count"))?;
            shape.push(dim);
        }
        let (rows, cols) = rows_cols(&shape);
        let (quant, data) = if kind.is_quantized() {
            let q_at = c.offset();
            let q: QuantFields = c.record(8, &|| f("quant"))?;
            if !(MIN_BITS..=MAX_BITS).contains(&q.bits) {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("bits"),
                    q_at,
                    format!("bits {} (allowed: {MIN_BITS}..={MAX_BITS})", q.bits),
                ));
            }
            let layout = Layout::from_u8(q.layout).ok_or_else(|| {
                err(
                    ErrorKind::InvalidField,
                    f("layout"),
                    q_at + 1,
                    format!("unknown layout {}", q.layout),
                )
            })?;
            if layout == Layout::Packed && q.bits == 8 {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("layout"),
                    q_at + 1,
                    "8-bit codes must use the bytes layout",
                ));
            }
            if q.scale_dtype != SCALE_DTYPE_F16 {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("scale_dtype"),
                    q_at + 2,
                    format!("scale dtype {} (v1 allows 1 = f16)", q.scale_dtype),
                ));
            }
            if q.reserved != 0 {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("reserved"),
                    q_at + 3,
                    "reserved byte is not zero",
                ));
            }
            if q.group_size as u64 > cols {
                return Err(err(
                    ErrorKind::InvalidField,
                    f("group_size"),
                    q_at + 4,
                    format!("group size {} exceeds the {cols} columns", q.group_size),
                ));
            }
            let codes_len = match layout {
                Layout::Bytes => elements,
                Layout::Packed => elements
                    .checked_mul(q.bits as u64)
                    .map(|b| b.div_ceil(8))
                    .ok_or_else(|| overflow(f("shape"), rank_at, "the packed code size"))?,
            };
            let scales_len = rows
                .checked_mul(groups_per_row(cols, q.group_size))
                .and_then(|n| n.checked_mul(2))
                .ok_or_else(|| overflow(f("shape"), rank_at, "the scale size"))?;
            let codes = parse_region(c, f("codes"), codes_len, sections, refs)?;
            let scales = parse_region(c, f("scales"), scales_len, sections, refs)?;
            (
                Some(QuantInfo {
                    bits: q.bits,
                    layout,
                    group_size: q.group_size,
                    codes,
                    scales,
                }),
                None,
            )
        } else {
            let width = kind.element_width().unwrap_or(1);
            let len = elements
                .checked_mul(width)
                .ok_or_else(|| overflow(f("shape"), rank_at, "the byte size"))?;
            (None, Some(parse_region(c, f("data"), len, sections, refs)?))
        };
        let correction = if kind == Kind::LowRank {
            Some(parse_correction(c, &f, (rows, cols), sections, refs)?)
        } else {
            None
        };
        out.push(TensorEntry {
            name,
            kind,
            shape,
            quant,
            correction,
            data,
            entry_offset: entry_at,
            entry_len: c.offset() - entry_at,
        });
    }
    Ok(out)
}

/// The correction fields of a kind-4 entry (spec §4.8, §9 step 15.11).
fn parse_correction(
    c: &mut Cursor,
    f: &dyn Fn(&str) -> String,
    (rows, cols): (u64, u64),
    sections: &[Section],
    refs: &mut Vec<RegionRef>,
) -> Result<CorrectionInfo> {
    let rank_at = c.offset();
    let rank = c.u32(&|| f("lr_rank"))?;
    let most = rows.min(cols).min(MAX_LOW_RANK as u64);
    if rank == 0 || rank as u64 > most {
        return Err(err(
            ErrorKind::InvalidField,
            f("lr_rank"),
            rank_at,
            format!(
                "rank {rank} (allowed: 1..={MAX_LOW_RANK} and at most min(rows, cols) = {})",
                rows.min(cols)
            ),
        ));
    }
    // rank <= min(rows, cols), so both element counts are at most the
    // tensor's, which the checks above bounded.
    let a = parse_factor(c, f("a"), rows.saturating_mul(rank as u64), sections, refs)?;
    let b = parse_factor(c, f("b"), cols.saturating_mul(rank as u64), sections, refs)?;
    Ok(CorrectionInfo { rank, a, b })
}

/// One factor's fields and regions; `base` names the factor
/// (`tensors[i].a`).
fn parse_factor(
    c: &mut Cursor,
    base: String,
    elements: u64,
    sections: &[Section],
    refs: &mut Vec<RegionRef>,
) -> Result<FactorInfo> {
    let f = |name: &str| format!("{base}.{name}");
    let at = c.offset();
    let q: FactorFields = c.record(8, &|| base.clone())?;
    if !(MIN_BITS..=MAX_BITS).contains(&q.bits) {
        return Err(err(
            ErrorKind::InvalidField,
            f("bits"),
            at,
            format!("bits {} (allowed: {MIN_BITS}..={MAX_BITS})", q.bits),
        ));
    }
    let layout = match Layout::from_u8(q.layout) {
        Some(Layout::Packed) if q.bits == 8 => None,
        other => other,
    }
    .ok_or_else(|| {
        err(
            ErrorKind::InvalidField,
            f("layout"),
            at + 1,
            format!("layout {} with {} bits", q.layout, q.bits),
        )
    })?;
    if q.scale_dtype != SCALE_DTYPE_F16 {
        return Err(err(
            ErrorKind::InvalidField,
            f("scale_dtype"),
            at + 2,
            format!("scale dtype {} (allowed: 1 = f16)", q.scale_dtype),
        ));
    }
    let range = CodeRange::from_u8(q.range).ok_or_else(|| {
        err(
            ErrorKind::InvalidField,
            f("range"),
            at + 3,
            format!("unknown code range {}", q.range),
        )
    })?;
    let group = q.group as u64;
    if group == 0 || group > elements || elements % group != 0 {
        return Err(err(
            ErrorKind::InvalidField,
            f("group"),
            at + 4,
            format!("group {group} does not divide the factor's {elements} elements"),
        ));
    }
    let codes_len = match layout {
        Layout::Bytes => elements,
        Layout::Packed => elements.saturating_mul(q.bits as u64).div_ceil(8),
    };
    let scales_len = (elements / group).saturating_mul(2);
    let codes = parse_region(c, f("codes"), codes_len, sections, refs)?;
    let scales = parse_region(c, f("scales"), scales_len, sections, refs)?;
    Ok(FactorInfo {
        bits: q.bits,
        layout,
        range,
        group: q.group,
        codes,
        scales,
    })
}

/// Regions of each section, sorted by offset, must cover it exactly.
fn check_tiling(sections: &[Section], refs: &[RegionRef], table_at: u64) -> Result<()> {
    let mut by_section: BTreeMap<u32, Vec<&RegionRef>> = BTreeMap::new();
    for r in refs {
        by_section.entry(r.region.section).or_default().push(r);
    }
    for (i, s) in sections.iter().enumerate() {
        let entry_at = table_at + i as u64 * SECTION_ENTRY_LEN;
        let Some(list) = by_section.get_mut(&(i as u32)) else {
            return Err(err(
                ErrorKind::RegionLayout,
                format!("sections[{i}]"),
                entry_at,
                "no tensor region lies in this section",
            ));
        };
        list.sort_by_key(|r| (r.region.offset, r.region.len));
        let mut next = 0u64;
        for r in list.iter() {
            if r.region.offset != next {
                let what = if r.region.offset < next {
                    "overlaps the region before it"
                } else {
                    "leaves a hole before it"
                };
                return Err(err(
                    ErrorKind::RegionLayout,
                    format!("{}.offset", r.field),
                    r.at + 4,
                    format!(
                        "starts at decoded byte {} of section {i}, expected {next}: it {what}",
                        r.region.offset
                    ),
                ));
            }
            next = r.region.offset + r.region.len;
        }
        if next != s.decoded_len {
            return Err(err(
                ErrorKind::RegionLayout,
                format!("sections[{i}].decoded_len"),
                entry_at + 24,
                format!(
                    "regions cover {next} of the {} decoded bytes",
                    s.decoded_len
                ),
            ));
        }
    }
    Ok(())
}

/// Parses and validates the header of a complete file.
pub fn parse_header(bytes: &[u8], opts: &ReadOptions) -> Result<Header> {
    let file_len = bytes.len() as u64;
    if file_len > opts.max_file_bytes {
        return Err(err(
            ErrorKind::LimitExceeded,
            "file",
            0,
            format!(
                "{file_len} bytes exceeds this reader's limit of {}",
                opts.max_file_bytes
            ),
        ));
    }
    let p = parse_preamble(bytes)?;
    let body_end = (PREAMBLE_LEN + p.header_len as u64) as usize;
    let data_start = body_end as u64 + HEADER_CRC_LEN;
    let mut c = Cursor::new(bytes, PREAMBLE_LEN as usize, body_end);
    let counts: Counts = c.record(COUNTS_LEN, &|| "counts".into())?;
    check_count(counts.sections, MAX_SECTIONS, "section_count", 16)?;
    check_count(counts.tensors, MAX_TENSORS, "tensor_count", 20)?;
    check_count(counts.metadata, MAX_METADATA, "metadata_count", 24)?;
    let table_at = c.offset();
    let sections = parse_sections(&mut c, counts.sections, data_start, file_len)?;
    let metadata = parse_metadata(&mut c, counts.metadata)?;
    let mut refs = Vec::new();
    let tensors = parse_tensors(&mut c, counts.tensors, &sections, &mut refs)?;
    if c.remaining() != 0 {
        return Err(err(
            ErrorKind::InvalidField,
            "header_len",
            12,
            format!(
                "{} bytes of the header body follow the last tensor entry",
                c.remaining()
            ),
        ));
    }
    check_tiling(&sections, &refs, table_at)?;
    let total: u64 = sections
        .iter()
        .map(|s| s.decoded_len)
        .fold(0u64, |a, b| a.saturating_add(b));
    let limit = opts.max_decoded_bytes.min(MAX_DECODED_TOTAL);
    if total > limit {
        return Err(err(
            ErrorKind::LimitExceeded,
            "sections",
            table_at,
            format!(
                "{total} decoded bytes in all exceeds this reader's limit of {}",
                opts.max_decoded_bytes
            ),
        ));
    }
    Ok(Header {
        major: p.major,
        minor: p.minor,
        header_len: p.header_len,
        sections,
        metadata,
        tensors,
        file_len,
    })
}
