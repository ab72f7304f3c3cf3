//! Which tensors get which method: the [`Planner`] trait and the field's
//! default policy (what `pgq quantize` does without a recipe).

use serde::Serialize;

use crate::rtn::RtnConfig;
use crate::scale::Clip;
use crate::search::ClipChoice;

/// How a quantized tensor's codes are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Method {
    /// Round to nearest, row by row.
    Rtn,
    /// GPTQ with the tensor's Hessian.
    Gptq {
        /// Process columns in order of decreasing diag H.
        act_order: bool,
        /// Fraction of mean(diag H) added to the diagonal.
        damp: f32,
        /// Columns per lazy-update block.
        block_size: u32,
        /// Rate-distortion weight (0: plain GPTQ; [`crate::GptqConfig::rdo`]).
        #[serde(skip_serializing_if = "is_zero")]
        rdo: f32,
    },
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

/// How one matrix is quantized: method, width, scale groups and clip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixPlan {
    #[serde(flatten)]
    pub method: Method,
    /// 2..=8.
    pub bits: u8,
    /// Columns per scale group; 0 = one scale per row.
    pub group_size: u32,
    pub clip: ClipChoice,
}

impl From<RtnConfig> for MatrixPlan {
    fn from(config: RtnConfig) -> Self {
        MatrixPlan {
            method: Method::Rtn,
            bits: config.bits,
            group_size: config.group_size,
            clip: config.clip.into(),
        }
    }
}

impl MatrixPlan {
    /// The plain RTN configuration, when this is RTN with SDClip or absmax.
    pub fn as_rtn(&self) -> Option<RtnConfig> {
        match self.method {
            Method::Rtn => Some(RtnConfig {
                bits: self.bits,
                group_size: self.group_size,
                clip: self.clip.as_clip()?,
            }),
            Method::Gptq { .. } => None,
        }
    }

    /// Whether running the plan needs the tensor's Hessian (GPTQ, or a
    /// Hessian-weighted clip search).
    pub fn needs_hessian(&self) -> bool {
        matches!(self.method, Method::Gptq { .. }) || self.clip.needs_hessian()
    }

    /// `{rtn|gptq}-{clip} int{bits}[ g{group}]`, e.g.
    /// `gptq-sdclip k=12.85 int6`; for plain RTN it equals
    /// [`RtnConfig::describe`].
    pub fn describe(&self) -> String {
        let name = match self.method {
            Method::Rtn => "rtn",
            Method::Gptq { .. } => "gptq",
        };
        label(name, self.bits, self.group_size, &self.clip)
    }

    /// The plain-RTN comparison reports put beside this plan: same width
    /// and groups, the same clip when it is SDClip or absmax, absmax for a
    /// percentile search (its `p = 1` candidate). `None` when this plan is
    /// already that.
    pub fn rtn_baseline(&self) -> Option<RtnConfig> {
        let baseline = RtnConfig {
            bits: self.bits,
            group_size: self.group_size,
            clip: self.clip.as_clip().unwrap_or(Clip::Absmax),
        };
        (self.as_rtn() != Some(baseline)).then_some(baseline)
    }
}

/// `{method}-{clip} int{bits}[ g{group}]`.
pub(crate) fn label(method: &str, bits: u8, group_size: u32, clip: &ClipChoice) -> String {
    let mut label = format!("{method}-{} int{bits}", clip.describe());
    if group_size > 0 {
        label.push_str(&format!(" g{group_size}"));
    }
    label
}

/// What to do with one tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "plan", rename_all = "lowercase")]
pub enum TensorPlan {
    /// Store as fp16 passthrough.
    Keep,
    /// Quantize as planned.
    Quantize(MatrixPlan),
}

/// Decides a plan per tensor. The default policy implements it now;
/// recipes (ordered first-match rules) will implement it too.
pub trait Planner {
    fn plan(&self, name: &str, shape: &[u64]) -> TensorPlan;
    /// A one-line description for provenance metadata.
    fn describe(&self) -> String;
}

/// How clip values are chosen under the default policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipMode {
    /// `k * std(row)` with the policy's k for the tensor's class.
    SdClip,
    /// `max |row|`; the k values are ignored.
    Absmax,
}

/// The records' defaults, every number a field so the CLI can expose it.
///
/// In order: tensors of at most `keep_max_elements` elements and tensors of
/// rank below 2 stay fp16 (norm gains, biases and other control tensors
/// are few bytes and sensitive); names containing `embed_marker` get
/// `embed_bits` at `embed_k`; every other matrix gets `matrix_bits` at
/// `matrix_k`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultPolicy {
    pub keep_max_elements: u64,
    pub matrix_bits: u8,
    pub matrix_k: f32,
    pub embed_bits: u8,
    pub embed_k: f32,
    /// A name containing this (ASCII case-insensitive) is an embedding.
    pub embed_marker: String,
    /// 0 = one scale per row.
    pub group_size: u32,
    pub clip_mode: ClipMode,
}

impl Default for DefaultPolicy {
    fn default() -> Self {
        DefaultPolicy {
            keep_max_elements: 65_536,
            matrix_bits: 6,
            matrix_k: 12.85,
            embed_bits: 8,
            embed_k: 20.0,
            embed_marker: "emb".into(),
            group_size: 0,
            clip_mode: ClipMode::SdClip,
        }
    }
}

