//! Round-to-nearest (RTN) symmetric quantization of a row-major f32 matrix,
//! one fp16 scale per row or per (row, group).

use half::f16;
use pgq_format::types::groups_per_row;
use serde::Serialize;

use crate::error::{ConfigError, RtnError};
use crate::scale::{code_max, fp16_scale, quantize_value, Clip};
use crate::search::{choose_scales, ChosenScales, ClipChoice, ScaleError};
use pgq_metrics::hessian::check_matrix;

/// Settings of one RTN run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RtnConfig {
    /// Code width, 2..=8: codes lie in `[-(2^(bits-1)-1), 2^(bits-1)-1]`.
    pub bits: u8,
    /// Columns per scale group; 0 = one scale per row. Group g covers
    /// columns `[g*G, min((g+1)*G, cols))`: the last group may be partial.
    pub group_size: u32,
    pub clip: Clip,
}

impl RtnConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        code_max(self.bits)?;
        self.clip.validate()
    }

    /// The method label of reports and provenance, e.g.
    /// `rtn-sdclip k=12.85 int6` or `rtn-absmax int8 g128`.
    pub fn describe(&self) -> String {
        let mut label = format!("rtn-{} int{}", self.clip.describe(), self.bits);
        if self.group_size > 0 {
            label.push_str(&format!(" g{}", self.group_size));
        }
        label
    }
}

/// Codes and scales in the layout of `pgq_format::TensorData::Quantized`:
/// codes row-major in the original column order, `scales[row * groups + g]`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedMatrix {
    pub codes: Vec<i8>,
    pub scales: Vec<f16>,
}

/// Quantizes the `rows x cols` row-major matrix `values` with `config`.
///
/// Each group's scale is `max(clip / qmax, 1e-7)` rounded to fp16, and its
/// codes are `round_half_to_even(x / f32(scale))` clamped to `±qmax`, so
/// `f32(code) * f32(scale)` (what every decoder computes) is the value the
/// rounding aimed at. NaN or infinite inputs are rejected, naming the
/// element.
pub fn quantize_rtn(
    values: &[f32],
    rows: usize,
    cols: usize,
    config: &RtnConfig,
) -> Result<QuantizedMatrix, RtnError> {
    config.validate()?;
    let clip = ClipChoice::from(config.clip);
    quantize_rtn_with(
        values,
        rows,
        cols,
        config.bits,
        config.group_size,
        &clip,
        None,
    )
    .map(|(matrix, _)| matrix)
}

