//! One call from source tensors to a `.pgq` artifact: what `pgq quantize`,
//! `pgq demo` and the Python package's `pgq.quantize` all run.
//!
//! [`quantize`] plans every tensor (a [`Recipe`] or the [`DefaultPolicy`]),
//! narrows the run to the `only` globs, checks that every plan that needs a
//! Hessian has one, computes the codes on the chosen backend, measures
//! every tensor, and writes the container with its provenance and decode
//! digest. The caller renders the [`Report`].
//!
//! ```
//! use pgq_quantizer::pipeline::{quantize, Options, Planning};
//! use pgq_quantizer::{backend::Backend, DefaultPolicy, DemoConfig};
//! let sources = DemoConfig::tiny().generate(0).unwrap();
//! let planning = Planning::Policy(DefaultPolicy::default());
//! let artifact = quantize(&Backend::Cpu, &sources, &planning, None, &Options::default()).unwrap();
//! let archive = pgq_format::read(&artifact.bytes, &Default::default()).unwrap();
//! assert_eq!(archive.tensors.len(), sources.len());
//! assert!(artifact.report().headroom_bytes > 0);
//! ```

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use pgq_format::{
    decode_digest, read_header, summarize, write, Compression, MetaValue, ReadOptions, Summary,
    Tensor, WriteOptions, CAP_BYTES, DECODE_DIGEST_KEY,
};
use serde::Serialize;

use crate::backend::{quantize_on, Backend, BackendError, RunInfo, RunOptions};
use crate::digest::tensor_digest;
use crate::lqer::{self, LqerConfig, LqerError, LqerReport};
use crate::model::{HessianSource, NoHessians, QuantizedModel, SourceTensor, TensorReport};
use crate::policy::{DefaultPolicy, Planner, TensorPlan};
use crate::recipe::{name_glob, Recipe, RecipeError, RulePlan};

/// The recipe `pgq demo` runs by default (`recipes/default.toml`): the
/// field's numbers with GPTQ.
pub const DEFAULT_RECIPE: &str = include_str!("../../recipes/default.toml");

/// Where the plans come from.
#[derive(Debug, Clone)]
pub enum Planning {
    /// Ordered per-tensor rules.
    Recipe(Recipe),
    /// The field's default policy (plain RTN), with its knobs.
    Policy(DefaultPolicy),
}

impl Planning {
    /// One plan per tensor, each with the index of the recipe rule that
    /// chose it. A recipe is checked against all of `sources` (every tensor
    /// covered, every rule used), also when `only` later narrows the run,
    /// so that a step of a sequential run plans as the full run does.
    pub fn plan(
        &self,
        sources: &[SourceTensor],
    ) -> Result<Vec<(TensorPlan, Option<usize>)>, RecipeError> {
        match self {
            Planning::Policy(policy) => Ok(sources
                .iter()
                .map(|s| (policy.plan(&s.name, &s.shape), None))
                .collect()),
            Planning::Recipe(recipe) => {
                let layout: Vec<(String, Vec<u64>)> = sources
                    .iter()
                    .map(|s| (s.name.clone(), s.shape.clone()))
                    .collect();
                Ok(recipe
                    .plan_all(&layout)?
                    .into_iter()
                    .map(|(_, plan): (String, RulePlan)| (plan.to_tensor_plan(), Some(plan.rule())))
                    .collect())
            }
        }
    }

    /// The recipe's `[lqer]` table, if any.
    pub fn lqer(&self) -> Option<&LqerConfig> {
        match self {
            Planning::Recipe(recipe) => recipe.lqer(),
            Planning::Policy(_) => None,
        }
    }

    /// `("pgq.recipe", canonical rules)` or `("pgq.policy", description)`.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Planning::Recipe(recipe) => ("pgq.recipe", recipe.describe()),
            Planning::Policy(policy) => ("pgq.policy", policy.describe()),
        }
    }
}

