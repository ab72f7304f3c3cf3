//! A tensor's rate-distortion curve over its SDClip factor, measured with
//! RTN on a sample of its rows.
//!
//! Why a sample and RTN: the budget search prices dozens of clip factors
//! per tensor, and GPTQ (what most recipes run) costs a factorization and a
//! sweep per try. Rows are quantized independently (GPTQ too: its error
//! feedback runs along a row), so a spread sample of rows gives the code
//! histogram and the error of the whole tensor, scaled by the row ratio.
//! RTN's curve has the shape of GPTQ's; the driver calibrates its level
//! against real GPTQ codes (a sample first, then the whole tensor).

use pgq_format::rate::{code_counts, estimate_code_bytes};

use crate::error::RtnError;
use crate::policy::MatrixPlan;
use crate::rtn::quantize_rtn_with;
use crate::scale::{code_max, fp16_scale, quantize_value, unbiased_std};
use crate::search::ClipChoice;

use super::allocate::Curve;

/// Rows measured per tensor (all rows of a smaller tensor).
pub const SAMPLE_ROWS: usize = 256;
/// The clip factors tried: `k_rule * 2^(step / STEPS_PER_OCTAVE)`.
pub const STEPS_PER_OCTAVE: i32 = 32;
/// From half the rule's k...
pub const LOWEST_STEP: i32 = -32;
/// ...to 2^1.5 (2.83) times it: a looser clip is coarser and smaller.
pub const HIGHEST_STEP: i32 = 48;
/// Steps between two measured factors (the rest interpolated): the curves
/// are smooth in log k, and measuring all 81 would cost 4 times as much.
const MEASURE_EVERY: i32 = 4;

/// The clip factor at `step` from the rule's `k`, rounded to f32 once so
/// that the search, the codes and the provenance agree.
pub fn k_at(k: f32, step: i32) -> f32 {
    (f64::from(k) * 2f64.powf(f64::from(step) / f64::from(STEPS_PER_OCTAVE))) as f32
}

/// The steps of the grid, lowest k first.
pub fn steps() -> impl Iterator<Item = i32> {
    LOWEST_STEP..=HIGHEST_STEP
}

/// Spread rows of a matrix: `rows[i * total / n]` for `n = min(total,
/// SAMPLE_ROWS)`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub values: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    /// The matrix's rows over the sample's: what a sample count or error
    /// is multiplied by.
    pub factor: f64,
}

impl Sample {
    pub fn of(values: &[f32], rows: usize, cols: usize) -> Sample {
        let n = rows.min(SAMPLE_ROWS);
        let mut sample = Vec::with_capacity(n.saturating_mul(cols));
        for i in 0..n {
            let row = i * rows / n;
            sample.extend_from_slice(&values[row * cols..(row + 1) * cols]);
        }
        Sample {
            values: sample,
            rows: n,
            cols,
            factor: if n == 0 { 1.0 } else { rows as f64 / n as f64 },
        }
    }
}

/// The estimated bytes of a whole tensor's codes from a sample's code
/// counts: the histogram scaled by `factor`, priced by the rate model.
fn scaled_rate(counts: &[u64; 256], factor: f64) -> f64 {
    let mut scaled = [0u64; 256];
    for (s, &c) in scaled.iter_mut().zip(counts.iter()) {
        *s = (c as f64 * factor).round() as u64;
    }
    estimate_code_bytes(&scaled)
}

/// Rate and distortion of `plan` applied with RTN to `sample`: estimated
/// code bytes of the whole tensor, and its squared error (weighted by
/// `weights`, the Hessian's diagonal, where given) scaled to the tensor.
pub fn measure(
    sample: &Sample,
    plan: &MatrixPlan,
    weights: Option<&[f64]>,
) -> Result<(f64, f64), RtnError> {
    let (matrix, _) = quantize_rtn_with(
        &sample.values,
        sample.rows,
        sample.cols,
        plan.bits,
        plan.group_size,
        &plan.clip,
        weights,
    )?;
    let cols = sample.cols;
    let width = match plan.group_size {
        0 => cols.max(1),
        g => g as usize,
    };
    let groups = cols.div_ceil(width).max(1);
    let mut error = 0.0f64;
    for (r, (row, codes)) in sample
        .values
        .chunks_exact(cols.max(1))
        .zip(matrix.codes.chunks_exact(cols.max(1)))
        .enumerate()
    {
        for (j, (&x, &q)) in row.iter().zip(codes).enumerate() {
            let scale = matrix.scales[r * groups + j / width].to_f32();
            let e = f64::from(x - f32::from(q) * scale);
            error += weights.map_or(1.0, |w| w[j]) * e * e;
        }
    }
    Ok((
        scaled_rate(&code_counts(&matrix.codes), sample.factor),
        error * sample.factor,
    ))
}

