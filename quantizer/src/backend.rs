//! Where codes are computed: choosing a backend (`--device auto|cpu|cuda`)
//! and quantizing a model on it.
//!
//! The CPU backend is always there. The CUDA backend ([`crate::cuda`]) is
//! the `cuda` cargo feature (default): without it, `auto` is the CPU with a
//! note and `cuda` is an error, and nothing of cudarc is built.

use serde::Serialize;

use crate::error::QuantizeError;
use crate::model::{
    matrix_codes, quantize_planned_with, HessianSource, MatrixCodes, Progress, QuantizedModel,
    SourceTensor,
};
use crate::parallel::{map_largest_first, worker_count};
use crate::policy::TensorPlan;

#[cfg(feature = "cuda")]
use crate::cuda::{self, CudaError, Decision, Device};

/// Where `pgq quantize --device` asks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when a driver, a device and the CUDA libraries are there, else
    /// the CPU (saying why).
    Auto,
    Cpu,
    /// CUDA or a clear error.
    Cuda,
}

/// A ready backend.
pub enum Backend {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(Box<Device>),
}

impl Backend {
    /// `cpu` or `cuda`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            #[cfg(feature = "cuda")]
            Backend::Cuda(_) => "cuda",
        }
    }

    /// e.g. `cpu` or `cuda (NVIDIA H100 80GB HBM3, sm_90)`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu => "cpu".into(),
            #[cfg(feature = "cuda")]
            Backend::Cuda(d) => format!("cuda ({}, {})", d.name, d.arch),
        }
    }
}

/// The backend chosen, and for `auto` a one-line note when it fell back.
pub struct Selection {
    pub backend: Backend,
    pub note: Option<String>,
}

/// Why `--device cuda` cannot be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    /// What is missing or failed (the driver, a device, a library).
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Cuda(#[from] CudaError),
    /// This build has no CUDA backend.
    #[error("this pgq was built without its CUDA backend (pgq-quantizer's `cuda` feature)")]
    NotBuilt,
}

/// Chooses and opens the backend (device 0 for CUDA). With `auto`, any
/// CUDA failure (a missing library, no device, a failed start) falls back
/// to the CPU with a note; with `cuda` it is the error.
pub fn select(choice: DeviceChoice) -> Result<Selection, SelectError> {
    #[cfg(feature = "cuda")]
    {
        let found = match choice {
            DeviceChoice::Cpu => cuda::Probe::default(),
            _ => cuda::probe(),
        };
        match cuda::decide(choice, &found)? {
            Decision::Cpu { note } => Ok(Selection {
                backend: Backend::Cpu,
                note,
            }),
            Decision::Cuda => match Device::open(0) {
                Ok(device) => Ok(Selection {
                    backend: Backend::Cuda(Box::new(device)),
                    note: None,
                }),
                Err(why) if choice == DeviceChoice::Auto => Ok(Selection {
                    backend: Backend::Cpu,
                    note: Some(cuda::fallback_note(&why)),
                }),
                Err(why) => Err(why.into()),
            },
        }
    }
    #[cfg(not(feature = "cuda"))]
    match choice {
        DeviceChoice::Cpu => Ok(Selection {
            backend: Backend::Cpu,
            note: None,
        }),
        DeviceChoice::Auto => Ok(Selection {
            backend: Backend::Cpu,
            note: Some(format!(
                "--device auto: quantizing on the CPU: {}",
                SelectError::NotBuilt
            )),
        }),
        DeviceChoice::Cuda => Err(SelectError::NotBuilt),
    }
}

/// Why a run failed: a tensor (as on the CPU path), or the device.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
    #[cfg(feature = "cuda")]
    #[error("CUDA backend: {0}")]
    Cuda(#[from] CudaError),
}

/// A tensor the CUDA backend left to the CPU, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fallback {
    pub tensor: String,
    pub reason: String,
}

