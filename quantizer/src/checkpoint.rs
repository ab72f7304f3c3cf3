//! safetensors checkpoints in and out: the float tensors of a file, widened
//! to f32 in the order the trainer saved them, and f32 tensors written back.
//!
//! Parsing is the `safetensors` crate's (bounded header, offsets checked
//! against the buffer and against each shape), so nothing here allocates
//! more than the input's size in f32 values: at most twice the input for
//! f16 and bf16 tensors, as much for f32.

use std::collections::HashMap;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::model::SourceTensor;

/// Why a checkpoint cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The bytes are not a safetensors file (the crate's reason).
    #[error("not a valid safetensors file: {0}")]
    Invalid(String),
    /// A tensor of a dtype `.pgq` does not store, with leaving such
    /// tensors out not allowed.
    #[error(
        "tensor {name:?} has dtype {dtype}; .pgq stores float weights only (f32, f16, bf16 in). \
         Pass --drop-non-float to leave such buffers out (models usually rebuild them, e.g. position ids)"
    )]
    NonFloat { name: String, dtype: String },
    /// Serialising tensors failed (a shape that does not match its values).
    #[error("cannot write safetensors: {0}")]
    Write(String),
}

/// A checkpoint's float tensors, and the non-float ones left out (only when
/// the caller allowed it), as `(name, dtype)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub tensors: Vec<SourceTensor>,
    pub dropped: Vec<(String, String)>,
}

/// Every tensor of a safetensors file as f32, in file order (by data
/// offset, which is the order the trainer saved them in). Non-float tensors
/// (integer buffers such as position ids) are an error unless
/// `drop_non_float`, which leaves them out and lists them.
pub fn parse(bytes: &[u8], drop_non_float: bool) -> Result<Checkpoint, CheckpointError> {
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Invalid(e.to_string()))?;
    let mut views: Vec<_> = st.tensors();
    views.sort_by_key(|(name, v)| (v.data().as_ptr() as usize, name.clone()));
    let mut tensors = Vec::with_capacity(views.len());
    let mut dropped = Vec::new();
    for (name, view) in views {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other if drop_non_float => {
                dropped.push((name, format!("{other:?}")));
                continue;
            }
            other => {
                return Err(CheckpointError::NonFloat {
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        tensors.push(SourceTensor {
            name,
            shape: view.shape().iter().map(|&d| d as u64).collect(),
            values,
        });
    }
    Ok(Checkpoint { tensors, dropped })
}

/// Serialises f32 tensors as safetensors (loadable with
/// `safetensors.torch.load_file`), with string metadata, in the order
/// given. See [`write_f32_safetensors`] to write one tensor at a time.
pub fn f32_safetensors(
    tensors: &[(String, Vec<u64>, Vec<f32>)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let layout: Vec<(String, Vec<u64>)> = tensors
        .iter()
        .map(|(n, s, _)| (n.clone(), s.clone()))
        .collect();
    let mut out = Vec::new();
    write_f32_safetensors(&mut out, &layout, &metadata, |i| tensors[i].2.as_slice())
        .map_err(|e| CheckpointError::Write(e.to_string()))?;
    Ok(out)
}

/// Values converted to bytes at once while writing.
const CHUNK_VALUES: usize = 1 << 16;

fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d))
}

