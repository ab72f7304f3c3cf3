//! Property tests of pgq-format's public arithmetic (issue 12): the
//! functions a caller can reach with any value its types allow never panic
//! and never allocate from a claimed length. Inputs are drawn at random
//! across every magnitude (SplitMix64, fixed seed), edge values included.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pgq_format::half::{bf16, f16};
use pgq_format::pack::{
    code_max, first_out_of_range, from_planes, pack_codes, to_planes, unpack_codes, Bits,
};
use pgq_format::types::rows_cols;
use pgq_format::{dequantize_codes, Tensor, TensorData};

#[path = "support/rng.rs"]
mod rng;

struct Rng(rng::SplitMix64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    /// A value of random magnitude: 0, 1, small, near a power of two, or
    /// near u64::MAX.
    fn wide(&mut self) -> u64 {
        match self.next() % 6 {
            0 => 0,
            1 => 1 + self.next() % 16,
            2 => self.next() % 5000,
            3 => (1u64 << (self.next() % 64))
                .wrapping_add(self.next() % 3)
                .wrapping_sub(1),
            4 => u64::MAX - self.next() % 4,
            _ => self.next(),
        }
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() % (max as u64 + 1)) as usize;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn total<T>(what: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what} panicked"))
}

#[test]
fn packing_functions_are_total_over_every_width_and_length() {
    let mut rng = Rng(rng::SplitMix64(0x7071_0001));
    for raw in 0..=u8::MAX {
        match Bits::new(raw) {
            Some(bits) => assert!(code_max(bits) > 0 && bits.get() == raw),
            None => assert!(!(2..=8).contains(&raw)),
        }
    }
    let mut unpacked = 0;
    for case in 0..200_000 {
        let bits = Bits::new(2 + (rng.next() % 7) as u8).expect("2..=8");
        let packed = rng.bytes(96);
        // Half the time a length the stream could hold, else any length.
        let n = if rng.next() % 2 == 0 {
            (packed.len() * 8 / bits.get() as usize).saturating_sub((rng.next() % 2) as usize)
        } else {
            rng.wide() as usize
        };
        let result = total(&format!("unpack_codes case {case}"), || {
            unpack_codes(&packed, bits, n)
        });
        if let Ok(codes) = result {
            unpacked += 1;
            assert_eq!(codes.len(), n);
            assert!(first_out_of_range(&codes, bits).is_none());
            assert_eq!(pack_codes(&codes, bits), packed, "case {case}");
        }
        let codes: Vec<i8> = rng.bytes(64).into_iter().map(|b| b as i8).collect();
        let packed = total("pack_codes", || pack_codes(&codes, bits));
        assert_eq!(
            packed.len(),
            (codes.len() * bits.get() as usize).div_ceil(8)
        );
        total("first_out_of_range", || first_out_of_range(&codes, bits));
        let width = (rng.next() % 6) as usize;
        let bytes = rng.bytes(40);
        total("planes", || from_planes(&to_planes(&bytes, width), width));
    }
    // Some random streams are whole, valid code streams: the round trip
    // above was exercised, not skipped.
    assert!(unpacked > 2000, "{unpacked} streams unpacked");
}

#[test]
fn shape_arithmetic_and_dequantization_are_total_over_any_tensor() {
    let mut rng = Rng(rng::SplitMix64(0x7071_0002));
    for case in 0..100_000 {
        let rank = (rng.next() % 9) as usize;
        let shape: Vec<u64> = (0..rank).map(|_| rng.wide()).collect();
        let len = (rng.next() % 40) as usize;
        let data = match rng.next() % 4 {
            0 => TensorData::F32(
                (0..len)
                    .map(|_| f32::from_bits(rng.next() as u32))
                    .collect(),
            ),
            1 => TensorData::F16(
                (0..len)
                    .map(|_| f16::from_bits(rng.next() as u16))
                    .collect(),
            ),
            2 => TensorData::Bf16(
                (0..len)
                    .map(|_| bf16::from_bits(rng.next() as u16))
                    .collect(),
            ),
            _ => TensorData::Quantized {
                bits: rng.next() as u8,
                group_size: rng.wide() as u32,
                codes: (0..len).map(|_| rng.next() as i8).collect(),
                scales: (0..rng.next() % 8)
                    .map(|_| f16::from_bits(rng.next() as u16))
                    .collect(),
                correction: None,
            },
        };
        let t = Tensor {
            name: "t".into(),
            shape: shape.clone(),
            data,
        };
        let elements = total(&format!("elements case {case}"), || t.elements());
        let exact = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        assert_eq!(elements, exact.unwrap_or(u64::MAX), "{shape:?}");
        total("rows_cols", || rows_cols(&shape));
        let values = total(&format!("dequantize case {case}: {shape:?}"), || {
            t.dequantize()
        });
        assert!(
            values.len() <= len,
            "dequantize made {} values of {len}",
            values.len()
        );
        let cols = rng.wide() as usize;
        let group = rng.wide() as u32;
        let codes: Vec<i8> = rng.bytes(32).into_iter().map(|b| b as i8).collect();
        let scales: Vec<f16> = (0..rng.next() % 6)
            .map(|_| f16::from_bits(rng.next() as u16))
            .collect();
        let out = total("dequantize_codes", || {
            dequantize_codes(&codes, &scales, cols, group)
        });
        assert!(out.len() <= codes.len());
    }
}
