//! Synthetic calibration Hessians for the demo model, so that GPTQ and the
//! Hessian-weighted methods can be run and measured without a training
//! run.
//!
//! A real `H = X^T X / n` of a transformer layer's inputs is far from the
//! identity: activations share a few strong directions (a low-rank part
//! with a decaying spectrum, and a mean), channels differ in scale, and a
//! few outlier channels are an order of magnitude larger than the rest.
//! That is what makes GPTQ beat RTN (with `H = I` they are the same). The
//! generator builds exactly that covariance in closed form:
//!
//! `H = D (G^T G + m m^T + noise I) D`
//!
//! - `G`: `RANK x cols`, row `k` scaled by `1 / sqrt(k + 1)` (a power-law
//!   spectrum), entries normal;
//! - `m`: the activation mean, normal with std 0.3;
//! - `noise`: an isotropic floor that keeps `H` positive definite;
//! - `D`: per-channel scales, log-normal (sigma 0.4), and 1% of channels
//!   scaled by 6 (outlier features).
//!
//! Condition numbers land around 10^4..10^5. How much GPTQ gains over RTN
//! depends on the spectrum (on this one, output-space error falls about
//! 8x at int6); the figures it gives are a property of these matrices, not
//! a prediction for a trained model's layers.
//! Inputs shared by several matrices (`c_q`, `c_k`, `c_v` read the same
//! normalized stream) share one Hessian.

use std::collections::BTreeMap;

use faer::{Accum, Mat, Par};

use crate::demo::DemoConfig;
use crate::error::DemoError;
use crate::model::HessianSource;
use crate::parallel::map_largest_first;
use crate::rng::{fnv1a64, splitmix64, Sampler};

/// Latent directions of the low-rank part.
const RANK: usize = 32;
/// Isotropic floor, relative to the unit-scale factors.
const NOISE: f64 = 0.5;
/// A channel is an outlier when a standard normal draw exceeds this in
/// magnitude: 1% of channels. Outliers are scaled by [`OUTLIER_SCALE`].
const OUTLIER_Z: f64 = 2.575_829_3;
const OUTLIER_SCALE: f64 = 6.0;

/// The Hessians of a demo model's matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoHessians {
    /// One `cols x cols` row-major matrix per distinct input.
    inputs: Vec<(String, usize, Vec<f32>)>,
    /// Tensor name -> index into `inputs`.
    by_tensor: BTreeMap<String, usize>,
}

impl DemoHessians {
    /// Hessians for the embedding (as the tied output head, reading the
    /// final hidden state) and every block matrix of `config`'s model, on
    /// `threads` workers. Deterministic in `config.seed`.
    pub fn generate(config: &DemoConfig, threads: usize) -> Result<Self, DemoError> {
        config.validate()?;
        let (width, hidden) = (
            config.width as usize,
            (config.mlp_mult * config.width) as usize,
        );
        let mut inputs: Vec<(String, usize)> = vec![("final".into(), width)];
        let mut by_tensor = BTreeMap::new();
        by_tensor.insert("tok_emb.weight".to_string(), 0);
        for i in 0..config.layers {
            let p = format!("blocks.{i}");
            let readers: [(&str, usize, &[&str]); 4] = [
                ("attn.in", width, &["attn.c_q", "attn.c_k", "attn.c_v"]),
                ("attn.proj.in", width, &["attn.proj"]),
                ("mlp.in", width, &["mlp.fc"]),
                ("mlp.proj.in", hidden, &["mlp.proj"]),
            ];
            for (input, cols, tensors) in readers {
                inputs.push((format!("{p}.{input}"), cols));
                for t in tensors {
                    by_tensor.insert(format!("{p}.{t}.weight"), inputs.len() - 1);
                }
            }
        }
        let seed = config.seed;
        let matrices = map_largest_first(
            &inputs,
            threads,
            |(_, cols)| (cols * cols) as u64,
            |(name, cols)| synthetic_hessian(*cols, splitmix64(seed ^ fnv1a64(name.as_bytes()))),
            |_, _| {},
        );
        Ok(DemoHessians {
            inputs: inputs
                .into_iter()
                .zip(matrices)
                .map(|((name, cols), h)| (name, cols, h))
                .collect(),
            by_tensor,
        })
    }

    /// `(tensor name, cols, H)` for every tensor with a Hessian, by name.
    pub fn tensors(&self) -> impl Iterator<Item = (&str, usize, &[f32])> {
        self.by_tensor.iter().map(|(name, &i)| {
            let (_, cols, h) = &self.inputs[i];
            (name.as_str(), *cols, h.as_slice())
        })
    }

