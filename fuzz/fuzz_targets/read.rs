//! Fuzz target for the `.pgq` reader.
//!
//! Every input is checked twice: as given, and (when it starts with the magic
//! and its header fits) with its header CRC and section CRCs recomputed, so
//! that mutations of the header and of section contents reach the checks
//! behind the CRCs instead of all stopping at `header_crc`.
//!
//! For each variant:
//! * `read` and `read_header` must not panic, and must agree: the same error
//!   when the header is bad; equal headers when both succeed; when only
//!   `read` fails, its error must be one a section's content can cause.
//! * Every error names a field and an offset inside the file.
//! * An accepted file must satisfy the invariants in `check_archive`:
//!   tensors match their entries, values have the shape's length and are
//!   finite, the summary's byte attribution adds up, the reader's limits are
//!   enforced exactly, and the tensors and metadata survive a canonical
//!   re-write (raw, two layouts) and re-read bit for bit, with the re-write
//!   itself canonical (writing what was read back gives the same bytes).
//!
//! Any failed invariant panics, which libFuzzer reports as a crash.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pgq_format::limits::{
    COUNTS_LEN, HEADER_CRC_LEN, MAGIC, MAX_HEADER_LEN, MAX_SECTIONS, PREAMBLE_LEN,
    SECTION_ENTRY_LEN,
};
use pgq_format::summary::Summary;
use pgq_format::types::{groups_per_row, rows_cols};
use pgq_format::{
    decode_section, read, read_header, summarize, Archive, Codec, Compression, ErrorKind,
    FormatError, Grouping, Header, LayoutChoice, MetaValue, Section, Tensor, TensorData,
    WriteError, WriteOptions,
};

/// Bounds the memory one input may make the reader use: a legitimate file
/// may declare up to 64 GiB of decoded sections.
const MAX_DECODED: u64 = 64 << 20;

fn options() -> pgq_format::ReadOptions {
    pgq_format::ReadOptions {
        max_file_bytes: 1 << 30,
        max_decoded_bytes: MAX_DECODED,
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(fixed) = fix_crcs(data) {
        check(&fixed);
    }
});

fn check(bytes: &[u8]) {
    let opts = options();
    let full = read(bytes, &opts);
    let head = read_header(bytes, &opts);
    match (&full, &head) {
        (Err(e), Err(h)) => {
            assert_eq!(
                e, h,
                "read and read_header reject the same file differently"
            );
            check_error(e, bytes);
        }
        (Ok(_), Err(h)) => panic!("read accepts a file read_header rejects: {h}"),
        (Err(e), Ok(_)) => {
            check_error(e, bytes);
            assert!(
                matches!(
                    e.kind,
                    ErrorKind::SizeMismatch
                        | ErrorKind::CodecError
                        | ErrorKind::SectionCrc
                        | ErrorKind::InvalidCode
                        | ErrorKind::InvalidValue
                ),
                "the header is valid, but read fails with a header-level class: {e}"
            );
        }
        (Ok(archive), Ok(header)) => {
            assert!(
                headers_equal(&archive.header, header),
                "read and read_header return different headers"
            );
            check_archive(archive, bytes);
        }
    }
}

fn check_error(e: &FormatError, bytes: &[u8]) {
    assert!(!e.field.is_empty(), "error without a field: {e}");
    assert!(
        e.offset <= bytes.len() as u64,
        "error offset {} past the end of a {}-byte file: {e}",
        e.offset,
        bytes.len()
    );
}

