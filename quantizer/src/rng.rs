//! Deterministic random numbers for the demo model: SplitMix64 for seeding,
//! xoshiro256** for the stream, Box–Muller normals and Student-t tails.
//!
//! Hand-written so the demo model's values are fixed by this crate alone:
//! no external RNG crate whose stream could change between versions.

/// One SplitMix64 step: a bijective mix of `x`, used to turn related seeds
/// (a base seed and a name hash) into unrelated ones.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bits: a stable hash of a tensor name for its seed.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64.
#[derive(Debug, Clone)]
pub struct Xoshiro256 {
    state: [u64; 4],
}

impl Xoshiro256 {
    pub fn new(seed: u64) -> Self {
        // The first four outputs of a SplitMix64 stream, as the xoshiro
        // authors recommend; they are never all zero.
        let mut x = seed;
        let mut next = || {
            let out = splitmix64(x);
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            out
        };
        Xoshiro256 {
            state: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.state;
        let result = s1.wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s1 << 17;
        let mut s = [s0, s1, s2 ^ s0, s3 ^ s1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        self.state = s;
        result
    }

    /// Uniform in the open interval (0, 1): safe to take the logarithm of.
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
}

/// Normal and Student-t samples from one stream.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: Xoshiro256,
    spare_normal: Option<f64>,
}

impl Sampler {
    pub fn new(seed: u64) -> Self {
        Sampler {
            rng: Xoshiro256::new(seed),
            spare_normal: None,
        }
    }

    /// Standard normal (Box–Muller; the second value of each pair is kept
    /// for the next call).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let radius = (-2.0 * self.rng.open01().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.rng.open01();
        let (sin, cos) = angle.sin_cos();
        self.spare_normal = Some(radius * sin);
        radius * cos
    }

    /// Chi-squared with `dof` degrees of freedom, exactly: chi2(2) is twice
    /// an exponential, so `-2 ln(u1 u2 ...)` over `dof / 2` uniforms (one
    /// logarithm per pair), plus one squared normal when `dof` is odd. Much
    /// cheaper than summing `dof` squared normals.
    pub fn chi_squared(&mut self, dof: u32) -> f64 {
        let mut sum = 0.0;
        let mut exponentials = dof / 2;
        while exponentials >= 2 {
            sum -= 2.0 * (self.rng.open01() * self.rng.open01()).ln();
            exponentials -= 2;
        }
        if exponentials == 1 {
            sum -= 2.0 * self.rng.open01().ln();
        }
        if dof % 2 == 1 {
            let z = self.normal();
            sum += z * z;
        }
        sum
    }

    /// Student-t with `dof` degrees of freedom scaled to unit variance
    /// (`dof >= 3`); `dof == 0` means a standard normal.
    pub fn unit_student_t(&mut self, dof: u32) -> f64 {
        let z = self.normal();
        if dof == 0 {
            return z;
        }
        let nu = f64::from(dof);
        // Var(t_nu) = nu / (nu - 2).
        z / (self.chi_squared(dof) / nu).sqrt() * ((nu - 2.0) / nu).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(samples: impl Iterator<Item = f64>) -> (f64, f64, f64) {
        let values: Vec<f64> = samples.collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let kurtosis = values.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n / (var * var);
        (mean, var, kurtosis)
    }

    #[test]
    fn xoshiro_matches_the_reference_stream() {
        // Reference: state {1, 2, 3, 4} gives 11520, 0, 1509978240,
        // 1215971899390074240 (from the authors' C code).
        let mut rng = Xoshiro256 {
            state: [1, 2, 3, 4],
        };
        let got: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            vec![11520, 0, 1_509_978_240, 1_215_971_899_390_074_240]
        );
    }

    #[test]
    fn splitmix_matches_the_reference() {
        // First output of SplitMix64 seeded with 0.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn streams_are_deterministic_and_seed_dependent() {
        let a: Vec<u64> = {
            let mut r = Xoshiro256::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Xoshiro256::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Xoshiro256::new(8);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut s = Sampler::new(1);
        let (mean, var, kurtosis) = moments((0..200_000).map(|_| s.normal()));
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        assert!((kurtosis - 3.0).abs() < 0.1, "{kurtosis}");
    }

    #[test]
    fn chi_squared_has_mean_dof() {
        for dof in [1u32, 2, 4, 5, 7] {
            let mut s = Sampler::new(u64::from(dof));
            let (mean, var, _) = moments((0..100_000).map(|_| s.chi_squared(dof)));
            let nu = f64::from(dof);
            assert!((mean - nu).abs() < 0.05 * nu, "dof {dof}: mean {mean}");
            assert!(
                (var - 2.0 * nu).abs() < 0.1 * 2.0 * nu,
                "dof {dof}: var {var}"
            );
        }
    }

    #[test]
    fn student_t_has_unit_variance_and_heavy_tails() {
        let mut s = Sampler::new(3);
        let (mean, var, kurtosis) = moments((0..400_000).map(|_| s.unit_student_t(5)));
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        // Excess kurtosis of t5 is 6 (kurtosis 9); the sample estimate of a
        // fourth moment converges slowly, so only check it is heavy.
        assert!(kurtosis > 5.0, "{kurtosis}");
    }
}
