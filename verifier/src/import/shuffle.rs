//! The records' `BSHF` byte shuffle, undone.
//!
//! `_byte_shuffle(data, stride)` writes `BSHF`, the stride byte, then every
//! `stride`-th byte starting at 0, then those starting at 1, and so on (for
//! fp16 data with stride 2: all low bytes, then all high bytes). The
//! records' `_byte_unshuffle` treats a stride below 2 as "not shuffled" and
//! just drops the 5-byte header; so does this module.

use std::borrow::Cow;

/// The shuffle's magic.
pub const MAGIC: &[u8; 4] = b"BSHF";

/// Returns the stride and the unshuffled bytes when `data` starts with a
/// `BSHF` header; otherwise `None` and `data` unchanged (as the records'
/// `_byte_unshuffle` does, which also leaves a bare 4-byte `BSHF` alone).
pub fn unshuffle(data: &[u8]) -> (Option<u8>, Cow<'_, [u8]>) {
    let Some((&stride, payload)) = data
        .strip_prefix(MAGIC.as_slice())
        .and_then(<[u8]>::split_first)
    else {
        return (None, Cow::Borrowed(data));
    };
    (Some(stride), inverse(payload, stride))
}

/// Puts byte `k` of plane `pos` back at `pos + k * stride`. Plane `pos`
/// holds `n / stride` bytes, one more for the first `n % stride` planes.
fn inverse(payload: &[u8], stride: u8) -> Cow<'_, [u8]> {
    let step = usize::from(stride);
    if step < 2 {
        return Cow::Borrowed(payload);
    }
    let n = payload.len();
    let mut out = vec![0u8; n];
    let mut rest = payload;
    for pos in 0..step {
        let plane_len = n / step + usize::from(pos < n % step);
        let (plane, tail) = rest.split_at(plane_len.min(rest.len()));
        rest = tail;
        for (dst, &byte) in out.iter_mut().skip(pos).step_by(step).zip(plane) {
            *dst = byte;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgq_quantizer::byte_shuffle;

    #[test]
    fn inverts_the_quantizer_shuffle_for_every_stride_and_length() {
        for stride in 2..=9u8 {
            for len in 0..40usize {
                let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
                let shuffled = byte_shuffle(&data, stride);
                let (found, out) = unshuffle(&shuffled);
                if len < usize::from(stride) {
                    // The shuffle leaves such data as is, without a header.
                    assert_eq!(found, None);
                } else {
                    assert_eq!(found, Some(stride));
                }
                assert_eq!(out.as_ref(), data.as_slice(), "stride {stride} len {len}");
            }
        }
    }

    #[test]
    fn hand_computed_example() {
        let shuffled = [b'B', b'S', b'H', b'F', 3, 10, 13, 16, 11, 14, 12, 15];
        let (stride, out) = unshuffle(&shuffled);
        assert_eq!(stride, Some(3));
        assert_eq!(out.as_ref(), [10, 11, 12, 13, 14, 15, 16]);
    }

    #[test]
    fn strides_below_two_drop_the_header() {
        for stride in [0u8, 1] {
            let data = [b'B', b'S', b'H', b'F', stride, 7, 8, 9];
            let (found, out) = unshuffle(&data);
            assert_eq!(found, Some(stride));
            assert_eq!(out.as_ref(), [7, 8, 9]);
        }
    }

    #[test]
    fn no_header_means_unchanged() {
        for data in [&b"BSHF"[..], b"PK\x03\x04", b"", b"BSH"] {
            let (found, out) = unshuffle(data);
            assert_eq!(found, None);
            assert_eq!(out.as_ref(), data);
        }
    }
}
