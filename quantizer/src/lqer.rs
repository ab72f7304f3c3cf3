//! LQER: a low-rank correction of the quantization error of a model's worst
//! tensors, as the parameter-golf records since 2026-04-27 store it (record
//! #1797; #1935 found top-k 4, rank 6 best: -0.00088 BPB for 40-50 KB).
//!
//! After every tensor has its codes, the `top_k` quantized matrices with the
//! largest error `||W - Q·s||_F` (plain Frobenius norm, as the records rank
//! them; ties by file order) each get the best rank-`rank` approximation of
//! their error `E = W - Q·s` (a thin SVD in f64: `A = U_r S_r`,
//! `B = V_r^T`), quantized asymmetrically as the records do:
//!
//! - `A`: one fp16 scale for the whole factor, `s = max|A| / (2^b - 1) * 2`
//!   (`max|A| / 1.5` for int2), codes `clamp(round(A / s), -2^(b-1),
//!   2^(b-1) - 1)` in the full range (`-2..=1` for int2);
//! - `B`: one fp16 scale per `b_group` consecutive elements of the flattened
//!   factor (`max|group| / 7.5` for int4), codes in the full range
//!   (`-8..=7`).
//!
//! When `b_group` does not divide `rank x cols`, both factors take the
//! record's symmetric form instead (`_lqer_pack`): `b_bits` codes in the
//! symmetric range, one scale per row, `max|row| / (2^(b-1) - 1)`. A matrix
//! smaller than `rank` in a dimension is ranked too and takes the rank it
//! has room for (`min(rank, rows, cols)`), as the record does.
//!
//! Scales are computed in f32 from `max(max|x|, 1e-10)`, rounded to fp16
//! (nearest even); codes round half to even from `f32(x) / f32(scale)`, like
//! `torch.round`. A scale that rounds to fp16 zero gives zero codes. The
//! correction is stored in the container as a kind-4 tensor (spec/FORMAT.md
//! §4.8), decoded `W = Q·s + A·B` in the order of §6.8.
//!
//! The independent reference is `tests/reference/lqer_ref.py` (NumPy's SVD;
//! the parity test is `tests/lqer_parity.rs`).

use half::f16;
use pgq_format::{CodeRange, Factor, LowRank, Tensor, TensorData};
use pgq_metrics::SourceTensor;
use serde::Serialize;

use crate::linalg::truncated_svd;

/// The records' configuration (2026-04-27's log: rank 4, top 3, A int2, B
/// int4 in groups of 64).
pub const DEFAULT_LQER: LqerConfig = LqerConfig {
    top_k: 3,
    rank: 4,
    a_bits: 2,
    b_bits: 4,
    b_group: 64,
};

/// Which tensors get a correction, and how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LqerConfig {
    /// How many tensors, by largest quantization error.
    pub top_k: u32,
    /// The rank of each correction (1..=256).
    pub rank: u32,
    /// Bits of `A`'s codes (full range, one scale).
    pub a_bits: u8,
    /// Bits of `B`'s codes (full range, groups of `b_group`).
    pub b_bits: u8,
    /// Consecutive elements of the flattened `B` per scale.
    pub b_group: u32,
}

impl LqerConfig {
    /// `lqer top_k=3 rank=4 A int2 B int4 g64`, for `pgq.recipe`.
    pub fn describe(&self) -> String {
        format!(
            "lqer top_k={} rank={} A int{} B int{} g{}",
            self.top_k, self.rank, self.a_bits, self.b_bits, self.b_group
        )
    }
}

/// One corrected tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LqerReport {
    pub tensor: String,
    pub rank: u32,
    /// `||W - Q·s||_F` before the correction.
    pub error_before: f64,
    /// `||W - (Q·s + A·B)||_F` with the stored (quantized) factors.
    pub error_after: f64,
    /// The group of `B`'s scales actually used.
    pub b_group: u32,
}

/// Why a correction could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LqerError {
    #[error("LQER: the SVD of {tensor:?}'s error did not converge")]
    Svd { tensor: String },
}