impl DefaultPolicy {
    fn clip(&self, k: f32) -> Clip {
        match self.clip_mode {
            ClipMode::SdClip => Clip::SdClip { k },
            ClipMode::Absmax => Clip::Absmax,
        }
    }

    fn is_embedding(&self, name: &str) -> bool {
        let marker = self.embed_marker.to_ascii_lowercase();
        !marker.is_empty() && name.to_ascii_lowercase().contains(&marker)
    }

    fn rtn(&self, bits: u8, k: f32) -> TensorPlan {
        TensorPlan::Quantize(
            RtnConfig {
                bits,
                group_size: self.group_size,
                clip: self.clip(k),
            }
            .into(),
        )
    }
}

impl Planner for DefaultPolicy {
    fn plan(&self, name: &str, shape: &[u64]) -> TensorPlan {
        // A shape whose count overflows is certainly not small.
        let elements = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX);
        if elements <= self.keep_max_elements || shape.len() < 2 {
            TensorPlan::Keep
        } else if self.is_embedding(name) {
            self.rtn(self.embed_bits, self.embed_k)
        } else {
            self.rtn(self.matrix_bits, self.matrix_k)
        }
    }

    fn describe(&self) -> String {
        let class = |bits: u8, k: f32| {
            let mut label = format!("int{bits} {}", self.clip(k).describe());
            if self.group_size > 0 {
                label.push_str(&format!(" g{}", self.group_size));
            }
            label
        };
        format!(
            "default: f16 if <= {} elements or rank < 2; *{}* rtn {}; else rtn {}",
            self.keep_max_elements,
            self.embed_marker,
            class(self.embed_bits, self.embed_k),
            class(self.matrix_bits, self.matrix_k),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantized(plan: TensorPlan) -> RtnConfig {
        match plan {
            TensorPlan::Quantize(plan) => plan.as_rtn().expect("an RTN plan"),
            TensorPlan::Keep => panic!("expected a quantize plan"),
        }
    }

    #[test]
    fn small_tensors_are_kept() {
        let policy = DefaultPolicy::default();
        assert_eq!(policy.plan("blocks.0.attn_scale", &[512]), TensorPlan::Keep);
        assert_eq!(policy.plan("skip_weights", &[5, 512]), TensorPlan::Keep);
        // Exactly at the threshold is still kept; one more is not.
        assert_eq!(policy.plan("w", &[256, 256]), TensorPlan::Keep);
        assert_ne!(policy.plan("w", &[256, 257]), TensorPlan::Keep);
        // Small embeddings too.
        assert_eq!(
            policy.plan("embeddings.token_type_embeddings.weight", &[2, 384]),
            TensorPlan::Keep
        );
        assert_eq!(policy.plan("scalar", &[]), TensorPlan::Keep);
    }

    #[test]
    fn large_vectors_are_kept() {
        let policy = DefaultPolicy::default();
        assert_eq!(policy.plan("big.bias", &[100_000]), TensorPlan::Keep);
        assert_eq!(policy.plan("tok_emb.bias", &[100_000]), TensorPlan::Keep);
    }

    #[test]
    fn embeddings_get_int8_k20() {
        let policy = DefaultPolicy::default();
        for name in [
            "tok_emb.weight",
            "embeddings.word_embeddings.weight",
            "Wte_EMB",
        ] {
            let config = quantized(policy.plan(name, &[8192, 512]));
            assert_eq!(config.bits, 8);
            assert_eq!(config.clip, Clip::SdClip { k: 20.0 });
            assert_eq!(config.group_size, 0);
        }
    }

    #[test]
    fn other_matrices_get_int6_k12_85() {
        let policy = DefaultPolicy::default();
        let config = quantized(policy.plan("blocks.3.mlp.fc.weight", &[2048, 512]));
        assert_eq!(config.bits, 6);
        assert_eq!(config.clip, Clip::SdClip { k: 12.85 });
        // Rank 3 counts as a matrix (rows = product of leading dims).
        let config = quantized(policy.plan("conv.weight", &[64, 32, 40]));
        assert_eq!(config.bits, 6);
    }

    #[test]
    fn overflowing_shapes_are_not_kept() {
        let policy = DefaultPolicy::default();
        assert_ne!(policy.plan("w", &[u64::MAX, 4]), TensorPlan::Keep);
    }

    #[test]
    fn fields_change_the_plan() {
        let policy = DefaultPolicy {
            matrix_bits: 7,
            group_size: 128,
            clip_mode: ClipMode::Absmax,
            embed_marker: String::new(),
            ..DefaultPolicy::default()
        };
        let config = quantized(policy.plan("tok_emb.weight", &[8192, 512]));
        assert_eq!(
            config,
            RtnConfig {
                bits: 7,
                group_size: 128,
                clip: Clip::Absmax
            }
        );
    }

    #[test]
    fn describe_lists_the_numbers() {
        assert_eq!(
            DefaultPolicy::default().describe(),
            "default: f16 if <= 65536 elements or rank < 2; *emb* rtn int8 sdclip k=20; \
             else rtn int6 sdclip k=12.85"
        );
    }
}
