//! The outer compressor of a `.ptz`: found by magic, decoded with a hard
//! cap on the output.
//!
//! Every decoder runs as a sans-I/O step function driven by `drive`,
//! which hands it output chunks no larger than what is left under the cap
//! (plus one byte, so that a stream longer than the cap shows itself). A
//! decompression bomb therefore stops one byte past the cap, having
//! allocated no more than that. Each stream must also end exactly where the
//! input ends: trailing bytes are an error, so that random data does not
//! pass as a short stream followed by junk.

use std::borrow::Cow;

use super::error::ImportError;
use super::shuffle;
use super::zip;

/// The compressors today's artifacts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    Brotli,
    Zlib,
    Zstd,
    Xz,
    /// No compressor: the input is the zip itself, or a `BSHF` stream.
    Raw,
}

impl Compressor {
    pub fn name(self) -> &'static str {
        match self {
            Compressor::Brotli => "brotli",
            Compressor::Zlib => "zlib",
            Compressor::Zstd => "zstd",
            Compressor::Xz => "xz",
            Compressor::Raw => "raw",
        }
    }
}

/// Serialized as its name, as `pgq import --json` has always printed it.
impl serde::Serialize for Compressor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl std::fmt::Display for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];

/// The compressor `bytes` start with. Brotli has no magic: it is what is
/// left when nothing else matches.
pub fn detect(bytes: &[u8]) -> Compressor {
    if bytes.starts_with(&ZSTD_MAGIC) {
        Compressor::Zstd
    } else if bytes.starts_with(&XZ_MAGIC) {
        Compressor::Xz
    } else if bytes.starts_with(zip::LOCAL_HEADER_MAGIC) || bytes.starts_with(shuffle::MAGIC) {
        Compressor::Raw
    } else if is_zlib_header(bytes) {
        Compressor::Zlib
    } else {
        Compressor::Brotli
    }
}

