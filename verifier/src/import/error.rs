//! Why an import failed: what, and where (byte offset, zip entry, pickle op,
//! tensor name).

use super::pickle::PickleError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The compressed stream is corrupt, truncated or followed by garbage.
    #[error("{compressor} stream: {detail} (at compressed byte {offset})")]
    Decompress {
        compressor: &'static str,
        offset: u64,
        detail: String,
    },
    /// The decompressed stream would exceed `max_decompressed_bytes`.
    #[error(
        "the {compressor} stream decompresses to more than {limit} bytes \
         (ImportOptions::max_decompressed_bytes); decoding stopped there"
    )]
    TooLarge {
        compressor: &'static str,
        limit: u64,
    },
    /// The (decompressed, unshuffled) bytes are not a well-formed torch.save
    /// zip. `offset` is relative to the start of the zip.
    #[error("zip{}: {detail} (at byte {offset})", entry_label(.entry))]
    Zip {
        entry: Option<String>,
        offset: u64,
        detail: String,
    },
    /// `data.pkl` is malformed, exceeds a limit, or names a forbidden global.
    /// (`error` is part of the message rather than a `source`, so that
    /// error chains do not print it twice.)
    #[error("{entry}: {error}")]
    Pickle { entry: String, error: PickleError },
    /// The unpickled object is not one of the known layouts. `path` says
    /// where, e.g. `root["w"]["x.q"]`.
    #[error("{path}: {detail}")]
    Layout { path: String, detail: String },
    /// A tensor's dtype has no lossless pgq representation here.
    #[error("tensor {tensor:?}: dtype {dtype}: {detail}")]
    UnsupportedDtype {
        tensor: String,
        dtype: &'static str,
        detail: String,
    },
    /// A code outside the symmetric range of its bit width.
    #[error(
        "tensor {tensor:?}: code {code} at element {index} is outside the \
         {bits}-bit range [-{max}, {max}]"
    )]
    CodeOutOfRange {
        tensor: String,
        index: usize,
        code: i8,
        bits: u8,
        max: i8,
    },
    /// A shape, scale or value that pgq cannot hold exactly.
    #[error("tensor {tensor:?}: {detail}")]
    Tensor { tensor: String, detail: String },
    /// Something import recognises but cannot map yet: a container whose
    /// streams pgq cannot decode (`PGRP`). `what` names it, `detail` says
    /// why.
    #[error("{what}: not supported yet: {detail}")]
    Unsupported { what: String, detail: String },
}

fn entry_label(entry: &Option<String>) -> String {
    entry
        .as_deref()
        .map(|e| format!(" entry {e:?}"))
        .unwrap_or_default()
}
