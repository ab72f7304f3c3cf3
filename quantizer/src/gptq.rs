//! GPTQ (Frantar et al. 2022) for one weight matrix, on the CPU, in the
//! variant the field's SDClip records use: scales fixed before the sweep.
//!
//! `W` is `rows x cols` (rows = output features), `H = X^T X / n` is
//! `cols x cols` over the input features. The steps:
//!
//! 1. Dead columns (`H_jj == 0`): `H_jj = 1` and `W[:, j] = 0`.
//! 2. Scales: one fp16 scale per row or per (row, group) from the clip of
//!    the weights the sweep starts from (the original values with dead
//!    columns zeroed), exactly as [`crate::rtn`] would choose them. Groups
//!    are static: group `g` is original columns `[g*G, (g+1)*G)`, whatever
//!    order the sweep visits them in, so the scale a code was made with is
//!    the scale stored for it by construction (seed 001 recomputed group
//!    scales in the permuted order and stored codes and scales that
//!    disagree).
//! 3. Act-order: columns visited by decreasing `H_jj` (stable).
//! 4. Damping `H += damp * mean(diag H) * I`; when the Cholesky
//!    factorization fails, the damping is multiplied by 10 and retried, at
//!    most [`MAX_DAMP_ATTEMPTS`] times.
//! 5. `U`: upper Cholesky factor of `H^-1` (`H^-1 = U^T U`).
//! 6. The sweep, in blocks of `block_size` columns: column `i` is rounded
//!    with its group's scale, its error `(w - q s) / U_ii` is spread over the
//!    block's later columns with row `i` of `U`, and after each block the
//!    accumulated errors update all later columns in one GEMM.
//!
//! Rows are independent given `H`, so the sweep runs on tiles of rows in
//! parallel; the result does not depend on the thread count.
//!
//! `tests/reference/gptq_ref.py` is an independent NumPy implementation;
//! `tests/gptq_parity.rs` checks this one against it.

use faer::{MatMut, MatRef, Par};
use half::f16;
use pgq_format::types::groups_per_row;
use serde::Serialize;

use crate::error::GptqError;
use crate::linalg;
use crate::parallel::{map_largest_first, worker_count};
use crate::rtn::QuantizedMatrix;
use crate::scale::{code_max, fp16_scale, quantize_value};
use crate::search::{choose_scales, ClipChoice, ScaleError};
use pgq_metrics::hessian::{check_matrix, hessian_terms, relative, symmetric_hessian};
pub use pgq_metrics::hessian::{hessian_error, hessian_errors, MatrixError};

/// How many dampings are tried: `damp`, `10 damp`, ... `10^5 damp`.
pub const MAX_DAMP_ATTEMPTS: u32 = 6;

/// The damping tried after `damp` failed: ten times more, or the field's
/// default 0.01 when no damping was asked for.
pub fn next_damp(damp: f64) -> f64 {
    if damp > 0.0 {
        damp * 10.0
    } else {
        0.01
    }
}

/// Rows per parallel work item. Fixed (not derived from the thread count)
/// so that results are identical for every thread count.
const TILE_ROWS: usize = 64;

/// Settings of one GPTQ run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GptqConfig {
    /// Code width, 2..=8.
    pub bits: u8,
    /// Columns per scale group (in the original column order); 0 = one
    /// scale per row.
    pub group_size: u32,
    /// How each scale's clip is chosen, before the sweep (a percentile
    /// search with the Hessian objective weighs columns by `H_jj`).
    pub clip: ClipChoice,
    /// Relative damping: `damp * mean(diag H)` is added to the diagonal.
    pub damp: f64,
    /// Visit columns by decreasing `H_jj`.
    pub act_order: bool,
    /// Columns per block of lazy updates (the reference uses 128).
    pub block_size: usize,
    /// Rate-distortion weight (0 = plain GPTQ): in the sweep, a code may
    /// step one toward zero when that lowers
    /// `(x / s - q)^2 + rdo * bits(q)`, where `bits(q) = -log2 p(q)` under
    /// the histogram of the tensor's round-to-nearest codes at the same
    /// scales; the error feedback then carries the extra error to the
    /// later columns. So `rdo` is the squared code error one bit is worth.
    pub rdo: f64,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
}

impl Default for GptqConfig {
    /// The field's int6 matrix setting: SDClip k 12.85, per-row scales,
    /// damping 0.01, act-order, blocks of 128.
    fn default() -> Self {
        GptqConfig {
            bits: 6,
            group_size: 0,
            clip: ClipChoice::SdClip { k: 12.85 },
            damp: 0.01,
            act_order: true,
            block_size: 128,
            rdo: 0.0,
            threads: 0,
        }
    }
}

