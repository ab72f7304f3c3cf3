//! safetensors checkpoints read from a path: the file-level checks of
//! `files::read_limited`, then `pgq_quantizer::checkpoint` parses.

use std::path::Path;

pub use pgq_quantizer::checkpoint::Checkpoint;

use crate::exit::{CliError, CliResult};
use crate::files::read_limited;

/// Largest checkpoint read (the field's models are ~150 MB in f32).
pub const MAX_CHECKPOINT_BYTES: u64 = 16 << 30;

/// Loads every float tensor of the safetensors file at `path` as f32, in
/// file order (see `pgq_quantizer::checkpoint::parse`).
pub fn load(path: &Path, drop_non_float: bool) -> CliResult<Checkpoint> {
    let bytes = read_limited(path, MAX_CHECKPOINT_BYTES)?;
    pgq_quantizer::checkpoint::parse(&bytes, drop_non_float)
        .map_err(|e| CliError::malformed(anyhow::anyhow!("{}: {e}", path.display())))
}
