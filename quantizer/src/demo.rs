//! A deterministic, parameter-golf-shaped f32 model for benchmarks and demos.
//!
//! Names and shapes follow parameter-golf's `train_gpt.py` (SP8192 era) in
//! `state_dict` order (a module's own parameters before its children's).
//! Values are synthetic but shaped like trained weights where it matters for
//! quantization: each row has its own scale (log-normal around an init-like
//! std) and entries have Student-t tails. Each tensor's values depend only on
//! the seed, its name and its shape, never on thread count or order.

use serde::Serialize;

use crate::error::DemoError;
use crate::model::SourceTensor;
use crate::parallel::map_largest_first;
use crate::rng::{fnv1a64, splitmix64, Sampler};

/// The largest model [`DemoConfig::generate`] builds (8 GiB of f32).
pub const MAX_DEMO_PARAMETERS: u64 = 1 << 31;
/// The most blocks a demo model may have (each adds ten tensors).
pub const MAX_DEMO_LAYERS: u64 = 4096;

/// Sizes of the demo model. `Default` is the field's typical 35.9M model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DemoConfig {
    pub vocab: u64,
    pub width: u64,
    pub layers: u64,
    /// Output width of c_k and c_v (grouped-query attention).
    pub kv_width: u64,
    pub mlp_mult: u64,
    pub heads: u64,
    pub seed: u64,
    /// Degrees of freedom of the Student-t entries (5 by default; lower is
    /// heavier-tailed); 0 = Gaussian entries, as in field.md's size table.
    pub tail_dof: u32,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            vocab: 8192,
            width: 512,
            layers: 11,
            kv_width: 256,
            mlp_mult: 4,
            heads: 8,
            seed: DEFAULT_SEED,
            tail_dof: 5,
        }
    }
}

/// "PGQ_DEMO" in ASCII.
const DEFAULT_SEED: u64 = 0x5047_515F_4445_4D4F;

/// Log-normal spread of row stds: `std_row = base * exp(ROW_SPREAD * N(0,1))`.
const ROW_SPREAD: f64 = 0.35;
/// Embedding rows spread more: rare tokens' rows stay near their init.
const EMBED_ROW_SPREAD: f64 = 0.5;
/// Init-like std of input-side matrices and the embedding.
const BASE_STD: f64 = 0.02;
/// Output projections are initialised smaller (GPT-2 style scaling).
const PROJ_STD: f64 = 0.01;

/// How one tensor's values are drawn.
#[derive(Debug, Clone, PartialEq)]
enum Init {
    /// Rows of `row_std * unit_t`, `row_std` log-normal around `base_std`.
    Weights { base_std: f64, row_spread: f64 },
    /// Control values: row r is `centers[r] + noise * N(0,1)`.
    Control { centers: Vec<f64>, noise: f64 },
}

#[derive(Debug, Clone, PartialEq)]
struct TensorSpec {
    name: String,
    shape: Vec<u64>,
    init: Init,
}

impl DemoConfig {
    /// A small model for fast tests (about 1.0M parameters): vocab 1024,
    /// width 192, 2 layers, kv 96, 4 heads. Just large enough that the
    /// default policy quantizes the embedding (int8) and the MLP matrices
    /// (int6) while keeping the attention matrices and controls as fp16.
    pub fn tiny() -> Self {
        DemoConfig {
            vocab: 1024,
            width: 192,
            layers: 2,
            kv_width: 96,
            mlp_mult: 4,
            heads: 4,
            ..DemoConfig::default()
        }
    }

    /// Total parameters, or `None` when the count overflows 64 bits.
    pub fn parameter_count(&self) -> Option<u64> {
        let w = self.width;
        let hidden = self.mlp_mult.checked_mul(w)?;
        let per_block = [
            w.checked_mul(w)?.checked_mul(2)?,             // c_q, proj
            self.kv_width.checked_mul(w)?.checked_mul(2)?, // c_k, c_v
            hidden.checked_mul(w)?.checked_mul(2)?,        // mlp fc, proj
            w.checked_mul(4)?,                             // attn_scale, mlp_scale, resid_mix
            self.heads,                                    // q_gain
        ]
        .iter()
        .try_fold(0u64, |sum, &n| sum.checked_add(n))?;
        let embedding = self.vocab.checked_mul(w)?;
        let skip = (self.layers / 2).checked_mul(w)?;
        self.layers
            .checked_mul(per_block)?
            .checked_add(embedding)?
            .checked_add(skip)
    }

    /// Checks that the model can be generated: finite-variance tails and a
    /// bounded size.
    pub fn validate(&self) -> Result<(), DemoError> {
        if matches!(self.tail_dof, 1 | 2) {
            return Err(DemoError::TailDof(self.tail_dof));
        }
        let too_large = DemoError::TooLarge {
            limit: MAX_DEMO_PARAMETERS,
        };
        if self.layers > MAX_DEMO_LAYERS {
            return Err(too_large);
        }
        match self.parameter_count() {
            Some(n) if n <= MAX_DEMO_PARAMETERS => Ok(()),
            _ => Err(too_large),
        }
    }