/// `plan` with its SDClip factor replaced by `k`.
pub fn with_k(plan: &MatrixPlan, k: f32) -> MatrixPlan {
    MatrixPlan {
        clip: ClipChoice::SdClip { k },
        ..plan.clone()
    }
}

/// What an SDClip clip needs of each group of a sample, computed once for
/// all factors: `clip = k * std` (the unbiased std, as
/// [`crate::scale::clip_value`] computes it), or a fixed clip for a group
/// of one value (`|x|`) or none (0).
struct Groups {
    width: usize,
    per_row: usize,
    std: Vec<f64>,
    fixed: Vec<Option<f32>>,
}

impl Groups {
    fn of(sample: &Sample, group_size: u32) -> Groups {
        let cols = sample.cols;
        let width = match group_size {
            0 => cols.max(1),
            g => g as usize,
        };
        let per_row = cols.div_ceil(width).max(1);
        let mut std = Vec::with_capacity(sample.rows * per_row);
        let mut fixed = Vec::with_capacity(sample.rows * per_row);
        for r in 0..sample.rows {
            let row = &sample.values[r * cols..(r + 1) * cols];
            for g in 0..per_row {
                let group = &row[(g * width).min(cols)..((g + 1) * width).min(cols)];
                match group {
                    [] => {
                        std.push(0.0);
                        fixed.push(Some(0.0));
                    }
                    [only] => {
                        std.push(0.0);
                        fixed.push(Some(only.abs()));
                    }
                    _ => {
                        std.push(unbiased_std(group));
                        fixed.push(None);
                    }
                }
            }
        }
        Groups {
            width,
            per_row,
            std,
            fixed,
        }
    }
}

/// [`measure`] of an SDClip plan at factor `k`, from precomputed groups:
/// the same scales and codes as RTN computes, without recomputing each
/// group's std per factor. `None` when a scale overflows fp16 (the
/// general path then reports it).
fn measure_sdclip(
    sample: &Sample,
    groups: &Groups,
    bits: u8,
    k: f32,
    weights: Option<&[f64]>,
) -> Option<(f64, f64)> {
    let qmax = code_max(bits).ok()?;
    let cols = sample.cols;
    let mut counts = [0u64; 256];
    let mut error = 0.0f64;
    for r in 0..sample.rows {
        let row = &sample.values[r * cols..(r + 1) * cols];
        for g in 0..groups.per_row {
            let i = r * groups.per_row + g;
            let clip = groups.fixed[i].unwrap_or((f64::from(k) * groups.std[i]) as f32);
            let scale = fp16_scale(clip, qmax)?.to_f32();
            let start = (g * groups.width).min(cols);
            let end = ((g + 1) * groups.width).min(cols);
            for (j, &x) in row[start..end].iter().enumerate() {
                let q = quantize_value(x, scale, qmax);
                counts[q as u8 as usize] += 1;
                let e = f64::from(x - f32::from(q) * scale);
                error += weights.map_or(1.0, |w| w[start + j]) * e * e;
            }
        }
    }
    Some((scaled_rate(&counts, sample.factor), error * sample.factor))
}

