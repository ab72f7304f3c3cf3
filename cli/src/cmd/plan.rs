//! What `quantize` and `demo` run: the plan of every tensor (from a recipe
//! or the default policy), the tensors `--only` selects, the Hessians, and
//! the provenance written into the artifact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use pgq_format::{Compression, MetaValue};
use pgq_quantizer::cuda::{quantize_on, Backend, BackendError, RunInfo};
use pgq_quantizer::recipe::name_glob;
use pgq_quantizer::{
    DefaultPolicy, HessianSource, NoHessians, Planner, QuantizedModel, Recipe, RulePlan,
    SourceTensor, TensorPlan,
};

use super::common::progress_bar;
use crate::checkpoint;
use crate::exit::{CliError, CliResult};

/// The default recipe (`recipes/default.toml`): the field's numbers with
/// GPTQ, for `pgq demo`.
pub const DEFAULT_RECIPE: &str = include_str!("../../../recipes/default.toml");

/// Where the plans come from.
pub enum Planning {
    Recipe(Recipe),
    Policy(DefaultPolicy),
}

impl Planning {
    /// Loads `path` as a recipe; a bad recipe is malformed input (exit 2).
    pub fn recipe(path: &Path) -> CliResult<Planning> {
        Recipe::load(path)
            .map(Planning::Recipe)
            .map_err(CliError::malformed)
    }

    /// One plan per tensor. A recipe is checked against the whole
    /// checkpoint (every tensor covered, every rule used), also when
    /// `--only` later narrows the run, so that a step of a sequential run
    /// uses the same plans as the full run. Each plan comes with the index
    /// of the recipe rule that chose it.
    pub fn plan(&self, sources: &[SourceTensor]) -> CliResult<Vec<(TensorPlan, Option<usize>)>> {
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
                let plans = recipe.plan_all(&layout).map_err(CliError::malformed)?;
                Ok(plans
                    .into_iter()
                    .map(|(_, plan): (String, RulePlan)| (plan.to_tensor_plan(), Some(plan.rule())))
                    .collect())
            }
        }
    }

    /// `("pgq.recipe", canonical rules)` or `("pgq.policy", description)`.
    fn describe(&self) -> (&'static str, String) {
        match self {
            Planning::Recipe(recipe) => ("pgq.recipe", recipe.describe()),
            Planning::Policy(policy) => ("pgq.policy", policy.describe()),
        }
    }
}

/// The indices of the tensors whose names match one of `globs` (all when
/// `globs` is empty). A bad glob, or globs that select nothing, are usage
/// errors.
pub fn select(sources: &[SourceTensor], globs: &[String]) -> CliResult<Vec<usize>> {
    if globs.is_empty() {
        return Ok((0..sources.len()).collect());
    }
    let matchers = globs
        .iter()
        .map(|g| name_glob(g).map_err(|e| CliError::usage(format!("--only {g:?}: {e}"))))
        .collect::<CliResult<Vec<_>>>()?;
    let selected: Vec<usize> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| matchers.iter().any(|m| m.is_match(&s.name)))
        .map(|(i, _)| i)
        .collect();
    if selected.is_empty() {
        return Err(CliError::usage(format!(
            "--only {} matches none of the {} tensors (globs match whole names; `*` crosses dots: \
             \"blocks.3.*\")",
            globs.join(" --only "),
            sources.len()
        )));
    }
    Ok(selected)
}

/// Hessians read from a safetensors file: one `[in, in]` matrix per
/// weight, stored under the weight's name.
pub struct HessianFile {
    pub path: PathBuf,
    pub matrices: BTreeMap<String, Vec<f32>>,
    pub sha256: String,
}

impl HessianSource for HessianFile {
    fn hessian(&self, name: &str) -> Option<&[f32]> {
        self.matrices.hessian(name)
    }
}

impl HessianFile {
    /// Reads `path`: f32, f16 or bf16 square matrices.
    pub fn load(path: &Path) -> CliResult<HessianFile> {
        let file = checkpoint::load(path, false)?;
        let mut matrices = BTreeMap::new();
        for t in file.tensors {
            match t.shape.as_slice() {
                [a, b] if a == b => {
                    matrices.insert(t.name, t.values);
                }
                shape => {
                    return Err(CliError::malformed(anyhow::anyhow!(
                        "{}: Hessian {:?} has shape {shape:?}; a Hessian is a square [in, in] \
                         matrix (X^T X / n of the weight's inputs)",
                        path.display(),
                        t.name
                    )))
                }
            }
        }
        Ok(HessianFile {
            path: path.to_path_buf(),
            matrices,
            sha256: file.sha256,
        })
    }

