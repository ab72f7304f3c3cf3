//! Section codecs: bounded decoding (never more than the declared decoded
//! length is allocated or produced) and deterministic encoding.

use std::borrow::Cow;

use crate::error::{ErrorKind, FormatError, Result, WriteError};
use crate::rans::{Part, RansError};
use crate::types::{Codec, Section};
use crate::zstd_frame;

/// Compression settings of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is; codes of fewer than 8 bits are bit-packed.
    Raw,
    /// zstd at this level (1..=22).
    Zstd(i32),
    /// brotli at this quality (0..=11) and window (10..=24 bits).
    Brotli { quality: u32, lgwin: u32 },
    /// Static interleaved rANS (§5.5) for every section.
    Rans,
    /// Per section, the smallest of rANS, brotli at this quality and
    /// zstd-19, except that a section of codes larger than 1 MiB tries
    /// brotli and zstd only when a quick brotli (quality 5) of its first
    /// MiB beats rANS of that MiB (on real codes it never does, and
    /// brotli-11 costs 30x rANS's time). The default.
    Auto { quality: u32 },
}

/// The default: [`Compression::Auto`] with brotli-11 as the fallback.
pub const DEFAULT_COMPRESSION: Compression = Compression::Auto { quality: 11 };

impl Compression {
    /// The codec named `name` (`auto`, `rans`, `brotli`, `zstd`, `raw`) at
    /// `level`, or the codec's default (auto and brotli: brotli quality 11
    /// with a 16 MiB window; zstd 19): what `--codec`/`--level` and
    /// `pgq.quantize(codec=, level=)` accept. The error says what is
    /// allowed.
    pub fn from_name(name: &str, level: Option<u32>) -> Result<Compression, String> {
        let brotli_quality = |level: Option<u32>| match level.unwrap_or(11) {
            q @ 0..=11 => Ok(q),
            q => Err(format!("brotli quality is 0..=11, got {q}")),
        };
        match (name, level) {
            ("raw", None) => Ok(Compression::Raw),
            ("raw", Some(_)) => Err("a level has no meaning with the raw codec".into()),
            ("rans", None) => Ok(Compression::Rans),
            ("rans", Some(_)) => Err("a level has no meaning with the rans codec".into()),
            ("auto", level) => Ok(Compression::Auto {
                quality: brotli_quality(level)?,
            }),
            ("brotli", level) => Ok(Compression::Brotli {
                quality: brotli_quality(level)?,
                lgwin: 24,
            }),
            ("zstd", level) => match level.unwrap_or(19) {
                l @ 1..=22 => Ok(Compression::Zstd(l as i32)),
                l => Err(format!("zstd level is 1..=22, got {l}")),
            },
            (other, _) => Err(format!(
                "unknown codec {other:?}: auto, rans, brotli, zstd or raw"
            )),
        }
    }

    /// A short human-readable description, e.g. `brotli-11`.
    pub fn describe(self) -> String {
        match self {
            Compression::Raw => "raw".into(),
            Compression::Zstd(level) => format!("zstd-{level}"),
            Compression::Brotli { quality, .. } => format!("brotli-{quality}"),
            Compression::Rans => "rans".into(),
            Compression::Auto { quality } => format!("auto (rans, brotli-{quality}, zstd-19)"),
        }
    }
}

impl Default for Compression {
    fn default() -> Self {
        DEFAULT_COMPRESSION
    }
}

/// What the writer tells the codec about a section: its parts (regions)
/// and whether they are all one-byte codes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectionContent {
    pub parts: Vec<Part>,
    pub all_codes: bool,
}

/// Below this many bytes of codes, `auto` always tries brotli too: it is
/// cheap, and tiny sections are where a dictionary coder can win. Above
/// it, a quick brotli (quality 5) of the first this-many bytes against
/// rANS of the same bytes decides whether brotli and zstd are tried.
const AUTO_PROBE_LEN: usize = 1 << 20;