/// Why a run cannot produce an artifact.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no tensors to quantize")]
    NoTensors,
    /// The recipe does not fit the tensors (a tensor no rule covers, a rule
    /// no tensor uses).
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Lqer(#[from] LqerError),
    /// `[lqer]` ranks the whole model's tensors: a partial run or a budget
    /// search would rank others, or change the file after it was fitted.
    #[error(
        "the recipe's [lqer] with {0}: not supported yet (LQER picks the worst tensors of the \
         whole model after all codes are made; run without it, or drop [lqer])"
    )]
    LqerWith(&'static str),
    /// An `only` glob that does not parse.
    #[error("only {glob:?}: {reason}")]
    BadGlob { glob: String, reason: String },
    /// `only` globs that select no tensor.
    #[error(
        "{} matches none of the {tensors} tensors (globs match whole names; `*` crosses dots: \
         \"blocks.3.*\")",
        globs.join(" ")
    )]
    SelectsNothing { globs: Vec<String>, tensors: usize },
    /// A Hessian that is not a square matrix.
    #[error(
        "{origin}: Hessian {name:?} has shape {shape:?}; a Hessian is a square [in, in] matrix \
         (X^T X / n of the weight's inputs)"
    )]
    HessianShape {
        origin: String,
        name: String,
        shape: Vec<u64>,
    },
    /// Tensors whose plans need a Hessian (GPTQ, a Hessian-weighted clip
    /// search) and have none; `origin` is `None` when no Hessians were given.
    #[error("{}", missing_hessians_message(missing, origin.as_deref().unwrap_or("no Hessians were given")))]
    MissingHessians {
        missing: Vec<String>,
        origin: Option<String>,
    },
    /// A tensor's quantization, or the device, failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The container could not be written (a value out of its range).
    #[error("cannot write the artifact: {0}")]
    Write(#[from] pgq_format::WriteError),
    /// The budget cannot be met (`--budget`).
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    /// The written bytes do not read back: a pgq bug.
    #[error("the written artifact does not parse (a pgq bug): {0}")]
    Reread(pgq_format::FormatError),
}

