//! Fitting an artifact to a byte budget: `pgq quantize --budget N`.
//!
//! Participants reach 15.9x MB by hand: one clip factor per class, a run,
//! the size read off, again. Here the SDClip factor of every tensor whose
//! rule clips with SDClip moves over `k_rule * 2^(s/32)`, `s` in -32..=48
//! (half to 2.83 times the rule's), so that the file lands in
//! `[N - 2000, N]`. Tensors with another clip (absmax, a percentile search)
//! and kept tensors are fixed by their rules; their bytes count against
//! `N`. Two ways to share the bytes ([`Allocation`]): one common factor
//! (the recipe's ratios kept), or each tensor's own, minimising the total
//! error weighted by the Hessian's diagonal where the run has Hessians (the
//! plain squared error where it has none).
//!
//! The search, in order:
//!
//! 1. **Curves.** Each tunable tensor's rate (code bytes, priced by
//!    `pgq_format::rate` from a histogram) and error at every factor, from
//!    RTN on 256 spread rows ([`curve`]); each rate curve is levelled by the
//!    exact rANS bytes of the rule's own RTN codes on the whole tensor.
//! 2. **The rest.** The bytes that are not codes (kept tensors, scales,
//!    header, metadata), estimated from one write of the kept tensors and
//!    the rule's scales alone; the first real write corrects it.
//! 3. **Allocation** for `N - 1000` bytes: the finest common step that fits
//!    then single steps of the smallest tensors (uniform), or a Lagrangian
//!    over all tensors' curves then greedy moves that spend what is left
//!    (per-tensor; [`allocate`](mod@allocate)).
//! 4. **Rounds.** The codes of every tensor at its factor, with the plan's
//!    own method (GPTQ, RTN) on the run's backend; each tensor's exact code
//!    bytes (`rate::code_bytes`) rescale its curve. The first round, and any
//!    round whose predicted file lies within `[N - 2000, N]`, writes the
//!    artifact and measures it; otherwise, or when the written size misses,
//!    the fewest tensors move ([`allocate::adjust`]; uniform re-centres its
//!    window when it must) and only those are quantized again. At most
//!    [`MAX_ROUNDS`] rounds; two on every model measured.
//!
//! Deterministic: the same inputs give the same bytes, whatever the
//! thread count.

pub mod allocate;
pub mod curve;

use pgq_format::rate::code_bytes;
use pgq_format::{MetaValue, Tensor, TensorData};
use serde::Serialize;

use crate::backend::{compute_codes, Backend, BackendError, RunInfo, RunOptions};
use crate::error::QuantizeError;
use crate::model::{
    check_element_count, keep_f16, matrix_codes, matrix_shape, quantize_planned_with,
    HessianSource, MatrixCodes, NoHessians, SourceTensor,
};
use crate::parallel::map_largest_first;
use crate::pipeline::{
    assemble, encode, prepare, provenance, Artifact, HessianInput, Options, PipelineError,
    Planning, Prepared,
};
use crate::policy::{MatrixPlan, TensorPlan};
use crate::search::ClipChoice;

use allocate::{adjust, allocate, least_rate, Curve};
use curve::{measure, sdclip_curve, with_k, Sample};

/// How far under the budget a fitted artifact may land.
pub const SLACK: u64 = 2_000;
/// Rounds of codes before the search gives up.
pub const MAX_ROUNDS: usize = 8;

/// How the budget is shared among the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocation {
    /// One factor for every tunable tensor's k (the recipe's ratios kept,
    /// as participants tune by hand), then single steps of a few tensors
    /// to land in the window.
    #[default]
    Uniform,
    /// Each tensor's k on its own, for the least total error.
    PerTensor,
}

impl Allocation {
    pub fn name(self) -> &'static str {
        match self {
            Allocation::Uniform => "uniform",
            Allocation::PerTensor => "per-tensor",
        }
    }
}

