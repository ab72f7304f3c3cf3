//! A strict reader for the zip archives torch.save writes.
//!
//! torch.save (through miniz) stores every record uncompressed, pads each
//! local header's extra field so the data starts 64-byte aligned, sets the
//! "sizes in a data descriptor" flag (local sizes and CRC are zero, the
//! central directory has them), and ends with a zip64 end record and
//! locator before the classic end record. This reader works from the
//! central directory, as miniz does, and accepts exactly that family:
//! stored entries, no encryption, one disk, no zip64 sizes (a
//! 16,000,000-byte artifact never needs them). Every offset and length is
//! checked against the buffer before use, nothing is allocated from a
//! declared count, every entry's CRC-32 is verified, and entry data are
//! borrowed slices of the input.

use std::collections::HashMap;

use super::error::ImportError;

/// Signature of a local file header: what every zip (and torch.save file)
/// starts with.
pub const LOCAL_HEADER_MAGIC: &[u8; 4] = b"PK\x03\x04";
const CENTRAL_MAGIC: &[u8; 4] = b"PK\x01\x02";
const END_MAGIC: &[u8; 4] = b"PK\x05\x06";
const LOCAL_LEN: usize = 30;
const CENTRAL_LEN: usize = 46;
const END_LEN: usize = 22;
/// General-purpose flag bits.
const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
/// Values that mean "see the zip64 extra field".
const ZIP64_U16: u16 = u16::MAX;
const ZIP64_U32: u32 = u32::MAX;

/// One stored entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    /// The entry's bytes, a slice of the archive.
    pub data: &'a [u8],
    /// Offset of `data` in the archive.
    pub offset: u64,
}

/// The entries of an archive, in central-directory order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive<'a> {
    entries: Vec<Entry<'a>>,
    by_name: HashMap<&'a str, usize>,
}

fn error(entry: Option<&str>, offset: usize, detail: impl Into<String>) -> ImportError {
    ImportError::Zip {
        entry: entry.map(str::to_owned),
        offset: offset as u64,
        detail: detail.into(),
    }
}

/// Little-endian reads at absolute offsets, bounds-checked.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn slice(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        self.0.get(at..at.checked_add(len)?)
    }
    fn u16(&self, at: usize) -> Option<u16> {
        let b = self.slice(at, 2)?;
        Some(u16::from_le_bytes([
            b.first().copied()?,
            b.get(1).copied()?,
        ]))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.slice(at, 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    }
}

impl<'a> Archive<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ImportError> {
        if !bytes.starts_with(LOCAL_HEADER_MAGIC) {
            let what = match bytes.first() {
                // PROTO: a pickle without a zip around it.
                Some(0x80) => {
                    "a bare pickle: torch.save's legacy (pre-zip) format is not supported"
                        .to_owned()
                }
                _ => format!(
                    "not a torch.save zip: it starts with {:02X?}, not PK\\x03\\x04",
                    bytes.get(..4).unwrap_or(bytes)
                ),
            };
            return Err(error(None, 0, what));
        }
        let b = Bytes(bytes);
        let end = find_end_record(bytes)?;
        let field = |at: usize| b.u16(end + at).unwrap_or(ZIP64_U16);
        let (disk, cd_disk) = (field(4), field(6));
        let (on_disk, total) = (field(8), field(10));
        let cd_size = b.u32(end + 12).unwrap_or(ZIP64_U32);
        let cd_offset = b.u32(end + 16).unwrap_or(ZIP64_U32);
        if total == ZIP64_U16 || cd_size == ZIP64_U32 || cd_offset == ZIP64_U32 {
            return Err(error(
                None,
                end,
                "zip64 archives (over 4 GiB or 65,535 entries) are not supported",
            ));
        }
        if disk != 0 || cd_disk != 0 || on_disk != total {
            return Err(error(None, end, "multi-disk archives are not supported"));
        }
        let (cd_start, cd_size) = (cd_offset as usize, cd_size as usize);
        let cd_end = cd_start
            .checked_add(cd_size)
            .filter(|&e| e <= end)
            .ok_or_else(|| {
                error(
                    None,
                    end,
                    format!(
                        "the central directory ({cd_size} bytes at {cd_start}) \
                         overruns the end record at {end}"
                    ),
                )
            })?;
        let count = usize::from(total);
        if count.saturating_mul(CENTRAL_LEN) > cd_size {
            return Err(error(
                None,
                end,
                format!("{count} entries cannot fit a {cd_size}-byte central directory"),
            ));
        }
        let mut archive = Archive {
            entries: Vec::with_capacity(count),
            by_name: HashMap::with_capacity(count),
        };
        let mut at = cd_start;
        for _ in 0..count {
            let (entry, next) = central_entry(&b, at, cd_end, cd_start)?;
            if archive
                .by_name
                .insert(entry.name, archive.entries.len())
                .is_some()
            {
                return Err(error(Some(entry.name), at, "the name appears twice"));
            }
            archive.entries.push(entry);
            at = next;
        }
        if at != cd_end {
            return Err(error(
                None,
                at,
                format!(
                    "{} bytes of the central directory follow its {count} entries",
                    cd_end - at
                ),
            ));
        }
        Ok(archive)
    }

    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&Entry<'a>> {
        self.by_name.get(name).and_then(|&i| self.entries.get(i))
    }
}