/// Compresses one section's decoded bytes: the codec chosen and its
/// stored bytes.
pub fn encode_section_content(
    data: &[u8],
    content: &SectionContent,
    compression: Compression,
) -> Result<(Codec, Vec<u8>), WriteError> {
    let rans = |data: &[u8], parts: &[Part]| {
        crate::rans::encode(data, parts, crate::rans::lanes_for(data.len()))
    };
    match compression {
        Compression::Rans => Ok((Codec::Rans, rans(data, &content.parts))),
        Compression::Auto { quality } => {
            let mut best = (Codec::Rans, rans(data, &content.parts));
            let try_others = !content.all_codes || data.len() <= AUTO_PROBE_LEN || {
                let head = &data[..AUTO_PROBE_LEN];
                let quick = Compression::Brotli {
                    quality: quality.min(5),
                    lgwin: 24,
                };
                let whole = [Part {
                    len: head.len(),
                    cols: 0,
                }];
                encode(head, quick)?.len() < rans(head, &whole).len()
            };
            if try_others {
                let brotli = Compression::Brotli { quality, lgwin: 24 };
                for (codec, c) in [
                    (Codec::Brotli, brotli),
                    (Codec::Zstd, Compression::Zstd(19)),
                ] {
                    let stored = encode(data, c)?;
                    if stored.len() < best.1.len() {
                        best = (codec, stored);
                    }
                }
            }
            Ok(best)
        }
        Compression::Raw => Ok((Codec::Raw, data.to_vec())),
        Compression::Zstd(_) => Ok((Codec::Zstd, encode(data, compression)?)),
        Compression::Brotli { .. } => Ok((Codec::Brotli, encode(data, compression)?)),
    }
}

/// Compresses `data` with `compression`, as one section of one part
/// (`auto` picks the smallest, but the codec it picked is not returned:
/// use [`encode_section_content`] to know it).
pub fn encode(data: &[u8], compression: Compression) -> Result<Vec<u8>, WriteError> {
    match compression {
        Compression::Rans | Compression::Auto { .. } => {
            let content = SectionContent {
                parts: vec![Part {
                    len: data.len(),
                    cols: 0,
                }],
                all_codes: false,
            };
            Ok(encode_section_content(data, &content, compression)?.1)
        }
        Compression::Raw => Ok(data.to_vec()),
        Compression::Zstd(level) => {
            zstd::bulk::compress(data, level).map_err(|e| WriteError::Codec(format!("zstd: {e}")))
        }
        Compression::Brotli { quality, lgwin } => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: quality.min(11) as i32,
                lgwin: lgwin.clamp(10, 24) as i32,
                size_hint: data.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(data.len() / 2 + 64);
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)
                .map_err(|e| WriteError::Codec(format!("brotli: {e}")))?;
            Ok(out)
        }
    }
}

/// Decodes the stored bytes of section `index` into exactly
/// `section.decoded_len` bytes and checks their CRC-32.
///
/// The caller has validated `decoded_len` against the reader's limits and
/// the tensor shapes, so allocating it is bounded by honest content.
pub fn decode<'a>(stored: &'a [u8], section: &Section, index: usize) -> Result<Cow<'a, [u8]>> {
    let field = || format!("sections[{index}]");
    let want = usize::try_from(section.decoded_len).map_err(|_| {
        FormatError::new(
            ErrorKind::LimitExceeded,
            field(),
            section.offset,
            "decoded length does not fit this platform's address space",
        )
    })?;
    let decoded: Cow<[u8]> = match section.codec {
        Codec::Raw => Cow::Borrowed(stored),
        Codec::Zstd => Cow::Owned(decode_zstd(stored, want, section, &field)?),
        Codec::Brotli => Cow::Owned(decode_brotli(stored, want, section, &field)?),
        Codec::Rans => Cow::Owned(crate::rans::decode(stored, want).map_err(|e| match e {
            RansError::Corrupt(detail) => codec_error(section, &field, detail),
            RansError::Length(detail) => {
                FormatError::new(ErrorKind::SizeMismatch, field(), section.offset, detail)
            }
        })?),
    };
    if decoded.len() != want {
        return Err(FormatError::new(
            ErrorKind::SizeMismatch,
            field(),
            section.offset,
            format!("decodes to {} bytes, declares {want}", decoded.len()),
        ));
    }
    let crc = crc32fast::hash(&decoded);
    if crc != section.crc32 {
        return Err(FormatError::new(
            ErrorKind::SectionCrc,
            field(),
            section.offset,
            format!(
                "stored CRC-32 {:#010x}, decoded bytes give {crc:#010x}",
                section.crc32
            ),
        ));
    }
    Ok(decoded)
}

fn codec_error(section: &Section, field: &dyn Fn() -> String, detail: String) -> FormatError {
    FormatError::new(ErrorKind::CodecError, field(), section.offset, detail)
}

/// The first output buffer of a decoder: what the stored bytes can
/// plausibly expand to, never more than the declared length. The buffer
/// grows (doubling, up to `want + 1`) only as real output arrives, so a
/// tiny file that declares gigabytes makes the reader allocate little.
fn initial_capacity(stored: usize, want: usize) -> usize {
    stored.saturating_mul(8).max(64 << 10).min(want + 1)
}

