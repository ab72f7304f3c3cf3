//! Element layouts inside decoded regions: byte planes for multi-byte
//! values and the LSB-first bit stream of packed codes.
//!
//! Every function here is total: a code width is a [`Bits`], which holds
//! only 2..=8, and a plane width of 0 leaves the bytes as they are.

use crate::limits::{MAX_BITS, MIN_BITS};
use crate::types::CodeRange;

/// A code width pgq stores: 2 to 8 bits (spec/FORMAT.md §4.4). The only way
/// to make one is [`Bits::new`], so no function taking it can be handed a
/// width it cannot handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bits(u8);

impl Bits {
    /// `Some` for 2..=8, `None` otherwise.
    pub const fn new(bits: u8) -> Option<Bits> {
        if bits >= MIN_BITS && bits <= MAX_BITS {
            Some(Bits(bits))
        } else {
            None
        }
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

/// Largest code magnitude of a `bits`-bit symmetric code: `2^(bits-1) - 1`.
pub const fn code_max(bits: Bits) -> i8 {
    ((1i16 << (bits.0 - 1)) - 1) as i8
}

/// Splits `width`-byte little-endian values into `width` planes: plane k
/// holds byte k of every value, in order (like the field's BSHF shuffle).
pub fn to_planes(bytes: &[u8], width: usize) -> Vec<u8> {
    if width == 0 {
        return bytes.to_vec();
    }
    let n = bytes.len() / width;
    let mut out = vec![0u8; bytes.len()];
    for (i, value) in bytes.chunks_exact(width).enumerate() {
        for (k, &b) in value.iter().enumerate() {
            out[k * n + i] = b;
        }
    }
    out
}

/// Inverse of [`to_planes`].
pub fn from_planes(planes: &[u8], width: usize) -> Vec<u8> {
    if width == 0 {
        return planes.to_vec();
    }
    let n = planes.len() / width;
    let mut out = vec![0u8; planes.len()];
    for k in 0..width {
        let plane = &planes[k * n..(k + 1) * n];
        for (i, &b) in plane.iter().enumerate() {
            out[i * width + k] = b;
        }
    }
    out
}

/// Packs codes as `bits`-bit two's-complement fields, LSB first: code i
/// occupies stream bits `[i*bits, (i+1)*bits)`, stream bit j being bit
/// `j % 8` of byte `j / 8`. Unused bits of the last byte are zero.
pub fn pack_codes(codes: &[i8], bits: Bits) -> Vec<u8> {
    let bits = u32::from(bits.0);
    let mask = (1u32 << bits) - 1;
    let mut out = Vec::with_capacity((codes.len() * bits as usize).div_ceil(8));
    let (mut acc, mut filled) = (0u32, 0u32);
    for &c in codes {
        acc |= ((c as u8 as u32) & mask) << filled;
        filled += bits;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
    out
}

/// Why unpacking failed: the code index, or the padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnpackError {
    /// The field at this index decodes to `-2^(bits-1)`, outside the range.
    OutOfRange(usize),
    NonZeroPadding,
}

/// Inverse of [`pack_codes`] for `n` symmetric codes; checks range and
/// padding. `packed` must hold `ceil(n * bits / 8)` bytes (the reader
/// checks the region length first); a shorter or longer input is reported
/// as [`UnpackError::NonZeroPadding`].
pub fn unpack_codes(packed: &[u8], bits: Bits, n: usize) -> Result<Vec<i8>, UnpackError> {
    unpack_codes_in(packed, bits, n, CodeRange::Symmetric)
}

/// [`unpack_codes`] for codes of either range: with [`CodeRange::Full`]
/// every field is valid and only the padding can fail.
pub fn unpack_codes_in(
    packed: &[u8],
    bits: Bits,
    n: usize,
    range: CodeRange,
) -> Result<Vec<i8>, UnpackError> {
    let full = range == CodeRange::Full;
    let b = usize::from(bits.0);
    // The stream must be exactly ceil(n * bits / 8) bytes: checked before
    // anything is allocated from `n`.
    let expected = n.checked_mul(b).map(|stream_bits| stream_bits.div_ceil(8));
    if expected != Some(packed.len()) {
        return Err(UnpackError::NonZeroPadding);
    }
    // Eight codes fill exactly `bits` bytes: decode whole groups of eight
    // from one little-endian u64, then the tail field by field.
    let groups = (n / 8).min(packed.len() / b);
    let mut out = vec![0i8; groups * 8];
    // Constant widths let the compiler unroll the eight fields of a group.
    let bad = match b {
        2 => unpack_groups::<2>(packed, &mut out),
        3 => unpack_groups::<3>(packed, &mut out),
        4 => unpack_groups::<4>(packed, &mut out),
        5 => unpack_groups::<5>(packed, &mut out),
        6 => unpack_groups::<6>(packed, &mut out),
        7 => unpack_groups::<7>(packed, &mut out),
        // Bits holds 2..=8 only.
        _ => unpack_groups::<8>(packed, &mut out),
    };
    if bad && !full {
        // Rare: find the first offending field for the report.
        let min = -(1i16 << (b - 1));
        let at = out.iter().position(|&c| c as i16 == min).unwrap_or(0);
        return Err(UnpackError::OutOfRange(at));
    }
    out.reserve_exact(n - groups * 8);
    unpack_tail(
        &packed[groups * b..],
        bits,
        n - groups * 8,
        groups * 8,
        full,
        &mut out,
    )?;
    Ok(out)
}

/// Decodes `out.len() / 8` groups of eight `B`-bit codes from `B` bytes
/// each; returns whether any field was `-2^(B-1)` (out of range).
fn unpack_groups<const B: usize>(packed: &[u8], out: &mut [i8]) -> bool {
    let sign = 1u64 << (B - 1);
    let mut bad = false;
    for (chunk, codes) in packed.chunks_exact(B).zip(out.chunks_exact_mut(8)) {
        let mut word = [0u8; 8];
        word[..B].copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        for (j, code) in codes.iter_mut().enumerate() {
            // Move field j to the top bits, then shift back arithmetically:
            // that sign-extends it.
            let top = v << (64 - B * (j + 1));
            bad |= top >> (64 - B) == sign;
            *code = ((top as i64) >> (64 - B)) as i8;
        }
    }
    bad
}

/// Field-by-field decoding of the last `n` codes (fewer than eight unless
/// the input is short), appending to `out`; `first` is the index of the
/// first of them, for error reports; `full` accepts `-2^(b-1)`.
fn unpack_tail(
    packed: &[u8],
    bits: Bits,
    n: usize,
    first: usize,
    full: bool,
    out: &mut Vec<i8>,
) -> Result<(), UnpackError> {
    let b = u32::from(bits.0);
    let mask = (1u32 << b) - 1;
    let sign = 1u32 << (b - 1);
    let (mut acc, mut filled) = (0u32, 0u32);
    let mut bytes = packed.iter();
    for i in 0..n {
        while filled < b {
            let Some(&byte) = bytes.next() else {
                return Err(UnpackError::NonZeroPadding);
            };
            acc |= (byte as u32) << filled;
            filled += 8;
        }
        let field = acc & mask;
        acc >>= b;
        filled -= b;
        if field == sign && !full {
            return Err(UnpackError::OutOfRange(first + i));
        }
        // Sign-extend the b-bit field.
        let value = if field & sign != 0 {
            field as i32 - (1i32 << b)
        } else {
            field as i32
        };
        out.push(value as i8);
    }
    if acc != 0 || bytes.next().is_some() {
        return Err(UnpackError::NonZeroPadding);
    }
    Ok(())
}

/// Index of the first code outside `[-code_max, code_max]`, if any.
pub fn first_out_of_range(codes: &[i8], bits: Bits) -> Option<usize> {
    first_out_of_range_in(codes, bits, CodeRange::Symmetric)
}

/// [`first_out_of_range`] for either range: the full range adds
/// `-code_max - 1`.
pub fn first_out_of_range_in(codes: &[i8], bits: Bits, range: CodeRange) -> Option<usize> {
    let max = code_max(bits);
    let min = match range {
        CodeRange::Symmetric => -max,
        CodeRange::Full => -max - 1,
    };
    codes.iter().position(|&c| c < min || c > max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(bits: u8) -> Bits {
        Bits::new(bits).unwrap()
    }

    #[test]
    fn int6_packs_four_codes_in_three_bytes_lsb_first() {
        // 1 = 000001, -1 = 111111, 31 = 011111, -31 = 100001
        let packed = pack_codes(&[1, -1, 31, -31], b(6));
        // stream bits: 000001 | 111111 | 011111 | 100001 read LSB first
        // byte0 = bits 0..8 = 1 | (0b11 << 6)           = 0b1100_0001
        // byte1 = bits 8..16 = 0b1111 | (0b1111 << 4)     = 0b1111_1111
        // byte2 = bits 16..24 = 0b01 | (0b100001 << 2)    = 0b1000_0101
        assert_eq!(packed, vec![0b1100_0001, 0b1111_1111, 0b1000_0101]);
        assert_eq!(
            unpack_codes(&packed, b(6), 4).unwrap(),
            vec![1, -1, 31, -31]
        );
    }

    #[test]
    fn int7_packs_eight_codes_in_seven_bytes() {
        let codes: Vec<i8> = vec![-63, 63, 0, 1, -1, 5, -7, 42];
        let packed = pack_codes(&codes, b(7));
        assert_eq!(packed.len(), 7);
        assert_eq!(unpack_codes(&packed, b(7), 8).unwrap(), codes);
    }

    #[test]
    fn every_width_round_trips_every_code_and_partial_tail() {
        for bits in 2..=8u8 {
            let max = code_max(b(bits));
            let codes: Vec<i8> = (-max..=max).chain([0, 1]).collect();
            let packed = pack_codes(&codes, b(bits));
            assert_eq!(packed.len(), (codes.len() * bits as usize).div_ceil(8));
            assert_eq!(
                unpack_codes(&packed, b(bits), codes.len()).unwrap(),
                codes,
                "bits {bits}"
            );
        }
    }

    #[test]
    fn unpack_rejects_the_most_negative_field_and_dirty_padding() {
        // 6-bit field 100000 = -32 is outside [-31, 31].
        assert_eq!(
            unpack_codes(&[0b0010_0000, 0, 0], b(6), 4),
            Err(UnpackError::OutOfRange(0))
        );
        // One 6-bit code in one byte: the top two bits are padding.
        assert_eq!(
            unpack_codes(&[0b0100_0001], b(6), 1),
            Err(UnpackError::NonZeroPadding)
        );
        assert_eq!(unpack_codes(&[0b0000_0001], b(6), 1), Ok(vec![1]));
    }

    #[test]
    fn long_streams_round_trip_through_the_grouped_path() {
        for bits in 2..=7u8 {
            let max = code_max(b(bits)) as i32;
            for n in [8usize, 9, 15, 16, 17, 1000, 1003] {
                let codes: Vec<i8> = (0..n as i32)
                    .map(|i| ((i * 7919) % (2 * max + 1) - max) as i8)
                    .collect();
                let packed = pack_codes(&codes, b(bits));
                assert_eq!(
                    unpack_codes(&packed, b(bits), n).unwrap(),
                    codes,
                    "bits {bits}, n {n}"
                );
            }
            // The out-of-range field is found inside a full group too.
            let mut codes = vec![0i8; 16];
            codes[11] = 1;
            let mut packed = pack_codes(&codes, b(bits));
            let bit = 11 * bits as usize;
            packed[bit / 8] &= !(((1u16 << bits) - 1) << (bit % 8)) as u8;
            let hi = bit + bits as usize - 1;
            packed[hi / 8] |= 1 << (hi % 8);
            assert_eq!(
                unpack_codes(&packed, b(bits), 16),
                Err(UnpackError::OutOfRange(11)),
                "bits {bits}"
            );
        }
    }

    #[test]
    fn planes_round_trip_and_put_low_bytes_first() {
        let bytes = [0x01, 0xA1, 0x02, 0xA2, 0x03, 0xA3];
        let planes = to_planes(&bytes, 2);
        assert_eq!(planes, vec![0x01, 0x02, 0x03, 0xA1, 0xA2, 0xA3]);
        assert_eq!(from_planes(&planes, 2), bytes);
        let four: Vec<u8> = (0..16).collect();
        assert_eq!(from_planes(&to_planes(&four, 4), 4), four);
    }

    #[test]
    fn code_max_is_symmetric_range() {
        assert_eq!(code_max(b(2)), 1);
        assert_eq!(code_max(b(6)), 31);
        assert_eq!(code_max(b(7)), 63);
        assert_eq!(code_max(b(8)), 127);
    }

    #[test]
    fn only_2_to_8_bits_are_widths() {
        for bits in 0..=u8::MAX {
            assert_eq!(Bits::new(bits).is_some(), (2..=8).contains(&bits), "{bits}");
        }
        assert_eq!(b(5).get(), 5);
    }

    /// The whole input space of widths, lengths and stream sizes: no
    /// argument makes unpacking panic or allocate from `n` alone.
    #[test]
    fn unpacking_is_total() {
        let streams: [&[u8]; 4] = [&[], &[0xFF], &[0x55; 7], &[0xAA; 64]];
        for bits in 2..=8 {
            for packed in streams {
                for n in [
                    0,
                    1,
                    7,
                    8,
                    9,
                    63,
                    64,
                    65,
                    1 << 20,
                    usize::MAX / 2,
                    usize::MAX,
                ] {
                    let result = unpack_codes(packed, b(bits), n);
                    if let Ok(codes) = &result {
                        assert_eq!(codes.len(), n);
                        assert_eq!(packed.len(), (n * bits as usize).div_ceil(8));
                    }
                }
            }
        }
        assert_eq!(to_planes(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(from_planes(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(from_planes(&[1, 2, 3], 2), [1, 2, 0]);
    }
}