/// Steps either side of the common factor that [`Allocation::Uniform`]
/// lets a tensor move to land in the window (2^(4/32): 9%).
pub const UNIFORM_SPAN: i32 = 4;

/// What to fit the artifact to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub allocation: Allocation,
}

/// Why a budget cannot be met.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error(
        "a budget of {budget} bytes is under the smallest artifact this recipe allows, about \
         {smallest} bytes (every tunable tensor at 2.83 x its rule's SDClip k; {fixed} of them \
         fixed: kept tensors, scales, header, tensors without an SDClip rule): raise the budget, \
         or lower bits or keep fewer tensors in the recipe"
    )]
    TooSmall {
        budget: u64,
        smallest: u64,
        fixed: u64,
    },
    #[error(
        "the budget search ended over the budget: {bytes} bytes against {budget} after {rounds} \
         rounds (a pgq bug, or a budget within a few hundred bytes of the smallest artifact)"
    )]
    Over {
        budget: u64,
        bytes: u64,
        rounds: usize,
    },
}

/// A budget run's choice for one quantized tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetTensor {
    pub name: String,
    /// The rule's SDClip k (`None`: not tunable, fixed by its rule).
    pub rule_k: Option<f32>,
    /// The chosen k.
    pub k: Option<f32>,
    /// The codes' bytes, exactly (the rANS stream of the codes alone).
    pub code_bytes: u64,
    /// The search's error estimate at the chosen k (Hessian-diagonal
    /// weighted where Hessians were given), calibrated to the codes.
    pub estimated_error: f64,
}

/// One round of codes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    /// Tensors whose codes were computed this round.
    pub quantized: usize,
    /// The file size predicted from exact code bytes.
    pub predicted_bytes: u64,
    /// The size of the artifact written this round, if one was.
    pub written_bytes: Option<u64>,
    /// The round's codes, their exact sizes and its write.
    pub seconds: f64,
}

/// What the budget search did: `pgq quantize --budget` and `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    pub budget_bytes: u64,
    /// The artifact lands in `[budget - slack, budget]`.
    pub slack_bytes: u64,
    pub file_bytes: u64,
    /// The budget minus the file.
    pub headroom_bytes: i64,
    /// False when every tensor took its least-error factor and the file
    /// still came in under the window: the budget did not constrain.
    pub binding: bool,
    /// Whether the run had Hessians for the error weights.
    pub hessian_weighted: bool,
    pub allocation: Allocation,
    pub rounds: Vec<Round>,
    pub tensors: Vec<BudgetTensor>,
    /// Seconds spent on the curves (RTN on sample rows) and the rest's
    /// estimate.
    pub curves_seconds: f64,
    /// Seconds from the start of the search to the last write (curves and
    /// rounds; the reports' measurements come after).
    pub search_seconds: f64,
}

/// One quantized tensor in the search.
struct Entry {
    /// Index into the run's sources.
    index: usize,
    plan: MatrixPlan,
    /// The rule's k and the factors of the curve (tunable tensors only).
    rule_k: Option<f32>,
    /// Every factor and its curve; `ks` and `curve` may be a window of it
    /// ([`Allocation::Uniform`]).
    full: (Vec<f32>, Curve),
    ks: Vec<f32>,
    /// Uncalibrated curve (one point for a fixed tensor).
    curve: Curve,
    /// Rate calibration: the tensor's real code bytes over the curve's.
    rho: f64,
    /// Scales of the rule's plan (RTN), for the write with zero codes.
    scales: Vec<half::f16>,
    cols: usize,
}

impl Entry {
    fn plan_at(&self, option: usize) -> MatrixPlan {
        match self.ks.get(option) {
            Some(&k) => with_k(&self.plan, k),
            None => self.plan.clone(),
        }
    }