    /// Distinct inputs (Hessians actually stored).
    pub fn distinct(&self) -> usize {
        self.inputs.len()
    }
}

impl HessianSource for DemoHessians {
    fn hessian(&self, name: &str) -> Option<&[f32]> {
        self.by_tensor
            .get(name)
            .map(|&i| self.inputs[i].2.as_slice())
    }
}

/// One synthetic `cols x cols` Hessian (row-major f32), see the module
/// documentation.
pub fn synthetic_hessian(cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = Sampler::new(seed);
    let rank = RANK.min(cols);
    let mut g = Mat::<f64>::zeros(rank + 1, cols);
    for k in 0..rank {
        let weight = 1.0 / ((k + 1) as f64).sqrt();
        for j in 0..cols {
            g[(k, j)] = weight * rng.normal();
        }
    }
    // The mean as one more row: G^T G then includes m m^T.
    for j in 0..cols {
        g[(rank, j)] = 0.3 * rng.normal();
    }
    let scale: Vec<f64> = (0..cols)
        .map(|_| {
            let outlier = rng.normal().abs() > OUTLIER_Z;
            let base = (0.4 * rng.normal()).exp();
            if outlier {
                base * OUTLIER_SCALE
            } else {
                base
            }
        })
        .collect();
    let mut h = Mat::<f64>::zeros(cols, cols);
    faer::linalg::matmul::matmul(
        h.as_mut(),
        Accum::Replace,
        g.transpose(),
        g.as_ref(),
        1.0,
        Par::Seq,
    );
    let mut out = vec![0.0f32; cols * cols];
    for i in 0..cols {
        for j in 0..cols {
            let floor = if i == j { NOISE } else { 0.0 };
            out[i * cols + j] = ((h[(i, j)] + floor) * scale[i] * scale[j]) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hessians_are_symmetric_positive_and_ill_conditioned() {
        let cols = 128;
        let h = synthetic_hessian(cols, 7);
        let mut diag_min = f64::INFINITY;
        let mut diag_max = 0.0f64;
        for i in 0..cols {
            for j in 0..cols {
                assert_eq!(h[i * cols + j], h[j * cols + i]);
            }
            let d = f64::from(h[i * cols + i]);
            diag_min = diag_min.min(d);
            diag_max = diag_max.max(d);
        }
        assert!(diag_min > 0.0);
        // Channel scales and outliers spread the diagonal widely.
        assert!(diag_max / diag_min > 10.0, "{diag_max} / {diag_min}");
        // Strongly correlated columns: |H_ij| / sqrt(H_ii H_jj) is large
        // for many pairs (the shared directions).
        let strong = (0..cols)
            .flat_map(|i| (0..i).map(move |j| (i, j)))
            .filter(|&(i, j)| {
                let c = f64::from(h[i * cols + j]);
                let n = (f64::from(h[i * cols + i]) * f64::from(h[j * cols + j])).sqrt();
                c.abs() / n > 0.3
            })
            .count();
        assert!(strong > cols, "{strong}");
        assert_eq!(synthetic_hessian(cols, 7), h);
        assert_ne!(synthetic_hessian(cols, 8), h);
    }

    #[test]
    fn demo_hessians_cover_every_block_matrix() {
        let config = DemoConfig::tiny();
        let hessians = DemoHessians::generate(&config, 2).unwrap();
        assert_eq!(hessians.distinct(), 1 + 4 * config.layers as usize);
        let layout = config.layout().unwrap();
        for (name, shape) in &layout {
            let has = hessians.hessian(name);
            let is_matrix = name == "tok_emb.weight" || name.ends_with(".weight");
            assert_eq!(has.is_some(), is_matrix, "{name}");
            if let Some(h) = has {
                assert_eq!(h.len() as u64, shape[1] * shape[1], "{name}");
            }
        }
        // q, k and v read the same input.
        assert_eq!(
            hessians.hessian("blocks.1.attn.c_q.weight"),
            hessians.hessian("blocks.1.attn.c_v.weight")
        );
        assert_ne!(
            hessians.hessian("blocks.1.attn.c_q.weight"),
            hessians.hessian("blocks.1.mlp.fc.weight")
        );
        assert_eq!(DemoHessians::generate(&config, 1).unwrap(), hessians);
    }
}
