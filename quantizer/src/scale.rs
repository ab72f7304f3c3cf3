//! Clip values, fp16 scales and the rounding of one value to a code.
//!
//! Every method (RTN now, GPTQ later) goes through these functions, so all
//! of them clip, floor, round the scale to fp16 and round codes the same way.

use half::f16;
use serde::Serialize;

use crate::error::ConfigError;

/// How the clip value `c` of a row or group is chosen; the scale is then
/// `c / qmax`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Clip {
    /// `c = k * std(values)`, unbiased std. Values beyond `c` saturate at
    /// `±qmax`: the records trade those few outliers for a finer step.
    #[serde(rename = "sdclip")]
    SdClip { k: f32 },
    /// `c = max |x|`: nothing saturates.
    Absmax,
}

impl Clip {
    pub fn validate(self) -> Result<(), ConfigError> {
        match self {
            Clip::SdClip { k } if !(k.is_finite() && k > 0.0) => Err(ConfigError::ClipK(k)),
            _ => Ok(()),
        }
    }

    /// A short label, e.g. `sdclip k=12.85` or `absmax`.
    pub fn describe(self) -> String {
        match self {
            Clip::SdClip { k } => format!("sdclip k={k}"),
            Clip::Absmax => "absmax".into(),
        }
    }
}

/// The smallest scale computed before fp16 rounding. It only guards the
/// division for all-zero groups. Seed 000 documents the bug this replaces:
/// a floor of `1 / qmax` (0.032 for int6) is larger than the ideal scale of
/// most trained rows and wastes most of the code range.
pub const SCALE_FLOOR: f32 = 1e-7;

/// Largest code magnitude of a symmetric `bits`-bit code, `2^(bits-1) - 1`
/// (pgq-format's range), or the error a quantizer reports for a width
/// outside 2..=8.
pub fn code_max(bits: u8) -> Result<i8, ConfigError> {
    pgq_format::pack::Bits::new(bits)
        .map(pgq_format::pack::code_max)
        .ok_or(ConfigError::Bits(bits))
}

/// The clip value of one row or group of finite values.
///
/// SDClip uses the unbiased standard deviation (divide by n - 1), summed in
/// f64 so that long rows of small weights keep their precision. With a single
/// value the std is undefined (torch returns NaN); the clip is then `|x|`,
/// the only choice that represents that value exactly rather than shrinking
/// it by `qmax / k`. An empty group clips at 0 (and gets the floor scale).
pub fn clip_value(values: &[f32], clip: Clip) -> f32 {
    match clip {
        Clip::Absmax => values.iter().fold(0.0f32, |m, &x| m.max(x.abs())),
        Clip::SdClip { k } => match values {
            [] => 0.0,
            [only] => only.abs(),
            _ => (f64::from(k) * unbiased_std(values)) as f32,
        },
    }
}

/// Two-pass unbiased standard deviation in f64. `values` has at least 2
/// elements.
pub(crate) fn unbiased_std(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let squares: f64 = values
        .iter()
        .map(|&x| {
            let d = f64::from(x) - mean;
            d * d
        })
        .sum();
    (squares / (n - 1.0)).sqrt()
}

/// The stored scale of a group: `max(clip / qmax, 1e-7)` in f32, rounded to
/// fp16 (round to nearest even). Codes must be computed with this rounded
/// value, since it is the one decoders multiply by.
///
/// Returns `None` when the scale overflows fp16 (weights beyond about
/// 65504 * qmax): clamping to f16::MAX would silently saturate the group.
pub fn fp16_scale(clip: f32, qmax: i8) -> Option<f16> {
    let scale = (clip / f32::from(qmax)).max(SCALE_FLOOR);
    let rounded = f16::from_f32(scale);
    if !rounded.is_finite() {
        return None;
    }
    if rounded == f16::ZERO {
        // Unreachable with the 1e-7 floor (fp16 rounds it to 1.19e-7), kept
        // so that a lower floor can never produce a zero scale.
        return Some(f16::from_bits(1));
    }
    Some(rounded)
}