/// The curve of an SDClip plan over [`steps`]: measured every
/// `MEASURE_EVERY` steps, interpolated between (log-linear where both ends
/// are positive). Returns the factors and the curve, in step order.
pub fn sdclip_curve(
    sample: &Sample,
    plan: &MatrixPlan,
    k: f32,
    weights: Option<&[f64]>,
) -> Result<(Vec<f32>, Curve), RtnError> {
    let measured: Vec<i32> = steps()
        .filter(|s| (s - LOWEST_STEP) % MEASURE_EVERY == 0 || *s == HIGHEST_STEP)
        .collect();
    let groups = Groups::of(sample, plan.group_size);
    let points = measured
        .iter()
        .map(|&s| {
            let k = k_at(k, s);
            match measure_sdclip(sample, &groups, plan.bits, k, weights) {
                Some(point) => Ok(point),
                None => measure(sample, &with_k(plan, k), weights),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut curve = Curve {
        rate: Vec::new(),
        dist: Vec::new(),
    };
    let mut ks = Vec::new();
    for step in steps() {
        let hi = measured.partition_point(|&m| m < step);
        let (rate, dist) = if measured.get(hi) == Some(&step) {
            points[hi]
        } else {
            let lo = hi - 1;
            let t = f64::from(step - measured[lo]) / f64::from(measured[hi] - measured[lo]);
            (
                interpolate(points[lo].0, points[hi].0, t),
                interpolate(points[lo].1, points[hi].1, t),
            )
        };
        ks.push(k_at(k, step));
        curve.rate.push(rate);
        curve.dist.push(dist);
    }
    Ok((ks, curve))
}

/// Between `a` and `b` at `t` in [0, 1], geometrically where both are
/// positive (rate and error move by factors along log k).
fn interpolate(a: f64, b: f64, t: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        (a.ln() + t * (b.ln() - a.ln())).exp()
    } else {
        a + t * (b - a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Method;
    use crate::rng::Sampler;

    fn plan(k: f32) -> MatrixPlan {
        MatrixPlan {
            method: Method::Rtn,
            bits: 6,
            group_size: 0,
            clip: ClipChoice::SdClip { k },
        }
    }

    fn matrix(rows: usize, cols: usize) -> Vec<f32> {
        let mut rng = Sampler::new(7);
        (0..rows * cols).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn the_grid_spans_half_to_2_83_times_the_rule() {
        assert_eq!(k_at(12.0, 0), 12.0);
        assert_eq!(k_at(12.0, LOWEST_STEP), 6.0);
        assert!((k_at(12.0, HIGHEST_STEP) - 33.94).abs() < 0.01);
        assert_eq!(steps().count(), 81);
    }

    #[test]
    fn a_small_matrix_is_measured_whole_and_a_large_one_sampled() {
        let small = Sample::of(&matrix(10, 4), 10, 4);
        assert_eq!((small.rows, small.factor), (10, 1.0));
        let values = matrix(1024, 8);
        let big = Sample::of(&values, 1024, 8);
        assert_eq!((big.rows, big.factor), (256, 4.0));
        assert_eq!(&big.values[8..16], &values[32..40]);
    }

    #[test]
    fn a_looser_clip_costs_fewer_bytes() {
        let values = matrix(300, 64);
        let sample = Sample::of(&values, 300, 64);
        let (ks, curve) = sdclip_curve(&sample, &plan(12.0), 12.0, None).unwrap();
        assert_eq!(ks.len(), curve.rate.len());
        // Rate falls with k; near the rule's k the error of a Gaussian
        // grows with k (rounding dominates clipping).
        assert!(curve.rate.windows(2).all(|w| w[1] <= w[0] * 1.001));
        assert!(curve.rate[0] > 1.5 * curve.rate[80]);
        assert!(curve.dist[80] > curve.dist[32]);
        // Measured points are exact measurements.
        let direct = measure(&sample, &plan(k_at(12.0, 4)), None).unwrap();
        assert_eq!((curve.rate[36], curve.dist[36]), direct);
    }

    #[test]
    fn the_fast_sdclip_path_equals_rtn() {
        let values = matrix(40, 300);
        let sample = Sample::of(&values, 40, 300);
        let weights: Vec<f64> = (0..300).map(|j| 1.0 + j as f64 / 100.0).collect();
        for group_size in [0, 128, 1] {
            let groups = Groups::of(&sample, group_size);
            for k in [3.0f32, 12.85, 40.0] {
                let mut p = plan(k);
                p.group_size = group_size;
                let fast = measure_sdclip(&sample, &groups, 6, k, Some(&weights)).unwrap();
                let general = measure(&sample, &p, Some(&weights)).unwrap();
                assert_eq!(fast.0, general.0, "{group_size} {k}");
                assert!(
                    (fast.1 - general.1).abs() <= 1e-9 * general.1,
                    "{group_size} {k}"
                );
            }
        }
    }

    #[test]
    fn the_sample_estimate_is_close_to_the_whole_matrix() {
        let values = matrix(2048, 64);
        let sample = Sample::of(&values, 2048, 64);
        let whole = Sample::of(&values, 2048, 64);
        let all = Sample {
            values: values.clone(),
            rows: 2048,
            cols: 64,
            factor: 1.0,
        };
        let (r1, d1) = measure(&whole, &plan(12.0), None).unwrap();
        let (r2, d2) = measure(&all, &plan(12.0), None).unwrap();
        assert!((r1 / r2 - 1.0).abs() < 0.02, "{r1} {r2}");
        assert!((d1 / d2 - 1.0).abs() < 0.05, "{d1} {d2}");
        assert_eq!(sample.rows, 256);
    }
}