impl GptqConfig {
    pub fn validate(&self) -> Result<(), GptqError> {
        code_max(self.bits)?;
        self.clip.validate()?;
        if self.block_size == 0 {
            return Err(GptqError::BlockSize);
        }
        if !(self.damp.is_finite() && self.damp >= 0.0) {
            return Err(GptqError::Damp(self.damp));
        }
        if !(self.rdo.is_finite() && self.rdo >= 0.0) {
            return Err(GptqError::Rdo(self.rdo));
        }
        Ok(())
    }

    /// The method label, e.g. `gptq-sdclip k=12.85 int6 g128 act-order`.
    pub fn describe(&self) -> String {
        let mut label = format!("gptq-{} int{}", self.clip.describe(), self.bits);
        if self.group_size > 0 {
            label.push_str(&format!(" g{}", self.group_size));
        }
        if self.act_order {
            label.push_str(" act-order");
        }
        if self.rdo > 0.0 {
            label.push_str(&format!(" rdo={}", self.rdo));
        }
        label
    }
}

/// Codes, scales and statistics of one GPTQ run.
#[derive(Debug, Clone, PartialEq)]
pub struct GptqResult {
    /// Row-major in the ORIGINAL column order, as [`QuantizedMatrix`].
    pub codes: Vec<i8>,
    /// `scales[row * groups + g]`, group `g` = original columns
    /// `[g*G, (g+1)*G)`.
    pub scales: Vec<f16>,
    /// The relative damping the factorization succeeded with (`config.damp`
    /// unless retries were needed).
    pub damp_used: f64,
    /// Factorizations tried (1 = no retry).
    pub damp_attempts: u32,
    /// `tr(E H E^T) / tr(W H W^T)` with `E = W - Q`, over the original,
    /// undamped Hessian: the share of the layer's output energy lost.
    pub hessian_error: f64,
    /// For a percentile clip search, the candidate each scale uses (same
    /// order as `scales`); empty otherwise.
    pub clip_choices: Vec<u8>,
}

impl GptqResult {
    pub fn into_matrix(self) -> QuantizedMatrix {
        QuantizedMatrix {
            codes: self.codes,
            scales: self.scales,
        }
    }
}

/// Quantizes the `rows x cols` row-major matrix `values` with GPTQ, given
/// the `cols x cols` row-major Hessian `hessian` (`X^T X / n` of the
/// layer's inputs; it is symmetrized as `(H + H^T) / 2`).
pub fn quantize_gptq(
    values: &[f32],
    rows: usize,
    cols: usize,
    hessian: &[f32],
    config: &GptqConfig,
) -> Result<GptqResult, GptqError> {
    run(values, rows, cols, hessian, config, true)
}

/// [`quantize_gptq`]; `hessian_error` is left at NaN unless `measure`
/// (callers that compare several methods measure them together with
/// [`hessian_errors`]).
pub(crate) fn run(
    values: &[f32],
    rows: usize,
    cols: usize,
    hessian: &[f32],
    config: &GptqConfig,
    measure: bool,
) -> Result<GptqResult, GptqError> {
    let prepared = prepare(values, rows, cols, hessian, config, ScaleGroups::Static)?;
    let threads = worker_count(config.threads);
    let (codes, _) = sweep(&prepared, values, threads, false);
    let hessian_error = if !measure {
        f64::NAN
    } else if rows == 0 || cols == 0 {
        0.0
    } else {
        let scales = &prepared.scales_f32;
        let groups = prepared.groups;
        let width = prepared.group_width;
        let sums = hessian_terms(rows, cols, &prepared.h, threads, 2, |row, slots| {
            let src = &values[row * cols..(row + 1) * cols];
            let row_codes = &codes[row * cols..(row + 1) * cols];
            let row_scales = &scales[row * groups..(row + 1) * groups];
            let (w, e) = slots.split_at_mut(cols);
            for c in 0..cols {
                let x = f64::from(src[c]);
                w[c] = x;
                e[c] = x - f64::from(row_codes[c]) * f64::from(row_scales[c / width]);
            }
        });
        relative(sums[1], sums[0])
    };
    Ok(GptqResult {
        codes,
        scales: prepared.scales,
        damp_used: prepared.damp_used,
        damp_attempts: prepared.damp_attempts,
        hessian_error,
        clip_choices: prepared.clip_choices,
    })
}

/// Where group scales come from. Only [`ScaleGroups::Static`] is correct;
/// the other reproduces seed 001's bug for the test that must catch it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ScaleGroups {
    /// Groups of original columns, chosen before the sweep.
    Static,
    /// Groups of sweep positions (permuted columns), stored as if they were
    /// groups of original columns.
    #[cfg(test)]
    PermutedBug,
}

