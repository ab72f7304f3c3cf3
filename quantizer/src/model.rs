//! Quantizing a whole checkpoint: plan each tensor, quantize the tensors in
//! parallel, and measure each against its source values, beside plain RTN
//! and, given the tensor's Hessian, in output space.

use half::f16;
use pgq_format::types::rows_cols;
use pgq_format::{dequantize_codes, Tensor, TensorData};
use serde::{Serialize, Serializer};

use crate::error::QuantizeError;
use crate::fidelity::{compare, finite_or_null, Fidelity};
use crate::gptq::{self, hessian_errors, GptqConfig};
use crate::parallel::{map_largest_first, worker_count};
use crate::policy::{MatrixPlan, Method, Planner, TensorPlan};
use crate::rtn::{quantize_rtn, quantize_rtn_with};
use crate::search::ClipChoice;

pub use pgq_metrics::{HessianSource, NoHessians, SourceTensor};

/// The same tensor quantized by plain RTN, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// e.g. `rtn-sdclip k=12.85 int6`.
    pub method: String,
    #[serde(serialize_with = "finite_or_null")]
    pub rel_rmse: f64,
    #[serde(serialize_with = "finite_or_null")]
    pub snr_db: f64,
    /// Output-space proxy, with a Hessian.
    #[serde(serialize_with = "option_finite_or_null")]
    pub hessian_error: Option<f64>,
}

/// What happened to one tensor, measured on what decoders will produce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorReport {
    pub name: String,
    pub shape: Vec<u64>,
    /// e.g. `rtn-sdclip k=12.85 int6`, `gptq-sdclip k=12.85 int6` or
    /// `keep-f16`.
    pub method: String,
    /// The plan as data: what `method` names, for programs (RTN or GPTQ
    /// and their options, bits, groups, clip), not in the JSON report,
    /// whose `method` label it determines.
    #[serde(skip)]
    pub plan: TensorPlan,
    pub params: u64,
    /// `||W - Q|| / ||W||`; null in JSON when infinite.
    #[serde(serialize_with = "finite_or_null")]
    pub rel_rmse: f64,
    pub max_abs_err: f64,
    /// `10 log10(||W||^2 / ||W - Q||^2)`; null in JSON when exact (infinite).
    #[serde(serialize_with = "finite_or_null")]
    pub snr_db: f64,
    /// `tr(E H E^T) / tr(W H W^T)`, `E = W - Q`: the share of the layer's
    /// output energy lost. Only for quantized tensors given a Hessian.
    #[serde(serialize_with = "option_finite_or_null")]
    pub hessian_error: Option<f64>,
    /// Plain RTN at the same width and groups ([`MatrixPlan::rtn_baseline`]);
    /// absent when the plan is plain RTN or keep.
    pub rtn: Option<Baseline>,
    /// GPTQ only: the relative damping the factorization succeeded with and
    /// how many were tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damp_used: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damp_attempts: Option<u32>,
    /// Percentile search only: how many scales chose each candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_choices: Option<Vec<u64>>,
}

fn option_finite_or_null<S: Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) if v.is_finite() => serializer.serialize_some(v),
        _ => serializer.serialize_none(),
    }
}

/// The tensors ready for `pgq_format::write`, in input order, with one report
/// per tensor in the same order.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedModel {
    pub tensors: Vec<Tensor>,
    pub reports: Vec<TensorReport>,
}

/// Progress hook: `(done, total, name)` after each tensor, called from the
/// worker threads.
pub type Progress<'a> = &'a (dyn Fn(usize, usize, &str) + Sync);

/// The method label of kept tensors.
pub const KEEP_METHOD: &str = "keep-f16";