/// RFC 1950: deflate (CM 8) with a window of at most 32 KiB, no preset
/// dictionary, and a header checksum that makes `CMF * 256 + FLG` a
/// multiple of 31. Only 1 in 31 two-byte prefixes with CM 8 pass.
fn is_zlib_header(bytes: &[u8]) -> bool {
    let [cmf, flg, ..] = *bytes else {
        return false;
    };
    let deflate = cmf & 0x0F == 8 && cmf >> 4 <= 7;
    let no_dictionary = flg & 0x20 == 0;
    deflate && no_dictionary && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// Detects and decodes the compressor; at most `limit` bytes come out.
///
/// A stream whose magic matched but that fails to decode is tried as
/// brotli too (a brotli stream can start with bytes that look like a zlib
/// header); if that fails as well, the first error is the one reported.
pub fn decompress(bytes: &[u8], limit: u64) -> Result<(Compressor, Cow<'_, [u8]>), ImportError> {
    let compressor = detect(bytes);
    let result = match compressor {
        Compressor::Raw => return Ok((Compressor::Raw, Cow::Borrowed(bytes))),
        Compressor::Brotli => return Ok((compressor, Cow::Owned(brotli(bytes, limit)?))),
        Compressor::Zlib => zlib(bytes, limit),
        Compressor::Zstd => zstd(bytes, limit),
        Compressor::Xz => xz(bytes, limit),
    };
    match result {
        Ok(out) => Ok((compressor, Cow::Owned(out))),
        Err(too_large @ ImportError::TooLarge { .. }) => Err(too_large),
        Err(first) => match brotli(bytes, limit) {
            Ok(out) => Ok((Compressor::Brotli, Cow::Owned(out))),
            Err(_) => Err(first),
        },
    }
}

/// What one decoder step did.
enum Step {
    /// Consumed and produced this many bytes; call again.
    Progress { consumed: usize, produced: usize },
    /// The stream ended after consuming and producing this many bytes.
    End { consumed: usize, produced: usize },
}

/// Output is decoded in chunks of at most this many bytes.
const CHUNK: usize = 256 << 10;

/// Runs `step(input_rest, output_chunk)` until the stream ends, capping the
/// output at `limit` bytes and requiring the stream to use all of `input`.
fn drive(
    compressor: &'static str,
    input: &[u8],
    limit: u64,
    mut step: impl FnMut(&[u8], &mut [u8]) -> Result<Step, String>,
) -> Result<Vec<u8>, ImportError> {
    let error = |offset: usize, detail: String| ImportError::Decompress {
        compressor,
        offset: offset as u64,
        detail,
    };
    // One byte past the cap tells a stream that is too long.
    let hard_end = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut out: Vec<u8> = Vec::new();
    let mut pos = 0usize;
    let mut stalled = 0u32;
    loop {
        let start = out.len();
        let chunk = CHUNK.min(hard_end - start);
        if chunk == 0 {
            return Err(ImportError::TooLarge { compressor, limit });
        }
        reserve_bounded(&mut out, chunk, hard_end);
        out.resize(start + chunk, 0);
        let rest = input.get(pos..).unwrap_or_default();
        let output = out.get_mut(start..).unwrap_or_default();
        let result = step(rest, output).map_err(|detail| error(pos, detail))?;
        let (consumed, produced, ended) = match result {
            Step::Progress { consumed, produced } => (consumed, produced, false),
            Step::End { consumed, produced } => (consumed, produced, true),
        };
        pos = pos.saturating_add(consumed.min(rest.len()));
        out.truncate(start + produced.min(chunk));
        if ended {
            break;
        }
        // A decoder that neither consumes nor produces while it has room to
        // write is waiting for input that is not there.
        if consumed == 0 && produced == 0 {
            stalled += 1;
            if stalled > 1 || pos == input.len() {
                return Err(error(pos, "the stream ends early (truncated)".into()));
            }
        } else {
            stalled = 0;
        }
    }
    if out.len() as u64 > limit {
        return Err(ImportError::TooLarge { compressor, limit });
    }
    if pos != input.len() {
        return Err(error(
            pos,
            format!(
                "{} bytes follow the end of the stream",
                input.len().saturating_sub(pos)
            ),
        ));
    }
    out.shrink_to_fit();
    Ok(out)
}

/// Grows `out` to hold `extra` more bytes, doubling as a `Vec` does but
/// never past `hard_end`.
fn reserve_bounded(out: &mut Vec<u8>, extra: usize, hard_end: usize) {
    let need = out.len().saturating_add(extra);
    if need > out.capacity() {
        let target = need.max(out.capacity().saturating_mul(2)).min(hard_end);
        out.reserve_exact(target.saturating_sub(out.len()));
    }
}

fn brotli(input: &[u8], limit: u64) -> Result<Vec<u8>, ImportError> {
    use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
    let mut state = BrotliState::new(
        StandardAlloc::default(),
        StandardAlloc::default(),
        StandardAlloc::default(),
    );
    let mut total = 0usize;
    drive("brotli", input, limit, |rest, output| {
        let (mut avail_in, mut in_off) = (rest.len(), 0usize);
        let (mut avail_out, mut out_off) = (output.len(), 0usize);
        let result = BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            rest,
            &mut avail_out,
            &mut out_off,
            output,
            &mut total,
            &mut state,
        );
        let (consumed, produced) = (in_off, out_off);
        match result {
            BrotliResult::ResultSuccess => Ok(Step::End { consumed, produced }),
            BrotliResult::NeedsMoreOutput => Ok(Step::Progress { consumed, produced }),
            BrotliResult::NeedsMoreInput if avail_in == 0 && produced == 0 && consumed == 0 => {
                Err("the stream ends early (truncated)".into())
            }
            BrotliResult::NeedsMoreInput => Ok(Step::Progress { consumed, produced }),
            BrotliResult::ResultFailure => Err("corrupt brotli stream".into()),
        }
    })
}

fn zlib(input: &[u8], limit: u64) -> Result<Vec<u8>, ImportError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut decoder = Decompress::new(true);
    drive("zlib", input, limit, |rest, output| {
        let (in_before, out_before) = (decoder.total_in(), decoder.total_out());
        let status = decoder
            .decompress(rest, output, FlushDecompress::None)
            .map_err(|e| format!("corrupt zlib stream: {e}"))?;
        let consumed = (decoder.total_in() - in_before) as usize;
        let produced = (decoder.total_out() - out_before) as usize;
        Ok(match status {
            Status::StreamEnd => Step::End { consumed, produced },
            Status::Ok | Status::BufError => Step::Progress { consumed, produced },
        })
    })
}

fn zstd(input: &[u8], limit: u64) -> Result<Vec<u8>, ImportError> {
    use zstd::stream::raw::{Decoder, Operation};
    let mut decoder = Decoder::new().map_err(|e| ImportError::Decompress {
        compressor: "zstd",
        offset: 0,
        detail: format!("cannot start the decoder: {e}"),
    })?;
    drive("zstd", input, limit, |rest, output| {
        let status = decoder
            .run_on_buffers(rest, output)
            .map_err(|e| format!("corrupt zstd stream: {e}"))?;
        let (consumed, produced) = (status.bytes_read, status.bytes_written);
        // `remaining == 0`: the frame is complete and fully flushed. One
        // frame only: what follows it is trailing data.
        Ok(if status.remaining == 0 {
            Step::End { consumed, produced }
        } else {
            Step::Progress { consumed, produced }
        })
    })
}