/// The tensors that can take a correction: quantized matrices (rank-2
/// shapes, no correction yet), with their source and error norm, in file
/// order.
fn candidates(sources: &[SourceTensor], tensors: &[Tensor]) -> Vec<(usize, usize, f64)> {
    tensors
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let TensorData::Quantized {
                correction: None, ..
            } = &t.data
            else {
                return None;
            };
            let [_, _] = t.shape[..] else {
                return None;
            };
            let source = sources.iter().position(|s| s.name == t.name)?;
            let error = residual(&sources[source].values, &t.dequantize());
            let norm = error
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>();
            Some((i, source, norm.sqrt()))
        })
        .collect()
}

/// `w - q` in f32, as the records compute it.
fn residual(w: &[f32], q: &[f32]) -> Vec<f32> {
    w.iter().zip(q).map(|(&w, &q)| w - q).collect()
}

/// Adds a correction to the `top_k` tensors of `tensors` (the quantized
/// model, in file order) whose quantization error against `sources` is
/// largest. Deterministic: one thread per SVD, whatever the machine.
pub fn apply(
    config: &LqerConfig,
    sources: &[SourceTensor],
    tensors: &mut [Tensor],
) -> Result<Vec<LqerReport>, LqerError> {
    let mut ranked = candidates(sources, tensors);
    // Largest error first; the sort is stable, so ties keep file order.
    ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
    ranked.truncate(config.top_k as usize);
    // Reports in file order.
    ranked.sort_by_key(|c| c.0);
    let mut reports = Vec::with_capacity(ranked.len());
    for (index, source, error_before) in ranked {
        let tensor = &mut tensors[index];
        let (rows, cols) = (tensor.shape[0] as usize, tensor.shape[1] as usize);
        let w = &sources[source].values;
        let error: Vec<f64> = residual(w, &tensor.dequantize())
            .into_iter()
            .map(f64::from)
            .collect();
        // The record's r = min(rank, S.numel()).
        let rank = (config.rank as usize).min(rows).min(cols);
        let (a, b) = truncated_svd(&error, rows, cols, rank).ok_or_else(|| LqerError::Svd {
            tensor: tensor.name.clone(),
        })?;
        let a: Vec<f32> = a.into_iter().map(|x| x as f32).collect();
        let b: Vec<f32> = b.into_iter().map(|x| x as f32).collect();
        let grouped = (rank * cols) % config.b_group as usize == 0;
        let (a, b, b_group) = if grouped {
            (
                quantize_factor(&a, config.a_bits, a.len() as u32),
                quantize_factor(&b, config.b_bits, config.b_group),
                config.b_group,
            )
        } else {
            (
                quantize_rows(&a, config.b_bits, rank),
                quantize_rows(&b, config.b_bits, cols),
                cols as u32,
            )
        };
        let correction = LowRank {
            rank: rank as u32,
            a,
            b,
        };
        if let TensorData::Quantized { correction: c, .. } = &mut tensor.data {
            *c = Some(correction);
        }
        let after = residual(w, &tensor.dequantize());
        reports.push(LqerReport {
            tensor: tensor.name.clone(),
            rank: rank as u32,
            error_before,
            error_after: after
                .iter()
                .map(|&x| f64::from(x) * f64::from(x))
                .sum::<f64>()
                .sqrt(),
            b_group,
        });
    }
    Ok(reports)
}

/// A factor in the full `bits`-bit range with one fp16 scale per `group`
/// consecutive values: `s = max|group| / ((2^bits - 1) / 2)` (the record's
/// `_lqer_pack_asym`).
pub fn quantize_factor(values: &[f32], bits: u8, group: u32) -> Factor {
    // 1.5 for int2, 7.5 for int4: the records' divisors.
    let half_span = ((1u32 << bits) - 1) as f32 / 2.0;
    quantize_groups(values, bits, CodeRange::Full, half_span, group)
}

/// A factor in the symmetric `bits`-bit range with one fp16 scale per row
/// of `row` values, `s = max|row| / (2^(bits-1) - 1)` (the record's
/// `_lqer_pack`).
pub fn quantize_rows(values: &[f32], bits: u8, row: usize) -> Factor {
    let top = ((1u32 << (bits - 1)) - 1) as f32;
    quantize_groups(values, bits, CodeRange::Symmetric, top, row as u32)
}