/// "3 tensor(s) need a Hessian (...) and `source`: a, b, c": at most eight
/// names, then a count.
pub fn missing_hessians_message(missing: &[String], source: &str) -> String {
    let shown: Vec<&str> = missing.iter().take(8).map(String::as_str).collect();
    let more = missing.len() - shown.len();
    format!(
        "{} tensor(s) need a Hessian (GPTQ, or a Hessian-weighted clip search) and {source}: {}{}",
        missing.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// The indices of the tensors whose names match one of `globs` (all when
/// `globs` is empty).
pub fn select(sources: &[SourceTensor], globs: &[String]) -> Result<Vec<usize>, PipelineError> {
    if globs.is_empty() {
        return Ok((0..sources.len()).collect());
    }
    let matchers = globs
        .iter()
        .map(|g| {
            name_glob(g).map_err(|e| PipelineError::BadGlob {
                glob: g.clone(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let selected: Vec<usize> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| matchers.iter().any(|m| m.is_match(&s.name)))
        .map(|(i, _)| i)
        .collect();
    if selected.is_empty() {
        return Err(PipelineError::SelectsNothing {
            globs: globs.to_vec(),
            tensors: sources.len(),
        });
    }
    Ok(selected)
}

/// Hessians held in memory: one `[in, in]` f32 matrix per weight name.
#[derive(Debug, Clone, PartialEq)]
pub struct Hessians {
    /// Where they came from, for messages (a path, "the hessians mapping").
    pub origin: String,
    pub matrices: BTreeMap<String, Vec<f32>>,
    /// [`tensor_digest`] of the matrices.
    pub sha256: String,
}

impl HessianSource for Hessians {
    fn hessian(&self, name: &str) -> Option<&[f32]> {
        self.matrices.hessian(name)
    }
}

impl Hessians {
    /// Takes `tensors` as Hessians, refusing any that is not square.
    pub fn new(
        origin: impl Into<String>,
        tensors: Vec<SourceTensor>,
    ) -> Result<Self, PipelineError> {
        let origin = origin.into();
        let sha256 = tensor_digest(
            tensors
                .iter()
                .map(|t| (t.name.as_str(), t.shape.as_slice(), t.values.as_slice())),
        );
        let mut matrices = BTreeMap::new();
        for t in tensors {
            match t.shape.as_slice() {
                [a, b] if a == b => {
                    matrices.insert(t.name, t.values);
                }
                _ => {
                    return Err(PipelineError::HessianShape {
                        origin,
                        name: t.name,
                        shape: t.shape,
                    })
                }
            }
        }
        Ok(Hessians {
            origin,
            matrices,
            sha256,
        })
    }

    /// These Hessians as a run's input.
    pub fn input(&self) -> HessianInput<'_> {
        HessianInput {
            source: self,
            names: self.matrices.keys().map(String::as_str).collect(),
            origin: self.origin.clone(),
            sha256: Some(self.sha256.clone()),
        }
    }
}

/// The Hessians a run reads, however they are stored.
pub struct HessianInput<'a> {
    pub source: &'a dyn HessianSource,
    /// Every name the source holds, for the warning about Hessians no
    /// tensor uses (empty: no such check).
    pub names: Vec<&'a str>,
    /// Where they came from, for messages.
    pub origin: String,
    /// `pgq.hessians.sha256`; `None` leaves it out (synthetic Hessians).
    pub sha256: Option<String>,
}

/// What the run reports while it works, from any thread.
pub trait Observer: Sync {
    /// Codes are about to be computed for `total` tensors on `backend`.
    fn start(&self, _total: usize, _backend: &str) {}
    /// `done` of `total` tensors are measured; `name` was the last one.
    fn tensor(&self, _done: usize, _total: usize, _name: &str) {}
    /// The container is being compressed with `codec`.
    fn compressing(&self, _codec: &str) {}
}

/// The command line's progress bar as an [`Observer`] (feature `progress`):
/// on stderr, hidden when stderr is not a terminal; it ticks on its own, so
/// the elapsed time moves during compression, and it notes when
/// compression started (`pgq demo` splits its time there).
#[cfg(feature = "progress")]
pub struct ProgressBar {
    pub bar: indicatif::ProgressBar,
    compress_started: std::sync::Mutex<Option<Instant>>,
}

#[cfg(feature = "progress")]
impl ProgressBar {
    /// A bar labelled `prefix` (`quantize`, `pgq.quantize`).
    pub fn new(prefix: &str) -> Self {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {elapsed:>4} {wide_msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(prefix.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        ProgressBar {
            bar,
            compress_started: std::sync::Mutex::new(None),
        }
    }

    /// Seconds since compression started (None: it has not).
    pub fn compress_seconds(&self) -> Option<f64> {
        let started = *self.compress_started.lock().ok()?;
        started.map(|t| t.elapsed().as_secs_f64())
    }
}

#[cfg(feature = "progress")]
impl Observer for ProgressBar {
    fn start(&self, total: usize, backend: &str) {
        self.bar.set_length(total as u64);
        self.bar.set_message(format!("codes on {backend}"));
    }

    fn tensor(&self, done: usize, _total: usize, name: &str) {
        self.bar.set_position(done as u64);
        self.bar.set_message(name.to_string());
    }

    fn compressing(&self, codec: &str) {
        if let Ok(mut started) = self.compress_started.lock() {
            *started = Some(Instant::now());
        }
        self.bar.set_message(format!("compressing ({codec})"));
    }
}

/// How [`quantize`] runs.
pub struct Options<'a> {
    pub compression: Compression,
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Quantize only tensors whose names match one of these globs (`*`
    /// crosses dots); the artifact holds only those. Empty: all.
    pub only: Vec<String>,
    /// Extra metadata entries (`pgq.*` keys the run writes win).
    pub metadata: BTreeMap<String, MetaValue>,
    /// Record `pgq.source.sha256` (the content digest of the sources).
    pub source_digest: bool,
    pub observer: Option<&'a dyn Observer>,
}

impl Default for Options<'_> {
    /// The default codec (auto: rANS, brotli-11 or zstd-19 per section),
    /// all cores, every tensor, digests on.
    fn default() -> Self {
        Options {
            compression: pgq_format::DEFAULT_COMPRESSION,
            threads: 0,
            only: Vec::new(),
            metadata: BTreeMap::new(),
            source_digest: true,
            observer: None,
        }
    }
}

/// A written artifact and what it took.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The `.pgq` file.
    pub bytes: Vec<u8>,
    /// What was written (codes and scales, passthrough values), in order.
    pub tensors: Vec<Tensor>,
    /// One per tensor written, in order.
    pub reports: Vec<TensorReport>,
    /// Where the codes were computed.
    pub run: RunInfo,
    /// The written file's sizes, per tensor and section.
    pub summary: Summary,
    /// The metadata written (provenance and decode digest).
    pub metadata: BTreeMap<String, MetaValue>,
    /// Things worth saying that did not stop the run (unused Hessians).
    pub warnings: Vec<String>,
    /// How many of the source tensors the artifact holds (`only`).
    pub selected: usize,
    /// The whole call, in seconds.
    pub seconds: f64,
    /// The tensors given a low-rank correction (a recipe's `[lqer]`), in
    /// file order.
    pub lqer: Vec<LqerReport>,
}

/// One tensor of a [`Report`]: what the quantizer did and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorRow {
    #[serde(flatten)]
    pub report: TensorReport,
    /// Its bytes in the file (codes, scales, its share of entries).
    pub bytes: u64,
    pub bits_per_weight: f64,
}

/// Output-space proxy against plain RTN over the matrices that have both.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct VersusRtn {
    pub matrices: usize,
    pub improved: usize,
    pub median_ratio: f64,
    pub worst_ratio: f64,
}

/// The report of a run: `pgq quantize --json` and `artifact.report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub file_bytes: u64,
    pub cap_bytes: u64,
    /// The cap minus the file (negative: over), before code bytes.
    pub headroom_bytes: i64,
    pub seconds: f64,
    /// What computed the codes, in how long, and what it left to the CPU.
    pub backend: RunInfo,
    /// The Hessian proxy against plain RTN (with Hessians).
    pub versus_rtn: Option<VersusRtn>,
    pub tensors: Vec<TensorRow>,
    /// Low-rank corrections (a recipe's `[lqer]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lqer: Vec<LqerReport>,
}

impl Artifact {
    /// The report of this run.
    pub fn report(&self) -> Report {
        Report {
            file_bytes: self.summary.file_bytes,
            cap_bytes: CAP_BYTES,
            headroom_bytes: CAP_BYTES as i64 - self.summary.file_bytes as i64,
            seconds: self.seconds,
            backend: self.run.clone(),
            versus_rtn: versus_rtn(&self.reports),
            tensors: rows(&self.reports, &self.summary),
            lqer: self.lqer.clone(),
        }
    }
}

/// Each report beside the bytes its tensor takes in `summary`.
pub fn rows(reports: &[TensorReport], summary: &Summary) -> Vec<TensorRow> {
    reports
        .iter()
        .zip(&summary.tensors)
        .map(|(report, t)| TensorRow {
            report: report.clone(),
            bytes: t.bytes,
            bits_per_weight: t.bits_per_weight,
        })
        .collect()
}

/// The Hessian proxy against plain RTN, over the matrices that have both.
pub fn versus_rtn(reports: &[TensorReport]) -> Option<VersusRtn> {
    let mut ratios: Vec<f64> = reports
        .iter()
        .filter_map(|r| Some(r.hessian_error? / r.rtn.as_ref()?.hessian_error?))
        .filter(|r| r.is_finite())
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(VersusRtn {
        matrices: ratios.len(),
        improved: ratios.iter().filter(|&&r| r < 1.0).count(),
        median_ratio: ratios[ratios.len() / 2],
        worst_ratio: ratios[ratios.len() - 1],
    })
}

/// Checks, before any work, that every selected tensor whose plan needs a
/// Hessian has one (listing all that do not); returns a warning about
/// Hessians that name no tensor (a typo, or another model's file).
fn check_hessians(
    hessians: Option<&HessianInput>,
    sources: &[SourceTensor],
    plans: &[(TensorPlan, Option<usize>)],
    selected: &[usize],
) -> Result<Option<String>, PipelineError> {
    let missing: Vec<String> = selected
        .iter()
        .filter(|&&i| match &plans[i].0 {
            TensorPlan::Quantize(plan) => plan.needs_hessian(),
            TensorPlan::Keep => false,
        })
        .map(|&i| &sources[i].name)
        .filter(|name| hessians.is_none_or(|h| h.source.hessian(name).is_none()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::MissingHessians {
            missing,
            origin: hessians.map(|h| h.origin.clone()),
        });
    }
    let Some(h) = hessians else { return Ok(None) };
    let known: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let strays: Vec<&str> = h
        .names
        .iter()
        .copied()
        .filter(|n| !known.contains(n))
        .collect();
    Ok((!strays.is_empty()).then(|| {
        format!(
            "{} Hessian(s) in {} name no tensor of the checkpoint and are unused: {}",
            strays.len(),
            h.origin,
            strays
                .iter()
                .take(8)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )
    }))
}

/// Provenance: `pgq.producer`, `pgq.codec`, `pgq.recipe` or `pgq.policy`,
/// `pgq.rules` (with a recipe, the rule index of every tensor),
/// `pgq.source.sha256` and `pgq.hessians.sha256` (content digests),
/// `pgq.only`, `pgq.damp` (tensors whose GPTQ needed more damping than
/// asked, `name=damping`), and the caller's extra entries under them.
pub(crate) fn provenance(
    planning: &Planning,
    options: &Options,
    source_digest: Option<String>,
    hessians: Option<&HessianInput>,
    rules: &[Option<usize>],
    retried: &[String],
) -> BTreeMap<String, MetaValue> {
    let mut entries = options.metadata.clone();
    let mut put = |k: &str, v: String| {
        entries.insert(k.to_string(), MetaValue::Str(v));
    };
    put("pgq.producer", format!("pgq {}", env!("CARGO_PKG_VERSION")));
    put("pgq.codec", options.compression.describe());
    let (key, value) = planning.describe();
    put(key, value);
    if let Some(digest) = source_digest {
        put("pgq.source.sha256", digest);
    }
    if let Some(digest) = hessians.and_then(|h| h.sha256.clone()) {
        put("pgq.hessians.sha256", digest);
    }
    if !options.only.is_empty() {
        put("pgq.only", options.only.join(" "));
    }
    if rules.iter().all(Option::is_some) && !rules.is_empty() {
        let list: Vec<String> = rules.iter().flatten().map(|r| r.to_string()).collect();
        put("pgq.rules", list.join(","));
    }
    if !retried.is_empty() {
        put("pgq.damp", retried.join(","));
    }
    entries
}

/// The artifact bytes of `tensors` with `metadata` and the decode digest
/// (`pgq.decode.sha256`, spec/FORMAT.md §4.3.1) that `pgq verify`
/// recomputes.
pub fn encode(
    tensors: &[Tensor],
    metadata: &BTreeMap<String, MetaValue>,
    compression: Compression,
) -> Result<Vec<u8>, pgq_format::WriteError> {
    let mut metadata = metadata.clone();
    metadata.insert(
        DECODE_DIGEST_KEY.to_string(),
        MetaValue::Str(decode_digest(tensors)),
    );
    write(
        tensors,
        &metadata,
        &WriteOptions::with_compression(compression),
    )
}

/// A run's checked inputs, before any codes: the selected tensors and
/// their plans.
pub(crate) struct Prepared<'s> {
    pub sources: std::borrow::Cow<'s, [SourceTensor]>,
    pub plans: Vec<TensorPlan>,
    pub rules: Vec<Option<usize>>,
    pub warning: Option<String>,
    pub source_digest: Option<String>,
    pub started: Instant,
}