fn check_archive(archive: &Archive, bytes: &[u8]) {
    let header = &archive.header;
    let len = bytes.len() as u64;
    assert_eq!(header.file_len, len, "file_len");
    assert_eq!(archive.tensors.len(), header.tensors.len(), "tensor count");

    // Tensors against their entries, values against their shapes.
    for (t, e) in archive.tensors.iter().zip(&header.tensors) {
        assert_eq!(t.name, e.name, "tensor name");
        assert_eq!(t.shape, e.shape, "{}: shape", t.name);
        assert_eq!(t.data.kind(), e.kind, "{}: kind", t.name);
        let elements: u64 = t.shape.iter().product();
        assert_eq!(elements, e.elements(), "{}: elements", t.name);
        assert_eq!(t.data.len() as u64, elements, "{}: value count", t.name);
        if let TensorData::Quantized {
            bits,
            group_size,
            codes,
            scales,
            correction,
        } = &t.data
        {
            assert_eq!(correction.is_some(), e.correction.is_some(), "{}", t.name);
            if let Some(c) = correction {
                let (rows, cols) = rows_cols(&t.shape);
                let rank = c.rank as u64;
                assert!(
                    rank >= 1 && rank <= rows.min(cols).min(256),
                    "{}: rank",
                    t.name
                );
                for (f, n) in [(&c.a, rows * rank), (&c.b, rank * cols)] {
                    assert_eq!(f.codes.len() as u64, n, "{}: factor codes", t.name);
                    assert_eq!(
                        f.scales.len() as u64 * f.group as u64,
                        n,
                        "{}: factor scales",
                        t.name
                    );
                }
            }
            let q = e
                .quant
                .expect("a quantized tensor's entry has quant fields");
            assert_eq!((*bits, *group_size), (q.bits, q.group_size), "{}", t.name);
            assert!(!t.shape.is_empty(), "{}: quantized rank 0", t.name);
            let (rows, cols) = rows_cols(&t.shape);
            assert!(*group_size as u64 <= cols, "{}: group size", t.name);
            assert_eq!(
                scales.len() as u64,
                rows * groups_per_row(cols, *group_size),
                "{}: scale count",
                t.name
            );
            let max = (1i16 << (bits - 1)) - 1;
            assert!(
                codes.iter().all(|&c| (c as i16).abs() <= max),
                "{}: code out of the {bits}-bit range",
                t.name
            );
            assert!(
                scales
                    .iter()
                    .all(|s| s.is_finite() && !s.is_sign_negative()),
                "{}: bad scale",
                t.name
            );
        } else {
            assert!(e.quant.is_none() && e.data.is_some(), "{}: entry", t.name);
        }
        let values = t.dequantize();
        assert_eq!(
            values.len() as u64,
            elements,
            "{}: dequantized length",
            t.name
        );
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{}: a dequantized value is not finite",
            t.name
        );
    }

    // Byte attribution.
    let summary = summarize(header);
    check_summary(&summary, header, len);
    let header_summary = summarize(&read_header(bytes, &options()).expect("read_header"));
    assert_eq!(summary, header_summary, "summary of read vs read_header");

    // The reader's own limits are exact.
    let mut tight = options();
    tight.max_file_bytes = len - 1;
    let e = read_header(bytes, &tight).expect_err("max_file_bytes = len - 1 accepted");
    assert_eq!(e.kind, ErrorKind::LimitExceeded, "{e}");
    let decoded: u64 = header.sections.iter().map(|s| s.decoded_len).sum();
    assert!(decoded <= MAX_DECODED, "decoded {decoded} over the limit");
    if decoded > 0 {
        let mut tight = options();
        tight.max_decoded_bytes = decoded - 1;
        let e = read_header(bytes, &tight).expect_err("max_decoded_bytes = total - 1 accepted");
        assert_eq!(e.kind, ErrorKind::LimitExceeded, "{e}");
    }

    // Canonical re-write and re-read.
    let metadata: BTreeMap<String, MetaValue> = header.metadata.iter().cloned().collect();
    assert_eq!(
        metadata.len(),
        header.metadata.len(),
        "duplicate metadata keys"
    );
    for (grouping, layout) in [
        (Grouping::ByStream, LayoutChoice::Auto),
        (Grouping::PerTensor, LayoutChoice::Bytes),
    ] {
        let wopts = WriteOptions {
            compression: Compression::Raw,
            grouping,
            layout,
            ..WriteOptions::default()
        };
        let written = match pgq_format::write(&archive.tensors, &metadata, &wopts) {
            Ok(w) => w,
            // A re-write may need more sections than the original (one per
            // stream or per tensor), so near the limits it may not fit.
            Err(WriteError::Limit(_))
                if archive.tensors.len() > MAX_SECTIONS as usize
                    || header.header_len as u64
                        + SECTION_ENTRY_LEN * (2 * archive.tensors.len() as u64 + 9)
                        > MAX_HEADER_LEN as u64 =>
            {
                continue
            }
            Err(e) => panic!(
                "an accepted file's content cannot be re-written ({grouping:?}, {layout:?}): {e}"
            ),
        };
        let again = read(&written, &options()).unwrap_or_else(|e| {
            panic!("the re-written file ({grouping:?}, {layout:?}) is rejected: {e}")
        });
        assert_eq!(again.tensors.len(), archive.tensors.len());
        for (a, b) in archive.tensors.iter().zip(&again.tensors) {
            assert!(
                tensors_equal(a, b),
                "tensor {:?} changed in a re-write ({grouping:?}, {layout:?})",
                a.name
            );
        }
        assert!(
            metadata_equal(&header.metadata, &again.header.metadata),
            "metadata changed in a re-write"
        );
        check_summary(
            &summarize(&again.header),
            &again.header,
            written.len() as u64,
        );
        let twice = pgq_format::write(&again.tensors, &metadata, &wopts)
            .expect("re-writing a re-written file");
        assert!(
            twice == written,
            "the writer is not canonical ({grouping:?}, {layout:?})"
        );
    }
}

