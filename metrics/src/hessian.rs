//! The output-space proxy `tr(E H E^T) / tr(W H W^T)`: how much of a
//! layer's output energy a quantized matrix loses, given the Hessian
//! `H = X^T X / n` of its inputs. GPTQ minimises it; the quantizer's report
//! and `pgq verify --hessians` measure it. Also the checks every matrix and
//! Hessian pass first.
//!
//! With the `faer` feature (default) the sums are tiled matrix products; the
//! browser viewer, which never measures Hessians, builds without it and
//! gets a plain loop with the same results up to rounding.

#[cfg(feature = "faer")]
use faer::{MatMut, MatRef, Par};

use crate::parallel::{map_largest_first, worker_count};

/// Rows per parallel tile of [`hessian_terms`].
const TILE_ROWS: usize = 64;

/// Why a matrix or its Hessian cannot be measured.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatrixError {
    #[error("{values} values do not form a {rows}x{cols} matrix")]
    Shape {
        values: usize,
        rows: usize,
        cols: usize,
    },
    #[error("element [{row}, {col}] is {value}: NaN and infinities cannot be quantized")]
    NonFinite { row: usize, col: usize, value: f32 },
    #[error("the Hessian holds {len} values, but {cols} columns need {cols}x{cols}")]
    HessianShape { len: usize, cols: usize },
    #[error("Hessian element [{row}, {col}] is {value}: the Hessian must be finite")]
    HessianNonFinite { row: usize, col: usize, value: f32 },
    #[error("Hessian diagonal element {col} is {value}: X^T X has no negative diagonal")]
    HessianNegativeDiagonal { col: usize, value: f32 },
}

/// The first NaN or infinity of a row-major matrix of `cols` columns, as
/// `(row, col, value)`.
pub fn first_non_finite(values: &[f32], cols: usize) -> Option<(usize, usize, f32)> {
    let cols = cols.max(1);
    values
        .iter()
        .position(|x| !x.is_finite())
        .map(|i| (i / cols, i % cols, values[i]))
}

/// `tr(E H E^T) / tr(W H W^T)` with `E = original - dequantized`, both
/// `rows x cols` row-major, over the `cols x cols` Hessian (symmetrized):
/// the measure GPTQ minimises, for comparing methods on one matrix.
pub fn hessian_error(
    original: &[f32],
    dequantized: &[f32],
    rows: usize,
    cols: usize,
    hessian: &[f32],
) -> Result<f64, MatrixError> {
    hessian_errors(original, &[dequantized], rows, cols, hessian, 0).map(|errors| errors[0])
}

/// [`hessian_error`] of several approximations of one matrix, in one pass
/// that computes `tr(W H W^T)` once, on `threads` workers (0 = one per
/// core).
pub fn hessian_errors(
    original: &[f32],
    approximations: &[&[f32]],
    rows: usize,
    cols: usize,
    hessian: &[f32],
    threads: usize,
) -> Result<Vec<f64>, MatrixError> {
    check_matrix(original, rows, cols)?;
    for v in approximations {
        check_matrix(v, rows, cols)?;
    }
    let h = symmetric_hessian(hessian, cols)?;
    let stack = 1 + approximations.len();
    let sums = hessian_terms(
        rows,
        cols,
        &h,
        worker_count(threads),
        stack,
        |row, slots| {
            let range = row * cols..(row + 1) * cols;
            let (w, errors) = slots.split_at_mut(cols);
            for (slot, &x) in w.iter_mut().zip(&original[range.clone()]) {
                *slot = f64::from(x);
            }
            for (e, approx) in errors.chunks_exact_mut(cols).zip(approximations) {
                for ((slot, &x), &q) in e
                    .iter_mut()
                    .zip(&original[range.clone()])
                    .zip(&approx[range.clone()])
                {
                    *slot = f64::from(x) - f64::from(q);
                }
            }
        },
    );
    Ok(sums[1..]
        .iter()
        .map(|&num| relative(num, sums[0]))
        .collect())
}

