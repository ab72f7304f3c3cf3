//! A self-test of the CUDA backend on a small model, for `pgq doctor
//! --self-test` and for compute-sanitizer (bench/gpu/check.sh): every
//! kernel runs (fixed scales, both search objectives and scopes, RTN,
//! GPTQ per row and in groups, packing), and the codes are compared with
//! the CPU path's.

use serde::Serialize;

use crate::demo::DemoConfig;
use crate::model::{matrix_codes, HessianSource, SourceTensor};
use crate::policy::{MatrixPlan, Method, TensorPlan};
use crate::search::{ClipChoice, Objective, Scope};
use crate::synthetic::DemoHessians;

use super::error::CudaError;
use super::Device;
use crate::backend::{compute_codes, Backend, BackendError, RunOptions};

/// One plan's agreement between CUDA and the CPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanCheck {
    pub plan: String,
    pub tensors: usize,
    /// Codes equal / codes, over the plan's tensors (worst tensor).
    pub worst_code_agreement: f64,
    /// Scales equal / scales (worst tensor).
    pub worst_scale_agreement: f64,
    /// Tensors CUDA left to the CPU.
    pub fallbacks: usize,
}

/// The self-test's findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfTest {
    pub plans: Vec<PlanCheck>,
    /// `pgq_pack_codes` gave `pgq_format`'s bytes for every width 2..=8.
    pub pack_identical: bool,
}

impl SelfTest {
    /// At least 99.9% of codes equal per tensor, no fallback, packing exact.
    pub fn passed(&self) -> bool {
        self.pack_identical
            && self
                .plans
                .iter()
                .all(|p| p.worst_code_agreement >= 0.999 && p.fallbacks == 0)
    }
}

/// The plans the self-test runs, each over every matrix of the tiny model.
pub fn plans() -> Vec<MatrixPlan> {
    let gptq = Method::Gptq {
        act_order: true,
        damp: 0.01,
        block_size: 128,
        rdo: 0.0,
    };
    let search = |objective, scope| ClipChoice::Percentiles {
        list: vec![0.999, 0.9995, 0.9999, 1.0],
        objective,
        scope,
    };
    vec![
        MatrixPlan {
            method: gptq,
            bits: 6,
            group_size: 0,
            clip: ClipChoice::SdClip { k: 12.85 },
        },
        MatrixPlan {
            method: Method::Gptq {
                act_order: true,
                damp: 0.01,
                block_size: 32,
                rdo: 0.0,
            },
            bits: 4,
            group_size: 64,
            clip: ClipChoice::Absmax,
        },
        MatrixPlan {
            method: gptq,
            bits: 6,
            group_size: 0,
            clip: search(Objective::Hessian, Scope::Row),
        },
        MatrixPlan {
            method: Method::Rtn,
            bits: 8,
            group_size: 0,
            clip: ClipChoice::SdClip { k: 20.0 },
        },
        MatrixPlan {
            method: Method::Rtn,
            bits: 6,
            group_size: 128,
            clip: search(Objective::Mse, Scope::Tensor),
        },
    ]
}

/// Runs the self-test on `device`.
pub fn self_test(device: Device) -> Result<SelfTest, CudaError> {
    let config = DemoConfig::tiny();
    let sources: Vec<SourceTensor> = config
        .generate(0)
        .map_err(|_| CudaError::TooLarge { what: "the demo" })?
        .into_iter()
        .filter(|s| s.shape.len() == 2)
        .collect();
    let hessians =
        DemoHessians::generate(&config, 0).map_err(|_| CudaError::TooLarge { what: "the demo" })?;
    let usable: Vec<SourceTensor> = sources
        .into_iter()
        .filter(|s| hessians.hessian(&s.name).is_some())
        .collect();
    let backend = Backend::Cuda(Box::new(device));
    let mut checks = Vec::new();
    for plan in plans() {
        let plans = vec![TensorPlan::Quantize(plan.clone()); usable.len()];
        let (codes, info) = compute_codes(
            &backend,
            &usable,
            &plans,
            &hessians,
            &RunOptions::threads(0),
        )
        .map_err(|e| match e {
            BackendError::Cuda(e) => e,
            BackendError::Quantize(e) => CudaError::Driver {
                during: "the self-test",
                message: e.to_string(),
            },
        })?;
        let (mut worst_codes, mut worst_scales) = (1.0f64, 1.0f64);
        for (source, gpu) in usable.iter().zip(&codes) {
            let Some(gpu) = gpu else { continue };
            let cpu =
                matrix_codes(source, &plan, hessians.hessian(&source.name), 0).map_err(|e| {
                    CudaError::Driver {
                        during: "the self-test's CPU reference",
                        message: e.to_string(),
                    }
                })?;
            worst_codes = worst_codes.min(agreement(&gpu.codes, &cpu.codes));
            worst_scales = worst_scales.min(agreement(&gpu.scales, &cpu.scales));
        }
        checks.push(PlanCheck {
            plan: plan.describe(),
            tensors: usable.len(),
            worst_code_agreement: worst_codes,
            worst_scale_agreement: worst_scales,
            fallbacks: info.fallbacks.len(),
        });
    }
    let Backend::Cuda(device) = &backend else {
        return Err(CudaError::NoDriver);
    };
    let sample: Vec<i8> = (0..1001).map(|i| ((i * 37 % 255) - 127) as i8).collect();
    let mut pack_identical = true;
    for bits in 2..=8u8 {
        let q = i32::from(crate::scale::code_max(bits).unwrap_or(1));
        let codes: Vec<i8> = sample
            .iter()
            .map(|&c| (i32::from(c) % (q + 1)) as i8)
            .collect();
        let packed = device.pack(&[(&codes, bits)])?;
        let expected =
            pgq_format::pack::Bits::new(bits).map(|b| pgq_format::pack::pack_codes(&codes, b));
        pack_identical &= packed.first() == expected.as_ref();
    }
    Ok(SelfTest {
        plans: checks,
        pack_identical,
    })
}

/// Share of equal entries (1 for two empty slices).
pub fn agreement<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    if a.is_empty() {
        return 1.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_counts_equal_entries() {
        assert_eq!(agreement(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
        assert_eq!(agreement::<i8>(&[], &[]), 1.0);
        assert_eq!(agreement(&[1], &[1, 2]), 0.0);
    }

    #[test]
    fn the_plans_cover_every_kernel_path() {
        let plans = plans();
        assert!(plans
            .iter()
            .any(|p| p.group_size > 0 && matches!(p.method, Method::Gptq { .. })));
        for objective in [Objective::Mse, Objective::Hessian] {
            assert!(plans.iter().any(|p| matches!(&p.clip,
                ClipChoice::Percentiles { objective: o, .. } if *o == objective)));
        }
        for scope in [Scope::Row, Scope::Tensor] {
            assert!(plans.iter().any(|p| matches!(&p.clip,
                ClipChoice::Percentiles { scope: s, .. } if *s == scope)));
        }
        assert!(plans.iter().any(|p| p.method == Method::Rtn));
    }
}