fn check_summary(s: &Summary, header: &Header, len: u64) {
    assert_eq!(s.file_bytes, len, "summary file_bytes");
    assert_eq!(s.tensors.len(), header.tensors.len());
    assert_eq!(s.sections.len(), header.sections.len());
    let tensor_bytes: u64 = s.tensors.iter().map(|t| t.bytes).sum();
    assert_eq!(
        tensor_bytes + s.overhead_bytes,
        len,
        "tensor bytes + overhead"
    );

    let entries: u64 = header.tensors.iter().map(|t| t.entry_len).sum();
    let header_total = PREAMBLE_LEN + header.header_len as u64 + HEADER_CRC_LEN;
    // Every section holds a region, so every stored byte goes to a tensor.
    assert_eq!(
        s.overhead_bytes + entries,
        header_total,
        "overhead is not exactly the header minus the tensor table"
    );
    let stored: u64 = s.sections.iter().map(|x| x.stored_bytes).sum();
    assert_eq!(stored, len - header_total, "section bytes");
    let attributed: u64 = s
        .tensors
        .iter()
        .map(|t| t.payload_bytes + t.scale_bytes + t.correction_bytes)
        .sum();
    assert_eq!(attributed, stored, "attributed stored bytes");

    let meta: u64 = header
        .metadata
        .iter()
        .map(|(k, v)| {
            2 + k.len() as u64
                + 1
                + match v {
                    MetaValue::Str(x) => 4 + x.len() as u64,
                    MetaValue::Bytes(x) => 4 + x.len() as u64,
                    _ => 8,
                }
        })
        .sum();
    assert_eq!(s.metadata_bytes, meta, "metadata_bytes");
    assert_eq!(
        header.header_len as u64,
        COUNTS_LEN + SECTION_ENTRY_LEN * header.sections.len() as u64 + meta + entries,
        "header_len is not counts + section table + metadata + tensor table"
    );

    let mut params = 0u64;
    for (t, e) in s.tensors.iter().zip(&header.tensors) {
        assert_eq!(t.params, e.elements(), "{}: params", t.name);
        assert_eq!(
            t.bytes,
            t.entry_bytes + t.payload_bytes + t.scale_bytes + t.correction_bytes
        );
        assert_eq!(t.entry_bytes, e.entry_len);
        assert!(t.bits_per_weight.is_finite(), "{}: bits per weight", t.name);
        if !e.kind.is_quantized() {
            assert_eq!(t.scale_bytes, 0, "{}: passthrough with scale bytes", t.name);
        }
        params += t.params;
    }
    assert_eq!(s.params, params, "summary params");
    assert!(s.bits_per_weight.is_finite());
    for x in &s.sections {
        assert!(x.regions >= 1, "section {} without regions", x.index);
        assert!(x.ratio.is_finite());
    }
}

fn headers_equal(a: &Header, b: &Header) -> bool {
    a.major == b.major
        && a.minor == b.minor
        && a.header_len == b.header_len
        && a.sections == b.sections
        && a.tensors == b.tensors
        && a.file_len == b.file_len
        && metadata_equal(&a.metadata, &b.metadata)
}