/// Quantizes every tensor of `sources` as `planner` decides, without
/// Hessians (so `planner` must not ask for GPTQ), on `threads` workers
/// (0 = one per core). See [`quantize_planned`].
pub fn quantize_model(
    sources: &[SourceTensor],
    planner: &dyn Planner,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<QuantizedModel, QuantizeError> {
    let plans: Vec<TensorPlan> = sources
        .iter()
        .map(|source| planner.plan(&source.name, &source.shape))
        .collect();
    quantize_planned(sources, &plans, &NoHessians, threads, progress)
}

/// Quantizes `sources[i]` as `plans[i]` says, with the Hessians the plans
/// need (and, where given, output-space figures for every quantized
/// tensor), on `threads` workers (0 = one per core). Output order is input
/// order and the bytes are the same whatever the thread count; the first
/// failing tensor in input order is reported.
pub fn quantize_planned(
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<QuantizedModel, QuantizeError> {
    quantize_planned_with(sources, plans, hessians, threads, progress, &[])
}

/// The codes and scales of one matrix, computed ahead (by the CUDA
/// backend, or by [`matrix_codes`]); the report is measured from them.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixCodes {
    /// Row-major, original column order.
    pub codes: Vec<i8>,
    /// `scales[row * groups + g]`.
    pub scales: Vec<f16>,
    /// Percentile search: the candidate of each scale (empty otherwise).
    pub choices: Vec<u8>,
    /// GPTQ: the relative damping the factorization succeeded with, and
    /// how many were tried.
    pub damp: Option<(f64, u32)>,
}

/// [`quantize_planned`] where `precomputed[i]`, when given, holds tensor
/// `i`'s codes (a shorter slice leaves the rest to the CPU); every report
/// is measured on the CPU from the codes.
pub fn quantize_planned_with(
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    threads: usize,
    progress: Option<Progress<'_>>,
    precomputed: &[Option<MatrixCodes>],
) -> Result<QuantizedModel, QuantizeError> {
    if plans.len() != sources.len() {
        return Err(QuantizeError::PlanCount {
            plans: plans.len(),
            tensors: sources.len(),
        });
    }
    let jobs: Vec<(usize, &SourceTensor, &TensorPlan)> = sources
        .iter()
        .zip(plans)
        .enumerate()
        .map(|(i, (s, p))| (i, s, p))
        .collect();
    let total = jobs.len();
    let workers = worker_count(threads);
    // Tensors run in parallel; a tensor's own work (GPTQ row tiles, the
    // Hessian products) gets all workers only when there are too few
    // tensors to keep them busy.
    let busy = plans.iter().filter(|p| **p != TensorPlan::Keep).count();
    let inner = if busy >= workers { 1 } else { workers };
    let results = map_largest_first(
        &jobs,
        workers,
        |(_, source, _)| source.values.len() as u64,
        |&(i, source, plan)| {
            let ready = precomputed.get(i).and_then(Option::as_ref);
            quantize_one(source, plan, hessians.hessian(&source.name), inner, ready)
        },
        |done, index| {
            if let (Some(report), Some((_, source, _))) = (progress, jobs.get(index)) {
                report(done, total, &source.name);
            }
        },
    );

    let mut model = QuantizedModel {
        tensors: Vec::with_capacity(total),
        reports: Vec::with_capacity(total),
    };
    for result in results {
        let (tensor, report) = result?;
        model.tensors.push(tensor);
        model.reports.push(report);
    }
    Ok(model)
}

/// Quantizes or keeps one tensor and measures the result, without a
/// Hessian (see [`quantize_planned`] for GPTQ).
pub fn quantize_tensor(
    source: &SourceTensor,
    plan: &TensorPlan,
) -> Result<(Tensor, TensorReport), QuantizeError> {
    quantize_one(source, plan, None, 1, None)
}

fn quantize_one(
    source: &SourceTensor,
    plan: &TensorPlan,
    hessian: Option<&[f32]>,
    threads: usize,
    ready: Option<&MatrixCodes>,
) -> Result<(Tensor, TensorReport), QuantizeError> {
    check_element_count(source)?;
    let mut report = TensorReport {
        name: source.name.clone(),
        shape: source.shape.clone(),
        method: KEEP_METHOD.to_string(),
        plan: plan.clone(),
        params: source.values.len() as u64,
        rel_rmse: 0.0,
        max_abs_err: 0.0,
        snr_db: f64::INFINITY,
        hessian_error: None,
        rtn: None,
        damp_used: None,
        damp_attempts: None,
        clip_choices: None,
    };
    let data = match plan {
        TensorPlan::Keep => keep_f16(source)?,
        TensorPlan::Quantize(plan) => {
            report.method = plan.describe();
            quantize_matrix(source, plan, hessian, threads, ready, &mut report)?
        }
    };
    let tensor = Tensor {
        name: source.name.clone(),
        shape: source.shape.clone(),
        data,
    };
    if matches!(plan, TensorPlan::Keep) {
        set_fidelity(&mut report, compare(&source.values, &tensor.dequantize()));
    }
    Ok((tensor, report))
}

fn set_fidelity(report: &mut TensorReport, fidelity: Fidelity) {
    report.rel_rmse = fidelity.rel_rmse;
    report.max_abs_err = fidelity.max_abs_err;
    report.snr_db = fidelity.snr_db;
}

pub(crate) fn check_element_count(source: &SourceTensor) -> Result<(), QuantizeError> {
    let expected = source.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    if expected == Some(source.values.len() as u64) {
        Ok(())
    } else {
        Err(QuantizeError::ShapeMismatch {
            tensor: source.name.clone(),
            shape: source.shape.clone(),
            expected,
            actual: source.values.len(),
        })
    }
}

/// fp16 passthrough; values fp16 cannot hold are refused, since the writer
/// and every decoder reject infinities.
pub(crate) fn keep_f16(source: &SourceTensor) -> Result<TensorData, QuantizeError> {
    let mut halves = Vec::with_capacity(source.values.len());
    for (index, &value) in source.values.iter().enumerate() {
        let half = f16::from_f32(value);
        if !half.is_finite() {
            return Err(QuantizeError::PassthroughValue {
                tensor: source.name.clone(),
                index,
                value,
            });
        }
        halves.push(half);
    }
    Ok(TensorData::F16(halves))
}

/// Quantizes `source` as `plan` says, fills the report's measurements and
/// returns the stored data.
fn quantize_matrix(
    source: &SourceTensor,
    plan: &MatrixPlan,
    hessian: Option<&[f32]>,
    threads: usize,
    ready: Option<&MatrixCodes>,
    report: &mut TensorReport,
) -> Result<TensorData, QuantizeError> {
    let tensor = || source.name.clone();
    let (rows, cols) = matrix_shape(source)?;
    let computed;
    let MatrixCodes {
        codes,
        scales,
        choices,
        damp,
    } = match ready {
        Some(ready) => ready,
        None => {
            computed = matrix_codes(source, plan, hessian, threads)?;
            &computed
        }
    };
    if let Some((used, attempts)) = *damp {
        report.damp_used = Some(used);
        report.damp_attempts = Some(attempts);
    }
    if let ClipChoice::Percentiles { list, .. } = &plan.clip {
        let mut counts = vec![0u64; list.len()];
        for &c in choices {
            if let Some(slot) = counts.get_mut(usize::from(c)) {
                *slot += 1;
            }
        }
        report.clip_choices = Some(counts);
    }
    let dequantized = dequantize_codes(codes, scales, cols, plan.group_size);
    set_fidelity(report, compare(&source.values, &dequantized));

    let baseline = match plan.rtn_baseline() {
        None => None,
        Some(config) => {
            let matrix = quantize_rtn(&source.values, rows, cols, &config).map_err(|error| {
                QuantizeError::Rtn {
                    tensor: tensor(),
                    error,
                }
            })?;
            let values = dequantize_codes(&matrix.codes, &matrix.scales, cols, config.group_size);
            Some((config.describe(), values))
        }
    };
    // Output-space errors: [chosen, baseline], measured in one pass.
    let errors = match hessian {
        None => Vec::new(),
        Some(h) => {
            let mut approximations: Vec<&[f32]> = vec![&dequantized];
            if let Some((_, values)) = &baseline {
                approximations.push(values);
            }
            hessian_errors(&source.values, &approximations, rows, cols, h, threads).map_err(
                |error| QuantizeError::Hessian {
                    tensor: tensor(),
                    error,
                },
            )?
        }
    };
    report.hessian_error = errors.first().copied();
    report.rtn = baseline.map(|(method, values)| {
        let fidelity = compare(&source.values, &values);
        Baseline {
            method,
            rel_rmse: fidelity.rel_rmse,
            snr_db: fidelity.snr_db,
            hessian_error: errors.get(1).copied(),
        }
    });
    Ok(TensorData::Quantized {
        bits: plan.bits,
        group_size: plan.group_size,
        codes: codes.clone(),
        scales: scales.clone(),
        correction: None,
    })
}

/// `(rows, cols)` of a source's matrix view, as usize.
pub(crate) fn matrix_shape(source: &SourceTensor) -> Result<(usize, usize), QuantizeError> {
    // The element count matches, so rows and cols fit usize unless a zero
    // dimension hides a huge one.
    let (rows, cols) = rows_cols(&source.shape);
    let shape_error = || QuantizeError::ShapeMismatch {
        tensor: source.name.clone(),
        shape: source.shape.clone(),
        expected: rows.checked_mul(cols),
        actual: source.values.len(),
    };
    let rows = usize::try_from(rows).map_err(|_| shape_error())?;
    let cols = usize::try_from(cols).map_err(|_| shape_error())?;
    Ok((rows, cols))
}

/// The codes and scales of one matrix on the CPU: what `plan` asks for,
/// with the tensor's Hessian when the plan needs one.
pub fn matrix_codes(
    source: &SourceTensor,
    plan: &MatrixPlan,
    hessian: Option<&[f32]>,
    threads: usize,
) -> Result<MatrixCodes, QuantizeError> {
    check_element_count(source)?;
    let tensor = || source.name.clone();
    let (rows, cols) = matrix_shape(source)?;
    if let Some(h) = hessian {
        if cols.checked_mul(cols) != Some(h.len()) {
            return Err(QuantizeError::HessianShape {
                tensor: tensor(),
                len: h.len(),
                cols,
            });
        }
    }
    if plan.needs_hessian() && hessian.is_none() {
        return Err(QuantizeError::MissingHessian {
            tensor: tensor(),
            method: plan.describe(),
        });
    }
    let diagonal: Option<Vec<f64>> =
        hessian.map(|h| (0..cols).map(|j| f64::from(h[j * cols + j])).collect());

    let (codes, scales, choices, damp) = match (plan.method, hessian) {
        (
            Method::Gptq {
                act_order,
                damp,
                block_size,
                rdo,
            },
            Some(h),
        ) => {
            let config = GptqConfig {
                bits: plan.bits,
                group_size: plan.group_size,
                clip: plan.clip.clone(),
                damp: f64::from(damp),
                act_order,
                block_size: block_size as usize,
                rdo: f64::from(rdo),
                threads,
            };
            let result =
                gptq::run(&source.values, rows, cols, h, &config, false).map_err(|error| {
                    QuantizeError::Gptq {
                        tensor: tensor(),
                        error,
                    }
                })?;
            let damp = Some((result.damp_used, result.damp_attempts));
            (result.codes, result.scales, result.clip_choices, damp)
        }
        _ => {
            let (matrix, chosen) = quantize_rtn_with(
                &source.values,
                rows,
                cols,
                plan.bits,
                plan.group_size,
                &plan.clip,
                diagonal.as_deref(),
            )
            .map_err(|error| QuantizeError::Rtn {
                tensor: tensor(),
                error,
            })?;
            (matrix.codes, matrix.scales, chosen.choices, None)
        }
    };
    Ok(MatrixCodes {
        codes,
        scales,
        choices,
        damp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::DefaultPolicy;
    use crate::rtn::RtnConfig;
    use crate::scale::Clip;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn source(name: &str, shape: &[u64], f: impl Fn(usize) -> f32) -> SourceTensor {
        let n = shape.iter().product::<u64>() as usize;
        SourceTensor {
            name: name.into(),
            shape: shape.to_vec(),
            values: (0..n).map(f).collect(),
        }
    }

    fn wave(i: usize) -> f32 {
        ((i as f32) * 0.7123).sin() * 0.02
    }

    fn small_model() -> Vec<SourceTensor> {
        vec![
            source("tok_emb.weight", &[512, 160], wave),
            source("blocks.0.attn_scale", &[64], |_| 1.0),
            source("blocks.0.mlp.fc.weight", &[300, 256], wave),
            source("blocks.0.mlp.proj.weight", &[256, 300], |i| wave(i + 3)),
        ]
    }

    #[test]
    fn default_policy_on_a_small_model() {
        let model = quantize_model(&small_model(), &DefaultPolicy::default(), 2, None).unwrap();
        let methods: Vec<&str> = model.reports.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(
            methods,
            [
                "rtn-sdclip k=20 int8",
                "keep-f16",
                "rtn-sdclip k=12.85 int6",
                "rtn-sdclip k=12.85 int6"
            ]
        );
        let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "tok_emb.weight",
                "blocks.0.attn_scale",
                "blocks.0.mlp.fc.weight",
                "blocks.0.mlp.proj.weight"
            ]
        );
        assert!(matches!(model.tensors[1].data, TensorData::F16(_)));
        assert_eq!(model.reports[1].snr_db, f64::INFINITY);
        assert_eq!(model.reports[1].rel_rmse, 0.0);
        for report in &model.reports {
            assert!(report.rel_rmse < 0.2, "{report:?}");
        }
        // int8 at k 20 and int6 at k 12.85: a step of std/6.35 and std/2.4.
        assert!(model.reports[0].snr_db > model.reports[2].snr_db);
    }

    #[test]
    fn output_is_identical_for_any_thread_count() {
        let sources = small_model();
        let policy = DefaultPolicy::default();
        let one = quantize_model(&sources, &policy, 1, None).unwrap();
        for threads in [0, 2, 5] {
            assert_eq!(
                quantize_model(&sources, &policy, threads, None).unwrap(),
                one
            );
        }
    }

    #[test]
    fn report_matches_the_decoded_tensor() {
        let sources = small_model();
        let model = quantize_model(&sources, &DefaultPolicy::default(), 1, None).unwrap();
        let decoded = model.tensors[2].dequantize();
        let direct = compare(&sources[2].values, &decoded);
        assert_eq!(model.reports[2].rel_rmse, direct.rel_rmse);
        assert_eq!(model.reports[2].params, 300 * 256);
    }

    #[test]
    fn progress_sees_every_tensor_once() {
        let sources = small_model();
        let calls = AtomicUsize::new(0);
        let names = Mutex::new(Vec::new());
        let hook = |done: usize, total: usize, name: &str| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert!(done >= 1 && done <= total && total == 4);
            if let Ok(mut names) = names.lock() {
                names.push(name.to_string());
            }
        };
        quantize_model(&sources, &DefaultPolicy::default(), 2, Some(&hook)).unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        let mut names = names.into_inner().unwrap();
        names.sort();
        let mut expected: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn nan_is_reported_with_tensor_and_position() {
        let mut sources = small_model();
        sources[2].values[256 * 3 + 5] = f32::NAN;
        let err = quantize_model(&sources, &DefaultPolicy::default(), 2, None).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("blocks.0.mlp.fc.weight") && message.contains("[3, 5]"),
            "{message}"
        );
    }

    #[test]
    fn passthrough_overflow_is_refused() {
        let mut sources = small_model();
        sources[1].values[9] = 1.0e6;
        let err = quantize_model(&sources, &DefaultPolicy::default(), 1, None).unwrap_err();
        assert_eq!(
            err,
            QuantizeError::PassthroughValue {
                tensor: "blocks.0.attn_scale".into(),
                index: 9,
                value: 1.0e6
            }
        );
    }

    #[test]
    fn wrong_element_count_is_refused() {
        let mut sources = small_model();
        sources[0].values.pop();
        assert!(matches!(
            quantize_model(&sources, &DefaultPolicy::default(), 1, None),
            Err(QuantizeError::ShapeMismatch {
                expected: Some(81920),
                actual: 81919,
                ..
            })
        ));
        let overflowing = SourceTensor {
            name: "w".into(),
            shape: vec![u64::MAX, 2],
            values: vec![],
        };
        assert!(matches!(
            quantize_tensor(&overflowing, &TensorPlan::Keep),
            Err(QuantizeError::ShapeMismatch { expected: None, .. })
        ));
    }

    #[test]
    fn empty_and_vector_tensors_can_be_quantized() {
        let config = RtnConfig {
            bits: 6,
            group_size: 0,
            clip: Clip::Absmax,
        };
        let empty = source("e", &[4, 0], wave);
        let (tensor, report) =
            quantize_tensor(&empty, &TensorPlan::Quantize(config.into())).unwrap();
        assert_eq!(tensor.data.len(), 0);
        assert_eq!(report.rel_rmse, 0.0);
        let vector = source("v", &[10], wave);
        let (tensor, _) = quantize_tensor(&vector, &TensorPlan::Quantize(config.into())).unwrap();
        assert!(
            matches!(tensor.data, TensorData::Quantized { ref scales, .. } if scales.len() == 1)
        );
    }

    #[test]
    fn reports_serialize_infinite_snr_as_null() {
        let (_, report) = quantize_tensor(&source("s", &[3], |_| 1.0), &TensorPlan::Keep).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["snr_db"], serde_json::Value::Null);
        assert_eq!(json["method"], "keep-f16");
    }

    #[test]
    fn output_is_accepted_by_the_writer() {
        let model = quantize_model(&small_model(), &DefaultPolicy::default(), 2, None).unwrap();
        let options = pgq_format::WriteOptions {
            compression: pgq_format::Compression::Zstd(3),
            ..Default::default()
        };
        let bytes = pgq_format::write(&model.tensors, &Default::default(), &options).unwrap();
        let archive = pgq_format::read(&bytes, &Default::default()).unwrap();
        assert_eq!(archive.tensors, model.tensors);
    }
}
