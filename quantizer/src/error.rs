//! Typed errors of the quantizer.
//!
//! Matrix-level kernels ([`crate::rtn`]) know rows and columns but not the
//! tensor's name; [`QuantizeError`] adds the name when a whole checkpoint is
//! quantized, so every message a user sees says which tensor and which
//! element.

/// A quantization setting that no kernel accepts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("bit width {0} is outside 2..=8")]
    Bits(u8),
    #[error("SDClip k = {0} must be finite and greater than 0")]
    ClipK(f32),
    #[error("a clip search needs 1 to 64 candidate percentiles, not {0}")]
    CandidateCount(usize),
    #[error("clip percentile {0} is outside (0, 1]")]
    Percentile(f32),
}

/// Why a matrix could not be quantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RtnError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Not a matrix of finite values.
    #[error(transparent)]
    Matrix(#[from] pgq_metrics::MatrixError),
    /// The weights are so large that the scale does not fit fp16. Clamping
    /// to f16::MAX instead would silently clip the whole group, so refuse.
    #[error("row {row}, group {group}: scale {scale:e} exceeds the fp16 maximum 65504")]
    ScaleOverflow {
        row: usize,
        group: usize,
        scale: f32,
    },
    #[error("a Hessian-weighted clip search needs the tensor's Hessian")]
    NeedsHessian,
    #[error("{weights} column weights given for {cols} columns")]
    WeightCount { weights: usize, cols: usize },
}

/// Why a checkpoint could not be quantized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantizeError {
    #[error("tensor `{tensor}`: {error}")]
    Rtn { tensor: String, error: RtnError },
    #[error("tensor `{tensor}`: GPTQ: {error}")]
    Gptq { tensor: String, error: GptqError },
    #[error("tensor `{tensor}`: Hessian: {error}")]
    Hessian {
        tensor: String,
        error: pgq_metrics::MatrixError,
    },
    #[error("tensor `{tensor}`: `{method}` needs the tensor's Hessian, and none was given")]
    MissingHessian { tensor: String, method: String },
    #[error(
        "tensor `{tensor}`: its Hessian holds {len} values, but its {cols} columns need \
         {cols}x{cols} (the Hessian is over the inputs: the last dimension)"
    )]
    HessianShape {
        tensor: String,
        len: usize,
        cols: usize,
    },
    #[error("{plans} plans given for {tensors} tensors")]
    PlanCount { plans: usize, tensors: usize },
    #[error(
        "tensor `{tensor}`: shape {shape:?} holds {} elements but {actual} values were given",
        match .expected { Some(n) => n.to_string(), None => "more than 2^64".into() }
    )]
    ShapeMismatch {
        tensor: String,
        shape: Vec<u64>,
        /// `None` when the element count overflows 64 bits.
        expected: Option<u64>,
        actual: usize,
    },
    #[error(
        "tensor `{tensor}`: element {index} is {value}, which fp16 passthrough cannot hold \
         (NaN, infinite or beyond ±65504)"
    )]
    PassthroughValue {
        tensor: String,
        index: usize,
        value: f32,
    },
}

/// Why a demo model could not be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DemoError {
    #[error("the demo model would hold more than {limit} parameters")]
    TooLarge { limit: u64 },
    #[error("tail degrees of freedom {0} give infinite variance: use 0 (Gaussian) or at least 3")]
    TailDof(u32),
}

/// Why GPTQ could not quantize a matrix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GptqError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("GPTQ block size must be at least 1")]
    BlockSize,
    #[error("GPTQ damping {0} must be finite and at least 0")]
    Damp(f64),
    #[error("GPTQ rate-distortion weight rdo = {0} must be finite and at least 0")]
    Rdo(f64),
    /// The matrix or its Hessian does not pass the checks of every measure.
    #[error(transparent)]
    Matrix(#[from] pgq_metrics::MatrixError),
    #[error("row {row}, group {group}: scale {scale:e} exceeds the fp16 maximum 65504")]
    ScaleOverflow {
        row: usize,
        group: usize,
        scale: f32,
    },
    /// Cholesky failed at every damping tried, the last being `damp` times
    /// the mean of the Hessian's diagonal.
    #[error(
        "the damped Hessian is not positive definite after {attempts} attempts \
         (last damping {damp} x mean diagonal)"
    )]
    NotPositiveDefinite { attempts: u32, damp: f64 },
}