/// Codes `clamp(round(x / s))` to the `bits`-bit `range`, with
/// `s = fp16(max(max|g|, 1e-10) / divisor)` per group `g` of `group`
/// consecutive values.
fn quantize_groups(values: &[f32], bits: u8, range: CodeRange, divisor: f32, group: u32) -> Factor {
    let top = (1i32 << (bits - 1)) - 1;
    let bottom = match range {
        CodeRange::Symmetric => -top,
        CodeRange::Full => -top - 1,
    };
    let group_len = (group as usize).max(1);
    let mut codes = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(values.len() / group_len);
    for chunk in values.chunks(group_len) {
        let peak = chunk.iter().fold(0f32, |m, &x| m.max(x.abs())).max(1e-10);
        let scale = f16::from_f32(peak / divisor);
        let s = scale.to_f32();
        codes.extend(chunk.iter().map(|&x| {
            if s == 0.0 {
                0
            } else {
                ((x / s).round_ties_even() as i32).clamp(bottom, top) as i8
            }
        }));
        scales.push(scale);
    }
    Factor {
        bits,
        range,
        group,
        codes,
        scales,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, rows: u64, cols: u64, seed: u32) -> SourceTensor {
        let values = (0..rows * cols)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        SourceTensor {
            name: name.into(),
            shape: vec![rows, cols],
            values,
        }
    }

    /// Coarse int3 codes of a source, one scale per row.
    fn coarse(s: &SourceTensor) -> Tensor {
        let rows = s.shape[0] as usize;
        let scales = vec![f16::from_f32(1.0 / 3.0); rows];
        let codes = s
            .values
            .iter()
            .map(|&x| (x * 3.0).round().clamp(-3.0, 3.0) as i8)
            .collect();
        Tensor {
            name: s.name.clone(),
            shape: s.shape.clone(),
            data: TensorData::Quantized {
                bits: 3,
                group_size: 0,
                codes,
                scales,
                correction: None,
            },
        }
    }

    #[test]
    fn the_records_int2_and_int4_factors() {
        let f = quantize_factor(&[0.3, -0.3, 0.1, -0.2], 2, 4);
        // s = fp16(0.3 / 1.5) = 0.19995: 0.3 / s = 1.5004 rounds to 2,
        // clamped to 1 (the full range is -2..=1); -1.5004 rounds to -2;
        // 0.1 / s = 0.5001 rounds to 1.
        assert_eq!(f.scales, [f16::from_f32(0.2)]);
        assert_eq!(f.codes, [1, -2, 1, -1]);
        // Groups of 2: s = fp16(8 / 7.5) = 1.0664 (7.5 / s = 7.03, -8 / s =
        // -7.502), then fp16(1 / 7.5) = 0.1333 (1 / s = 7.5018, clamped).
        let f = quantize_factor(&[7.5, -8.0, 1.0, 0.0], 4, 2);
        assert_eq!(
            f.scales,
            [f16::from_f32(8.0 / 7.5), f16::from_f32(1.0 / 7.5)]
        );
        assert_eq!(f.codes, [7, -8, 7, 0]);
        let zero = quantize_factor(&[0.0; 3], 4, 3);
        assert_eq!(zero.codes, [0, 0, 0]);
    }

    #[test]
    fn the_largest_errors_are_corrected_and_their_error_falls() {
        let sources = vec![
            source("small", 8, 64, 1),
            source("a", 32, 64, 2),
            source("b", 64, 32, 3),
            source("thin", 2, 64, 4),
        ];
        let mut tensors: Vec<Tensor> = sources.iter().map(coarse).collect();
        let config = LqerConfig {
            top_k: 2,
            ..DEFAULT_LQER
        };
        let reports = apply(&config, &sources, &mut tensors).unwrap();
        let names: Vec<&str> = reports.iter().map(|r| r.tensor.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        for r in &reports {
            assert!(r.error_after < r.error_before, "{r:?}");
        }
        assert_eq!(tensors[1].data.kind(), pgq_format::Kind::LowRank);
        assert_eq!(tensors[0].data.kind(), pgq_format::Kind::Quantized);
        // The file holds what was reported: written, read, decoded.
        let bytes = pgq_format::write(&tensors, &Default::default(), &Default::default()).unwrap();
        let back = pgq_format::read(&bytes, &Default::default()).unwrap();
        assert_eq!(back.tensors, tensors);
        // Deterministic.
        let mut again: Vec<Tensor> = sources.iter().map(coarse).collect();
        assert_eq!(apply(&config, &sources, &mut again).unwrap(), reports);
        assert_eq!(again, tensors);
    }
}
