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
//! - this module: whether CUDA can be used ([`decide`]), and the codes of
//!   a model's matrices on the device, with a per-tensor CPU fallback that
//!   always says why. Choosing a backend and running a model on it is
//!   [`crate::backend`]'s.
//!
//! docs/CUDA.md describes the design, the precision and how it is checked.

pub mod compile;
mod error;
pub mod layout;
pub mod probe;
mod run;
pub mod selftest;

use crate::backend::{DeviceChoice, Fallback, RunInfo};
use crate::model::{check_element_count, matrix_shape, HessianSource, MatrixCodes, SourceTensor};
use crate::policy::{Method, TensorPlan};

pub use error::CudaError;
pub use layout::{GptqSpec, JobSpec};
pub use probe::{probe, DeviceInfo, Probe};
pub use run::Device;

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

pub(crate) fn fallback_note(why: &CudaError) -> String {
    format!("--device auto: quantizing on the CPU, since CUDA is not available: {why}")
}

/// The codes of the tensors `matrices` of `sources` computed on `device`,
/// into `codes`; tensors the device cannot take (or fails on) are listed in
/// `info.fallbacks` with the reason and left to the CPU.
pub(crate) fn device_codes(
    device: &Device,
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    matrices: &[usize],
    codes: &mut [Option<MatrixCodes>],
    info: &mut RunInfo,
) -> Result<(), CudaError> {
    let mut jobs = Vec::new();
    let mut owners = Vec::new();
    for &i in matrices {
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
    Ok(())
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
        // The CUDA sweep has no rate term: rate-distortion GPTQ runs on
        // the CPU (the sweep is the cheap part; the CPU's reports say so).
        Method::Gptq { rdo, .. } if rdo > 0.0 => {
            return Err("rate-distortion GPTQ (rdo > 0) runs on the CPU".into())
        }
        Method::Gptq {
            act_order,
            damp,
            block_size,
            rdo: _,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{quantize_on, select, Backend, RunOptions};
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
                rdo: 0.0,
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
        let (model, info) = quantize_on(
            &Backend::Cpu,
            &sources,
            &plans,
            &crate::NoHessians,
            &RunOptions::threads(2),
        )
        .unwrap();
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
