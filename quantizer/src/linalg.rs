//! The few dense linear-algebra kernels GPTQ needs, as thin wrappers over
//! faer: the upper Cholesky factor of `H^-1`, and `C -= A B`.
//!
//! Matrices cross this boundary as row-major `f64` slices so that the
//! sweep in [`crate::gptq`] can walk rows contiguously.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, MatMut, MatRef, Par};

/// The parallelism of faer calls for `threads` workers (1 = sequential;
/// always sequential on wasm32, which has no threads).
pub fn par(threads: usize) -> Par {
    #[cfg(not(target_arch = "wasm32"))]
    if threads > 1 {
        return Par::rayon(threads);
    }
    let _ = threads;
    Par::Seq
}

/// The upper triangular `U` with positive diagonal and `H^-1 = U^T U`, for
/// the symmetric `n x n` matrix `h` (row-major; it is consumed as scratch).
/// Returns `None` when `h` is not numerically positive definite.
///
/// Rather than inverting `H` and factoring the inverse (two `n^3/3`
/// factorizations plus an `n^3` inverse), this uses the reversal `J`
/// (`J_ij = [i + j = n - 1]`): with `J H J = M M^T` (lower `M`),
/// `H = V V^T` for the upper `V = J M J`, so `H^-1 = V^-T V^-1` and, by the
/// uniqueness of the Cholesky factor, `U = V^-1 = J M^-1 J`. One factorization
/// and one triangular inverse. In a flat row-major buffer, `J A J` is the
/// buffer reversed, so no index juggling is needed.
pub fn upper_cholesky_of_inverse(mut h: Vec<f64>, n: usize, par: Par) -> Option<Vec<f64>> {
    debug_assert_eq!(h.len(), n * n);
    if n == 0 {
        return Some(Vec::new());
    }
    // J H J. Symmetric, so its row-major and column-major views coincide.
    h.reverse();
    let mut m = MatMut::from_column_major_slice_mut(&mut h, n, n);
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
    let stack = MemStack::new(&mut mem);
    cholesky_in_place(
        m.rb_mut(),
        Default::default(),
        par,
        stack,
        Default::default(),
    )
    .ok()?;
    if (0..n).any(|i| {
        let d = m[(i, i)];
        !(d.is_finite() && d > 0.0)
    }) {
        return None;
    }
    // cholesky_in_place leaves the strict upper triangle as it was; the
    // inverse reads only the lower one. Writing M^-1 through a row-major
    // view and reversing the buffer gives U = J M^-1 J row-major.
    let mut u = vec![0.0f64; n * n];
    invert_lower_triangular(MatMut::from_row_major_slice_mut(&mut u, n, n), m.rb(), par);
    u.reverse();
    // The inverse writes only the lower triangle of M^-1, so U's strict
    // lower triangle keeps its zeros; clear it anyway, cheaply, so that U is
    // exactly triangular whatever faer does with the other half.
    for i in 1..n {
        u[i * n..i * n + i].fill(0.0);
    }
    if u.iter().any(|v| !v.is_finite()) {
        return None;
    }
    Some(u)
}

/// The best rank-`rank` factors of the `rows x cols` matrix `e` (row-major):
/// `A = U_r S_r` (`rows x rank`, row-major) and `B = V_r^T` (`rank x cols`),
/// from a thin SVD on one thread (deterministic). Each singular pair's
/// sign is fixed so that the largest-magnitude entry of its row of `B` (the
/// first, among equals) is positive: SVD leaves it free, and the NumPy
/// reference fixes it the same way. `None` if the SVD does not converge or
/// `rank` exceeds `min(rows, cols)`.
pub fn truncated_svd(
    e: &[f64],
    rows: usize,
    cols: usize,
    rank: usize,
) -> Option<(Vec<f64>, Vec<f64>)> {
    use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
    let size = rows.min(cols);
    if rank == 0 || rank > size || e.len() != rows * cols {
        return None;
    }
    let m = MatRef::from_row_major_slice(e, rows, cols);
    let mut s = faer::diag::Diag::<f64>::zeros(size);
    let mut u = faer::Mat::<f64>::zeros(rows, size);
    let mut v = faer::Mat::<f64>::zeros(cols, size);
    let mut mem = MemBuffer::new(svd_scratch::<f64>(
        rows,
        cols,
        ComputeSvdVectors::Thin,
        ComputeSvdVectors::Thin,
        Par::Seq,
        Default::default(),
    ));
    svd(
        m,
        s.as_mut(),
        Some(u.as_mut()),
        Some(v.as_mut()),
        Par::Seq,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .ok()?;
    let mut a = vec![0.0f64; rows * rank];
    let mut b = vec![0.0f64; rank * cols];
    for k in 0..rank {
        let column = v.col(k);
        let mut pivot = 0;
        for j in 1..cols {
            if column[j].abs() > column[pivot].abs() {
                pivot = j;
            }
        }
        let sign = if column[pivot] < 0.0 { -1.0 } else { 1.0 };
        let sigma = s[k];
        for j in 0..cols {
            b[k * cols + j] = sign * column[j];
        }
        for i in 0..rows {
            a[i * rank + k] = sign * u[(i, k)] * sigma;
        }
    }
    a.iter().chain(&b).all(|x| x.is_finite()).then_some((a, b))
}

/// `dst -= lhs * rhs` (any strides).
pub fn sub_matmul(dst: MatMut<'_, f64>, lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>, par: Par) {
    matmul(dst, Accum::Add, lhs, rhs, -1.0, par);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matmul_naive(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    c[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn upper_factor_of_the_inverse() {
        let n = 7;
        // A random SPD matrix: B B^T + I.
        let b: Vec<f64> = (0..n * n)
            .map(|i| ((i * 37 % 17) as f64 - 8.0) / 5.0)
            .collect();
        let mut bt = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                bt[j * n + i] = b[i * n + j];
            }
        }
        let mut h = matmul_naive(&b, &bt, n);
        for i in 0..n {
            h[i * n + i] += 1.0;
        }
        let u = upper_cholesky_of_inverse(h.clone(), n, Par::Seq).unwrap();
        let mut ut = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                ut[j * n + i] = u[i * n + j];
                if j < i {
                    assert_eq!(u[i * n + j], 0.0);
                }
            }
            assert!(u[i * n + i] > 0.0);
        }
        // U^T U H = I.
        let hinv = matmul_naive(&ut, &u, n);
        let eye = matmul_naive(&hinv, &h, n);
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (eye[i * n + j] - want).abs() < 1e-9,
                    "{i} {j} {}",
                    eye[i * n + j]
                );
            }
        }
    }

    #[test]
    fn indefinite_matrices_are_refused() {
        let h = [1.0, 2.0, 2.0, 1.0];
        assert!(upper_cholesky_of_inverse(h.to_vec(), 2, Par::Seq).is_none());
        assert_eq!(upper_cholesky_of_inverse(vec![], 0, Par::Seq), Some(vec![]));
    }
}