/// Everything the sweep needs, computed once per matrix.
struct Prepared {
    rows: usize,
    cols: usize,
    qmax: i8,
    block_size: usize,
    group_width: usize,
    groups: usize,
    /// Sweep position -> original column.
    perm: Vec<usize>,
    /// Sweep position -> index of its scale within a row's scales.
    scale_index: Vec<usize>,
    /// By original column.
    dead: Vec<bool>,
    scales: Vec<f16>,
    scales_f32: Vec<f32>,
    /// `cols x cols` upper factor of the damped, permuted `H^-1`.
    u: Vec<f64>,
    /// The symmetrized, undamped original Hessian, original order.
    h: Vec<f64>,
    damp_used: f64,
    damp_attempts: u32,
    clip_choices: Vec<u8>,
    /// The rate-distortion weight, and `bits(q)` indexed by `q + qmax`
    /// (empty when `rdo` is 0).
    rdo: f64,
    rate_bits: Vec<f64>,
}

fn prepare(
    values: &[f32],
    rows: usize,
    cols: usize,
    hessian: &[f32],
    config: &GptqConfig,
    groups_from: ScaleGroups,
) -> Result<Prepared, GptqError> {
    config.validate()?;
    let qmax = code_max(config.bits)?;
    check_matrix(values, rows, cols)?;
    let h = symmetric_hessian(hessian, cols)?;
    let n = cols;

    // 1. Dead columns.
    let dead: Vec<bool> = (0..n).map(|j| h[j * n + j] == 0.0).collect();
    let diag: Vec<f64> = (0..n)
        .map(|j| if dead[j] { 1.0 } else { h[j * n + j] })
        .collect();

    // 3. Act-order (stable: ties keep the original order).
    let mut perm: Vec<usize> = (0..n).collect();
    if config.act_order {
        perm.sort_by(|&a, &b| diag[b].total_cmp(&diag[a]));
    }

    let mut clip_choices = Vec::new();
    // 2. Scales, from the weights the sweep starts from: the original
    // values with dead columns zeroed. Static groups read original columns;
    // the bug variant reads sweep positions.
    let groups = groups_per_row(n as u64, config.group_size) as usize;
    let group_width = match config.group_size {
        0 => n.max(1),
        g => g as usize,
    };
    let column = |pos: usize| match groups_from {
        ScaleGroups::Static => pos,
        #[cfg(test)]
        ScaleGroups::PermutedBug => perm[pos],
    };
    let mut start = vec![0.0f32; rows * n];
    for (row, dst) in start.chunks_exact_mut(n.max(1)).enumerate().take(rows) {
        let src = &values[row * n..(row + 1) * n];
        for (pos, slot) in dst.iter_mut().enumerate() {
            let col = column(pos);
            *slot = if dead[col] { 0.0 } else { src[col] };
        }
    }
    // The Hessian objective weighs column j by the undamped H_jj (0 for
    // dead columns, whose values are zero anyway).
    let weights: Vec<f64> = (0..n).map(|pos| h[column(pos) * n + column(pos)]).collect();
    let scales = if n == 0 {
        // No values, but per-row layouts still store one scale per row.
        let floor = fp16_scale(0.0, qmax).unwrap_or(f16::MIN_POSITIVE_SUBNORMAL);
        vec![floor; rows * groups]
    } else {
        let chosen = choose_scales(&start, n, group_width, qmax, &config.clip, Some(&weights))
            .map_err(|e| match e {
                ScaleError::Overflow { row, group, scale } => {
                    GptqError::ScaleOverflow { row, group, scale }
                }
                // Unreachable: the weights are given.
                ScaleError::NeedsHessian => {
                    GptqError::Matrix(MatrixError::HessianShape { len: 0, cols: n })
                }
            })?;
        clip_choices = chosen.choices;
        chosen.scales
    };
    let scales_f32: Vec<f32> = scales.iter().map(|s| s.to_f32()).collect();
    let rate_bits = if config.rdo > 0.0 {
        rate_bits(&start, n, &scales_f32, groups, group_width, qmax)
    } else {
        Vec::new()
    };
    let scale_index: Vec<usize> = (0..n)
        .map(|pos| match groups_from {
            ScaleGroups::Static => perm[pos] / group_width,
            #[cfg(test)]
            ScaleGroups::PermutedBug => pos / group_width,
        })
        .collect();

    // 4-5. Damping with retries, and the upper factor of H^-1.
    let threads = worker_count(config.threads);
    let par = linalg::par(threads);
    // H with dead columns fixed, in sweep order (rows gathered through perm).
    let mut permuted = vec![0.0f64; n * n];
    for (p, &i) in perm.iter().enumerate() {
        let src = &h[i * n..(i + 1) * n];
        let dst = &mut permuted[p * n..(p + 1) * n];
        for (slot, &j) in dst.iter_mut().zip(&perm) {
            *slot = src[j];
        }
        dst[p] = diag[i];
    }
    let mean_diag = if n == 0 {
        0.0
    } else {
        diag.iter().sum::<f64>() / n as f64
    };
    let mut damp = config.damp;
    let mut attempts = 0;
    let u = loop {
        attempts += 1;
        let mut damped = permuted.clone();
        let add = damp * mean_diag;
        for p in 0..n {
            damped[p * n + p] += add;
        }
        if let Some(u) = linalg::upper_cholesky_of_inverse(damped, n, par) {
            break u;
        }
        if attempts >= MAX_DAMP_ATTEMPTS {
            return Err(GptqError::NotPositiveDefinite { attempts, damp });
        }
        damp = next_damp(damp);
    };

    Ok(Prepared {
        rows,
        cols,
        qmax,
        block_size: config.block_size,
        group_width,
        groups,
        perm,
        scale_index,
        dead,
        scales,
        scales_f32,
        u,
        h,
        damp_used: damp,
        damp_attempts: attempts,
        clip_choices,
        rdo: config.rdo,
        rate_bits,
    })
}

