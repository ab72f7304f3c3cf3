//! The decode digest: SHA-256 of the weights a file denotes (§4.3.1 of
//! spec/FORMAT.md), so that a verifier can check that what it decodes is
//! what the writer meant, independently of the codec and the layout.
//!
//! Input, for each tensor in tensor-table order: the name's length (u32
//! LE), the name's UTF-8 bytes, the rank (u32 LE), each dimension (u64 LE),
//! then every dequantized value (§6.7) as its f32 bits (u32 LE), row-major.
//! Since every conforming decoder produces the same bits, the digest is a
//! property of the file's content, not of the decoder.

use sha2::{Digest, Sha256};

use crate::tensor::Tensor;

/// The metadata key under which pgq's writer records the digest, as 64
/// lowercase hexadecimal digits.
pub const DECODE_DIGEST_KEY: &str = "pgq.decode.sha256";

/// The decode digest of `tensors`, as 64 lowercase hex digits.
pub fn decode_digest(tensors: &[Tensor]) -> String {
    let mut hasher = Sha256::new();
    let mut buffer = Vec::new();
    for tensor in tensors {
        // Lengths fit u32: names are at most 1024 bytes, ranks at most 8.
        hasher.update((tensor.name.len() as u32).to_le_bytes());
        hasher.update(tensor.name.as_bytes());
        hasher.update((tensor.shape.len() as u32).to_le_bytes());
        for &d in &tensor.shape {
            hasher.update(d.to_le_bytes());
        }
        // A slice at a time: the tensor's values are held once.
        for chunk in tensor.dequantize().chunks(1 << 16) {
            buffer.clear();
            buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            hasher.update(&buffer);
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorData;
    use half::f16;

    fn quantized(codes: Vec<i8>, scales: Vec<f32>) -> Tensor {
        Tensor {
            name: "w".into(),
            shape: vec![2, 3],
            data: TensorData::Quantized {
                bits: 6,
                group_size: 0,
                codes,
                scales: scales.into_iter().map(f16::from_f32).collect(),
                correction: None,
            },
        }
    }

    #[test]
    fn digest_is_of_the_values_not_the_encoding() {
        // §6.7's example: [[0.5, -1, 1.5], [0, 7.75, -7.75]].
        let q = quantized(vec![1, -2, 3, 0, 31, -31], vec![0.5, 0.25]);
        let f32s = Tensor {
            name: "w".into(),
            shape: vec![2, 3],
            data: TensorData::F32(vec![0.5, -1.0, 1.5, 0.0, 7.75, -7.75]),
        };
        assert_eq!(
            decode_digest(std::slice::from_ref(&q)),
            decode_digest(&[f32s])
        );
        // Independent computation of the same bytes.
        let mut bytes = Vec::new();
        bytes.extend(1u32.to_le_bytes());
        bytes.extend(b"w");
        bytes.extend(2u32.to_le_bytes());
        bytes.extend(2u64.to_le_bytes());
        bytes.extend(3u64.to_le_bytes());
        for v in [0.5f32, -1.0, 1.5, 0.0, 7.75, -7.75] {
            bytes.extend(v.to_le_bytes());
        }
        let expected: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(decode_digest(std::slice::from_ref(&q)), expected);
        // One code changed: another digest.
        let other = quantized(vec![1, -2, 3, 0, 31, -30], vec![0.5, 0.25]);
        assert_ne!(decode_digest(&[other]), expected);
        assert_eq!(decode_digest(&[]).len(), 64);
    }
}
