//! safetensors checkpoints in and out.

use std::collections::HashMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::exit::{CliError, CliResult, Malformed};
use crate::files::read_limited;

/// A tensor of a checkpoint, widened to f32.
pub struct SourceTensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub values: Vec<f32>,
}

/// Largest checkpoint read (the field's models are ~150 MB in f32).
pub const MAX_CHECKPOINT_BYTES: u64 = 16 << 30;

/// A checkpoint's float tensors, and the names of the non-float ones left
/// out (only when the caller allowed it).
pub struct Checkpoint {
    pub tensors: Vec<SourceTensor>,
    pub dropped: Vec<(String, Dtype)>,
    /// SHA-256 of the file's bytes, lowercase hex: the source digest kept
    /// in artifact provenance.
    pub sha256: String,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads every tensor of a safetensors file as f32, in file order (by data
/// offset, which is the order the trainer saved them in). Non-float tensors
/// (integer buffers such as position ids) are an error unless
/// `drop_non_float`, which leaves them out and lists them.
pub fn load(path: &Path, drop_non_float: bool) -> CliResult<Checkpoint> {
    let bytes = read_limited(path, MAX_CHECKPOINT_BYTES)?;
    let st = SafeTensors::deserialize(&bytes).malformed(format!(
        "{} is not a valid safetensors file",
        path.display()
    ))?;
    let mut views: Vec<_> = st.tensors();
    views.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    let mut out = Vec::with_capacity(views.len());
    let mut dropped = Vec::new();
    for (name, view) in views {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other if drop_non_float => {
                dropped.push((name, other));
                continue;
            }
            other => {
                return Err(CliError::malformed(anyhow::anyhow!(
                    "{}: tensor {name:?} has dtype {other:?}; .pgq stores float weights only (f32, f16, bf16 in). \
                     Pass --drop-non-float to leave such buffers out (models usually rebuild them, e.g. position ids)",
                    path.display()
                )))
            }
        };
        out.push(SourceTensor {
            name,
            shape: view.shape().iter().map(|&d| d as u64).collect(),
            values,
        });
    }
    Ok(Checkpoint {
        tensors: out,
        dropped,
        sha256: sha256_hex(&bytes),
    })
}

/// Serialises f32 tensors as safetensors (loadable with
/// `safetensors.torch.load_file`).
pub fn f32_safetensors(
    tensors: &[(String, Vec<u64>, Vec<f32>)],
    metadata: HashMap<String, String>,
) -> CliResult<Vec<u8>> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                n.clone(),
                s.iter().map(|&d| d as usize).collect(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::malformed(anyhow::anyhow!("cannot build safetensors: {e}")))?;
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| CliError::malformed(anyhow::anyhow!("cannot serialise safetensors: {e}")))
}
