//! One-sided t-tests over seeds, with the Student t distribution computed
//! here (regularized incomplete beta by continued fraction, as in Numerical
//! Recipes §6.4) rather than pulled in from a statistics crate.

/// A test's statistic, degrees of freedom and one-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
    pub p: f64,
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The unbiased (n - 1) variance.
pub fn sample_variance(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - 1.0)
}

/// H1: mean(differences) > margin. None with fewer than 2 values.
pub fn one_sample_greater(differences: &[f64], margin: f64) -> Option<TTest> {
    let n = differences.len();
    if n < 2 {
        return None;
    }
    let standard_error = (sample_variance(differences) / n as f64).sqrt();
    let df = (n - 1) as f64;
    Some(test(mean(differences) - margin, standard_error, df))
}

/// Welch's test of H1: mean(baseline) - mean(candidate) > margin, with
/// Welch–Satterthwaite degrees of freedom. None with fewer than 2 values
/// on either side.
pub fn welch_greater(baseline: &[f64], candidate: &[f64], margin: f64) -> Option<TTest> {
    let (nb, nc) = (baseline.len(), candidate.len());
    if nb < 2 || nc < 2 {
        return None;
    }
    let vb = sample_variance(baseline) / nb as f64;
    let vc = sample_variance(candidate) / nc as f64;
    let df = if vb + vc > 0.0 {
        (vb + vc).powi(2) / (vb.powi(2) / (nb - 1) as f64 + vc.powi(2) / (nc - 1) as f64)
    } else {
        // No spread on either side: t is infinite or zero whatever df is.
        (nb + nc - 2) as f64
    };
    Some(test(
        mean(baseline) - mean(candidate) - margin,
        (vb + vc).sqrt(),
        df,
    ))
}

fn test(excess: f64, standard_error: f64, df: f64) -> TTest {
    let t = if standard_error > 0.0 {
        excess / standard_error
    } else if excess > 0.0 {
        f64::INFINITY
    } else if excess < 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    TTest {
        t,
        df,
        p: student_t_upper_tail(t, df),
    }
}

/// P(T > t) for Student's t with `df` degrees of freedom (df > 0, not
/// necessarily whole). NaN for a NaN t or a non-positive df.
pub fn student_t_upper_tail(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    // P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t^2).
    let x = df / (df + t * t);
    let both_tails = regularized_incomplete_beta(df / 2.0, 0.5, x);
    if t > 0.0 {
        both_tails / 2.0
    } else {
        1.0 - both_tails / 2.0
    }
}

/// I_x(a, b) for a, b > 0 and x in [0, 1].
fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges fast only on this side of the mean;
    // the other side uses the symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of I_x(a, b) by the modified Lentz method. It
/// needs about sqrt(max(a, b)) terms; the bound covers df up to ~10^8,
/// far beyond any count of seeds.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const MAX_TERMS: u32 = 10_000;
    const EPSILON: f64 = 1e-15;
    const TINY: f64 = 1e-300;
    let not_zero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (sum, plus_one, minus_one) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / not_zero(1.0 - sum * x / plus_one);
    let mut fraction = d;
    for m in 1..=MAX_TERMS {
        let m = f64::from(m);
        let two_m = 2.0 * m;
        let even = m * (b - m) * x / ((minus_one + two_m) * (a + two_m));
        d = 1.0 / not_zero(1.0 + even * d);
        c = not_zero(1.0 + even / c);
        fraction *= d * c;
        let odd = -(a + m) * (sum + m) * x / ((a + two_m) * (plus_one + two_m));
        d = 1.0 / not_zero(1.0 + odd * d);
        c = not_zero(1.0 + odd / c);
        let step = d * c;
        fraction *= step;
        if (step - 1.0).abs() < EPSILON {
            break;
        }
    }
    fraction
}

/// ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms, ~1e-15 relative), with the
/// reflection formula below 1/2.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let series = COEFFICIENTS[1..]
        .iter()
        .zip(1..)
        .fold(COEFFICIENTS[0], |acc, (c, i)| acc + c / (x + f64::from(i)));
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} vs {expected}"
        );
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        close(ln_gamma(1.0), 0.0, 1e-14);
        close(ln_gamma(5.0), 24f64.ln(), 1e-13);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(0.25), 3.625_609_908_221_908_f64.ln(), 1e-13);
        close(ln_gamma(100.0), 359.134_205_369_575_4, 1e-10);
    }

    /// Expected values from scipy.stats.t.sf, and closed forms for df 1
    /// and 2.
    #[test]
    fn student_t_tail_matches_known_values() {
        close(
            student_t_upper_tail(2.0, 5.0),
            0.050_969_739_414_929_17,
            1e-12,
        );
        close(
            student_t_upper_tail(3.365, 5.0),
            0.009_999_236_252_870_86,
            1e-12,
        );
        close(student_t_upper_tail(1.0, 1.0), 0.25, 1e-14);
        close(
            student_t_upper_tail(1.0, 2.0),
            0.5 - 1.0 / (2.0 * 3f64.sqrt()),
            1e-14,
        );
        close(
            student_t_upper_tail(-1.5, 3.0),
            0.884_708_067_377_588_6,
            1e-12,
        );
        close(
            student_t_upper_tail(0.5, 2.7),
            0.327_473_530_997_880_7,
            1e-12,
        );
        close(
            student_t_upper_tail(10.0, 4.0),
            0.000_281_001_811_357_995_5,
            1e-14,
        );
        close(
            student_t_upper_tail(2.5, 30.0),
            0.009_057_824_534_033_344,
            1e-12,
        );
        close(student_t_upper_tail(0.0, 7.0), 0.5, 1e-15);
    }

    #[test]
    fn large_df_approaches_the_normal() {
        close(
            student_t_upper_tail(1.96, 1e6),
            0.024_998_033_792_634_93,
            1e-10,
        );
        close(
            student_t_upper_tail(1.959_963_984_540_054, 1e8),
            0.025,
            1e-8,
        );
    }

    #[test]
    fn edges_do_not_panic() {
        assert_eq!(student_t_upper_tail(f64::INFINITY, 3.0), 0.0);
        assert_eq!(student_t_upper_tail(f64::NEG_INFINITY, 3.0), 1.0);
        assert!(student_t_upper_tail(f64::NAN, 3.0).is_nan());
        assert!(student_t_upper_tail(1.0, 0.0).is_nan());
        assert!(student_t_upper_tail(1e200, 2.0) < 1e-300);
    }

    /// The PhasedTTT record's seeds against the SDClip record's (val_loss,
    /// nats) and against a fixed 2.775; expected from scipy.
    #[test]
    fn welch_and_one_sample_match_scipy() {
        let phased = [2.771_157_20, 2.767_388_41, 2.768_151_61];
        let sdclip = [
            2.804_050_24,
            2.806_914_94,
            2.801_702_63,
            2.804_067_25,
            2.804_672_99,
        ];
        let welch = welch_greater(&sdclip, &phased, 0.005).unwrap();
        close(welch.t, 21.402_337_287_087_697, 1e-9);
        close(welch.df, 4.080_439_597_213_381, 1e-9);
        close(welch.p, 1.201_547_694_519_014_5e-5, 1e-12);
        let differences: Vec<f64> = phased.iter().map(|x| 2.775 - x).collect();
        let one = one_sample_greater(&differences, 0.005).unwrap();
        close(one.t, 0.957_029_607_844_512_7, 1e-9);
        assert_eq!(one.df, 2.0);
        close(one.p, 0.219_773_861_054_977_04, 1e-10);
    }

    #[test]
    fn degenerate_samples() {
        assert_eq!(one_sample_greater(&[0.1], 0.005), None);
        assert_eq!(welch_greater(&[1.0, 2.0], &[1.0], 0.0), None);
        let flat = one_sample_greater(&[0.01, 0.01], 0.005).unwrap();
        assert_eq!((flat.t, flat.p), (f64::INFINITY, 0.0));
        let flat = welch_greater(&[1.0, 1.0], &[1.0, 1.0], 0.0).unwrap();
        assert_eq!((flat.t, flat.df, flat.p), (0.0, 2.0, 0.5));
    }
}
