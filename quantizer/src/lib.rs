//! Quantization for pgq artifacts.
//!
//! - [`scale`]: clip values (SDClip, absmax), fp16 scales with the `1e-7`
//!   floor, half-to-even code rounding: shared by every method.
//! - [`rtn`]: round-to-nearest quantization of a matrix, per row or
//!   groupwise.
//! - [`search`]: how each scale's clip is chosen: SDClip, absmax, or a
//!   percentile search scored by MSE or the Hessian diagonal, per row or
//!   per tensor.
//! - [`gptq`]: GPTQ of one matrix given its Hessian `X^T X / n` (act-order,
//!   static groups, damping retries), reusing [`scale`] and [`search`];
//!   checked against an independent NumPy reference
//!   (`tests/reference/gptq_ref.py`).
//! - [`pipeline`]: one call from source tensors to artifact bytes (plan,
//!   select, check Hessians, compute codes, measure, write with provenance):
//!   what the CLI, the demo and the Python package run.
//! - [`digest`]: the content digest of a set of tensors (provenance).
//! - [`checkpoint`]: safetensors checkpoints in (float tensors widened to
//!   f32, in the trainer's order) and out.
//! - [`recipe`]: ordered per-tensor TOML rules.
//! - [`policy`]: the [`Planner`] trait and the field's [`DefaultPolicy`]
//!   (fp16 for small tensors, int8 k 20 embeddings, int6 k 12.85 matrices).
//! - [`model`]: a whole checkpoint in parallel, as planned per tensor, with
//!   Hessians; a report per tensor measured on what decoders will
//!   reconstruct, beside plain RTN, in weight and output space.
//! - [`fidelity`], [`entropy`], the Hessian proxy ([`hessian_error`]): the
//!   measures, from pgq-metrics.
//! - [`demo`] (feature `demo`, default): a deterministic
//!   parameter-golf-shaped model (35.9M parameters by default) for
//!   benchmarks and tests, and [`synthetic`]: Hessians of
//!   correlated activations for its matrices.
//! - [`statusquo`]: the size of today's torch.save + BSHF + brotli encoding
//!   of the same codes, for side-by-side comparisons.
//!
//! ```
//! use pgq_quantizer::{quantize_model, DefaultPolicy, DemoConfig};
//! let sources = DemoConfig::tiny().generate(0).unwrap();
//! let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None).unwrap();
//! assert_eq!(model.tensors.len(), sources.len());
//! let report = &model.reports[1];
//! assert_eq!(report.name, "tok_emb.weight");
//! assert_eq!(report.method, "rtn-sdclip k=20 int8");
//! let fc = model.reports.iter().find(|r| r.name == "blocks.0.mlp.fc.weight").unwrap();
//! assert_eq!(fc.method, "rtn-sdclip k=12.85 int6");
//!
//! let entropy = pgq_quantizer::code_entropy(&model.tensors);
//! assert!(entropy.by_bits[&6].bits_per_code > 3.0);
//! ```

pub mod checkpoint;
// The measures live in pgq-metrics (the verifier and the viewer use them
// without the quantizer); re-exported under their old paths.
pub use pgq_metrics::{entropy, fidelity, parallel};
pub mod backend;
pub mod budget;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "demo")]
pub mod demo;
pub mod digest;
pub mod error;
pub mod gptq;
mod linalg;
pub mod lqer;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod pipeline;
pub mod policy;
pub mod recipe;
#[cfg(feature = "demo")]
mod rng;
pub mod rtn;
pub mod scale;
pub mod search;
pub mod statusquo;
#[cfg(feature = "demo")]
pub mod synthetic;

pub use checkpoint::{Checkpoint, CheckpointError};
#[cfg(feature = "demo")]
pub use demo::DemoConfig;
pub use digest::{sha256_hex, tensor_digest};
pub use entropy::{code_entropy, CodeHistogram, EntropyReport, EntropySummary};
pub use error::{ConfigError, DemoError, GptqError, QuantizeError, RtnError};
pub use fidelity::{compare, Fidelity};
pub use gptq::{quantize_gptq, GptqConfig, GptqResult};
pub use model::{
    matrix_codes, quantize_model, quantize_planned, quantize_planned_with, quantize_tensor,
    Baseline, HessianSource, MatrixCodes, NoHessians, Progress, QuantizedModel, SourceTensor,
    TensorReport,
};
pub use pgq_metrics::parallel::worker_count;
pub use pgq_metrics::{hessian_error, hessian_errors, MatrixError};
pub use policy::{ClipMode, DefaultPolicy, MatrixPlan, Method, Planner, TensorPlan};
pub use recipe::{Recipe, RecipeError, RulePlan};
pub use rtn::{quantize_rtn, quantize_rtn_with, QuantizedMatrix, RtnConfig};
pub use scale::{Clip, SCALE_FLOOR};
pub use search::{ChosenScales, ClipChoice, Objective, Scope};
pub use statusquo::{byte_shuffle, status_quo_bytes, status_quo_stream};
#[cfg(feature = "demo")]
pub use synthetic::{synthetic_hessian, DemoHessians};
