//! The rate model: what a tensor's codes cost in bytes under pgq's rANS
//! coder, exactly and as a fast estimate.
//!
//! Participants fit their artifacts under the cap by hand because the size
//! of a general compressor's output is only known after running it ("raw
//! bit-bytes are not brotli bytes"). With static tables the cost of a code
//! is `-log2 p` bits, so a search over quantization choices (clip factors,
//! bit widths) can price each candidate from its histogram alone, and check
//! the winner exactly.

use crate::rans::{encode, lanes_for, Part, FIXED_LEN};
use crate::rans_model::{ideal_bytes, segment_bytes, table_bytes, Counts};

/// The bytes of the rANS stream that holds `codes` alone (a section of one
/// region, as `--codec rans` with a section per tensor writes it): fixed
/// fields, tables, maps, lane states and words. `cols` is the row length
/// of a matrix (0 for anything else), which lets the coder give runs of
/// rows and classes of columns tables of their own.
pub fn code_bytes(codes: &[i8], cols: usize) -> u64 {
    if codes.is_empty() {
        return 0;
    }
    let data: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
    let part = Part {
        len: data.len(),
        cols,
    };
    encode(&data, &[part], lanes_for(data.len())).len() as u64
}

/// Counts of each code, indexed by the code's byte (`code as u8`).
pub fn code_counts(codes: &[i8]) -> Counts {
    let mut counts = [0u64; 256];
    for &c in codes {
        counts[c as u8 as usize] += 1;
    }
    counts
}

/// A fast estimate of [`code_bytes`] from the codes' counts alone: their
/// ideal size under one table of their own, plus that table, one segment
/// and the stream's fixed fields and lane states. It prices one table per
/// tensor, so it is an upper estimate for a matrix whose runs or column
/// classes pay (the exact size is then smaller), and within 0.1% of
/// [`code_bytes`] for codes that one table fits (tested).
pub fn estimate_code_bytes(counts: &Counts) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    ideal_bytes(counts)
        + table_bytes(counts)
        + segment_bytes(1)
        + FIXED_LEN as f64
        + 4.0 * lanes_for(total as usize) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        read_header, summarize, write, Compression, Grouping, ReadOptions, Tensor, TensorData,
        WriteOptions,
    };
    use half::f16;
    use std::collections::BTreeMap;

    /// Rounded Gaussian codes of `spread` (Box-Muller over a fixed LCG),
    /// clamped to the 6-bit range.
    fn gaussian_codes(n: usize, spread: f64, seed: u64) -> Vec<i8> {
        let mut x = seed;
        let mut uniform = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform(), uniform());
                let g = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
                (g * spread).round().clamp(-31.0, 31.0) as i8
            })
            .collect()
    }

    #[test]
    fn the_exact_size_is_what_the_writer_stores() {
        let shapes = [(256u64, 384u64, 4.0), (64, 64, 9.0), (3, 5, 2.0)];
        let tensors: Vec<Tensor> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(rows, cols, spread))| Tensor {
                name: format!("w{i}"),
                shape: vec![rows, cols],
                data: TensorData::Quantized {
                    bits: 6,
                    group_size: 0,
                    codes: gaussian_codes((rows * cols) as usize, spread, i as u64 + 1),
                    scales: vec![f16::from_f32(0.01); rows as usize],
                    correction: None,
                },
            })
            .collect();
        let mut options = WriteOptions::with_compression(Compression::Rans);
        options.grouping = Grouping::PerTensor;
        let file = write(&tensors, &BTreeMap::new(), &options).unwrap();
        let summary = summarize(&read_header(&file, &ReadOptions::default()).unwrap());
        // Per tensor, its codes then its scales in one section.
        for (t, section) in tensors.iter().zip(&summary.sections) {
            let TensorData::Quantized { codes, scales, .. } = &t.data else {
                unreachable!()
            };
            let cols = t.shape[1] as usize;
            // The section holds the codes and the scale planes; code the
            // same two parts to compare like with like.
            let mut data: Vec<u8> = codes.iter().map(|&c| c as u8).collect();
            let scale_bytes: Vec<u8> = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
            data.extend(crate::pack::to_planes(&scale_bytes, 2));
            let parts = [
                Part {
                    len: codes.len(),
                    cols,
                },
                Part {
                    len: scale_bytes.len(),
                    cols: 0,
                },
            ];
            let stored = encode(&data, &parts, lanes_for(data.len())).len() as u64;
            assert_eq!(stored, section.stored_bytes, "{}", t.name);
        }
        // And code_bytes is that stream for the codes alone.
        let TensorData::Quantized { codes, .. } = &tensors[0].data else {
            unreachable!()
        };
        let alone = encode(
            &codes.iter().map(|&c| c as u8).collect::<Vec<_>>(),
            &[Part {
                len: codes.len(),
                cols: 384,
            }],
            lanes_for(codes.len()),
        );
        assert_eq!(code_bytes(codes, 384), alone.len() as u64);
        assert_eq!(code_bytes(&[], 0), 0);
    }

    #[test]
    fn the_estimate_is_within_a_tenth_of_a_percent_where_one_table_fits() {
        for (n, spread) in [(1usize << 16, 3.0), (1 << 18, 6.0), (1 << 20, 11.0)] {
            let codes = gaussian_codes(n, spread, n as u64);
            let exact = code_bytes(&codes, 0) as f64;
            let estimate = estimate_code_bytes(&code_counts(&codes));
            assert!(
                (estimate - exact).abs() <= exact * 1e-3,
                "{n} codes of spread {spread}: estimate {estimate:.0}, exact {exact}"
            );
        }
        assert_eq!(estimate_code_bytes(&[0; 256]), 0.0);
    }

    #[test]
    fn a_wider_clip_costs_fewer_bytes() {
        // The same weights with a coarser step (a wider clip for the same
        // bits, fewer levels used) code smaller: the search relies on it.
        let fine = gaussian_codes(1 << 16, 8.0, 7);
        let coarse: Vec<i8> = fine.iter().map(|&c| c / 2).collect();
        assert!(
            estimate_code_bytes(&code_counts(&coarse)) < estimate_code_bytes(&code_counts(&fine))
        );
        assert!(code_bytes(&coarse, 256) < code_bytes(&fine, 256));
    }
}