    /// Keeps only the options within [`UNIFORM_SPAN`] steps of `step`;
    /// returns the option of `step` in the window.
    fn narrow(&mut self, step: usize) -> usize {
        if self.ks.is_empty() {
            return 0;
        }
        let (ks, curve) = &self.full;
        let span = UNIFORM_SPAN as usize;
        let range = step.saturating_sub(span)..(step + span + 1).min(ks.len());
        self.ks = ks[range.clone()].to_vec();
        // Within the window, bytes alone: uniform fills the budget as a
        // participant would (a finer step for more bytes), whatever the
        // error proxy says about the last steps.
        // Relative to the tensor's bytes at the common step, so that the
        // last bytes go to the smallest tensors: the ratios of the large
        // ones, which carry the model, stay the recipe's.
        let rate = curve.rate[range].to_vec();
        let center = curve.rate[step].max(1.0);
        self.curve = Curve {
            dist: rate.iter().map(|r| -r / center).collect(),
            rate,
        };
        step - step.saturating_sub(span)
    }

    fn calibrated(&self) -> Curve {
        Curve {
            rate: self.curve.rate.iter().map(|r| r * self.rho).collect(),
            dist: self.curve.dist.clone(),
        }
    }
}

fn quantize_error(name: &str, error: crate::error::RtnError) -> PipelineError {
    PipelineError::Backend(BackendError::Quantize(QuantizeError::Rtn {
        tensor: name.to_string(),
        error,
    }))
}

/// The Hessian diagonal of a tensor, one weight per column.
fn diagonal(hessian: Option<&[f32]>, cols: usize) -> Option<Vec<f64>> {
    let h = hessian?;
    (h.len() == cols.checked_mul(cols)?).then(|| {
        (0..cols)
            .map(|j| f64::from(h[j * cols + j]).max(0.0))
            .collect()
    })
}

/// Steps 1 and the scales of step 2 for one tensor.
fn entry(
    index: usize,
    source: &SourceTensor,
    plan: &MatrixPlan,
    hessian: Option<&[f32]>,
) -> Result<Entry, PipelineError> {
    check_element_count(source).map_err(|e| PipelineError::Backend(e.into()))?;
    let (rows, cols) = matrix_shape(source).map_err(|e| PipelineError::Backend(e.into()))?;
    let weights = diagonal(hessian, cols);
    let sample = Sample::of(&source.values, rows, cols);
    let name = &source.name;
    let (rule_k, ks, curve) = match plan.clip {
        ClipChoice::SdClip { k } => {
            let (ks, curve) = sdclip_curve(&sample, plan, k, weights.as_deref())
                .map_err(|e| quantize_error(name, e))?;
            (Some(k), ks, curve)
        }
        _ => {
            let (rate, dist) =
                measure(&sample, plan, weights.as_deref()).map_err(|e| quantize_error(name, e))?;
            (
                None,
                Vec::new(),
                Curve {
                    rate: vec![rate],
                    dist: vec![dist],
                },
            )
        }
    };
    let (matrix, _) = crate::rtn::quantize_rtn_with(
        &source.values,
        rows,
        cols,
        plan.bits,
        plan.group_size,
        &plan.clip,
        weights.as_deref(),
    )
    .map_err(|e| quantize_error(name, e))?;
    // The curve's level from the rule's own codes on the whole tensor: the
    // sample and the one-table estimate miss what runs of rows and column
    // classes save on trained weights (1-2% on the proving ground's
    // embedding), which GPTQ's codes share.
    let base = ks.iter().position(|&k| Some(k) == rule_k).unwrap_or(0);
    let estimate = curve.rate[base];
    let rho = if estimate > 0.0 {
        code_bytes(&matrix.codes, cols) as f64 / estimate
    } else {
        1.0
    };
    Ok(Entry {
        index,
        plan: plan.clone(),
        rule_k,
        full: (ks.clone(), curve.clone()),
        ks,
        curve,
        rho,
        scales: matrix.scales,
        cols,
    })
}

