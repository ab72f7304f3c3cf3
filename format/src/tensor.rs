//! The logical content of a file: named tensors, as the writer takes them
//! and the reader returns them.

use half::{bf16, f16};

use crate::types::{effective_group, groups_per_row, rows_cols, CodeRange, Kind};

/// A tensor's values.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// Symmetric integer codes in `[-(2^(bits-1)-1), 2^(bits-1)-1]`, row-major
    /// in the original column order, with one fp16 scale per row and group
    /// (row-major: `scales[row * groups + group]`).
    Quantized {
        bits: u8,
        /// 0 = one scale per row; otherwise columns per group (the last
        /// group of a row may be partial).
        group_size: u32,
        codes: Vec<i8>,
        scales: Vec<f16>,
        /// A low-rank correction added to the codes' weights (format 1.2,
        /// kind 4): `W = Q·s + A·B`.
        correction: Option<LowRank>,
    },
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
    F32(Vec<f32>),
}

impl TensorData {
    pub fn kind(&self) -> Kind {
        match self {
            TensorData::Quantized {
                correction: None, ..
            } => Kind::Quantized,
            TensorData::Quantized {
                correction: Some(_),
                ..
            } => Kind::LowRank,
            TensorData::F16(_) => Kind::F16,
            TensorData::Bf16(_) => Kind::Bf16,
            TensorData::F32(_) => Kind::F32,
        }
    }

    /// Number of values (codes for a quantized tensor).
    pub fn len(&self) -> usize {
        match self {
            TensorData::Quantized { codes, .. } => codes.len(),
            TensorData::F16(v) => v.len(),
            TensorData::Bf16(v) => v.len(),
            TensorData::F32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One factor of a low-rank correction: codes in row-major order, and
/// one scale for every `group` consecutive codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    pub bits: u8,
    pub range: CodeRange,
    /// Consecutive codes (row-major) that share a scale; divides the
    /// number of codes.
    pub group: u32,
    pub codes: Vec<i8>,
    pub scales: Vec<f16>,
}

impl Factor {
    /// `f32(code) * f32(scale)`, exact (spec §6.8). Codes beyond the last
    /// whole group are left out; never panics.
    pub fn dequantize(&self) -> Vec<f32> {
        let group = (self.group as usize).max(1);
        self.codes
            .chunks_exact(group)
            .zip(&self.scales)
            .flat_map(|(chunk, s)| {
                let s = s.to_f32();
                chunk.iter().map(move |&c| c as f32 * s)
            })
            .collect()
    }
}

/// A correction of rank `rank`: `a` holds `rows x rank` codes, `b`
/// `rank x cols`.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRank {
    pub rank: u32,
    pub a: Factor,
    pub b: Factor,
}

impl LowRank {
    /// Adds `A·B` to `weights` (`rows x cols`, row-major) as spec §6.8
    /// defines it: per element, `acc = a0·b0` rounded, then
    /// `acc = fma(ak, bk, acc)` for k = 1.. in order (one rounding each),
    /// then `w + acc` rounded: the order of torch's CPU matrix product for
    /// the records' ranks, so that imported records decode to their own
    /// dequantization bit for bit. Leaves `weights` as it is when the factors' sizes do not
    /// match (the reader and writer guarantee they do); never panics.
    pub fn apply(&self, weights: &mut [f32], cols: usize) {
        let rank = self.rank as usize;
        if rank == 0 || cols == 0 || weights.len() % cols != 0 {
            return;
        }
        let rows = weights.len() / cols;
        // Checked: a Tensor is plain data, its rank anything.
        if rank.checked_mul(cols) != Some(self.b.codes.len())
            || rows.checked_mul(rank) != Some(self.a.codes.len())
        {
            return;
        }
        let (a, b) = (self.a.dequantize(), self.b.dequantize());
        if a.len() != rows * rank || b.len() != rank * cols {
            return;
        }
        let mut acc = vec![0f32; cols];
        for (row, a_row) in weights.chunks_exact_mut(cols).zip(a.chunks_exact(rank)) {
            for (acc, &b0) in acc.iter_mut().zip(&b[..cols]) {
                *acc = a_row[0] * b0;
            }
            for (k, &ak) in a_row.iter().enumerate().skip(1) {
                let b_row = &b[k * cols..(k + 1) * cols];
                for (acc, &bk) in acc.iter_mut().zip(b_row) {
                    // One rounding: IEEE fusedMultiplyAdd (hardware FMA or
                    // libm's exact fmaf).
                    *acc = ak.mul_add(bk, *acc);
                }
            }
            for (w, &c) in row.iter_mut().zip(&acc) {
                *w += c;
            }
        }
    }
}

/// A named tensor with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<u64>,
    pub data: TensorData,
}

