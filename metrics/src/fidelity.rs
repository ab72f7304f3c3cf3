//! How far reconstructed weights are from the source: relative RMSE, max
//! absolute error and SNR, summed in f64.

use serde::{Serialize, Serializer};

/// Error of an approximation `Q` of `W`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fidelity {
    /// `||W - Q|| / ||W||`: 0 when exact, infinite when `W` is 0 and `Q` is
    /// not (serialized as null).
    #[serde(serialize_with = "finite_or_null")]
    pub rel_rmse: f64,
    pub max_abs_err: f64,
    /// `10 log10(||W||^2 / ||W - Q||^2)`: infinite when exact (serialized as
    /// null, since JSON has no infinity).
    #[serde(serialize_with = "finite_or_null")]
    pub snr_db: f64,
}

/// Compares `approx` with `reference` element by element (the shorter
/// length bounds the comparison; callers pass equal lengths).
pub fn compare(reference: &[f32], approx: &[f32]) -> Fidelity {
    let mut signal = 0.0f64;
    let mut noise = 0.0f64;
    let mut max_abs_err = 0.0f64;
    for (&w, &q) in reference.iter().zip(approx) {
        let w = f64::from(w);
        let e = w - f64::from(q);
        signal += w * w;
        noise += e * e;
        max_abs_err = max_abs_err.max(e.abs());
    }
    let (rel_rmse, snr_db) = if noise == 0.0 {
        (0.0, f64::INFINITY)
    } else if signal == 0.0 {
        (f64::INFINITY, f64::NEG_INFINITY)
    } else {
        ((noise / signal).sqrt(), 10.0 * (signal / noise).log10())
    };
    Fidelity {
        rel_rmse,
        max_abs_err,
        snr_db,
    }
}

/// Serializes non-finite floats as `None` (null in JSON) rather than
/// relying on each format's handling of infinities.
pub fn finite_or_null<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_some(value)
    } else {
        serializer.serialize_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_copy_has_infinite_snr_and_serializes_null() {
        let f = compare(&[1.0, -2.0], &[1.0, -2.0]);
        assert_eq!(f.rel_rmse, 0.0);
        assert_eq!(f.max_abs_err, 0.0);
        assert_eq!(f.snr_db, f64::INFINITY);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"rel_rmse":0.0,"max_abs_err":0.0,"snr_db":null}"#);
    }

    #[test]
    fn known_error() {
        // ||W||^2 = 25, ||E||^2 = 0.25: rel 0.1, SNR 20 dB.
        let f = compare(&[3.0, 4.0], &[3.0, 3.5]);
        assert!((f.rel_rmse - 0.1).abs() < 1e-12);
        assert!((f.snr_db - 20.0).abs() < 1e-9);
        assert_eq!(f.max_abs_err, 0.5);
    }

    #[test]
    fn zero_reference_with_error() {
        let f = compare(&[0.0], &[1.0]);
        assert_eq!(f.rel_rmse, f64::INFINITY);
        assert_eq!(f.snr_db, f64::NEG_INFINITY);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"{"rel_rmse":null,"max_abs_err":1.0,"snr_db":null}"#);
    }
}
