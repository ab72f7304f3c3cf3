//! The content digest of a set of tensors: what `pgq.source.sha256` and
//! `pgq.hessians.sha256` hold (spec/FORMAT.md §4.3).
//!
//! It is defined over what pgq quantizes, not over a file's bytes, so that
//! the CLI (a safetensors file) and the Python package (a state dict in
//! memory) record one digest for one model, whatever order its tensors were
//! saved in. SHA-256 of, in order:
//!
//! 1. the 16 bytes `pgq.tensors.v1\0\0`;
//! 2. the tensor count, u64 little-endian;
//! 3. per tensor, sorted by name (bytewise): the name's length in bytes
//!    (u64 LE), the name (UTF-8), the rank (u64 LE), each dimension (u64
//!    LE), then every value as f32 little-endian in row-major order.
//!
//! Values are the f32 values pgq reads: f16 and bf16 sources widen exactly,
//! so a bf16 tensor and the same values saved as f32 share a digest, as
//! they share an artifact.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The content digest of `tensors`, given as `(name, shape, values)`.
pub fn tensor_digest<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a [u64], &'a [f32])>,
) -> String {
    let mut sorted: Vec<(&str, &[u64], &[f32])> = tensors.into_iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hash = Sha256::new();
    hash.update(b"pgq.tensors.v1\0\0");
    hash.update((sorted.len() as u64).to_le_bytes());
    // Values go through a small buffer: one update per 16 KiB, not per value.
    let mut buffer = Vec::with_capacity(16 * 1024);
    for (name, shape, values) in sorted {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            hash.update(d.to_le_bytes());
        }
        for chunk in values.chunks(4096) {
            buffer.clear();
            buffer.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            hash.update(&buffer);
        }
    }
    hex(&hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_follows_the_documented_byte_layout() {
        // One tensor "w" [2] = [1.0, -2.0], built byte by byte from the doc.
        let mut bytes = b"pgq.tensors.v1\0\0".to_vec();
        bytes.extend(1u64.to_le_bytes());
        bytes.extend(1u64.to_le_bytes());
        bytes.extend(b"w");
        bytes.extend(1u64.to_le_bytes());
        bytes.extend(2u64.to_le_bytes());
        bytes.extend(1.0f32.to_le_bytes());
        bytes.extend((-2.0f32).to_le_bytes());
        let w = ("w", &[2u64][..], &[1.0f32, -2.0][..]);
        assert_eq!(tensor_digest([w]), sha256_hex(&bytes));
    }

    #[test]
    fn order_does_not_matter_and_every_field_does() {
        let values: Vec<f32> = (0..10_000).map(|i| i as f32 * 0.5).collect();
        let a = ("a.weight", &[100u64, 100][..], &values[..]);
        let b = ("b", &[3u64][..], &[1.0f32, 2.0, 3.0][..]);
        let base = tensor_digest([a, b]);
        assert_eq!(base, tensor_digest([b, a]));
        assert_ne!(
            base,
            tensor_digest([("a.weight", &[10_000u64][..], &values[..]), b])
        );
        assert_ne!(base, tensor_digest([("a.weighT", a.1, a.2), b]));
        let mut changed = values.clone();
        changed[9_999] = -0.0;
        assert_ne!(base, tensor_digest([("a.weight", a.1, &changed[..]), b]));
        assert_ne!(base, tensor_digest([a]));
        // A name boundary cannot move: ("ab", []) + ("c") differs from ("a") + ("bc").
        let e: &[f32] = &[];
        assert_ne!(
            tensor_digest([("ab", &[0u64][..], e), ("c", &[0u64][..], e)]),
            tensor_digest([("a", &[0u64][..], e), ("bc", &[0u64][..], e)])
        );
    }
}