impl Tensor {
    /// The number of elements, saturating at `u64::MAX` for a shape whose
    /// product overflows (a `Tensor` is plain data: any shape can be put in
    /// one; the writer refuses such a shape).
    pub fn elements(&self) -> u64 {
        self.shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX)
    }

    /// The f32 weights: `f32(code) * f32(scale)` (one IEEE binary32
    /// multiply, round to nearest even) for quantized tensors, plus the
    /// correction's `A·B` in the order of spec §6.8; the exact widening for
    /// passthrough ones.
    pub fn dequantize(&self) -> Vec<f32> {
        match &self.data {
            TensorData::Quantized {
                group_size,
                codes,
                scales,
                correction,
                ..
            } => {
                let (_, cols) = rows_cols(&self.shape);
                let mut w = dequantize_codes(codes, scales, cols as usize, *group_size);
                if let Some(c) = correction {
                    c.apply(&mut w, cols as usize);
                }
                w
            }
            TensorData::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::Bf16(v) => v.iter().map(|x| x.to_f32()).collect(),
            TensorData::F32(v) => v.clone(),
        }
    }
}

/// `w[r][c] = f32(codes[r][c]) * f32(scales[r][c / G])`.
///
/// `codes.len()` should be a multiple of `cols` and `scales` should hold
/// `rows * groups_per_row(cols, group_size)` values (the reader and writer
/// guarantee both); otherwise the rows that lack codes or scales are left
/// out. Never panics.
pub fn dequantize_codes(codes: &[i8], scales: &[f16], cols: usize, group_size: u32) -> Vec<f32> {
    if cols == 0 {
        return Vec::new();
    }
    let group = effective_group(cols as u64, group_size) as usize;
    let groups = groups_per_row(cols as u64, group_size) as usize;
    let mut out = Vec::with_capacity(codes.len());
    for (row, row_scales) in codes.chunks_exact(cols).zip(scales.chunks_exact(groups)) {
        for (chunk, scale) in row.chunks(group).zip(row_scales) {
            let s = scale.to_f32();
            out.extend(chunk.iter().map(|&c| c as f32 * s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::rows_cols;

    /// Any shape a caller can put in a `Tensor`: counting its elements and
    /// its matrix view never panics, and saturates on overflow.
    #[test]
    fn element_counts_are_total() {
        let shapes: [&[u64]; 6] = [
            &[],
            &[0],
            &[3, 4],
            &[u64::MAX, 2],
            &[1 << 32, 1 << 32, 2],
            &[u64::MAX; 8],
        ];
        let want = [1, 0, 12, u64::MAX, u64::MAX, u64::MAX];
        for (shape, want) in shapes.iter().zip(want) {
            let t = Tensor {
                name: "t".into(),
                shape: shape.to_vec(),
                data: TensorData::F32(Vec::new()),
            };
            assert_eq!(t.elements(), want, "{shape:?}");
            let _ = rows_cols(shape);
            assert!(t.dequantize().is_empty());
        }
        assert_eq!(rows_cols(&[1 << 40, 1 << 40, 5]), (u64::MAX, 5));
        assert!(dequantize_codes(&[1, 2, 3], &[], 0, 0).is_empty());
        assert!(dequantize_codes(&[1, 2, 3], &[], 2, 7).is_empty());
    }
}