fn decode_zstd(
    stored: &[u8],
    want: usize,
    section: &Section,
    field: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    use std::io::Read;
    // §9 step 20, in order. The header is read here, not by libzstd, so
    // that the window limit, skippable frames and a dictionary are decided
    // the same way whatever libzstd's version or buffer sizes.
    let header =
        zstd_frame::parse(stored).map_err(|e| codec_error(section, field, e.to_string()))?;
    if header.dictionary {
        return Err(codec_error(
            section,
            field,
            "the zstd frame names a dictionary".into(),
        ));
    }
    if header.window > zstd_frame::MAX_WINDOW {
        return Err(codec_error(
            section,
            field,
            format!(
                "the zstd frame needs a {}-byte window, more than the {} allowed",
                header.window,
                zstd_frame::MAX_WINDOW
            ),
        ));
    }
    if let Some(content) = header.content_size.filter(|&c| c != want as u64) {
        return Err(FormatError::new(
            ErrorKind::SizeMismatch,
            field(),
            section.offset,
            format!("the zstd frame declares {content} decoded bytes, the section {want}"),
        ));
    }
    // Exactly one frame, filling the section: the block headers say where
    // it ends without decoding anything.
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(stored).map_err(|code| {
        codec_error(
            section,
            field,
            format!(
                "the zstd frame is cut short or malformed: {}",
                zstd::zstd_safe::get_error_name(code)
            ),
        )
    })?;
    if frame_len != stored.len() {
        return Err(codec_error(
            section,
            field,
            format!(
                "the zstd frame is {frame_len} bytes, the section stores {}",
                stored.len()
            ),
        ));
    }
    // libzstd decodes the frame without its declared size, so the reader
    // counts the content itself: more or fewer bytes than declared is
    // `size_mismatch`, never libzstd's "corruption". The checksum, when the
    // frame has one, is still checked by libzstd at the end of the frame.
    let rewritten = zstd_frame::header_without_content_size(stored, &header);
    let frame = std::io::Read::chain(&rewritten[..], &stored[header.len..]);
    let decoder = zstd::stream::read::Decoder::with_buffer(frame)
        .map_err(|e| codec_error(section, field, format!("zstd: {e}")))?
        .single_frame();
    // One byte past the declared length is enough to tell a bomb.
    let mut out = Vec::with_capacity(initial_capacity(stored.len(), want));
    decoder
        .take(want as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| codec_error(section, field, format!("corrupt zstd stream: {e}")))?;
    if out.len() > want {
        return Err(FormatError::new(
            ErrorKind::SizeMismatch,
            field(),
            section.offset,
            format!("zstd stream decodes to more than the declared {want} bytes"),
        ));
    }
    Ok(out)
}

fn decode_brotli(
    stored: &[u8],
    want: usize,
    section: &Section,
    field: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
    // One spare byte lets a stream that is longer than declared show itself.
    let limit = want + 1;
    let mut out = vec![0u8; initial_capacity(stored.len(), want)];
    let mut state = BrotliState::new(
        StandardAlloc::default(),
        StandardAlloc::default(),
        StandardAlloc::default(),
    );
    let (mut avail_in, mut in_off) = (stored.len(), 0usize);
    let (mut out_off, mut total) = (0usize, 0usize);
    loop {
        let mut avail_out = out.len() - out_off;
        let result = BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            stored,
            &mut avail_out,
            &mut out_off,
            &mut out,
            &mut total,
            &mut state,
        );
        match result {
            BrotliResult::ResultSuccess => break,
            BrotliResult::NeedsMoreOutput if out.len() < limit => {
                let grown = out.len().saturating_mul(2).min(limit);
                out.resize(grown, 0);
            }
            BrotliResult::NeedsMoreOutput => {
                return Err(FormatError::new(
                    ErrorKind::SizeMismatch,
                    field(),
                    section.offset,
                    format!("brotli stream decodes to more than the declared {want} bytes"),
                ))
            }
            BrotliResult::NeedsMoreInput => {
                return Err(codec_error(
                    section,
                    field,
                    "brotli stream ends early".into(),
                ));
            }
            BrotliResult::ResultFailure => {
                return Err(codec_error(section, field, "corrupt brotli stream".into()));
            }
        }
    }
    if avail_in != 0 {
        return Err(codec_error(
            section,
            field,
            format!("{avail_in} bytes follow the end of the brotli stream"),
        ));
    }
    if out_off > want {
        return Err(FormatError::new(
            ErrorKind::SizeMismatch,
            field(),
            section.offset,
            format!("brotli stream decodes to more than the declared {want} bytes"),
        ));
    }
    out.truncate(out_off);
    Ok(out)
}
