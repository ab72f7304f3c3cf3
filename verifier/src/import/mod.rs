//! `pgq import`: today's parameter-golf `.ptz` artifacts into `.pgq`
//! tensors, losslessly and without executing anything.
//!
//! A `.ptz` is `torch.save({"w": tensors, "m": meta})` (or the older
//! `int8_clean_per_row_v1` bundle), optionally byte-shuffled (`BSHF`), then
//! compressed. Import peels those layers one module at a time:
//!
//! 1. [`compress`]: the compressor, found by magic (brotli, which has none,
//!    is tried last), decoded with a hard cap on the output;
//! 2. [`shuffle`]: the `BSHF` byte shuffle undone;
//! 3. [`zip`]: the torch.save zip read strictly (stored entries, every
//!    offset checked, CRCs verified);
//! 4. [`pickle`]: `data.pkl` run through a restricted interpreter that knows
//!    only the opcodes torch.save emits and an allow-list of globals; it
//!    builds data and never calls anything;
//! 5. [`layout`]: the `w`/`m` or `int8_clean_per_row_v1` layout mapped to
//!    [`pgq_format::Tensor`]s: int8 codes and fp16 scales kept as they are,
//!    so every exported weight equals `q * scale` bit for bit; a low-rank
//!    correction (`+lqer`, `+lqer_asym`) becomes a kind-4 tensor
//!    (`lqer`), equal to the record's `q * scale + A @ B` bit for bit.
//!
//! What import recognises but cannot map yet is refused with
//! [`ImportError::Unsupported`], naming it: the 2026-04-27 record's `PGRP`
//! per-group lrzip container.
//!
//! Raw LZMA2 (no xz container) is not supported: it has no magic, and
//! [`ImportOptions`] has no way to declare it. Python's `lzma.compress`, which
//! the records use, writes the xz container, which is supported.

pub mod compress;
mod dtype;
mod error;
pub mod layout;
mod lqer;
pub mod pickle;
pub mod shuffle;
mod storage;
pub mod zip;

pub use compress::Compressor;
pub use dtype::Dtype;
pub use error::ImportError;
pub use layout::Layout;
pub use pickle::PickleError;

use serde::Serialize;

/// Limits of one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// The decompressed stream may not exceed this many bytes; decoding stops
    /// with [`ImportError::TooLarge`] one byte past it. Default 1 GiB.
    pub max_decompressed_bytes: u64,
}

/// The magic of the 2026-04-27 record's per-group container: `PGRP`, a
/// stream count, lengths, then lrzip streams per tensor group and a brotli
/// torch.save of the rest.
const PGRP_MAGIC: &[u8] = b"PGRP";

/// The default cap on the decompressed stream: 1 GiB, 60 times the largest
/// artifact the 16,000,000-byte rule allows.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

/// What import found, layer by layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detected {
    /// What the outer stream was compressed with (`Raw`: an uncompressed
    /// zip or `BSHF` stream); prints as `brotli`, `zlib`, `zstd`, `xz`, `raw`.
    pub compressor: Compressor,
    /// The `BSHF` stride, when the stream was shuffled.
    pub shuffle: Option<u8>,
    /// How the tensors were laid out; prints as `w/m` or
    /// `int8_clean_per_row_v1`.
    pub layout: Layout,
    /// Number of tensors imported.
    pub tensors: usize,
}

/// The tensors of an artifact and how they were stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub tensors: Vec<pgq_format::Tensor>,
    pub detected: Detected,
}

/// Reads a `.ptz` artifact (or an uncompressed torch.save zip) into pgq
/// tensors. Never panics and never executes anything from the input.
pub fn import(bytes: &[u8], options: &ImportOptions) -> Result<Imported, ImportError> {
    if bytes.starts_with(PGRP_MAGIC) {
        return Err(ImportError::Unsupported {
            what: "a PGRP per-group container (the 2026-04-27 record's `pergroup` compressor)".into(),
            detail: "its int8 groups are lrzip (ZPAQ) streams, which pgq cannot decode; \
                     serialize with the record's brotli or lzma compressor (COMPRESSOR=brotli) to import"
                .into(),
        });
    }
    let (compressor, stream) = compress::decompress(bytes, options.max_decompressed_bytes)?;
    let (shuffle, archive_bytes) = shuffle::unshuffle(&stream);
    let archive = zip::Archive::parse(&archive_bytes)?;
    let checkpoint = storage::Checkpoint::open(&archive)?;
    let pickle = pickle::parse(checkpoint.pickle_bytes()).map_err(|error| ImportError::Pickle {
        entry: checkpoint.pickle_name().to_owned(),
        error,
    })?;
    let (layout, tensors) = layout::map(&pickle, &checkpoint)?;
    Ok(Imported {
        detected: Detected {
            compressor,
            shuffle,
            layout,
            tensors: tensors.len(),
        },
        tensors,
    })
}