/// Equality with f64 values compared by their bits (NaN is a legal value).
fn metadata_equal(a: &[(String, MetaValue)], b: &[(String, MetaValue)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (va, vb) {
                    (MetaValue::F64(x), MetaValue::F64(y)) => x.to_bits() == y.to_bits(),
                    _ => va == vb,
                }
        })
}

/// Equality of names, shapes and the bits of every value (so -0.0 != 0.0).
fn tensors_equal(a: &Tensor, b: &Tensor) -> bool {
    a.name == b.name
        && a.shape == b.shape
        && match (&a.data, &b.data) {
            (
                TensorData::Quantized {
                    bits: ba,
                    group_size: ga,
                    codes: ca,
                    scales: sa,
                    correction: xa,
                },
                TensorData::Quantized {
                    bits: bb,
                    group_size: gb,
                    codes: cb,
                    scales: sb,
                    correction: xb,
                },
            ) => {
                ba == bb
                    && ga == gb
                    && xa == xb
                    && ca == cb
                    && sa
                        .iter()
                        .map(|x| x.to_bits())
                        .eq(sb.iter().map(|x| x.to_bits()))
            }
            (TensorData::F16(x), TensorData::F16(y)) => x
                .iter()
                .map(|v| v.to_bits())
                .eq(y.iter().map(|v| v.to_bits())),
            (TensorData::Bf16(x), TensorData::Bf16(y)) => x
                .iter()
                .map(|v| v.to_bits())
                .eq(y.iter().map(|v| v.to_bits())),
            (TensorData::F32(x), TensorData::F32(y)) => x
                .iter()
                .map(|v| v.to_bits())
                .eq(y.iter().map(|v| v.to_bits())),
            _ => false,
        }
        && a.dequantize()
            .iter()
            .map(|v| v.to_bits())
            .eq(b.dequantize().iter().map(|v| v.to_bits()))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The input with every section CRC and the header CRC recomputed, where the
/// preamble and section table can be located; `None` when nothing changes.
/// A fuzzing aid only: it does not validate anything.
fn fix_crcs(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let header_len = le_u32(data, 12)? as usize;
    let body_end = PREAMBLE_LEN as usize + header_len;
    let crc_end = body_end.checked_add(HEADER_CRC_LEN as usize)?;
    if crc_end > data.len() {
        return None;
    }
    let mut out = data.to_vec();
    let table_at = (PREAMBLE_LEN + COUNTS_LEN) as usize;
    let count = le_u32(data, PREAMBLE_LEN as usize)
        .unwrap_or(0)
        .min(MAX_SECTIONS) as usize;
    // Decoding compressed sections to learn their CRC costs time: bound it.
    let mut budget = MAX_DECODED;
    for i in 0..count {
        let at = table_at + i * SECTION_ENTRY_LEN as usize;
        if at + SECTION_ENTRY_LEN as usize > body_end {
            break;
        }
        let codec = out[at];
        let (Some(offset), Some(stored_len), Some(decoded_len)) = (
            le_u64(&out, at + 8),
            le_u64(&out, at + 16),
            le_u64(&out, at + 24),
        ) else {
            break;
        };
        let Some(end) = offset
            .checked_add(stored_len)
            .filter(|&e| e <= data.len() as u64)
        else {
            continue;
        };
        let stored = &data[offset as usize..end as usize];
        let crc = match Codec::from_u8(codec) {
            Some(Codec::Raw) => crc32fast::hash(stored),
            Some(codec) if decoded_len <= budget => {
                budget -= decoded_len;
                let section = Section {
                    codec,
                    crc32: 0,
                    offset,
                    stored_len,
                    decoded_len,
                };
                match decode_section(stored, &section, i) {
                    Ok(decoded) => crc32fast::hash(&decoded),
                    // "... decoded bytes give 0x1234abcd"
                    Err(e) if e.kind == ErrorKind::SectionCrc => {
                        match e
                            .detail
                            .rsplit_once("give 0x")
                            .and_then(|(_, hex)| u32::from_str_radix(hex.get(..8)?, 16).ok())
                        {
                            Some(crc) => crc,
                            None => continue,
                        }
                    }
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = crc32fast::hash(&out[..body_end]);
    out[body_end..crc_end].copy_from_slice(&crc.to_le_bytes());
    (out != data).then_some(out)
}