    /// Checks, before any work, that every selected tensor whose plan needs
    /// a Hessian has one (listing all that do not), and warns about
    /// Hessians that name no tensor of the checkpoint (a typo, or another
    /// model's file).
    pub fn check(
        hessians: Option<&HessianFile>,
        sources: &[SourceTensor],
        plans: &[(TensorPlan, Option<usize>)],
        selected: &[usize],
    ) -> CliResult<()> {
        let missing: Vec<&str> = selected
            .iter()
            .filter(|&&i| match &plans[i].0 {
                TensorPlan::Quantize(plan) => plan.needs_hessian(),
                TensorPlan::Keep => false,
            })
            .map(|&i| sources[i].name.as_str())
            .filter(|name| hessians.is_none_or(|h| !h.matrices.contains_key(*name)))
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(8).copied().collect();
            let more = missing.len() - shown.len();
            let source = match hessians {
                None => "no --hessians file was given".to_string(),
                Some(h) => format!("{} has no matrix under these names", h.path.display()),
            };
            return Err(CliError::malformed(anyhow::anyhow!(
                "{} tensor(s) need a Hessian (GPTQ, or a Hessian-weighted clip search) and {source}: \
                 {}{}",
                missing.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )));
        }
        if let Some(h) = hessians {
            let known: std::collections::HashSet<&str> =
                sources.iter().map(|s| s.name.as_str()).collect();
            let strays: Vec<&str> = h
                .matrices
                .keys()
                .map(String::as_str)
                .filter(|n| !known.contains(n))
                .collect();
            if !strays.is_empty() {
                eprintln!(
                    "pgq: warning: {} Hessian(s) in {} name no tensor of the checkpoint and are \
                     unused: {}",
                    strays.len(),
                    h.path.display(),
                    strays
                        .iter()
                        .take(8)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(())
    }
}

/// The metadata kept in the artifact: small, since every byte counts.
///
/// - `pgq.producer`, `pgq.codec`;
/// - `pgq.recipe` (canonical rules) or `pgq.policy`;
/// - `pgq.rules`: with a recipe, the index of the rule that chose each
///   tensor, in tensor order, comma-separated: with `pgq.recipe`, the
///   method of every tensor;
/// - `pgq.source.sha256`, `pgq.hessians.sha256`: digests of the inputs;
/// - `pgq.only`: the `--only` globs of a partial run;
/// - `pgq.damp`: tensors whose GPTQ needed more damping than asked,
///   `name=damping` comma-separated (absent when none did).
pub struct Provenance {
    pub entries: BTreeMap<String, MetaValue>,
}

impl Provenance {
    pub fn new(planning: &Planning, compression: Compression) -> Self {
        let mut entries = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            entries.insert(k.to_string(), MetaValue::Str(v));
        };
        put("pgq.producer", format!("pgq {}", env!("CARGO_PKG_VERSION")));
        put("pgq.codec", compression.describe());
        let (key, value) = planning.describe();
        put(key, value);
        Provenance { entries }
    }

    pub fn put(&mut self, key: &str, value: String) {
        self.entries.insert(key.to_string(), MetaValue::Str(value));
    }

    /// The per-tensor rule indices and damping retries of a finished run.
    pub fn record_run(&mut self, rules: &[Option<usize>], model: &QuantizedModel) {
        if rules.iter().all(Option::is_some) && !rules.is_empty() {
            let list: Vec<String> = rules.iter().flatten().map(|r| r.to_string()).collect();
            self.put("pgq.rules", list.join(","));
        }
        let retried: Vec<String> = model
            .reports
            .iter()
            .filter(|r| r.damp_attempts.is_some_and(|n| n > 1))
            .filter_map(|r| Some(format!("{}={}", r.name, r.damp_used?)))
            .collect();
        if !retried.is_empty() {
            self.put("pgq.damp", retried.join(","));
        }
    }
}

/// Runs the plans on `backend` with a progress bar, which is returned still
/// open for the compression step. `what` names the model in errors.
pub fn run_plans(
    backend: &Backend,
    sources: &[SourceTensor],
    plans: &[TensorPlan],
    hessians: Option<&dyn HessianSource>,
    threads: usize,
    what: &str,
) -> CliResult<(QuantizedModel, RunInfo, ProgressBar)> {
    let bar = progress_bar(sources.len(), "quantize");
    bar.set_message(format!("codes on {}", backend.describe()));
    let tick = |done: usize, _total: usize, name: &str| {
        bar.set_position(done as u64);
        bar.set_message(name.to_string());
    };
    let (model, info) = quantize_on(
        backend,
        sources,
        plans,
        hessians.unwrap_or(&NoHessians),
        threads,
        Some(&tick),
    )
    .map_err(|e| backend_error(e, what))?;
    Ok((model, info, bar))
}

/// A tensor's error is malformed input (exit 2), as on the CPU path; a
/// device failure is reported as such (exit 2 too: the run cannot finish).
pub fn backend_error(error: BackendError, what: &str) -> CliError {
    CliError::malformed(anyhow::Error::new(error).context(format!("cannot quantize {what}")))
}

/// One line on the backend: what computed the codes and how long it took,
/// then one line per tensor left to the CPU.
pub fn backend_lines(info: &RunInfo) -> Vec<String> {
    let device = info
        .device_ms
        .map_or(String::new(), |ms| format!(" (kernels {ms:.1} ms)"));
    let mut lines = vec![format!(
        "backend: {}: codes of {} matrices in {:.1} ms{device}",
        info.backend, info.matrices, info.codes_ms
    )];
    for f in &info.fallbacks {
        lines.push(format!("  on the CPU instead: {}: {}", f.tensor, f.reason));
    }
    lines
}