/// Plans every tensor, narrows to `only`, checks the Hessians and takes
/// the content digest: everything [`quantize`] does before the codes.
pub(crate) fn prepare<'s>(
    sources: &'s [SourceTensor],
    planning: &Planning,
    hessians: Option<&HessianInput>,
    options: &Options,
) -> Result<Prepared<'s>, PipelineError> {
    let started = Instant::now();
    if sources.is_empty() {
        return Err(PipelineError::NoTensors);
    }
    let plans = planning.plan(sources)?;
    let selected = select(sources, &options.only)?;
    let warning = check_hessians(hessians, sources, &plans, &selected)?;
    let source_digest = options.source_digest.then(|| {
        tensor_digest(
            sources
                .iter()
                .map(|s| (s.name.as_str(), s.shape.as_slice(), s.values.as_slice())),
        )
    });
    // The selected tensors, borrowed where all are selected (the usual run).
    let (chosen, chosen_plans) = if selected.len() == sources.len() {
        (std::borrow::Cow::Borrowed(sources), plans)
    } else {
        let narrowed: Vec<SourceTensor> = selected.iter().map(|&i| sources[i].clone()).collect();
        let plans = selected.iter().map(|&i| plans[i].clone()).collect();
        (std::borrow::Cow::Owned(narrowed), plans)
    };
    let (plans, rules): (Vec<TensorPlan>, Vec<Option<usize>>) = chosen_plans.into_iter().unzip();
    Ok(Prepared {
        sources: chosen,
        plans,
        rules,
        warning,
        source_digest,
        started,
    })
}

