//! The logical content of a file: named tensors, as the writer takes them
//! and the reader returns them.

use half::{bf16, f16};

use crate::types::{effective_group, groups_per_row, rows_cols, Kind};

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
    },
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
    F32(Vec<f32>),
}

impl TensorData {
    pub fn kind(&self) -> Kind {
        match self {
            TensorData::Quantized { .. } => Kind::Quantized,
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
    /// multiply, round to nearest even) for quantized tensors; the exact
    /// widening for passthrough ones.
    pub fn dequantize(&self) -> Vec<f32> {
        match &self.data {
            TensorData::Quantized {
                group_size,
                codes,
                scales,
                ..
            } => {
                let (_, cols) = rows_cols(&self.shape);
                dequantize_codes(codes, scales, cols as usize, *group_size)
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