/// `bits(q) = -log2 p(q)` for `q` in `-qmax..=qmax` (index `q + qmax`),
/// `p(q) = (count(q) + 1/2) / (N + L/2)` over the round-to-nearest codes of
/// `start` (`rows x n`, the values the scales were chosen from) at those
/// scales, with `L = 2 qmax + 1` codes: the rate model of rate-distortion
/// GPTQ, a smoothed order-0 entropy, which is close to what the rANS coder
/// spends per code (pgq_format::rate).
fn rate_bits(
    start: &[f32],
    n: usize,
    scales: &[f32],
    groups: usize,
    group_width: usize,
    qmax: i8,
) -> Vec<f64> {
    let levels = 2 * qmax as usize + 1;
    let mut counts = vec![0u64; levels];
    for (row, values) in start.chunks_exact(n.max(1)).enumerate() {
        for (c, &x) in values.iter().enumerate() {
            let q = quantize_value(x, scales[row * groups + c / group_width], qmax);
            counts[(q as i32 + qmax as i32) as usize] += 1;
        }
    }
    let total = counts.iter().sum::<u64>() as f64 + levels as f64 / 2.0;
    counts
        .iter()
        .map(|&c| total.log2() - (c as f64 + 0.5).log2())
        .collect()
}

/// Runs the sweep over all rows; returns the codes in the original column
/// order and, when `record`, the values committed to (`code * scale`, in
/// f64), also in the original order.
fn sweep(p: &Prepared, values: &[f32], threads: usize, record: bool) -> (Vec<i8>, Vec<f64>) {
    let tiles: Vec<usize> = (0..p.rows).step_by(TILE_ROWS).collect();
    let parts = map_largest_first(
        &tiles,
        threads,
        |_| 1,
        |&r0| sweep_tile(p, values, r0, (r0 + TILE_ROWS).min(p.rows), record),
        |_, _| {},
    );
    let mut codes = Vec::with_capacity(p.rows * p.cols);
    let mut committed = Vec::new();
    for (c, v) in parts {
        codes.extend_from_slice(&c);
        committed.extend_from_slice(&v);
    }
    (codes, committed)
}