fn xz(input: &[u8], limit: u64) -> Result<Vec<u8>, ImportError> {
    use lzma_rust2::{Action, Status, XzStream};
    // One stream, as Python's lzma.compress writes. The LZMA2 window grows
    // with the decoded data, so it too stays under the cap.
    let mut stream = XzStream::new(false);
    drive("xz", input, limit, |rest, output| {
        let result = stream
            .process(rest, output, Action::Finish)
            .map_err(|e| format!("corrupt xz stream: {e}"))?;
        let (consumed, produced) = (result.bytes_consumed, result.bytes_produced);
        Ok(match result.status {
            Status::StreamEnd => Step::End { consumed, produced },
            Status::Ok => Step::Progress { consumed, produced },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMIT: u64 = 1 << 20;

    fn sample() -> Vec<u8> {
        (0..50_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    fn zlib_encode(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn brotli_encode(data: &[u8]) -> Vec<u8> {
        pgq_format::encode_section(
            data,
            pgq_format::Compression::Brotli {
                quality: 5,
                lgwin: 22,
            },
        )
        .unwrap()
    }

    fn zstd_encode(data: &[u8]) -> Vec<u8> {
        pgq_format::encode_section(data, pgq_format::Compression::Zstd(3)).unwrap()
    }

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&[0x28, 0xB5, 0x2F, 0xFD, 0]), Compressor::Zstd);
        assert_eq!(detect(&XZ_MAGIC), Compressor::Xz);
        assert_eq!(detect(b"PK\x03\x04rest"), Compressor::Raw);
        assert_eq!(detect(b"BSHF\x02"), Compressor::Raw);
        for second in [0x01, 0x5E, 0x9C, 0xDA] {
            assert_eq!(detect(&[0x78, second, 0]), Compressor::Zlib);
        }
        // Wrong FCHECK, preset dictionary, or not deflate: brotli.
        assert_eq!(detect(&[0x78, 0x9D]), Compressor::Brotli);
        assert_eq!(detect(&[0x78, 0xBB]), Compressor::Brotli);
        assert_eq!(detect(&[0x79, 0x9C]), Compressor::Brotli);
        assert_eq!(detect(&[]), Compressor::Brotli);
    }

    #[test]
    fn round_trips_every_compressor() {
        let data = sample();
        for (encoded, want) in [
            (zlib_encode(&data), Compressor::Zlib),
            (brotli_encode(&data), Compressor::Brotli),
            (zstd_encode(&data), Compressor::Zstd),
        ] {
            let (found, out) = decompress(&encoded, LIMIT).unwrap();
            assert_eq!(found, want);
            assert_eq!(out.as_ref(), data.as_slice(), "{}", want.name());
        }
    }

    #[test]
    fn bombs_stop_at_the_cap() {
        let zeros = vec![0u8; 4 << 20];
        for encoded in [
            zlib_encode(&zeros),
            brotli_encode(&zeros),
            zstd_encode(&zeros),
        ] {
            match decompress(&encoded, LIMIT) {
                Err(ImportError::TooLarge { limit, .. }) => assert_eq!(limit, LIMIT),
                other => panic!("{:?}", other.map(|(c, o)| (c, o.len()))),
            }
            // Exactly at the cap is fine.
            let (_, out) = decompress(&encoded, zeros.len() as u64).unwrap();
            assert_eq!(out.len(), zeros.len());
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let data = sample();
        for encoded in [zlib_encode(&data), zstd_encode(&data), brotli_encode(&data)] {
            let cut = &encoded[..encoded.len() - 3];
            assert!(matches!(
                decompress(cut, LIMIT),
                Err(ImportError::Decompress { .. })
            ));
            let mut extra = encoded.clone();
            extra.extend_from_slice(b"junk");
            let err = decompress(&extra, LIMIT).unwrap_err().to_string();
            assert!(err.contains("follow the end of the stream"), "{err}");
        }
    }

    #[test]
    fn raw_passes_through_without_a_copy() {
        let (c, out) = decompress(b"PK\x03\x04abc", 1).unwrap();
        assert_eq!(c, Compressor::Raw);
        assert!(matches!(out, Cow::Borrowed(_)));
    }
}
