//! What is measured: source tensors as f32 values, and Hessians by name.

use std::collections::BTreeMap;

/// A source tensor as f32 values (callers widen f16/bf16 checkpoints).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTensor {
    pub name: String,
    pub shape: Vec<u64>,
    /// Row-major, `shape.iter().product()` values.
    pub values: Vec<f32>,
}

impl From<(String, Vec<u64>, Vec<f32>)> for SourceTensor {
    fn from((name, shape, values): (String, Vec<u64>, Vec<f32>)) -> Self {
        SourceTensor {
            name,
            shape,
            values,
        }
    }
}

/// Hessians by tensor name: `H = X^T X / n` of the inputs of the tensor's
/// matrix view (`cols x cols`, row-major f32).
pub trait HessianSource: Sync {
    fn hessian(&self, name: &str) -> Option<&[f32]>;
}

impl HessianSource for BTreeMap<String, Vec<f32>> {
    fn hessian(&self, name: &str) -> Option<&[f32]> {
        self.get(name).map(Vec::as_slice)
    }
}

/// No Hessians: RTN plans only, and no output-space figures.
pub struct NoHessians;

impl HessianSource for NoHessians {
    fn hessian(&self, _: &str) -> Option<&[f32]> {
        None
    }
}
