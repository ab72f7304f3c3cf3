//! The header of a Zstandard frame (RFC 8878 §3.1.1.1), read in Rust so that
//! the rules of spec/FORMAT.md §5.2 do not depend on libzstd's choices: which
//! window it accepts, whether it checks the declared content size itself
//! (and calls a disagreement "corruption"), whether it skips skippable
//! frames.

/// The zstd frame magic, `28 B5 2F FD` on disk.
pub const FRAME_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// The largest window a section's frame may need (§5.2): 2^27 bytes, the
/// default limit of libzstd's decoder and of most zstd bindings, and more
/// than libzstd's compressor ever uses at levels 1 to 22.
pub const MAX_WINDOW: u64 = 1 << 27;

/// The largest content of one block (RFC 8878 §3.1.1.2.3).
const MAX_BLOCK: u64 = 128 << 10;

/// What a frame header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes of the header, magic included: the blocks start here.
    pub len: usize,
    /// `Window_Size`; for a single-segment frame, the content size.
    pub window: u64,
    pub content_size: Option<u64>,
    pub single_segment: bool,
    pub checksum: bool,
    /// Whether a `Dictionary_ID` field is present (whatever its value).
    pub dictionary: bool,
}

/// Why the stored bytes are not the start of a usable frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Skippable-frame magic `0x184D2A5?`: not allowed in a section.
    Skippable,
    NotAFrame,
    Truncated,
    ReservedBit,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HeaderError::Skippable => "a skippable frame (a section holds exactly one zstd frame)",
            HeaderError::NotAFrame => "not a zstd frame (no magic 28 B5 2F FD)",
            HeaderError::Truncated => "the zstd frame header is cut short",
            HeaderError::ReservedBit => "the reserved bit of the zstd frame header is set",
        })
    }
}

/// Reads the frame header at the start of `stored`.
pub fn parse(stored: &[u8]) -> Result<FrameHeader, HeaderError> {
    if stored.len() >= 4 && stored[0] & 0xF0 == 0x50 && stored[1..4] == [0x2A, 0x4D, 0x18] {
        return Err(HeaderError::Skippable);
    }
    if stored.len() < 4 || stored[..4] != FRAME_MAGIC {
        return Err(HeaderError::NotAFrame);
    }
    let descriptor = *stored.get(4).ok_or(HeaderError::Truncated)?;
    let fcs_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    if descriptor & 0x08 != 0 {
        return Err(HeaderError::ReservedBit);
    }
    let checksum = descriptor & 0x04 != 0;
    let did_len = [0usize, 1, 2, 4][usize::from(descriptor & 0x03)];
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let mut at = 5;
    let window_descriptor = if single_segment {
        None
    } else {
        let byte = *stored.get(at).ok_or(HeaderError::Truncated)?;
        at += 1;
        Some(byte)
    };
    at += did_len;
    let fcs_bytes = stored.get(at..at + fcs_len).ok_or(HeaderError::Truncated)?;
    at += fcs_len;
    let mut fcs = fcs_bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if fcs_len == 2 {
        fcs += 256; // RFC 8878: the 2-byte field is offset by 256
    }
    let content_size = (fcs_len > 0).then_some(fcs);
    let window = match window_descriptor {
        Some(byte) => window_size(byte),
        None => fcs,
    };
    Ok(FrameHeader {
        len: at,
        window,
        content_size,
        single_segment,
        checksum,
        dictionary: did_len > 0,
    })
}

/// `Window_Size` of a window descriptor byte (RFC 8878 §3.1.1.1.2).
fn window_size(descriptor: u8) -> u64 {
    let base = 1u64 << (10 + (descriptor >> 3));
    base + (base / 8) * u64::from(descriptor & 7)
}

/// The smallest window descriptor whose window is at least `need` (at most
/// [`MAX_WINDOW`]), and at least the 1 KiB minimum.
fn descriptor_for(need: u64) -> u8 {
    (0..=u8::MAX)
        .find(|&d| window_size(d) >= need)
        .unwrap_or(u8::MAX)
}

/// The header of the same frame, declaring no content size and no single
/// segment (a window descriptor instead), to be followed by the original
/// blocks, `stored[header.len..]` (not copied), so that a decoder counts
/// the content and the reader, not libzstd, decides a size disagreement
/// (§9 step 20). The blocks and the checksum are untouched: a window at
/// least as large as the original one accepts every reference the original
/// frame may make. A single-segment frame gets a window of at least
/// 128 KiB, so that its blocks may hold up to 128 KiB as §9 step 20.7
/// says (a block longer than the content size is then counted, step 20.8,
/// rather than refused as corrupt).
pub fn header_without_content_size(stored: &[u8], header: &FrameHeader) -> [u8; 6] {
    let descriptor = if header.single_segment {
        descriptor_for(header.window.max(MAX_BLOCK))
    } else {
        stored[5] // the original window descriptor, right after the descriptor byte
    };
    let [m0, m1, m2, m3] = FRAME_MAGIC;
    let flags = if header.checksum { 0x04 } else { 0x00 };
    [m0, m1, m2, m3, flags, descriptor]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8], content_size: bool, checksum: bool) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.include_contentsize(content_size).unwrap();
        c.include_checksum(checksum).unwrap();
        c.compress(data).unwrap()
    }

    #[test]
    fn reads_what_libzstd_writes() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (size, sum) in [(true, false), (true, true), (false, true), (false, false)] {
            let f = frame(&data, size, sum);
            let h = parse(&f).unwrap();
            assert_eq!(h.content_size, size.then_some(5000));
            assert_eq!(h.checksum, sum);
            assert!(!h.dictionary);
            assert!(h.window >= 5000 || !size, "{h:?}");
            let rewritten = [&header_without_content_size(&f, &h)[..], &f[h.len..]].concat();
            assert_eq!(parse(&rewritten).unwrap().content_size, None);
            assert_eq!(zstd::stream::decode_all(&rewritten[..]).unwrap(), data);
        }
    }

    #[test]
    fn refuses_skippable_frames_and_short_or_reserved_headers() {
        assert_eq!(
            parse(&[0x5A, 0x2A, 0x4D, 0x18, 0, 0, 0, 0]),
            Err(HeaderError::Skippable)
        );
        assert_eq!(parse(&[1, 2, 3]), Err(HeaderError::NotAFrame));
        assert_eq!(parse(&FRAME_MAGIC), Err(HeaderError::Truncated));
        let mut f = frame(b"abc", true, false);
        f[4] |= 0x08;
        assert_eq!(parse(&f), Err(HeaderError::ReservedBit));
        // A 4-byte content size field that the bytes do not hold.
        assert_eq!(
            parse(&[0x28, 0xB5, 0x2F, 0xFD, 0x80, 0x50, 1]),
            Err(HeaderError::Truncated)
        );
    }

    #[test]
    fn window_descriptors_cover_every_window_up_to_the_limit() {
        assert_eq!(window_size(0), 1024);
        assert_eq!(window_size(17 << 3), MAX_WINDOW);
        for need in [1, 1024, 1025, 65_536, 100_000, MAX_WINDOW] {
            let w = window_size(descriptor_for(need));
            assert!(w >= need && w >= 1024, "{need} -> {w}");
            assert!(
                w <= need.max(1024) * 9 / 8 + 1,
                "{need} -> {w}: not the smallest"
            );
        }
    }
}