/// [`Allocation::Uniform`]: narrows every tunable tensor to the window
/// around the common step (see [`common_step`]), from the calibrated
/// curves. `None` when no common step fits.
fn center(entries: &mut [Entry], target: f64) -> Option<Vec<usize>> {
    let full: Vec<Curve> = entries
        .iter()
        .map(|e| Curve {
            rate: e.full.1.rate.iter().map(|r| r * e.rho).collect(),
            dist: e.full.1.dist.clone(),
        })
        .collect();
    let step = common_step(&full, entries, target)?;
    Some(entries.iter_mut().map(|e| e.narrow(step)).collect())
}

/// The common step of [`Allocation::Uniform`]: the finest (most bytes) at
/// which every tunable tensor together fits `target`. `None` when none
/// fits.
fn common_step(curves: &[Curve], entries: &[Entry], target: f64) -> Option<usize> {
    let steps = entries.iter().map(|e| e.full.0.len()).max()?;
    (0..steps)
        .filter_map(|s| {
            let at = |c: &Curve, e: &Entry, v: &[f64]| {
                if e.full.0.is_empty() {
                    v[0]
                } else {
                    v[s.min(c.rate.len() - 1)]
                }
            };
            let rate: f64 = curves
                .iter()
                .zip(entries)
                .map(|(c, e)| at(c, e, &c.rate))
                .sum();
            let dist: f64 = curves
                .iter()
                .zip(entries)
                .map(|(c, e)| at(c, e, &c.dist))
                .sum();
            (rate <= target).then_some((s, dist))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s)
}

/// `pgq.budget` and `pgq.budget.k`: the budget, and `name=k` for every
/// tensor whose factor the search chose, in tensor order.
fn budget_metadata(
    budget: u64,
    entries: &[Entry],
    choice: &[usize],
    sources: &[SourceTensor],
) -> [(String, MetaValue); 2] {
    let ks: Vec<String> = entries
        .iter()
        .zip(choice)
        .filter_map(|(e, &o)| Some(format!("{}={}", sources[e.index].name, e.ks.get(o)?)))
        .collect();
    [
        ("pgq.budget".to_string(), MetaValue::Str(budget.to_string())),
        ("pgq.budget.k".to_string(), MetaValue::Str(ks.join(","))),
    ]
}

/// The tensors to write: kept ones as fp16, quantized ones from `codes`
/// (or, where `codes` has none, only their scales, as an fp16 vector: what
/// the rest of the file costs).
fn tensors_of(
    prepared: &Prepared,
    entries: &[Entry],
    entry_of: &[Option<usize>],
    codes: &[Option<MatrixCodes>],
) -> Result<Vec<Tensor>, PipelineError> {
    prepared
        .sources
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let data = match (&prepared.plans[i], entry_of[i].map(|e| &entries[e])) {
                (TensorPlan::Quantize(_), Some(e)) => match &codes[i] {
                    Some(c) => TensorData::Quantized {
                        bits: e.plan.bits,
                        group_size: e.plan.group_size,
                        codes: c.codes.clone(),
                        scales: c.scales.clone(),
                        correction: None,
                    },
                    None => {
                        return Ok(Tensor {
                            name: source.name.clone(),
                            shape: vec![e.scales.len() as u64],
                            data: TensorData::F16(e.scales.clone()),
                        })
                    }
                },
                _ => keep_f16(source).map_err(|e| PipelineError::Backend(e.into()))?,
            };
            Ok(Tensor {
                name: source.name.clone(),
                shape: source.shape.clone(),
                data,
            })
        })
        .collect()
}