/// [`quantize_rtn`] with any [`ClipChoice`], percentile searches included.
/// `column_weights` (the Hessian's diagonal, one per column) is needed by
/// a Hessian-weighted search. Returns the matrix and the scales' chosen
/// candidates (empty unless a search ran).
pub fn quantize_rtn_with(
    values: &[f32],
    rows: usize,
    cols: usize,
    bits: u8,
    group_size: u32,
    clip: &ClipChoice,
    column_weights: Option<&[f64]>,
) -> Result<(QuantizedMatrix, ChosenScales), RtnError> {
    let qmax = code_max(bits)?;
    clip.validate()?;
    check_matrix(values, rows, cols)?;
    if let Some(weights) = column_weights {
        if weights.len() != cols {
            return Err(RtnError::WeightCount {
                weights: weights.len(),
                cols,
            });
        }
    }

    let groups = groups_per_row(cols as u64, group_size) as usize;
    if cols == 0 {
        // No values, but per-row layouts still store one scale per row.
        let floor = fp16_scale(0.0, qmax).unwrap_or(f16::MIN_POSITIVE_SUBNORMAL);
        let chosen = ChosenScales {
            scales: vec![floor; rows.saturating_mul(groups)],
            choices: Vec::new(),
        };
        let matrix = QuantizedMatrix {
            codes: Vec::new(),
            scales: chosen.scales.clone(),
        };
        return Ok((matrix, chosen));
    }

    let group_width = match group_size {
        0 => cols,
        g => g as usize,
    };
    let chosen = choose_scales(values, cols, group_width, qmax, clip, column_weights).map_err(
        |e| match e {
            ScaleError::Overflow { row, group, scale } => {
                RtnError::ScaleOverflow { row, group, scale }
            }
            ScaleError::NeedsHessian => RtnError::NeedsHessian,
        },
    )?;
    let mut codes = Vec::with_capacity(values.len());
    let mut scales = chosen.scales.iter();
    for row_values in values.chunks_exact(cols) {
        for group_values in row_values.chunks(group_width) {
            let step = scales.next().map_or(1.0, |s| s.to_f32());
            codes.extend(group_values.iter().map(|&x| quantize_value(x, step, qmax)));
        }
    }
    let matrix = QuantizedMatrix {
        codes,
        scales: chosen.scales.clone(),
    };
    Ok((matrix, chosen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scale::clip_value;
    use pgq_format::dequantize_codes;
    use pgq_metrics::MatrixError;

    fn absmax(bits: u8) -> RtnConfig {
        RtnConfig {
            bits,
            group_size: 0,
            clip: Clip::Absmax,
        }
    }

    fn sdclip(bits: u8, k: f32, group_size: u32) -> RtnConfig {
        RtnConfig {
            bits,
            group_size,
            clip: Clip::SdClip { k },
        }
    }

    #[test]
    fn rounds_half_to_even() {
        // absmax 31 at int6: scale exactly 1.0, so x / s is x.
        let q = quantize_rtn(&[31.0, 2.5, 3.5, -2.5, 0.5, -1.5], 1, 6, &absmax(6)).unwrap();
        assert_eq!(q.scales, vec![f16::ONE]);
        assert_eq!(q.codes, vec![31, 2, 4, -2, 0, -2]);
    }

    #[test]
    fn codes_use_the_fp16_scale_not_the_f32_one() {
        // The f32 scale 1 + 0.4 * 2^-10 rounds to fp16 1.0. The probe sits
        // just above the half step 20.5 in units of the fp16 scale, but just
        // below it in units of the f32 scale.
        let scale_f32 = 1.0f32 + 0.4 / 1024.0;
        let x_max = 31.0 * scale_f32;
        let probe = 20.504f32;
        assert_eq!(f16::from_f32(x_max / 31.0), f16::ONE);
        let with_f32_scale = (probe / (x_max / 31.0)).round_ties_even();
        assert_eq!(with_f32_scale, 20.0, "the case must discriminate");

        let q = quantize_rtn(&[x_max, probe], 1, 2, &absmax(6)).unwrap();
        assert_eq!(q.scales, vec![f16::ONE]);
        assert_eq!(q.codes, vec![31, 21]);
    }

    #[test]
    fn partial_last_group_gets_its_own_scale() {
        // 1 row, 5 columns, groups of 2: [0,1], [2,3], [4].
        let values = [1.0, -2.0, 0.5, 0.25, -8.0];
        let config = RtnConfig {
            bits: 8,
            group_size: 2,
            clip: Clip::Absmax,
        };
        let q = quantize_rtn(&values, 1, 5, &config).unwrap();
        let expected_scales: Vec<f16> = [2.0f32, 0.5, 8.0]
            .iter()
            .map(|c| f16::from_f32(c / 127.0))
            .collect();
        assert_eq!(q.scales, expected_scales);
        assert_eq!(q.codes[1], -127);
        assert_eq!(q.codes[2], 127);
        assert_eq!(q.codes[4], -127);
        let back = dequantize_codes(&q.codes, &q.scales, 5, 2);
        for (a, b) in values.iter().zip(&back) {
            assert!((a - b).abs() <= 0.5 * 8.0 / 127.0 * 1.01, "{a} vs {b}");
        }
    }

    #[test]
    fn per_row_and_groupwise_layouts() {
        let values: Vec<f32> = (0..3 * 10).map(|i| (i as f32 * 0.37).sin()).collect();
        let per_row = quantize_rtn(&values, 3, 10, &sdclip(6, 3.0, 0)).unwrap();
        assert_eq!(per_row.codes.len(), 30);
        assert_eq!(per_row.scales.len(), 3);

        let grouped = quantize_rtn(&values, 3, 10, &sdclip(6, 3.0, 4)).unwrap();
        assert_eq!(grouped.codes.len(), 30);
        assert_eq!(grouped.scales.len(), 3 * 3);
        // Row 1, group 2 covers columns 8..10 of row 1.
        let expected = fp16_scale(clip_value(&values[18..20], Clip::SdClip { k: 3.0 }), 31);
        assert_eq!(Some(grouped.scales[3 + 2]), expected);

        // A group as wide as the row is the per-row layout.
        let whole = quantize_rtn(&values, 3, 10, &sdclip(6, 3.0, 10)).unwrap();
        assert_eq!(whole, per_row);
        let wider = quantize_rtn(&values, 3, 10, &sdclip(6, 3.0, 64)).unwrap();
        assert_eq!(wider, per_row);
    }

    #[test]
    fn absmax_reaches_exactly_plus_minus_qmax_for_every_width() {
        let values = [-0.7f32, 0.3, 0.1, 0.0, 0.69, -0.01];
        for bits in 2u8..=8 {
            let qmax = code_max(bits).unwrap();
            let q = quantize_rtn(&values, 1, 6, &absmax(bits)).unwrap();
            assert_eq!(q.codes[0], -qmax, "bits {bits}");
            assert!(q.codes.iter().all(|c| c.abs() <= qmax), "bits {bits}");
            let flipped: Vec<f32> = values.iter().map(|x| -x).collect();
            let q = quantize_rtn(&flipped, 1, 6, &absmax(bits)).unwrap();
            assert_eq!(q.codes[0], qmax, "bits {bits}");
        }
    }

    #[test]
    fn sdclip_saturates_outliers_within_range_for_every_width() {
        let mut values: Vec<f32> = (0..256)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
            .collect();
        values[7] = 40.0;
        for bits in 2u8..=8 {
            let qmax = code_max(bits).unwrap();
            let q = quantize_rtn(&values, 1, 256, &sdclip(bits, 2.0, 0)).unwrap();
            assert_eq!(q.codes[7], qmax, "bits {bits}");
            assert!(q.codes.iter().all(|c| c.abs() <= qmax), "bits {bits}");
        }
    }

    #[test]
    fn widths_outside_2_to_8_are_rejected() {
        for bits in [0u8, 1, 9, 16] {
            assert_eq!(
                quantize_rtn(&[1.0], 1, 1, &absmax(bits)),
                Err(RtnError::Config(ConfigError::Bits(bits)))
            );
        }
        assert!(matches!(
            quantize_rtn(&[1.0], 1, 1, &sdclip(6, -1.0, 0)),
            Err(RtnError::Config(ConfigError::ClipK(_)))
        ));
    }

    #[test]
    fn small_rows_get_a_small_scale_not_a_one_over_qmax_floor() {
        // Trained rows of ~1e-3: the ideal int6 scale is ~4e-4. A floor of
        // 1/31 = 0.032 would round every code of this row to 0.
        let values: Vec<f32> = (0..512)
            .map(|i| ((i * 7919 % 997) as f32 / 997.0 - 0.5) * 2e-3)
            .collect();
        let q = quantize_rtn(&values, 1, 512, &sdclip(6, 12.85, 0)).unwrap();
        let scale = q.scales[0].to_f32();
        assert!(scale < 1e-3, "scale {scale}");
        assert!(scale < (1.0 / 31.0) / 10.0);
        let largest = q.codes.iter().map(|c| c.unsigned_abs()).max().unwrap();
        assert!(largest >= 2, "codes must use the range, largest {largest}");
    }

    #[test]
    fn zero_row_gets_zero_codes_and_a_positive_scale() {
        for config in [absmax(6), sdclip(6, 12.85, 0), sdclip(4, 12.85, 2)] {
            let q = quantize_rtn(&[0.0; 6], 2, 3, &config).unwrap();
            assert!(q.codes.iter().all(|&c| c == 0));
            assert!(q
                .scales
                .iter()
                .all(|s| s.to_f32() > 0.0 && s.to_f32() < 1e-6));
        }
    }

    #[test]
    fn non_finite_inputs_are_rejected_with_their_position() {
        let mut values = vec![0.5f32; 12];
        values[7] = f32::NAN;
        match quantize_rtn(&values, 3, 4, &absmax(6)) {
            Err(RtnError::Matrix(MatrixError::NonFinite { row, col, value })) => {
                assert_eq!((row, col), (1, 3));
                assert!(value.is_nan());
            }
            other => panic!("{other:?}"),
        }
        values[7] = f32::NEG_INFINITY;
        assert_eq!(
            quantize_rtn(&values, 3, 4, &absmax(6)),
            Err(RtnError::Matrix(MatrixError::NonFinite {
                row: 1,
                col: 3,
                value: f32::NEG_INFINITY
            }))
        );
    }

    #[test]
    fn shape_mismatch_and_overflow_are_rejected() {
        assert_eq!(
            quantize_rtn(&[1.0; 5], 2, 3, &absmax(6)),
            Err(RtnError::Matrix(MatrixError::Shape {
                values: 5,
                rows: 2,
                cols: 3
            }))
        );
        assert!(matches!(
            quantize_rtn(&[1.0; 5], usize::MAX, 2, &absmax(6)),
            Err(RtnError::Matrix(MatrixError::Shape { .. }))
        ));
        assert!(matches!(
            quantize_rtn(&[3.0e38, 1.0], 1, 2, &absmax(6)),
            Err(RtnError::ScaleOverflow {
                row: 0,
                group: 0,
                ..
            })
        ));
    }

    #[test]
    fn empty_matrices_keep_the_scale_layout() {
        let q = quantize_rtn(&[], 3, 0, &absmax(6)).unwrap();
        assert!(q.codes.is_empty());
        assert_eq!(q.scales.len(), 3);
        let q = quantize_rtn(&[], 0, 8, &absmax(6)).unwrap();
        assert!(q.codes.is_empty() && q.scales.is_empty());
    }

    #[test]
    fn is_deterministic() {
        let values: Vec<f32> = (0..64 * 48)
            .map(|i| ((i as f32) * 0.618).sin() * 0.02)
            .collect();
        let config = sdclip(6, 12.85, 16);
        let a = quantize_rtn(&values, 64, 48, &config).unwrap();
        let b = quantize_rtn(&values, 64, 48, &config).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn describe_names_the_method() {
        assert_eq!(sdclip(6, 12.85, 0).describe(), "rtn-sdclip k=12.85 int6");
        assert_eq!(absmax(8).describe(), "rtn-absmax int8");
        assert_eq!(sdclip(8, 20.0, 128).describe(), "rtn-sdclip k=20 int8 g128");
    }
}