/// The end-of-central-directory record: the last `PK\x05\x06` whose comment
/// length reaches exactly the end of the buffer.
fn find_end_record(bytes: &[u8]) -> Result<usize, ImportError> {
    let b = Bytes(bytes);
    let last = bytes.len().checked_sub(END_LEN).ok_or_else(|| {
        error(
            None,
            0,
            format!("{} bytes are too few for a zip", bytes.len()),
        )
    })?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    (first..=last)
        .rev()
        .find(|&at| {
            b.slice(at, 4) == Some(END_MAGIC.as_slice())
                && b.u16(at + 20).map(usize::from) == Some(bytes.len() - at - END_LEN)
        })
        .ok_or_else(|| {
            error(
                None,
                bytes.len(),
                "no end-of-central-directory record: the archive is truncated or not a zip",
            )
        })
}

/// Parses the central-directory entry at `at` (which must end by `cd_end`)
/// and the local header it points to; returns the entry and the offset of
/// the next central entry.
fn central_entry<'a>(
    b: &Bytes<'a>,
    at: usize,
    cd_end: usize,
    cd_start: usize,
) -> Result<(Entry<'a>, usize), ImportError> {
    let truncated = || error(None, at, "a central directory entry overruns the directory");
    // `at` never exceeds `cd_end`, itself within the buffer: the sums below
    // of it and u16 lengths cannot overflow.
    let fixed = b
        .slice(at, CENTRAL_LEN)
        .filter(|_| at + CENTRAL_LEN <= cd_end)
        .ok_or_else(truncated)?;
    if !fixed.starts_with(CENTRAL_MAGIC) {
        return Err(error(
            None,
            at,
            "expected a central directory entry (PK\\x01\\x02)",
        ));
    }
    let u16_at = |o: usize| b.u16(at + o).ok_or_else(truncated);
    let u32_at = |o: usize| b.u32(at + o).ok_or_else(truncated);
    let (flags, method) = (u16_at(8)?, u16_at(10)?);
    let (crc, stored, size) = (u32_at(16)?, u32_at(20)?, u32_at(24)?);
    let name_len = usize::from(u16_at(28)?);
    let extra_len = usize::from(u16_at(30)?);
    let comment_len = usize::from(u16_at(32)?);
    let local = u32_at(42)?;
    let next = (at + CENTRAL_LEN + name_len)
        .checked_add(extra_len + comment_len)
        .filter(|&n| n <= cd_end)
        .ok_or_else(truncated)?;
    let raw_name = b.slice(at + CENTRAL_LEN, name_len).ok_or_else(truncated)?;
    let name = std::str::from_utf8(raw_name)
        .map_err(|_| error(None, at + CENTRAL_LEN, "an entry name is not UTF-8"))?;
    let fail = |offset: usize, detail: String| error(Some(name), offset, detail);
    if flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
        return Err(fail(at, "encrypted entries are not supported".into()));
    }
    if method != 0 {
        return Err(fail(
            at,
            format!(
                "compression method {method} ({}); torch.save stores its records \
                 uncompressed (method 0) and only those are read",
                method_name(method)
            ),
        ));
    }
    if size == ZIP64_U32 || stored == ZIP64_U32 || local == ZIP64_U32 {
        return Err(fail(at, "zip64 entries are not supported".into()));
    }
    if stored != size {
        return Err(fail(
            at,
            format!("a stored entry declares {stored} stored and {size} decoded bytes"),
        ));
    }
    let data = local_data(b, local as usize, name, raw_name, size, crc, cd_start)?;
    let entry = Entry {
        name,
        data: data.1,
        offset: data.0 as u64,
    };
    if crc32fast::hash(entry.data) != crc {
        return Err(fail(
            data.0,
            format!("CRC-32 mismatch: the directory says {crc:#010x}"),
        ));
    }
    Ok((entry, next))
}

