//! The CUDA backend: the same quantization as the CPU path (RTN, SDClip /
//! absmax scales, percentile clip searches, GPTQ with act-order, static
//! groups and damping retries), for every matrix of a model in one batch on
//! one GPU, through cudarc with every library loaded at run time.
//!
//! - [`probe`]: what the machine has (driver, devices, NVRTC, cuBLAS,
//!   cuSOLVER), found without creating a context;
//! - [`compile`]: the CUDA C kernels (`kernels/*.cu`), compiled by NVRTC
//!   once per process and architecture;
//! - [`layout`]: descriptors, arenas and the sweep's task table (host-side,
//!   unit-tested without a GPU);
//! - `run`: the batch on the device;
//! - this module: choosing a backend (`--device auto|cpu|cuda`) and
//!   quantizing a model on it, with a per-tensor CPU fallback that always
//!   says why.
//!
//! docs/CUDA.md describes the design, the precision and how it is checked.

pub mod compile;
mod error;
pub mod layout;
pub mod probe;
mod run;
pub mod selftest;

use serde::Serialize;

use crate::error::QuantizeError;
use crate::model::{
    check_element_count, matrix_codes, matrix_shape, quantize_planned_with, HessianSource,
    MatrixCodes, Progress, QuantizedModel, SourceTensor,
};
use crate::parallel::{map_largest_first, worker_count};
use crate::policy::{Method, TensorPlan};

pub use error::CudaError;
pub use layout::{GptqSpec, JobSpec};
pub use probe::{probe, DeviceInfo, Probe};
pub use run::Device;

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

/// What [`decide`] chose.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The CPU; `note` says why when CUDA was possible in principle.
    Cpu {
        note: Option<String>,
    },
    Cuda,
}

/// The backend for `choice` on a machine that offers `probe`.
pub fn decide(choice: DeviceChoice, probe: &Probe) -> Result<Decision, CudaError> {
    match (choice, probe.unavailable()) {
        (DeviceChoice::Cpu, _) => Ok(Decision::Cpu { note: None }),
        (DeviceChoice::Cuda, Some(why)) => Err(why),
        (DeviceChoice::Auto, Some(why)) => Ok(Decision::Cpu {
            note: Some(fallback_note(&why)),
        }),
        (_, None) => Ok(Decision::Cuda),
    }
}

fn fallback_note(why: &CudaError) -> String {
    format!("--device auto: quantizing on the CPU, since CUDA is not available: {why}")
}

/// A ready backend.
pub enum Backend {
    Cpu,
    Cuda(Box<Device>),
}

impl Backend {
    /// `cpu` or `cuda`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda(_) => "cuda",
        }
    }

    /// e.g. `cpu` or `cuda (NVIDIA H100 80GB HBM3, sm_90)`.
    pub fn describe(&self) -> String {
        match self {
            Backend::Cpu => "cpu".into(),
            Backend::Cuda(d) => format!("cuda ({}, {})", d.name, d.arch),
        }
    }
}

/// The backend chosen, and for `auto` a one-line note when it fell back.
pub struct Selection {
    pub backend: Backend,
    pub note: Option<String>,
}

/// Chooses and opens the backend (device 0 for CUDA). With `auto`, any
/// CUDA failure (a missing library, no device, a failed start) falls back
/// to the CPU with a note; with `cuda` it is the error.
pub fn select(choice: DeviceChoice) -> Result<Selection, CudaError> {
    let found = match choice {
        DeviceChoice::Cpu => Probe::default(),
        _ => probe(),
    };
    match decide(choice, &found)? {
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
                note: Some(fallback_note(&why)),
            }),
            Err(why) => Err(why),
        },
    }
}

/// Why a run failed: a tensor (as on the CPU path), or the device.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Quantize(#[from] QuantizeError),
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

/// The codes of every quantized tensor of `sources` (`None` where the
/// backend left the tensor, with its error if any, to the CPU path of
/// [`quantize_planned_with`]).
pub fn compute_codes(
    backend: &Backend,
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    threads: usize,
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
            let workers = worker_count(threads);
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
        Backend::Cuda(device) => {
            let mut jobs = Vec::new();
            let mut owners = Vec::new();
            for &i in &matrices {
                let source = &sources[i];
                match cuda_job(source, &plans[i], hessians.hessian(&source.name)) {
                    Ok(job) => {
                        jobs.push(job);
                        owners.push(i);
                    }
                    Err(reason) => info.fallbacks.push(Fallback {
                        tensor: source.name.clone(),
                        reason,
                    }),
                }
            }
            if !jobs.is_empty() {
                let batch = device.run(&jobs)?;
                info.device_ms = Some(batch.device_ms);
                for (&i, outcome) in owners.iter().zip(batch.outcomes) {
                    match outcome {
                        Ok(result) => {
                            info.matrices += 1;
                            codes[i] = Some(result);
                        }
                        Err(reason) => info.fallbacks.push(Fallback {
                            tensor: sources[i].name.clone(),
                            reason,
                        }),
                    }
                }
            }
        }
    }
    info.codes_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok((codes, info))
}