/// GPTQ for rows `r0..r1`.
fn sweep_tile(
    p: &Prepared,
    values: &[f32],
    r0: usize,
    r1: usize,
    record: bool,
) -> (Vec<i8>, Vec<f64>) {
    let n = p.cols;
    let tr = r1 - r0;
    // The tile's weights in sweep order, dead columns zeroed.
    let mut w = vec![0.0f64; tr * n];
    for (r, row) in w.chunks_exact_mut(n.max(1)).enumerate().take(tr) {
        let src = &values[(r0 + r) * n..(r0 + r + 1) * n];
        for (slot, &col) in row.iter_mut().zip(&p.perm) {
            *slot = if p.dead[col] {
                0.0
            } else {
                f64::from(src[col])
            };
        }
    }
    let mut codes = vec![0i8; tr * n];
    let mut committed = if record {
        vec![0.0f64; tr * n]
    } else {
        Vec::new()
    };
    let block = p.block_size.min(n).max(1);
    let mut errors = vec![0.0f64; tr * block];
    let u = &p.u;

    let mut b0 = 0;
    while b0 < n {
        let b1 = (b0 + block).min(n);
        let bw = b1 - b0;
        for r in 0..tr {
            let row = &mut w[r * n..(r + 1) * n];
            let row_scales = &p.scales_f32[(r0 + r) * p.groups..(r0 + r + 1) * p.groups];
            let row_errors = &mut errors[r * bw..(r + 1) * bw];
            for i in b0..b1 {
                let x = row[i];
                let scale = row_scales[p.scale_index[i]];
                let mut q = quantize_value(x as f32, scale, p.qmax);
                if p.rdo > 0.0 && q != 0 {
                    // One step toward zero, if the bits it saves are worth
                    // more than the squared code error it adds.
                    let t = f64::from(x as f32 / scale);
                    let toward = q - q.signum();
                    let cost = |c: i8| {
                        let e = t - f64::from(c);
                        e * e + p.rdo * p.rate_bits[(c as i32 + p.qmax as i32) as usize]
                    };
                    if cost(toward) < cost(q) {
                        q = toward;
                    }
                }
                let value = f64::from(q) * f64::from(scale);
                let err = (x - value) / u[i * n + i];
                let col = p.perm[i];
                codes[r * n + col] = q;
                if record {
                    committed[r * n + col] = value;
                }
                row_errors[i - b0] = err;
                let u_row = &u[i * n + i + 1..i * n + b1];
                for (wv, &uv) in row[i + 1..b1].iter_mut().zip(u_row) {
                    *wv -= err * uv;
                }
            }
        }
        if b1 < n {
            // Lazy update of the later columns: W[:, b1..] -= Err U[b0..b1, b1..].
            let dst = MatMut::from_row_major_slice_mut(&mut w, tr, n).subcols_mut(b1, n - b1);
            let lhs = MatRef::from_row_major_slice(&errors[..tr * bw], tr, bw);
            let rhs = MatRef::from_row_major_slice(u, n, n).submatrix(b0, b1, bw, n - b1);
            linalg::sub_matmul(dst, lhs, rhs, Par::Seq);
        }
        b0 = b1;
    }
    (codes, committed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtn::{quantize_rtn, RtnConfig};
    use crate::scale::Clip;
    use pgq_format::dequantize_codes;

    /// Deterministic pseudo-random numbers (SplitMix64) for test inputs.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Roughly normal: sum of 4 uniforms, centred and scaled.
        fn normal(&mut self) -> f64 {
            ((0..4).map(|_| self.next()).sum::<f64>() - 2.0) * 3f64.sqrt()
        }
    }

    /// `H = X^T X / n` for `n` samples of correlated activations: a shared
    /// latent factor mixed into every column, plus per-column noise of
    /// varying scale. Columns listed in `dead` are always 0.
    fn correlated_hessian(cols: usize, samples: usize, dead: &[usize], seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        let factors = 4;
        let mix: Vec<f64> = (0..factors * cols).map(|_| rng.normal()).collect();
        let col_scale: Vec<f64> = (0..cols).map(|j| 0.5 + (j % 7) as f64 * 0.3).collect();
        let mut h = vec![0.0f64; cols * cols];
        let mut x = vec![0.0f64; cols];
        for _ in 0..samples {
            let z: Vec<f64> = (0..factors).map(|_| rng.normal()).collect();
            for j in 0..cols {
                let shared: f64 = (0..factors).map(|f| z[f] * mix[f * cols + j]).sum();
                x[j] = if dead.contains(&j) {
                    0.0
                } else {
                    col_scale[j] * (shared + 0.3 * rng.normal())
                };
            }
            for i in 0..cols {
                for j in 0..cols {
                    h[i * cols + j] += x[i] * x[j];
                }
            }
        }
        h.iter().map(|&v| (v / samples as f64) as f32).collect()
    }

    fn weights(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        (0..rows * cols)
            .map(|_| (rng.normal() * 0.02 * if rng.next() < 0.01 { 6.0 } else { 1.0 }) as f32)
            .collect()
    }

    fn config(bits: u8, group_size: u32, clip: Clip, act_order: bool) -> GptqConfig {
        GptqConfig {
            bits,
            group_size,
            clip: clip.into(),
            act_order,
            block_size: 16,
            ..GptqConfig::default()
        }
    }

    #[test]
    fn gptq_beats_rtn_on_a_correlated_hessian() {
        let (rows, cols) = (24, 48);
        let w = weights(rows, cols, 1);
        let h = correlated_hessian(cols, 4 * cols, &[], 2);
        for (bits, group, clip, act) in [
            (4, 0, Clip::SdClip { k: 3.0 }, true),
            (6, 0, Clip::SdClip { k: 12.85 }, true),
            (4, 16, Clip::Absmax, false),
            (8, 0, Clip::Absmax, false),
        ] {
            let cfg = config(bits, group, clip, act);
            let g = quantize_gptq(&w, rows, cols, &h, &cfg).unwrap();
            let rtn = quantize_rtn(
                &w,
                rows,
                cols,
                &RtnConfig {
                    bits,
                    group_size: group,
                    clip,
                },
            )
            .unwrap();
            // Same scales: GPTQ only moves codes.
            assert_eq!(g.scales, rtn.scales);
            let rtn_deq = dequantize_codes(&rtn.codes, &rtn.scales, cols, group);
            let rtn_err = hessian_error(&w, &rtn_deq, rows, cols, &h).unwrap();
            let gptq_deq = dequantize_codes(&g.codes, &g.scales, cols, group);
            let recomputed = hessian_error(&w, &gptq_deq, rows, cols, &h).unwrap();
            assert!((recomputed - g.hessian_error).abs() <= 1e-9 * recomputed.max(1e-30));
            assert!(
                g.hessian_error < 0.8 * rtn_err,
                "{}: gptq {} vs rtn {}",
                cfg.describe(),
                g.hessian_error,
                rtn_err
            );
            assert_eq!(g.damp_attempts, 1);
            assert_eq!(g.damp_used, 0.01);
        }
    }

    #[test]
    fn dead_columns_get_code_zero() {
        let (rows, cols) = (10, 32);
        let w = weights(rows, cols, 3);
        let dead = [0, 5, 31];
        let h = correlated_hessian(cols, 128, &dead, 4);
        for act in [false, true] {
            let g = quantize_gptq(&w, rows, cols, &h, &config(6, 8, Clip::Absmax, act)).unwrap();
            for r in 0..rows {
                for &j in &dead {
                    assert_eq!(g.codes[r * cols + j], 0, "row {r} col {j}");
                }
            }
            // The live columns were quantized.
            assert!(g.codes.iter().any(|&c| c.abs() > 5));
        }
    }

    #[test]
    fn scales_ignore_dead_columns() {
        // A huge weight in a dead column must not inflate its group's scale.
        let (rows, cols) = (1, 4);
        let w = [100.0, 1.0, -0.5, 0.25];
        let mut h = vec![0.0f32; 16];
        for j in 1..4 {
            h[j * 4 + j] = 1.0;
        }
        let g = quantize_gptq(&w, rows, cols, &h, &config(8, 0, Clip::Absmax, true)).unwrap();
        assert_eq!(g.scales, vec![f16::from_f32(1.0 / 127.0)]);
        assert_eq!(&g.codes, &[0, 127, -64, 32]);
    }

    #[test]
    fn identity_and_diagonal_hessians_give_rtn_exactly() {
        // A diagonal H gives a diagonal U: no error is propagated, so every
        // code is RTN's. The varying diagonal makes act-order permute.
        let (rows, cols) = (70, 40);
        let w = weights(rows, cols, 5);
        let mut identity = vec![0.0f32; cols * cols];
        let mut diagonal = vec![0.0f32; cols * cols];
        for j in 0..cols {
            identity[j * cols + j] = 1.0;
            diagonal[j * cols + j] = 0.1 + ((j * 17) % 13) as f32;
        }
        for h in [&identity, &diagonal] {
            for (group, clip) in [
                (0, Clip::SdClip { k: 12.85 }),
                (8, Clip::Absmax),
                (7, Clip::SdClip { k: 3.0 }),
            ] {
                for act in [false, true] {
                    let g = quantize_gptq(&w, rows, cols, h, &config(6, group, clip, act)).unwrap();
                    let rtn = quantize_rtn(
                        &w,
                        rows,
                        cols,
                        &RtnConfig {
                            bits: 6,
                            group_size: group,
                            clip,
                        },
                    )
                    .unwrap();
                    assert_eq!(g.codes, rtn.codes);
                    assert_eq!(g.scales, rtn.scales);
                }
            }
        }
    }

    #[test]
    fn indefinite_hessian_is_retried_with_more_damping() {
        let cols = 16;
        let rows = 4;
        let w = weights(rows, cols, 6);
        // H = I - c 11^T / cols: eigenvalues 1 (x15) and 1 - c = -0.5 along
        // the all-ones direction; mean diagonal 1 - c / 16 = 0.906. Damping
        // must exceed 0.5 / 0.906 = 0.55: 0.01 and 0.1 fail, 1.0 succeeds.
        let c = 1.5f32;
        let mut h = vec![0.0f32; cols * cols];
        for i in 0..cols {
            for j in 0..cols {
                h[i * cols + j] = if i == j { 1.0 } else { 0.0 } - c / cols as f32;
            }
        }
        let g = quantize_gptq(&w, rows, cols, &h, &config(6, 0, Clip::Absmax, true)).unwrap();
        assert_eq!(g.damp_attempts, 3);
        assert!((g.damp_used - 1.0).abs() < 1e-12, "{}", g.damp_used);

        // Too few attempts to get there: a typed error.
        let h_bad: Vec<f32> = h
            .iter()
            .enumerate()
            .map(|(k, &v)| if k % (cols + 1) == 0 { v } else { v * 1e6 })
            .collect();
        // Hugely negative off-diagonals make the matrix hopelessly indefinite.
        assert!(matches!(
            quantize_gptq(&w, rows, cols, &h_bad, &config(6, 0, Clip::Absmax, true)),
            Err(GptqError::NotPositiveDefinite {
                attempts: MAX_DAMP_ATTEMPTS,
                ..
            })
        ));
    }

    /// Seed 001's bug: group scales recomputed over the permuted columns but
    /// stored as if for original columns. Dequantizing the stored codes with
    /// the stored scales must give exactly the values the sweep committed to
    /// (and whose errors it propagated); the buggy variant must not.
    #[test]
    fn stored_group_scales_are_the_ones_the_codes_were_made_with() {
        let (rows, cols, group) = (12, 64, 16u32);
        let w = weights(rows, cols, 7);
        let h = correlated_hessian(cols, 256, &[9], 8);
        let cfg = config(6, group, Clip::SdClip { k: 4.0 }, true);

        let fine = prepare(&w, rows, cols, &h, &cfg, ScaleGroups::Static).unwrap();
        assert!(
            fine.perm.iter().enumerate().any(|(p, &c)| p / 16 != c / 16),
            "act-order must move columns across groups for the test to bite"
        );
        let (codes, committed) = sweep(&fine, &w, 2, true);
        let decoded = dequantize_codes(&codes, &fine.scales, cols, group);
        for (k, (&d, &c)) in decoded.iter().zip(&committed).enumerate() {
            assert_eq!(f64::from(d), c, "element {k}");
        }
        // And the public entry point returns the same codes and scales.
        let public = quantize_gptq(&w, rows, cols, &h, &cfg).unwrap();
        assert_eq!(public.codes, codes);
        assert_eq!(public.scales, fine.scales);

        let buggy = prepare(&w, rows, cols, &h, &cfg, ScaleGroups::PermutedBug).unwrap();
        let (codes, committed) = sweep(&buggy, &w, 2, true);
        let decoded = dequantize_codes(&codes, &buggy.scales, cols, group);
        let mismatches = decoded
            .iter()
            .zip(&committed)
            .filter(|(&d, &c)| f64::from(d) != c)
            .count();
        assert!(
            mismatches > rows * cols / 4,
            "the permuted-groups bug must be detected ({mismatches} mismatches)"
        );
    }

    #[test]
    fn results_do_not_depend_on_threads_or_block_size_reorders() {
        let (rows, cols) = (150, 40);
        let w = weights(rows, cols, 9);
        let h = correlated_hessian(cols, 160, &[3], 10);
        let base = config(6, 8, Clip::SdClip { k: 12.85 }, true);
        let one = quantize_gptq(
            &w,
            rows,
            cols,
            &h,
            &GptqConfig {
                threads: 1,
                ..base.clone()
            },
        )
        .unwrap();
        let two = quantize_gptq(
            &w,
            rows,
            cols,
            &h,
            &GptqConfig {
                threads: 2,
                ..base.clone()
            },
        )
        .unwrap();
        let four = quantize_gptq(
            &w,
            rows,
            cols,
            &h,
            &GptqConfig {
                threads: 4,
                ..base.clone()
            },
        )
        .unwrap();
        assert_eq!(one, two);
        assert_eq!(one, four);
        // Block size only changes the order of the same updates: codes agree
        // up to rare half-step ties.
        for block in [1, 7, 40, 1000] {
            let other = quantize_gptq(
                &w,
                rows,
                cols,
                &h,
                &GptqConfig {
                    block_size: block,
                    ..base.clone()
                },
            )
            .unwrap();
            let same = other
                .codes
                .iter()
                .zip(&one.codes)
                .filter(|(a, b)| a == b)
                .count();
            assert!(
                same * 1000 >= 999 * one.codes.len(),
                "block {block}: {same}"
            );
            assert_eq!(other.scales, one.scales);
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let h1 = [1.0f32];
        let cfg = GptqConfig::default();
        assert!(matches!(
            quantize_gptq(&[1.0, 2.0], 1, 2, &h1, &cfg),
            Err(GptqError::Matrix(MatrixError::HessianShape {
                len: 1,
                cols: 2
            }))
        ));
        assert!(matches!(
            quantize_gptq(&[1.0, 2.0, 3.0], 2, 2, &[1.0; 4], &cfg),
            Err(GptqError::Matrix(MatrixError::Shape { .. }))
        ));
        assert!(matches!(
            quantize_gptq(&[1.0; 4], usize::MAX, 2, &[1.0; 4], &cfg),
            Err(GptqError::Matrix(MatrixError::Shape { .. }))
        ));
        assert!(matches!(
            quantize_gptq(&[1.0, f32::NAN], 1, 2, &[1.0, 0.0, 0.0, 1.0], &cfg),
            Err(GptqError::Matrix(MatrixError::NonFinite {
                row: 0,
                col: 1,
                ..
            }))
        ));
        assert!(matches!(
            quantize_gptq(&[1.0, 2.0], 1, 2, &[1.0, f32::INFINITY, 0.0, 1.0], &cfg),
            Err(GptqError::Matrix(MatrixError::HessianNonFinite {
                row: 0,
                col: 1,
                ..
            }))
        ));
        assert!(matches!(
            quantize_gptq(&[1.0, 2.0], 1, 2, &[1.0, 0.0, 0.0, -1.0], &cfg),
            Err(GptqError::Matrix(MatrixError::HessianNegativeDiagonal {
                col: 1,
                ..
            }))
        ));
        assert!(matches!(
            quantize_gptq(&[3.0e38, 1.0], 1, 2, &[1.0, 0.0, 0.0, 1.0], &cfg),
            Err(GptqError::ScaleOverflow {
                row: 0,
                group: 0,
                ..
            })
        ));
        for bad in [
            GptqConfig {
                bits: 9,
                ..cfg.clone()
            },
            GptqConfig {
                bits: 1,
                ..cfg.clone()
            },
            GptqConfig {
                clip: Clip::SdClip { k: -1.0 }.into(),
                ..cfg
            },
        ] {
            assert!(matches!(
                quantize_gptq(&[1.0], 1, 1, &h1, &bad),
                Err(GptqError::Config(_))
            ));
        }
        assert_eq!(
            quantize_gptq(
                &[1.0],
                1,
                1,
                &h1,
                &GptqConfig {
                    block_size: 0,
                    ..cfg.clone()
                }
            ),
            Err(GptqError::BlockSize)
        );
        for damp in [-0.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                quantize_gptq(
                    &[1.0],
                    1,
                    1,
                    &h1,
                    &GptqConfig {
                        damp,
                        ..cfg.clone()
                    }
                ),
                Err(GptqError::Damp(_))
            ));
        }
    }

    #[test]
    fn empty_matrices_keep_the_scale_layout() {
        let g = quantize_gptq(&[], 3, 0, &[], &GptqConfig::default()).unwrap();
        assert!(g.codes.is_empty());
        assert_eq!(g.scales.len(), 3);
        assert_eq!(g.hessian_error, 0.0);
        let g = quantize_gptq(&[], 0, 2, &[1.0, 0.0, 0.0, 1.0], &GptqConfig::default()).unwrap();
        assert!(g.codes.is_empty() && g.scales.is_empty());
    }

    #[test]
    fn zero_damping_is_allowed_and_falls_back_when_needed() {
        let (rows, cols) = (4, 8);
        let w = weights(rows, cols, 11);
        // Rank-deficient PSD: two identical columns.
        let mut h = vec![0.0f32; cols * cols];
        for j in 0..cols {
            h[j * cols + j] = 1.0;
        }
        h[1] = 1.0; // [0][1]
        h[cols] = 1.0; // [1][0]
        let cfg = GptqConfig {
            damp: 0.0,
            ..config(6, 0, Clip::Absmax, false)
        };
        let g = quantize_gptq(&w, rows, cols, &h, &cfg).unwrap();
        assert_eq!(g.damp_attempts, 2);
        assert_eq!(g.damp_used, 0.01);
        assert_eq!(next_damp(0.0), 0.01);
        assert_eq!(next_damp(0.01), 0.1);
    }

    #[test]
    fn describe_names_the_method() {
        assert_eq!(
            GptqConfig::default().describe(),
            "gptq-sdclip k=12.85 int6 act-order"
        );
        assert_eq!(
            config(8, 128, Clip::Absmax, false).describe(),
            "gptq-absmax int8 g128"
        );
    }

    /// Rate-distortion GPTQ: rdo = 0 is plain GPTQ bit for bit; above 0
    /// the codes' order-0 entropy falls as rdo grows, the Hessian-weighted
    /// error rises, the scales stay; a negative or NaN weight is refused.
    #[test]
    fn rate_distortion_trades_code_entropy_for_error() {
        let (rows, cols) = (64, 96);
        let w = weights(rows, cols, 7);
        let h = correlated_hessian(cols, 400, &[], 8);
        let run = |rdo: f64| {
            let cfg = GptqConfig {
                rdo,
                ..config(6, 0, Clip::SdClip { k: 12.85 }, true)
            };
            quantize_gptq(&w, rows, cols, &h, &cfg).unwrap()
        };
        let entropy = |codes: &[i8]| {
            let mut counts = [0f64; 256];
            for &c in codes {
                counts[c as u8 as usize] += 1.0;
            }
            let n = codes.len() as f64;
            counts
                .iter()
                .filter(|&&c| c > 0.0)
                .map(|&c| -c / n * (c / n).log2())
                .sum::<f64>()
        };
        let plain = run(0.0);
        assert_eq!(
            plain,
            quantize_gptq(
                &w,
                rows,
                cols,
                &h,
                &config(6, 0, Clip::SdClip { k: 12.85 }, true)
            )
            .unwrap()
        );
        let mut last = entropy(&plain.codes);
        for rdo in [0.1, 0.4, 1.6] {
            let r = run(rdo);
            let e = entropy(&r.codes);
            assert!(e < last, "rdo {rdo}: entropy {e} not below {last}");
            assert!(r.hessian_error > plain.hessian_error, "rdo {rdo}");
            assert_eq!(
                r.scales, plain.scales,
                "the scales are chosen before the sweep"
            );
            last = e;
        }
        for bad in [-0.5, f64::NAN] {
            let cfg = GptqConfig {
                rdo: bad,
                ..config(6, 0, Clip::SdClip { k: 12.85 }, true)
            };
            assert!(matches!(
                quantize_gptq(&w, rows, cols, &h, &cfg),
                Err(GptqError::Rdo(_))
            ));
        }
    }
}