/// The data of the entry whose local header is at `at`: checks the header
/// against the central directory and returns the data's offset and bytes,
/// which must lie before the central directory.
fn local_data<'a>(
    b: &Bytes<'a>,
    at: usize,
    name: &str,
    raw_name: &[u8],
    size: u32,
    crc: u32,
    cd_start: usize,
) -> Result<(usize, &'a [u8]), ImportError> {
    let fail = |offset: usize, detail: &str| error(Some(name), offset, detail);
    let header = b
        .slice(at, LOCAL_LEN)
        .filter(|_| at.checked_add(LOCAL_LEN).is_some_and(|e| e <= cd_start))
        .ok_or_else(|| fail(at, "the local header lies outside the entry area"))?;
    if !header.starts_with(LOCAL_HEADER_MAGIC) {
        return Err(fail(at, "expected a local header (PK\\x03\\x04)"));
    }
    let field16 = |o: usize| b.u16(at + o).unwrap_or(u16::MAX);
    let field32 = |o: usize| b.u32(at + o).unwrap_or(u32::MAX);
    let (flags, method) = (field16(6), field16(8));
    let name_len = usize::from(field16(26));
    let extra_len = usize::from(field16(28));
    if method != 0 {
        return Err(fail(
            at,
            "the local header disagrees on the compression method",
        ));
    }
    if b.slice(at + LOCAL_LEN, name_len) != Some(raw_name) {
        return Err(fail(at, "the local header names another entry"));
    }
    // With a data descriptor, the local CRC and sizes may be zero.
    let (local_crc, local_stored, local_size) = (field32(14), field32(18), field32(22));
    let deferred =
        flags & FLAG_DATA_DESCRIPTOR != 0 && (local_crc, local_stored, local_size) == (0, 0, 0);
    if !deferred && (local_crc, local_stored, local_size) != (crc, size, size) {
        return Err(fail(
            at,
            "the local header disagrees with the central directory on CRC or size",
        ));
    }
    // `at + LOCAL_LEN <= cd_start` was checked above; two u16 lengths more
    // cannot overflow.
    let start = at + LOCAL_LEN + name_len + extra_len;
    let data = b
        .slice(start, size as usize)
        .filter(|_| {
            start
                .checked_add(size as usize)
                .is_some_and(|e| e <= cd_start)
        })
        .ok_or_else(|| {
            error(
                Some(name),
                start,
                format!("{size} bytes of data run past the entry area (ends at {cd_start})"),
            )
        })?;
    Ok((start, data))
}

fn method_name(method: u16) -> &'static str {
    match method {
        8 => "deflate",
        9 => "deflate64",
        12 => "bzip2",
        14 => "lzma",
        93 => "zstd",
        95 => "xz",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip as torch.save writes one: data-descriptor flag, zero local
    /// sizes, `FB` padding to 64-byte alignment, descriptors after the data.
    fn torch_like(records: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in records {
            let offset = out.len() as u32;
            let unpadded = out.len() + LOCAL_LEN + name.len() + 4;
            let pad = unpadded.next_multiple_of(64) - unpadded;
            let crc = crc32fast::hash(data);
            out.extend_from_slice(LOCAL_HEADER_MAGIC);
            out.extend_from_slice(&[0, 0, 0x08, 0x08, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&[0; 12]);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&((pad + 4) as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"FB");
            out.extend_from_slice(&(pad as u16).to_le_bytes());
            out.extend(std::iter::repeat_n(b'Z', pad));
            assert_eq!(out.len() % 64, 0);
            out.extend_from_slice(data);
            out.extend_from_slice(b"PK\x07\x08");
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(CENTRAL_MAGIC);
            central.extend_from_slice(&[0, 0, 0, 0, 0x08, 0x08, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(END_MAGIC);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(records.len() as u16).to_le_bytes());
        out.extend_from_slice(&(records.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out
    }

    #[test]
    fn reads_a_torch_like_archive() {
        let bytes = torch_like(&[
            ("archive/data.pkl", b"\x80\x02}q\x00."),
            ("archive/data/0", &[1, 2, 3]),
        ]);
        let archive = Archive::parse(&bytes).unwrap();
        assert_eq!(archive.entries().len(), 2);
        let entry = archive.get("archive/data/0").unwrap();
        assert_eq!(entry.data, [1, 2, 3]);
        assert_eq!(entry.offset % 64, 0);
        assert!(archive.get("archive/data/1").is_none());
    }

    #[test]
    fn a_wrong_crc_names_the_entry() {
        let mut bytes = torch_like(&[("archive/data/0", &[1, 2, 3])]);
        let at = bytes.windows(3).position(|w| w == [1, 2, 3]).unwrap();
        bytes[at] = 9;
        let err = Archive::parse(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("\"archive/data/0\"") && err.contains("CRC-32"),
            "{err}"
        );
    }

    #[test]
    fn deflated_entries_are_refused() {
        let mut bytes = torch_like(&[("a/b", &[1])]);
        let cd = bytes.windows(4).position(|w| w == CENTRAL_MAGIC).unwrap();
        bytes[cd + 10] = 8;
        let err = Archive::parse(&bytes).unwrap_err().to_string();
        assert!(err.contains("deflate"), "{err}");
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = torch_like(&[("archive/data.pkl", b"xyz"), ("archive/data/0", &[7; 100])]);
        for len in 0..bytes.len() {
            assert!(Archive::parse(&bytes[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn a_bare_pickle_is_named() {
        let err = Archive::parse(b"\x80\x02}q\x00.").unwrap_err().to_string();
        assert!(err.contains("legacy"), "{err}");
    }
}