pub fn relative(num: f64, den: f64) -> f64 {
    if den != 0.0 {
        num / den
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

pub fn check_matrix(values: &[f32], rows: usize, cols: usize) -> Result<(), MatrixError> {
    if rows.checked_mul(cols) != Some(values.len()) {
        return Err(MatrixError::Shape {
            values: values.len(),
            rows,
            cols,
        });
    }
    if let Some((row, col, value)) = first_non_finite(values, cols) {
        return Err(MatrixError::NonFinite { row, col, value });
    }
    Ok(())
}

/// Validates the Hessian and returns `(H + H^T) / 2` in f64.
pub fn symmetric_hessian(hessian: &[f32], cols: usize) -> Result<Vec<f64>, MatrixError> {
    if cols.checked_mul(cols) != Some(hessian.len()) {
        return Err(MatrixError::HessianShape {
            len: hessian.len(),
            cols,
        });
    }
    if let Some((row, col, value)) = first_non_finite(hessian, cols) {
        return Err(MatrixError::HessianNonFinite { row, col, value });
    }
    if let Some(col) = (0..cols).find(|&j| hessian[j * cols + j] < 0.0) {
        return Err(MatrixError::HessianNegativeDiagonal {
            col,
            value: hessian[col * cols + col],
        });
    }
    let mut h = vec![0.0f64; hessian.len()];
    // Blocked so that the transposed reads stay in cache.
    const B: usize = 64;
    for i0 in (0..cols).step_by(B) {
        for j0 in (0..cols).step_by(B) {
            for i in i0..(i0 + B).min(cols) {
                for j in j0..(j0 + B).min(cols) {
                    h[i * cols + j] =
                        (f64::from(hessian[i * cols + j]) + f64::from(hessian[j * cols + i])) / 2.0;
                }
            }
        }
    }
    Ok(h)
}

/// `tr(S_k H S_k^T)` for `stack` matrices `S_0 .. S_{stack-1}`, where
/// `fill(row, slots)` writes row `row` of each into
/// `slots[k * cols..(k + 1) * cols]`; tiles of rows in parallel, summed in
/// tile order (so the result does not depend on the thread count). With
/// the `faer` feature each tile is one matrix product, else a plain loop.
pub fn hessian_terms<F>(
    rows: usize,
    cols: usize,
    h: &[f64],
    threads: usize,
    stack: usize,
    fill: F,
) -> Vec<f64>
where
    F: Fn(usize, &mut [f64]) + Sync,
{
    #[cfg(feature = "faer")]
    let tile = |r0: usize, end: usize| tile_product(r0, end, cols, h, stack, &fill);
    #[cfg(not(feature = "faer"))]
    let tile = |r0: usize, end: usize| tile_plain(r0, end, cols, h, stack, &fill);
    tiled_sums(rows, cols, threads, stack, tile)
}

/// Runs `tile(first row, end row)` over tiles of [`TILE_ROWS`] rows in
/// parallel and adds their sums in tile order.
fn tiled_sums<T>(rows: usize, cols: usize, threads: usize, stack: usize, tile: T) -> Vec<f64>
where
    T: Fn(usize, usize) -> Vec<f64> + Sync,
{
    let mut total = vec![0.0f64; stack];
    if rows == 0 || cols == 0 {
        return total;
    }
    let tiles: Vec<usize> = (0..rows).step_by(TILE_ROWS).collect();
    let parts = map_largest_first(
        &tiles,
        threads,
        |_| 1,
        |&r0| tile(r0, (r0 + TILE_ROWS).min(rows)),
        |_, _| {},
    );
    for part in parts {
        for (t, p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}

/// One tile's sums as one matrix product.
#[cfg(feature = "faer")]
fn tile_product<F>(
    r0: usize,
    end: usize,
    cols: usize,
    h: &[f64],
    stack: usize,
    fill: &F,
) -> Vec<f64>
where
    F: Fn(usize, &mut [f64]),
{
    let tr = end - r0;
    // Column r * stack + k of the column-major `stacked` is row r of S_k.
    let mut stacked = vec![0.0f64; stack * tr * cols];
    for (r, slots) in stacked.chunks_exact_mut(stack * cols).enumerate() {
        fill(r0 + r, slots);
    }
    // (S H)^T = H S^T (H symmetric): column j of the product is row j of
    // S H, contiguous like row j of S.
    let st = MatRef::from_column_major_slice(&stacked, cols, stack * tr);
    let mut product = vec![0.0f64; stack * tr * cols];
    faer::linalg::matmul::matmul(
        MatMut::from_column_major_slice_mut(&mut product, cols, stack * tr),
        faer::Accum::Replace,
        MatRef::from_row_major_slice(h, cols, cols),
        st,
        1.0,
        Par::Seq,
    );
    let mut sums = vec![0.0f64; stack];
    for (j, (p, x)) in product
        .chunks_exact(cols)
        .zip(stacked.chunks_exact(cols))
        .enumerate()
    {
        sums[j % stack] += p.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
    }
    sums
}

/// One tile's sums row by row: `s^T H s` for each row `s` of each `S_k`.
#[cfg_attr(feature = "faer", allow(dead_code))]
fn tile_plain<F>(r0: usize, end: usize, cols: usize, h: &[f64], stack: usize, fill: &F) -> Vec<f64>
where
    F: Fn(usize, &mut [f64]),
{
    let mut sums = vec![0.0f64; stack];
    let mut slots = vec![0.0f64; stack * cols];
    for row in r0..end {
        fill(row, &mut slots);
        for (k, s) in slots.chunks_exact(cols).enumerate() {
            let mut total = 0.0;
            for (i, &si) in s.iter().enumerate() {
                let hi = &h[i * cols..(i + 1) * cols];
                total += si * hi.iter().zip(s).map(|(a, b)| a * b).sum::<f64>();
            }
            sums[k] += total;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_loop_agrees_with_the_kernel_and_with_the_definition() {
        let (rows, cols) = (150, 37);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f64 / (1u64 << 31) as f64) - 1.0
        };
        let w: Vec<f32> = (0..rows * cols).map(|_| next() as f32).collect();
        let q: Vec<f32> = w.iter().map(|x| (x * 8.0).round() / 8.0).collect();
        let x: Vec<f64> = (0..cols * 64).map(|_| next()).collect();
        let mut h = vec![0.0f32; cols * cols];
        for i in 0..cols {
            for j in 0..cols {
                h[i * cols + j] = (0..64)
                    .map(|t| x[t * cols + i] * x[t * cols + j])
                    .sum::<f64>() as f32
                    / 64.0;
            }
        }
        let got = hessian_error(&w, &q, rows, cols, &h).unwrap();
        // The definition, directly.
        let hs = symmetric_hessian(&h, cols).unwrap();
        let quad = |m: &dyn Fn(usize, usize) -> f64| -> f64 {
            (0..rows)
                .map(|r| {
                    (0..cols)
                        .map(|i| {
                            (0..cols)
                                .map(|j| m(r, i) * hs[i * cols + j] * m(r, j))
                                .sum::<f64>()
                        })
                        .sum::<f64>()
                })
                .sum()
        };
        let e = |r: usize, c: usize| f64::from(w[r * cols + c]) - f64::from(q[r * cols + c]);
        let wv = |r: usize, c: usize| f64::from(w[r * cols + c]);
        let want = quad(&e) / quad(&wv);
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1e-30),
            "{got} vs {want}"
        );
        let fill = |row: usize, slots: &mut [f64]| {
            for c in 0..cols {
                slots[c] = wv(row, c);
                slots[cols + c] = e(row, c);
            }
        };
        let plain = tiled_sums(rows, cols, 2, 2, |r0, end| {
            tile_plain(r0, end, cols, &hs, 2, &fill)
        });
        let kernel = hessian_terms(rows, cols, &hs, 2, 2, fill);
        for (a, b) in plain.iter().zip(&kernel) {
            assert!((a - b).abs() <= 1e-12 * a.abs(), "{a} vs {b}");
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let w = [1.0f32, 2.0, 3.0, 4.0];
        let h = [1.0f32, 0.0, 0.0, 1.0];
        assert!(matches!(
            hessian_error(&w, &w, 3, 2, &h),
            Err(MatrixError::Shape { .. })
        ));
        assert!(matches!(
            hessian_error(&w, &w, 2, 2, &h[..3]),
            Err(MatrixError::HessianShape { .. })
        ));
        let nan = [1.0f32, f32::NAN, 3.0, 4.0];
        assert!(matches!(
            hessian_error(&nan, &w, 2, 2, &h),
            Err(MatrixError::NonFinite { row: 0, col: 1, .. })
        ));
        let neg = [-1.0f32, 0.0, 0.0, 1.0];
        assert!(matches!(
            hessian_error(&w, &w, 2, 2, &neg),
            Err(MatrixError::HessianNegativeDiagonal { col: 0, .. })
        ));
        assert_eq!(hessian_error(&w, &w, 2, 2, &h), Ok(0.0));
    }
}