/// The `pgq.damp` entries of a run: `name=damping` for every tensor whose
/// GPTQ needed more damping than asked.
pub(crate) fn damping_retries(reports: &[TensorReport]) -> Vec<String> {
    reports
        .iter()
        .filter(|r| r.damp_attempts.is_some_and(|n| n > 1))
        .filter_map(|r| Some(format!("{}={}", r.name, r.damp_used?)))
        .collect()
}

/// The artifact of a finished run whose container is `bytes`.
pub(crate) fn assemble(
    prepared: Prepared,
    bytes: Vec<u8>,
    model: QuantizedModel,
    run: RunInfo,
) -> Result<Artifact, PipelineError> {
    let header = read_header(&bytes, &ReadOptions::default()).map_err(PipelineError::Reread)?;
    let summary = summarize(&header);
    let metadata = header.metadata.iter().cloned().collect();
    Ok(Artifact {
        bytes,
        tensors: model.tensors,
        reports: model.reports,
        run,
        summary,
        metadata,
        warnings: prepared.warning.into_iter().collect(),
        selected: prepared.sources.len(),
        seconds: prepared.started.elapsed().as_secs_f64(),
        lqer: Vec::new(),
    })
}

/// Quantizes `sources` as `planning` decides, on `backend`, into a `.pgq`
/// artifact. Nothing is copied: sources and Hessians are borrowed.
pub fn quantize(
    backend: &Backend,
    sources: &[SourceTensor],
    planning: &Planning,
    hessians: Option<&HessianInput>,
    options: &Options,
) -> Result<Artifact, PipelineError> {
    if planning.lqer().is_some() && !options.only.is_empty() {
        return Err(PipelineError::LqerWith("--only"));
    }
    let prepared = prepare(sources, planning, hessians, options)?;
    if let Some(o) = options.observer {
        o.start(prepared.sources.len(), &backend.describe());
    }
    let tick = |done: usize, total: usize, name: &str| {
        if let Some(o) = options.observer {
            o.tensor(done, total, name);
        }
    };
    let (mut model, run) = quantize_on(
        backend,
        &prepared.sources,
        &prepared.plans,
        hessians.map_or(&NoHessians as &dyn HessianSource, |h| h.source),
        &RunOptions {
            threads: options.threads,
            progress: Some(&tick),
        },
    )?;
    let lqer = match planning.lqer() {
        Some(config) => lqer::apply(config, &prepared.sources, &mut model.tensors)?,
        None => Vec::new(),
    };
    if let Some(o) = options.observer {
        o.compressing(&options.compression.describe());
    }
    let mut metadata = provenance(
        planning,
        options,
        prepared.source_digest.clone(),
        hessians,
        &prepared.rules,
        &damping_retries(&model.reports),
    );
    if !lqer.is_empty() {
        let list: Vec<String> = lqer
            .iter()
            .map(|r| format!("{}={}", r.tensor, r.rank))
            .collect();
        metadata.insert("pgq.lqer".into(), MetaValue::Str(list.join(",")));
    }
    let bytes = encode(&model.tensors, &metadata, options.compression)?;
    let mut artifact = assemble(prepared, bytes, model, run)?;
    artifact.lqer = lqer;
    Ok(artifact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DemoConfig;

    fn demo() -> Vec<SourceTensor> {
        DemoConfig::tiny().generate(1).unwrap()
    }

    fn policy() -> Planning {
        Planning::Policy(DefaultPolicy::default())
    }

    #[test]
    fn the_artifact_carries_provenance_and_the_decode_digest() {
        let sources = demo();
        let a = quantize(
            &Backend::Cpu,
            &sources,
            &policy(),
            None,
            &Options::default(),
        )
        .unwrap();
        let archive = pgq_format::read(&a.bytes, &ReadOptions::default()).unwrap();
        let meta: BTreeMap<String, MetaValue> = archive.header.metadata.iter().cloned().collect();
        let text = |k: &str| match meta.get(k) {
            Some(MetaValue::Str(s)) => s.clone(),
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(text(DECODE_DIGEST_KEY), decode_digest(&archive.tensors));
        assert_eq!(
            text("pgq.source.sha256"),
            tensor_digest(sources.iter().map(|s| (
                s.name.as_str(),
                s.shape.as_slice(),
                s.values.as_slice()
            )))
        );
        assert!(text("pgq.policy").contains("12.85"));
        assert_eq!(a.reports.len(), sources.len());
        assert_eq!(a.summary.file_bytes, a.bytes.len() as u64);
        assert_eq!(a.metadata, meta);
    }

    #[test]
    fn the_same_tensors_in_another_order_give_the_same_digest() {
        let sources = demo();
        let mut reversed = sources.clone();
        reversed.reverse();
        let digest = |s: &[SourceTensor]| {
            let a = quantize(&Backend::Cpu, s, &policy(), None, &Options::default()).unwrap();
            a.metadata["pgq.source.sha256"].clone()
        };
        assert_eq!(digest(&sources), digest(&reversed));
    }

    #[test]
    fn only_narrows_and_bad_selections_are_typed() {
        let sources = demo();
        let options = Options {
            only: vec!["blocks.0.*".into()],
            ..Options::default()
        };
        let a = quantize(&Backend::Cpu, &sources, &policy(), None, &options).unwrap();
        assert!(a.selected > 0 && a.selected < sources.len());
        assert!(a.reports.iter().all(|r| r.name.starts_with("blocks.0.")));
        assert_eq!(a.metadata["pgq.only"], MetaValue::Str("blocks.0.*".into()));

        let none = Options {
            only: vec!["nothing.*".into()],
            ..Options::default()
        };
        let e = quantize(&Backend::Cpu, &sources, &policy(), None, &none).unwrap_err();
        assert!(
            matches!(e, PipelineError::SelectsNothing { tensors, .. } if tensors == sources.len())
        );
        let e = quantize(&Backend::Cpu, &[], &policy(), None, &Options::default()).unwrap_err();
        assert!(matches!(e, PipelineError::NoTensors));
    }

    #[test]
    fn gptq_without_hessians_lists_what_is_missing() {
        let sources = demo();
        let planning = Planning::Recipe(Recipe::parse(DEFAULT_RECIPE).unwrap());
        let e = quantize(
            &Backend::Cpu,
            &sources,
            &planning,
            None,
            &Options::default(),
        )
        .unwrap_err();
        match &e {
            PipelineError::MissingHessians { missing, origin } => {
                assert!(missing.iter().any(|n| n == "tok_emb.weight"));
                assert!(origin.is_none());
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("no Hessians were given"), "{e}");
    }

    #[test]
    fn hessians_must_be_square_and_strays_are_warned_about() {
        let bad = SourceTensor {
            name: "w".into(),
            shape: vec![2, 3],
            values: vec![0.0; 6],
        };
        let e = Hessians::new("h.safetensors", vec![bad]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("h.safetensors: Hessian \"w\" has shape [2, 3]"),
            "{e}"
        );

        let sources = demo();
        let stray = SourceTensor {
            name: "not.a.tensor".into(),
            shape: vec![2, 2],
            values: vec![1.0, 0.0, 0.0, 1.0],
        };
        let h = Hessians::new("the mapping", vec![stray]).unwrap();
        let a = quantize(
            &Backend::Cpu,
            &sources,
            &policy(),
            Some(&h.input()),
            &Options::default(),
        )
        .unwrap();
        assert_eq!(a.warnings.len(), 1);
        assert!(a.warnings[0].contains("not.a.tensor"), "{:?}", a.warnings);
        assert_eq!(
            a.metadata["pgq.hessians.sha256"],
            MetaValue::Str(h.sha256.clone())
        );
    }
}