/// `round_half_to_even(x / scale)` in f32, clamped to `[-qmax, qmax]`.
///
/// Division rather than multiplication by `1 / scale`: the reciprocal is
/// itself rounded and would move values that sit on a half step.
#[inline]
pub fn quantize_value(x: f32, scale: f32, qmax: i8) -> i8 {
    let limit = f32::from(qmax);
    // `as` saturates and maps NaN to 0; callers reject NaN inputs earlier.
    (x / scale).round_ties_even().clamp(-limit, limit) as i8
}

pub use pgq_metrics::first_non_finite;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_max_covers_2_to_8_bits() {
        let expected = [1, 3, 7, 15, 31, 63, 127];
        for (bits, want) in (2u8..=8).zip(expected) {
            assert_eq!(code_max(bits), Ok(want));
        }
        assert_eq!(code_max(1), Err(ConfigError::Bits(1)));
        assert_eq!(code_max(9), Err(ConfigError::Bits(9)));
        assert_eq!(code_max(0), Err(ConfigError::Bits(0)));
    }

    #[test]
    fn sdclip_uses_the_unbiased_std() {
        // mean 0, squares sum 2: unbiased variance 2 (biased would be 1).
        let c = clip_value(&[1.0, -1.0], Clip::SdClip { k: 1.0 });
        assert!((c - 2f32.sqrt()).abs() < 1e-6, "{c}");
        let c = clip_value(&[2.0, 4.0, 6.0], Clip::SdClip { k: 3.0 });
        assert!((c - 6.0).abs() < 1e-6, "{c}");
    }

    #[test]
    fn sdclip_of_one_value_is_its_magnitude() {
        assert_eq!(clip_value(&[-0.25], Clip::SdClip { k: 12.85 }), 0.25);
        assert_eq!(clip_value(&[], Clip::SdClip { k: 12.85 }), 0.0);
    }

    #[test]
    fn sdclip_keeps_precision_for_an_offset_row() {
        // A large common offset: a one-pass f32 variance would cancel badly.
        let values: Vec<f32> = (0..4096)
            .map(|i| 1000.0 + if i % 2 == 0 { 0.001 } else { -0.001 })
            .collect();
        let c = clip_value(&values, Clip::SdClip { k: 1.0 });
        // The f32 inputs are 1000 ± 0.00097656 (the f32 spacing near 1000 is
        // 6.1e-5), so the std is about 0.00098.
        assert!((c - 0.000_976_6).abs() < 2e-5, "{c}");
    }

    #[test]
    fn absmax_is_the_largest_magnitude() {
        assert_eq!(clip_value(&[0.5, -3.0, 2.0], Clip::Absmax), 3.0);
    }

    #[test]
    fn clip_validation_rejects_bad_k() {
        for k in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(Clip::SdClip { k }.validate().is_err(), "{k}");
        }
        assert!(Clip::SdClip { k: 12.85 }.validate().is_ok());
        assert!(Clip::Absmax.validate().is_ok());
    }

    #[test]
    fn scale_is_rounded_to_fp16() {
        let s = fp16_scale(1.0, 31).unwrap();
        assert_eq!(s, f16::from_f32(1.0 / 31.0));
        assert_ne!(s.to_f32(), 1.0 / 31.0, "1/31 is not an fp16 value");
    }

    #[test]
    fn zero_clip_gets_the_small_floor_not_one_over_qmax() {
        let s = fp16_scale(0.0, 31).unwrap();
        assert!(s.to_f32() > 0.0);
        assert!(s.to_f32() < 2e-7, "{}", s.to_f32());
    }

    #[test]
    fn overflowing_scale_is_refused() {
        assert_eq!(fp16_scale(65504.0 * 31.0 * 2.0, 31), None);
        assert_eq!(fp16_scale(f32::INFINITY, 31), None);
        assert_eq!(fp16_scale(65504.0 * 31.0, 31), Some(f16::MAX));
    }

    #[test]
    fn rounding_is_half_to_even_and_clamped() {
        assert_eq!(quantize_value(2.5, 1.0, 31), 2);
        assert_eq!(quantize_value(3.5, 1.0, 31), 4);
        assert_eq!(quantize_value(-2.5, 1.0, 31), -2);
        assert_eq!(quantize_value(-3.5, 1.0, 31), -4);
        assert_eq!(quantize_value(100.0, 1.0, 31), 31);
        assert_eq!(quantize_value(-100.0, 1.0, 31), -31);
    }
}
