//! The CUDA backend (work in progress).
pub mod compile;
pub mod error;
pub use error::CudaError;