    /// Names and shapes, in `state_dict` order, without values.
    pub fn layout(&self) -> Result<Vec<(String, Vec<u64>)>, DemoError> {
        self.validate()?;
        Ok(self
            .specs()
            .into_iter()
            .map(|spec| (spec.name, spec.shape))
            .collect())
    }

    /// Generates every tensor on `threads` workers (0 = one per core).
    pub fn generate(&self, threads: usize) -> Result<Vec<SourceTensor>, DemoError> {
        self.validate()?;
        let specs = self.specs();
        Ok(map_largest_first(
            &specs,
            threads,
            |spec| spec.shape.iter().product(),
            |spec| self.generate_tensor(spec),
            |_, _| {},
        ))
    }

    fn specs(&self) -> Vec<TensorSpec> {
        let (w, kv, hidden) = (self.width, self.kv_width, self.mlp_mult * self.width);
        let weights = |name: String, rows: u64, cols: u64, base_std: f64| TensorSpec {
            name,
            shape: vec![rows, cols],
            init: Init::Weights {
                base_std,
                row_spread: ROW_SPREAD,
            },
        };
        let control = |name: String, shape: Vec<u64>, centers: Vec<f64>, noise: f64| TensorSpec {
            name,
            shape,
            init: Init::Control { centers, noise },
        };

        let mut specs = vec![
            // Encoder-decoder skip connections, initialised to ones.
            control(
                "skip_weights".into(),
                vec![self.layers / 2, w],
                vec![1.0],
                0.05,
            ),
            TensorSpec {
                name: "tok_emb.weight".into(),
                shape: vec![self.vocab, w],
                init: Init::Weights {
                    base_std: BASE_STD,
                    row_spread: EMBED_ROW_SPREAD,
                },
            },
        ];
        for i in 0..self.layers {
            let p = format!("blocks.{i}");
            specs.extend([
                control(format!("{p}.attn_scale"), vec![w], vec![1.0], 0.05),
                control(format!("{p}.mlp_scale"), vec![w], vec![1.0], 0.05),
                // Row 0 mixes the stream (init 1), row 1 the input x0 (init 0).
                control(format!("{p}.resid_mix"), vec![2, w], vec![1.0, 0.05], 0.03),
                control(format!("{p}.attn.q_gain"), vec![self.heads], vec![1.5], 0.1),
                weights(format!("{p}.attn.c_q.weight"), w, w, BASE_STD),
                weights(format!("{p}.attn.c_k.weight"), kv, w, BASE_STD),
                weights(format!("{p}.attn.c_v.weight"), kv, w, BASE_STD),
                weights(format!("{p}.attn.proj.weight"), w, w, PROJ_STD),
                weights(format!("{p}.mlp.fc.weight"), hidden, w, BASE_STD),
                weights(format!("{p}.mlp.proj.weight"), w, hidden, PROJ_STD),
            ]);
        }
        specs
    }