/// The device job for one tensor, or why the CPU should do it.
fn cuda_job<'a>(
    source: &'a SourceTensor,
    plan: &TensorPlan,
    hessian: Option<&'a [f32]>,
) -> Result<run::Job<'a>, String> {
    let TensorPlan::Quantize(plan) = plan else {
        return Err("kept as fp16".into());
    };
    let cpu_reports = |what: &str| format!("{what} (the CPU path reports it)");
    check_element_count(source).map_err(|_| cpu_reports("shape and values disagree"))?;
    let (rows, cols) = matrix_shape(source).map_err(|_| cpu_reports("shape too large"))?;
    let gptq = match plan.method {
        Method::Rtn => None,
        Method::Gptq {
            act_order,
            damp,
            block_size,
        } => Some(GptqSpec {
            act_order,
            damp: f64::from(damp),
            block_size: block_size as usize,
        }),
    };
    let spec = JobSpec {
        rows,
        cols,
        bits: plan.bits,
        group_size: plan.group_size,
        clip: plan.clip.clone(),
        gptq,
    };
    let hessian = match hessian {
        Some(h) if cols.checked_mul(cols) != Some(h.len()) => {
            return Err(cpu_reports("Hessian of the wrong shape"))
        }
        None if spec.needs_hessian() => return Err(cpu_reports("no Hessian")),
        other => other,
    };
    if let Some(reason) = spec.unsupported() {
        return Err(reason);
    }
    Ok(run::Job {
        spec,
        values: &source.values,
        hessian,
    })
}

/// [`crate::quantize_planned`] on `backend`: the codes of every matrix
/// from the backend (what CUDA leaves, on the CPU), then every report
/// measured on the CPU from the codes.
pub fn quantize_on(
    backend: &Backend,
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<(QuantizedModel, RunInfo), BackendError> {
    let (codes, info) = compute_codes(backend, sources, plans, hessians, threads)?;
    let model = quantize_planned_with(sources, plans, hessians, threads, progress, &codes)?;
    Ok((model, info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MatrixPlan;
    use crate::search::ClipChoice;
    use probe::complete as full_probe;

    #[test]
    fn auto_falls_back_with_the_reason_and_cuda_fails_with_it() {
        let nothing = Probe::default();
        match decide(DeviceChoice::Auto, &nothing).unwrap() {
            Decision::Cpu { note: Some(note) } => {
                assert!(
                    note.contains("on the CPU") && note.contains("libcuda.so.1"),
                    "{note}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(DeviceChoice::Cuda, &nothing),
            Err(CudaError::NoDriver)
        );
        assert_eq!(
            decide(DeviceChoice::Cpu, &full_probe()),
            Ok(Decision::Cpu { note: None })
        );
        assert_eq!(
            decide(DeviceChoice::Auto, &full_probe()),
            Ok(Decision::Cuda)
        );
        assert_eq!(
            decide(DeviceChoice::Cuda, &full_probe()),
            Ok(Decision::Cuda)
        );
        let no_nvrtc = Probe {
            nvrtc: None,
            ..full_probe()
        };
        assert_eq!(
            decide(DeviceChoice::Cuda, &no_nvrtc),
            Err(CudaError::NoNvrtc)
        );
    }

    #[test]
    fn selecting_the_cpu_touches_no_library() {
        let selection = select(DeviceChoice::Cpu).unwrap();
        assert_eq!(selection.backend.name(), "cpu");
        assert!(selection.note.is_none());
    }

    #[test]
    fn without_cuda_auto_selects_the_cpu_and_says_why() {
        if probe().unavailable().is_none() {
            return; // a machine with a GPU: covered by bench/gpu/check.sh
        }
        let selection = select(DeviceChoice::Auto).unwrap();
        assert_eq!(selection.backend.name(), "cpu");
        assert!(selection.note.unwrap().contains("on the CPU"));
        assert!(select(DeviceChoice::Cuda).is_err());
    }

    fn gptq_plan(block_size: u32) -> TensorPlan {
        TensorPlan::Quantize(MatrixPlan {
            method: Method::Gptq {
                act_order: true,
                damp: 0.01,
                block_size,
            },
            bits: 6,
            group_size: 0,
            clip: ClipChoice::SdClip { k: 12.85 },
        })
    }

    #[test]
    fn jobs_the_device_cannot_take_say_why() {
        let source = SourceTensor {
            name: "w".into(),
            shape: vec![2, 3],
            values: vec![0.5; 6],
        };
        let h = vec![0.0f32; 9];
        assert!(cuda_job(&source, &gptq_plan(128), Some(&h)).is_ok());
        let why = |plan: &TensorPlan, h: Option<&[f32]>| cuda_job(&source, plan, h).err().unwrap();
        assert!(why(&gptq_plan(256), Some(&h)).contains("block size 256"));
        assert!(why(&gptq_plan(128), None).contains("no Hessian"));
        assert!(why(&gptq_plan(128), Some(&h[..4])).contains("wrong shape"));
        assert!(why(&TensorPlan::Keep, None).contains("fp16"));
        let bad = SourceTensor {
            values: vec![0.5; 5],
            ..source.clone()
        };
        assert!(cuda_job(&bad, &gptq_plan(128), Some(&h))
            .err()
            .unwrap()
            .contains("CPU path reports"));
    }

    #[test]
    fn the_cpu_backend_gives_the_cpu_path_s_model() {
        let sources = crate::DemoConfig::tiny().generate(1).unwrap();
        let policy = crate::DefaultPolicy::default();
        let plans: Vec<TensorPlan> = sources
            .iter()
            .map(|s| crate::Planner::plan(&policy, &s.name, &s.shape))
            .collect();
        let (model, info) =
            quantize_on(&Backend::Cpu, &sources, &plans, &crate::NoHessians, 2, None).unwrap();
        let reference =
            crate::quantize_planned(&sources, &plans, &crate::NoHessians, 2, None).unwrap();
        assert_eq!(model, reference);
        assert_eq!(info.backend, "cpu");
        assert!(info.fallbacks.is_empty() && info.device_ms.is_none());
        assert_eq!(
            info.matrices,
            plans.iter().filter(|p| **p != TensorPlan::Keep).count()
        );
    }
}