/// Like [`crate::pipeline::quantize`], choosing each tunable tensor's SDClip
/// factor so that the artifact lands within [`SLACK`] bytes under
/// `budget` with the least total error (see the module documentation).
pub fn quantize_to_budget(
    backend: &Backend,
    sources: &[SourceTensor],
    planning: &Planning,
    hessians: Option<&HessianInput>,
    options: &Options,
    budget: Budget,
) -> Result<(Artifact, BudgetReport), PipelineError> {
    let Budget {
        bytes: budget,
        allocation,
    } = budget;
    if planning.lqer().is_some() {
        return Err(PipelineError::LqerWith(
            "--budget (or --code and --cap, which fit the file to the cap)",
        ));
    }
    let prepared = prepare(sources, planning, hessians, options)?;
    let search_started = std::time::Instant::now();
    let hessian_source = hessians.map_or(&NoHessians as &dyn HessianSource, |h| h.source);
    let threads = options.threads;
    let observe = |round: &str, total: usize| {
        if let Some(o) = options.observer {
            o.start(total, &format!("{} ({round})", backend.describe()));
        }
    };

    // 1. Curves, in parallel, largest tensor first.
    let matrices: Vec<usize> = (0..prepared.sources.len())
        .filter(|&i| matches!(prepared.plans[i], TensorPlan::Quantize(_)))
        .collect();
    observe("budget: rate-distortion curves", matrices.len());
    let results = map_largest_first(
        &matrices,
        threads,
        |&i| prepared.sources[i].values.len() as u64,
        |&i| {
            let TensorPlan::Quantize(plan) = &prepared.plans[i] else {
                unreachable!("filtered to quantized plans")
            };
            let source = &prepared.sources[i];
            entry(i, source, plan, hessian_source.hessian(&source.name))
        },
        |done, index| {
            if let (Some(o), Some(&i)) = (options.observer, matrices.get(index)) {
                o.tensor(done, matrices.len(), &prepared.sources[i].name);
            }
        },
    );
    let mut entries = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    let count = prepared.sources.len();
    let mut codes: Vec<Option<MatrixCodes>> = vec![None; count];
    // Source index -> entry index.
    let mut entry_of: Vec<Option<usize>> = vec![None; count];
    for (e, entry) in entries.iter().enumerate() {
        entry_of[entry.index] = Some(e);
    }

    // 2. The rest: one write of everything but the codes.
    let base_choice: Vec<usize> = entries
        .iter()
        .map(|e| e.ks.iter().position(|&k| Some(k) == e.rule_k).unwrap_or(0))
        .collect();
    let write = |choice: &[usize], codes: &[Option<MatrixCodes>], entries: &[Entry]| {
        let tensors = tensors_of(&prepared, entries, &entry_of, codes)?;
        let retried: Vec<String> = entries
            .iter()
            .filter_map(|e| {
                let (damp, attempts) = codes[e.index].as_ref()?.damp?;
                (attempts > 1).then(|| format!("{}={damp}", prepared.sources[e.index].name))
            })
            .collect();
        let mut metadata = provenance(
            planning,
            options,
            prepared.source_digest.clone(),
            hessians,
            &prepared.rules,
            &retried,
        );
        metadata.extend(budget_metadata(budget, entries, choice, &prepared.sources));
        Ok::<_, PipelineError>(encode(&tensors, &metadata, options.compression)?)
    };
    let mut rest = write(&base_choice, &codes, &entries)?.len() as f64;
    let curves_seconds = search_started.elapsed().as_secs_f64();

    let target = |rest: f64| budget as f64 - (SLACK / 2) as f64 - rest;
    let curves = |entries: &[Entry]| entries.iter().map(Entry::calibrated).collect::<Vec<_>>();
    let too_small = |entries: &[Entry], rest: f64| {
        let least = least_rate(&curves(entries));
        BudgetError::TooSmall {
            budget,
            smallest: (least + rest).round().max(0.0) as u64,
            fixed: rest.round().max(0.0) as u64,
        }
    };

    // Uniform: every tensor at the common step, then the last bytes to the
    // smallest tensors (a Lagrangian over its linear window objective would
    // send whole tensors to the window's ends).
    let mut choice = match allocation {
        Allocation::Uniform => {
            let centers = center(&mut entries, target(rest))
                .ok_or_else(|| PipelineError::Budget(too_small(&entries, rest)))?;
            allocate::fill(&curves(&entries), centers, target(rest))
        }
        Allocation::PerTensor => allocate(&curves(&entries), target(rest))
            .ok_or_else(|| PipelineError::Budget(too_small(&entries, rest)))?,
    };
    // 4. Rounds.
    let mut exact: Vec<u64> = vec![0; entries.len()];
    let mut dirty: Vec<bool> = vec![true; entries.len()];
    let mut rounds: Vec<Round> = Vec::new();
    let mut run: Option<RunInfo> = None;
    let mut written: Option<Vec<u8>> = None;
    for round in 1..=MAX_ROUNDS {
        let round_started = std::time::Instant::now();
        let todo: Vec<usize> = (0..entries.len()).filter(|&e| dirty[e]).collect();
        observe(&format!("budget round {round}"), todo.len());
        let mut plans = vec![TensorPlan::Keep; count];
        for &e in &todo {
            plans[entries[e].index] = TensorPlan::Quantize(entries[e].plan_at(choice[e]));
        }
        let (mut fresh, info) = compute_codes(
            backend,
            &prepared.sources,
            &plans,
            hessian_source,
            &RunOptions::threads(threads),
        )?;
        run = Some(match run {
            None => info,
            Some(mut total) => {
                total.codes_ms += info.codes_ms;
                total.fallbacks.extend(info.fallbacks);
                total
            }
        });
        // What the backend left (a CUDA fallback) runs on the CPU, which
        // also names the error of a tensor that cannot be quantized.
        for &e in &todo {
            let i = entries[e].index;
            if fresh[i].is_none() {
                let source = &prepared.sources[i];
                let plan = entries[e].plan_at(choice[e]);
                let c = matrix_codes(source, &plan, hessian_source.hessian(&source.name), threads)
                    .map_err(|e| PipelineError::Backend(e.into()))?;
                fresh[i] = Some(c);
            }
        }
        let measured = map_largest_first(
            &todo,
            threads,
            |&e| prepared.sources[entries[e].index].values.len() as u64,
            |&e| {
                fresh[entries[e].index]
                    .as_ref()
                    .map_or(0, |c| code_bytes(&c.codes, entries[e].cols))
            },
            |_, _| {},
        );
        for (&e, bytes) in todo.iter().zip(measured) {
            let i = entries[e].index;
            exact[e] = bytes;
            let estimate = entries[e].curve.rate[choice[e]];
            if estimate > 0.0 {
                entries[e].rho = bytes as f64 / estimate;
            }
            codes[i] = fresh[i].take();
            dirty[e] = false;
        }
        let predicted = rest + exact.iter().sum::<u64>() as f64;
        let mut record = Round {
            quantized: todo.len(),
            predicted_bytes: predicted.round().max(0.0) as u64,
            written_bytes: None,
            seconds: 0.0,
        };
        let low = budget.saturating_sub(SLACK) as f64;
        let last = round == MAX_ROUNDS;
        // The first round always writes: the rest's estimate (scales
        // written as a vector) can be off by kilobytes, and every later
        // prediction builds on it.
        if (predicted >= low && predicted <= budget as f64) || last || round == 1 {
            if let Some(o) = options.observer {
                o.compressing(&options.compression.describe());
            }
            let bytes = write(&choice, &codes, &entries)?;
            let size = bytes.len() as u64;
            record.written_bytes = Some(size);
            rest += size as f64 - predicted;
            record.seconds = round_started.elapsed().as_secs_f64();
            rounds.push(record);
            let fits = size <= budget && size >= budget.saturating_sub(SLACK);
            written = Some(bytes);
            if fits || last {
                break;
            }
        } else {
            record.seconds = round_started.elapsed().as_secs_f64();
            rounds.push(record);
        }
        let mut next = adjust(&curves(&entries), choice.clone(), target(rest));
        let stuck = next
            .as_ref()
            .is_none_or(|n| *n == choice && !(predicted >= low && predicted <= budget as f64));
        if allocation == Allocation::Uniform && stuck {
            // The window of the first guess does not reach the budget: the
            // common step again, from curves calibrated on real codes.
            let before: Vec<Option<f32>> = entries
                .iter()
                .zip(&choice)
                .map(|(e, &o)| e.ks.get(o).copied())
                .collect();
            let centers = center(&mut entries, target(rest))
                .ok_or_else(|| PipelineError::Budget(too_small(&entries, rest)))?;
            next = Some(allocate::fill(&curves(&entries), centers, target(rest)));
            if let Some(n) = &next {
                // Indices changed with the window: compare factors.
                for (e, entry) in entries.iter().enumerate() {
                    if entry.ks.get(n[e]).copied() != before[e] {
                        dirty[e] = true;
                    }
                }
            }
        }
        let next = next.ok_or_else(|| PipelineError::Budget(too_small(&entries, rest)))?;
        let moved: Vec<usize> = (0..entries.len())
            .filter(|&e| next[e] != choice[e] || dirty[e])
            .collect();
        if moved.is_empty() {
            // Nothing left to move: the budget does not bind (or no step is
            // small enough); the last write stands. Unwritten, it is written
            // now, and if its size corrects the prediction enough to miss
            // the window, the search goes on from the corrected rest.
            if written.is_none() {
                let bytes = write(&choice, &codes, &entries)?;
                let size = bytes.len() as u64;
                if let Some(r) = rounds.last_mut() {
                    r.written_bytes = Some(size);
                }
                rest += size as f64 - predicted;
                written = Some(bytes);
                let fits = size <= budget && size >= budget.saturating_sub(SLACK);
                if !fits && round < MAX_ROUNDS {
                    continue;
                }
            }
            break;
        }
        for e in moved {
            dirty[e] = true;
        }
        choice = next;
        written = None;
    }
    let Some(bytes) = written else {
        unreachable!("the last round always writes")
    };
    let size = bytes.len() as u64;
    if size > budget {
        return Err(PipelineError::Budget(BudgetError::Over {
            budget,
            bytes: size,
            rounds: rounds.len(),
        }));
    }
    let search_seconds = search_started.elapsed().as_secs_f64();

    // The reports, measured from the codes (the same tensors as written).
    let plans: Vec<TensorPlan> = (0..count)
        .map(|i| match entry_of[i] {
            Some(e) => TensorPlan::Quantize(entries[e].plan_at(choice[e])),
            None => prepared.plans[i].clone(),
        })
        .collect();
    observe("reports", count);
    let tick = |done: usize, total: usize, name: &str| {
        if let Some(o) = options.observer {
            o.tensor(done, total, name);
        }
    };
    let model = quantize_planned_with(
        &prepared.sources,
        &plans,
        hessian_source,
        threads,
        Some(&tick),
        &codes,
    )
    .map_err(|e| PipelineError::Backend(e.into()))?;
    let free: Vec<usize> = entries.iter().map(|e| e.curve.least_error()).collect();
    let report = BudgetReport {
        budget_bytes: budget,
        slack_bytes: SLACK,
        file_bytes: size,
        headroom_bytes: budget as i64 - size as i64,
        binding: !(choice == free && size < budget.saturating_sub(SLACK)),
        hessian_weighted: hessians.is_some(),
        allocation,
        rounds,
        tensors: entries
            .iter()
            .zip(&choice)
            .zip(&exact)
            .map(|((e, &o), &bytes)| BudgetTensor {
                name: prepared.sources[e.index].name.clone(),
                rule_k: e.rule_k,
                k: e.ks.get(o).copied(),
                code_bytes: bytes,
                estimated_error: e.curve.dist[o],
            })
            .collect(),
        curves_seconds,
        search_seconds,
    };
    let run = run.unwrap_or_else(|| RunInfo {
        backend: backend.describe(),
        matrices: 0,
        fallbacks: Vec::new(),
        codes_ms: 0.0,
        device_ms: None,
    });
    let artifact = assemble(prepared, bytes, model, run)?;
    Ok((artifact, report))
}

#[cfg(test)]
mod tests;