/// How the codes were computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    /// [`Backend::describe`].
    pub backend: String,
    /// Matrices whose codes the backend computed.
    pub matrices: usize,
    /// CUDA only: tensors redone on the CPU, with the reason.
    pub fallbacks: Vec<Fallback>,
    /// Computing every matrix's codes, host to host (uploads and downloads
    /// included on CUDA), in milliseconds.
    pub codes_ms: f64,
    /// CUDA only: the GPU's work with the data resident, from device
    /// events around it (first kernel to last; uploads and downloads
    /// excluded, the host's checks of the damping retries included).
    pub device_ms: Option<f64>,
}

/// How a model runs on a backend.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Worker threads on the CPU (0 = one per core).
    pub threads: usize,
    /// Called after each tensor's report, from the worker threads.
    pub progress: Option<Progress<'a>>,
}

impl RunOptions<'_> {
    /// `threads` workers, no progress.
    pub fn threads(threads: usize) -> Self {
        RunOptions {
            threads,
            progress: None,
        }
    }
}

/// The codes of every quantized tensor of `sources` (`None` where the
/// backend left the tensor, with its error if any, to the CPU path of
/// [`quantize_planned_with`]).
pub fn compute_codes(
    backend: &Backend,
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    options: &RunOptions,
) -> Result<(Vec<Option<MatrixCodes>>, RunInfo), BackendError> {
    let started = std::time::Instant::now();
    let matrices: Vec<usize> = (0..sources.len().min(plans.len()))
        .filter(|&i| matches!(plans[i], TensorPlan::Quantize(_)))
        .collect();
    let mut codes: Vec<Option<MatrixCodes>> = vec![None; sources.len()];
    let mut info = RunInfo {
        backend: backend.describe(),
        matrices: 0,
        fallbacks: Vec::new(),
        codes_ms: 0.0,
        device_ms: None,
    };
    match backend {
        Backend::Cpu => {
            let workers = worker_count(options.threads);
            let inner = if matrices.len() >= workers {
                1
            } else {
                workers
            };
            let results = map_largest_first(
                &matrices,
                workers,
                |&i| sources[i].values.len() as u64,
                |&i| match &plans[i] {
                    TensorPlan::Quantize(plan) => {
                        matrix_codes(&sources[i], plan, hessians.hessian(&sources[i].name), inner)
                            .ok()
                    }
                    TensorPlan::Keep => None,
                },
                |_, _| {},
            );
            for (&i, result) in matrices.iter().zip(results) {
                info.matrices += usize::from(result.is_some());
                codes[i] = result;
            }
        }
        #[cfg(feature = "cuda")]
        Backend::Cuda(device) => {
            cuda::device_codes(
                device, sources, plans, hessians, &matrices, &mut codes, &mut info,
            )?;
        }
    }
    info.codes_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((codes, info))
}

/// [`crate::quantize_planned`] on `backend`: the codes of every matrix
/// from the backend (what CUDA leaves, on the CPU), then every report
/// measured on the CPU from the codes.
pub fn quantize_on(
    backend: &Backend,
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    options: &RunOptions,
) -> Result<(QuantizedModel, RunInfo), BackendError> {
    let (codes, info) = compute_codes(backend, sources, plans, hessians, options)?;
    let model = quantize_planned_with(
        sources,
        plans,
        hessians,
        options.threads,
        options.progress,
        &codes,
    )?;
    Ok((model, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selecting_the_cpu_touches_no_library() {
        let selection = select(DeviceChoice::Cpu).unwrap();
        assert_eq!(selection.backend.name(), "cpu");
        assert!(selection.note.is_none());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_auto_is_the_cpu_and_cuda_an_error() {
        let selection = select(DeviceChoice::Auto).unwrap();
        assert_eq!(selection.backend.name(), "cpu");
        assert!(selection.note.unwrap().contains("without its CUDA backend"));
        assert_eq!(
            select(DeviceChoice::Cuda).err(),
            Some(SelectError::NotBuilt)
        );
    }
}