/// Writes a safetensors file of f32 tensors to `out`, one tensor at a
/// time: the header (names, shapes, offsets and the metadata, padded with
/// spaces to 8 bytes as the `safetensors` crate does), then, for each
/// tensor `i` of `layout` in order, the little-endian bytes of `values(i)`.
/// Only one tensor's values are held at once, so exporting a model needs
/// memory for its largest tensor, not for all of them. Returns the bytes
/// written. `values(i)` must return the product of `layout[i]`'s shape
/// values; a wrong count is an `InvalidData` error (the header already
/// promised the count).
pub fn write_f32_safetensors<W: std::io::Write + ?Sized, V: AsRef<[f32]>>(
    out: &mut W,
    layout: &[(String, Vec<u64>)],
    metadata: &HashMap<String, String>,
    mut values: impl FnMut(usize) -> V,
) -> std::io::Result<u64> {
    use serde_json::{json, Map, Value};
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let mut header = Map::new();
    if !metadata.is_empty() {
        let mut sorted: Vec<_> = metadata.iter().collect();
        sorted.sort();
        let meta: Map<String, Value> = sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), Value::Object(meta));
    }
    let mut offset = 0u64;
    for (name, shape) in layout {
        let bytes = element_count(shape)
            .and_then(|n| n.checked_mul(4))
            .ok_or_else(|| invalid(format!("tensor {name:?}: shape {shape:?} overflows")))?;
        let end = offset
            .checked_add(bytes)
            .ok_or_else(|| invalid("the tensors' bytes overflow 64 bits".into()))?;
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&Value::Object(header)).map_err(std::io::Error::other)?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    out.write_all(&(text.len() as u64).to_le_bytes())?;
    out.write_all(text.as_bytes())?;
    // Converted to bytes a slice at a time: a tensor's values are held
    // once, not twice.
    let mut buffer = Vec::with_capacity(4 * CHUNK_VALUES);
    for (i, (name, shape)) in layout.iter().enumerate() {
        let owned = values(i);
        let v = owned.as_ref();
        if element_count(shape) != Some(v.len() as u64) {
            return Err(invalid(format!(
                "tensor {name:?} has shape {shape:?} and {} values",
                v.len()
            )));
        }
        for chunk in v.chunks(CHUNK_VALUES) {
            buffer.clear();
            buffer.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
            out.write_all(&buffer)?;
        }
    }
    Ok(8 + text.len() as u64 + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(&str, &str, &[usize], &[u8])]) -> Vec<u8> {
        let views: Vec<_> = entries
            .iter()
            .map(|(name, dtype, shape, data)| {
                let dtype = match *dtype {
                    "F32" => Dtype::F32,
                    "F16" => Dtype::F16,
                    "BF16" => Dtype::BF16,
                    _ => Dtype::I64,
                };
                (
                    name.to_string(),
                    safetensors::tensor::TensorView::new(dtype, shape.to_vec(), data).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    #[test]
    fn widens_every_float_dtype_to_f32() {
        let f32s: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let f16s: Vec<u8> = [f16::from_f32(0.5)]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bf16s: Vec<u8> = [bf16::from_f32(-3.0)]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bytes = file(&[
            ("a", "F32", &[2], &f32s),
            ("b", "F16", &[1, 1], &f16s),
            ("c", "BF16", &[], &bf16s),
        ]);
        let c = parse(&bytes, false).unwrap();
        let got: Vec<_> = c
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.shape.clone(), t.values.clone()))
            .collect();
        assert!(got.contains(&("a", vec![2], vec![1.5, -2.0])));
        assert!(got.contains(&("b", vec![1, 1], vec![0.5])));
        assert!(got.contains(&("c", vec![], vec![-3.0])));
    }

    #[test]
    fn non_float_tensors_fail_unless_left_out() {
        let ids: Vec<u8> = 7i64.to_le_bytes().to_vec();
        let w: Vec<u8> = 1f32.to_le_bytes().to_vec();
        let bytes = file(&[("ids", "I64", &[1], &ids), ("w", "F32", &[1], &w)]);
        let e = parse(&bytes, false).unwrap_err();
        assert!(
            matches!(&e, CheckpointError::NonFloat { name, dtype } if name == "ids" && dtype == "I64"),
            "{e}"
        );
        let c = parse(&bytes, true).unwrap();
        assert_eq!(c.dropped, vec![("ids".to_string(), "I64".to_string())]);
        assert_eq!(c.tensors.len(), 1);
    }

    #[test]
    fn refuses_what_is_not_safetensors_without_allocating_its_claims() {
        for bytes in [
            &b""[..],
            b"\x80\x02}q",
            &u64::MAX.to_le_bytes(),
            b"\x10\0\0\0\0\0\0\0{\"a\":{}}",
        ] {
            assert!(matches!(
                parse(bytes, true),
                Err(CheckpointError::Invalid(_))
            ));
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let t = vec![("x".to_string(), vec![2, 2], vec![1.0, 2.0, 3.0, -0.0])];
        let bytes = f32_safetensors(&t, HashMap::new()).unwrap();
        let c = parse(&bytes, false).unwrap();
        assert_eq!(
            c.tensors[0]
                .values
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            t[0].2.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        assert!(matches!(
            f32_safetensors(&[("y".into(), vec![3], vec![1.0])], HashMap::new()),
            Err(CheckpointError::Write(_))
        ));
    }

    #[test]
    fn streamed_files_keep_the_order_and_read_back_in_the_crate() {
        let layout = vec![
            ("z.last_name_first".to_string(), vec![3]),
            ("a \"quoted\" name".to_string(), vec![]),
            ("m".to_string(), vec![1, 2]),
        ];
        let values = [vec![1.0, 2.0, 3.0], vec![-0.5], vec![7.0, 8.0]];
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        let mut out = Vec::new();
        let n = write_f32_safetensors(&mut out, &layout, &meta, |i| values[i].clone()).unwrap();
        assert_eq!(n, out.len() as u64);
        let header_len = u64::from_le_bytes(out[..8].try_into().unwrap());
        assert_eq!(header_len % 8, 0);
        let st = SafeTensors::deserialize(&out).unwrap();
        let c = parse(&out, false).unwrap();
        let names: Vec<_> = c.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["z.last_name_first", "a \"quoted\" name", "m"]);
        assert_eq!(st.tensor("m").unwrap().shape(), [1, 2]);
        assert_eq!(c.tensors[1].values, [-0.5]);
        let (_, metadata) = SafeTensors::read_metadata(&out).unwrap();
        assert_eq!(metadata.metadata().as_ref().unwrap()["format"], "pt");
        // A closure that breaks the header's promise is an error, not a bad file.
        let e = write_f32_safetensors(&mut Vec::new(), &layout, &meta, |_| vec![0.0]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }
}
