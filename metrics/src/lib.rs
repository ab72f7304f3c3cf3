//! Measures of quantized weights, shared by the quantizer's reports, the
//! verifier and the browser viewer:
//!
//! - [`fidelity`]: relative RMSE, max abs error, SNR of a reconstruction;
//! - [`hessian`]: the output-space proxy `tr(E H E^T) / tr(W H W^T)` and the
//!   checks every matrix and Hessian pass;
//! - [`entropy`]: order-0 entropy of the codes, per bit width and tensor;
//! - [`source`]: source tensors (f32) and Hessians by name;
//! - [`parallel`]: the work-sharing map the measures and the quantizer run on.
//!
//! Small on purpose: without the default `faer` feature it depends on
//! pgq-format, serde and thiserror only, so the viewer's wasm bundle does not
//! carry a linear-algebra library for one entropy function.

#![forbid(unsafe_code)]

pub mod entropy;
pub mod fidelity;
pub mod hessian;
pub mod parallel;
pub mod source;

pub use entropy::{code_entropy, CodeHistogram, EntropyReport, EntropySummary};
pub use fidelity::{compare, finite_or_null, Fidelity};
pub use hessian::{first_non_finite, hessian_error, hessian_errors, MatrixError};
pub use source::{HessianSource, NoHessians, SourceTensor};