    fn generate_tensor(&self, spec: &TensorSpec) -> SourceTensor {
        let mut sampler = Sampler::new(splitmix64(self.seed ^ fnv1a64(spec.name.as_bytes())));
        let cols = spec.shape.last().copied().unwrap_or(1) as usize;
        let rows = spec.shape.iter().rev().skip(1).product::<u64>() as usize;
        let mut values = Vec::with_capacity(rows * cols);
        for row in 0..rows {
            match &spec.init {
                Init::Weights {
                    base_std,
                    row_spread,
                } => {
                    let row_std = base_std * (row_spread * sampler.normal()).exp();
                    values.extend(
                        (0..cols).map(|_| (row_std * sampler.unit_student_t(self.tail_dof)) as f32),
                    );
                }
                Init::Control { centers, noise } => {
                    let center = centers.get(row).or(centers.last()).copied().unwrap_or(0.0);
                    values.extend((0..cols).map(|_| (center + noise * sampler.normal()) as f32));
                }
            }
        }
        SourceTensor {
            name: spec.name.clone(),
            shape: spec.shape.clone(),
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_layout_has_the_field_shapes() {
        let config = DemoConfig::default();
        let layout = config.layout().unwrap();
        let shape_of = |name: &str| {
            layout
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| panic!("missing {name}"))
        };
        assert_eq!(shape_of("tok_emb.weight"), vec![8192, 512]);
        assert_eq!(shape_of("skip_weights"), vec![5, 512]);
        assert_eq!(shape_of("blocks.0.attn.c_q.weight"), vec![512, 512]);
        assert_eq!(shape_of("blocks.10.attn.c_k.weight"), vec![256, 512]);
        assert_eq!(shape_of("blocks.10.attn.c_v.weight"), vec![256, 512]);
        assert_eq!(shape_of("blocks.5.attn.proj.weight"), vec![512, 512]);
        assert_eq!(shape_of("blocks.5.mlp.fc.weight"), vec![2048, 512]);
        assert_eq!(shape_of("blocks.5.mlp.proj.weight"), vec![512, 2048]);
        assert_eq!(shape_of("blocks.3.attn_scale"), vec![512]);
        assert_eq!(shape_of("blocks.3.mlp_scale"), vec![512]);
        assert_eq!(shape_of("blocks.3.resid_mix"), vec![2, 512]);
        assert_eq!(shape_of("blocks.3.attn.q_gain"), vec![8]);
        assert_eq!(layout.len(), 2 + 11 * 10);
        assert!(!layout.iter().any(|(n, _)| n.starts_with("blocks.11.")));
        assert_eq!(layout[0].0, "skip_weights");
        assert_eq!(layout[1].0, "tok_emb.weight");
    }

    #[test]
    fn default_parameter_count() {
        let config = DemoConfig::default();
        let matrices = 8192 * 512 + 11 * (512 * 512 * 2 + 256 * 512 * 2 + 2048 * 512 * 2);
        assert_eq!(matrices, 35_913_728);
        let controls = 11 * (512 + 512 + 2 * 512 + 8) + 5 * 512;
        assert_eq!(config.parameter_count(), Some(matrices + controls));
        assert_eq!(config.parameter_count(), Some(35_938_904));
        let from_layout: u64 = config
            .layout()
            .unwrap()
            .iter()
            .map(|(_, s)| s.iter().product::<u64>())
            .sum();
        assert_eq!(Some(from_layout), config.parameter_count());
    }

    #[test]
    fn tiny_generation_is_deterministic_and_thread_independent() {
        let config = DemoConfig::tiny();
        let one = config.generate(1).unwrap();
        let two = config.generate(2).unwrap();
        assert_eq!(one, two);
        let count: usize = one.iter().map(|t| t.values.len()).sum();
        assert_eq!(Some(count as u64), config.parameter_count());
        for tensor in &one {
            let n: u64 = tensor.shape.iter().product();
            assert_eq!(n as usize, tensor.values.len(), "{}", tensor.name);
            assert!(
                tensor.values.iter().all(|v| v.is_finite()),
                "{}",
                tensor.name
            );
        }
        let other_seed = DemoConfig { seed: 1, ..config }.generate(2).unwrap();
        assert_ne!(one, other_seed);
    }

    #[test]
    fn values_look_like_weights_and_controls() {
        let tensors = DemoConfig::tiny().generate(2).unwrap();
        let get = |name: &str| {
            tensors
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("missing {name}"))
        };
        let rms = |v: &[f32]| {
            (v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let fc = get("blocks.0.mlp.fc.weight");
        let r = rms(&fc.values);
        assert!(r > 0.012 && r < 0.035, "fc rms {r}");
        let proj = get("blocks.0.mlp.proj.weight");
        assert!(rms(&proj.values) < r, "proj is smaller");
        let scale = get("blocks.1.attn_scale");
        let mean = scale.values.iter().sum::<f32>() / scale.values.len() as f32;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        let mix = get("blocks.0.resid_mix");
        let second_row_mean = mix.values[192..].iter().sum::<f32>() / 192.0;
        assert!(
            second_row_mean > 0.0 && second_row_mean < 0.15,
            "{second_row_mean}"
        );
    }

    #[test]
    fn a_tensor_does_not_depend_on_the_others() {
        // Adding layers must not change the values of the existing ones.
        let small = DemoConfig::tiny().generate(1).unwrap();
        let deeper = DemoConfig {
            layers: 3,
            ..DemoConfig::tiny()
        }
        .generate(2)
        .unwrap();
        let find = |set: &[SourceTensor], name: &str| {
            set.iter()
                .find(|t| t.name == name)
                .map(|t| t.values.clone())
        };
        let name = "blocks.1.attn.c_q.weight";
        assert_eq!(find(&small, name), find(&deeper, name));
    }

    #[test]
    fn oversized_and_bad_configs_are_refused() {
        let huge = DemoConfig {
            vocab: 1 << 40,
            ..DemoConfig::default()
        };
        assert!(matches!(huge.generate(1), Err(DemoError::TooLarge { .. })));
        let overflow = DemoConfig {
            width: u64::MAX,
            ..DemoConfig::default()
        };
        assert_eq!(overflow.parameter_count(), None);
        assert!(overflow.layout().is_err());
        let deep = DemoConfig {
            layers: u64::MAX,
            width: 0,
            ..DemoConfig::default()
        };
        assert!(deep.layout().is_err());
        let cauchy = DemoConfig {
            tail_dof: 1,
            ..DemoConfig::tiny()
        };
        assert_eq!(cauchy.generate(1), Err(DemoError::TailDof(1)));
        let gaussian = DemoConfig {
            tail_dof: 0,
            ..DemoConfig::tiny()
        };
        assert!(gaussian.generate(1).is_ok());
    }
}
