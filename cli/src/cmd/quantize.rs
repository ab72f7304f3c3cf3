//! `pgq quantize`: a safetensors checkpoint into a .pgq artifact.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use pgq_quantizer::backend::{compute_codes, Backend, RunOptions};
use pgq_quantizer::budget::{quantize_to_budget, Allocation, Budget, BudgetReport};
use pgq_quantizer::lqer::LqerReport;
use pgq_quantizer::pipeline::{self, select, Options, Planning};
pub use pgq_quantizer::pipeline::{Report, TensorRow, VersusRtn};
use pgq_quantizer::{HessianSource, SourceTensor, TensorPlan};
use serde::Serialize;

use super::common::{CodecArgs, DeviceArgs, PolicyArgs, CAP_BYTES};
use super::plan::{backend_lines, load_hessians, pipeline_error, progress, recipe_planning};
use crate::checkpoint;
use crate::exit::{CliError, CliResult, Malformed, OK};
use crate::files::{check_output, code_file_sizes, write_atomic};
use crate::render::{shape, table, thousands};

/// Quantize a safetensors checkpoint (f32, f16 or bf16) into a .pgq artifact.
///
/// Without --recipe this is the field's default policy, with plain RTN:
/// matrices int6 with SDClip k = 12.85 (scale = k * std(row) / 31, rounded
/// to fp16, floor 1e-7), embeddings int8 with k = 20, tensors of at most
/// 65,536 elements kept as fp16; codes rounded half to even; sections
/// coded with --codec auto (rANS for codes, brotli-11 or zstd-19 where
/// smaller). The policy flags below adjust it.
///
/// With --recipe R.toml, ordered per-tensor rules decide everything (RTN or
/// GPTQ, bits, groups, SDClip / absmax / percentile clip search); see
/// recipes/README.md and the shipped recipes in recipes/. GPTQ and the
/// Hessian-weighted clip search need --hessians H.safetensors: one f32
/// [in, in] matrix X^T X / n per weight, under the weight's name
/// (the Python package's pgq.torch.collect_hessians collects them with
/// forward hooks; see docs/PYTHON.md).
///
/// The report gives, per tensor, the method, its bytes and its error
/// against the source (relative RMSE, SNR) beside plain RTN's, and with a
/// Hessian the output-space error tr(E H E^T) / tr(W H W^T) of both.
///
/// --only GLOB quantizes a subset (the artifact holds only those tensors):
/// the step of a sequential (layer-by-layer) GPTQ run. A tensor's codes
/// depend only on its weights and its Hessian, so a final full run with
/// the Hessians of every step reproduces the steps' codes exactly.
///
/// The artifact's metadata records the recipe (or policy), the rule of
/// every tensor, the content digests of the checkpoint's tensors and of
/// the Hessians (SHA-256 over names, shapes and values, spec/FORMAT.md
/// 4.3.1: the same tensors saved another way give the same digest, and
/// pgq.quantize in Python writes the same bytes), and any damping retry.
///
/// --budget BYTES fits the artifact to BYTES, the file between BYTES - 2,000
/// and BYTES: the k of every tensor whose rule clips with SDClip moves
/// within half to 2.83 times the rule's. --allocate uniform (the default)
/// scales every k by one factor, keeping the recipe's ratios, as
/// participants tune by hand; --allocate per-tensor gives each tensor the
/// k of least total error (Hessian-diagonal weighted with --hessians, else
/// plain squared error). The codes' sizes are exact (the rANS rate model),
/// not guessed, and only the tensors that must move are quantized again. --code train_gpt.py
/// (repeatable) instead sets BYTES to --cap (default 16,000,000) minus the
/// code files' bytes. Exits 1 when BYTES is under the smallest artifact the
/// recipe allows (it says how small that is). See docs/QUANTIZATION.md.
///
/// --device auto|cpu|cuda chooses where codes are computed (default auto:
/// the GPU when one is usable, else the CPU with a note saying why); the
/// report names the backend and any tensor it left to the CPU, and why.
/// --repeat N then computes every code N more times in the same process
/// (warm: kernels compiled, device open) and reports the median time, and
/// whether every run gave the same codes: the benchmark of
/// bench/gpu/check.sh.
///
/// Examples:
///   pgq quantize model.safetensors -o model.pgq
///   pgq quantize model.safetensors -o model.pgq --group-size 128 --k 13
///   pgq quantize model.safetensors -o model.pgq --recipe recipes/sdclip-gptq.toml \
///       --hessians hessians.safetensors
///   pgq quantize model.safetensors -o step3.pgq --recipe recipes/sdclip-gptq.toml \
///       --hessians hessians.safetensors --only 'blocks.3.*'
///   pgq quantize model.safetensors -o model.pgq --recipe recipes/default.toml \
///       --hessians hessians.safetensors --code train_gpt.py
///   pgq quantize model.safetensors -o model.pgq --budget 15,900,000
///   pgq quantize model.safetensors -o model.pgq --recipe recipes/default.toml \
///       --hessians hessians.safetensors --device cuda --repeat 20
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct QuantizeArgs {
    /// The safetensors checkpoint.
    pub model: PathBuf,
    /// Output .pgq path.
    #[arg(short, long)]
    pub output: PathBuf,
    /// A TOML recipe of per-tensor rules (replaces the policy flags).
    #[arg(long, conflicts_with_all = ["bits", "k", "embed_bits", "embed_k", "embed_match", "group_size", "clip", "keep_max"])]
    pub recipe: Option<PathBuf>,
    /// Hessians X^T X / n as safetensors, one [in, in] matrix per weight
    /// name: needed by GPTQ and Hessian-weighted clip search, and used for
    /// output-space figures in the report.
    #[arg(long)]
    pub hessians: Option<PathBuf>,
    /// Quantize only tensors whose name matches this glob (`*` crosses
    /// dots; repeatable); the artifact holds only those.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub codec: CodecArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Fit the artifact to at most BYTES (and at least BYTES - 2,000) by
    /// choosing each SDClip tensor's k; `_` and `,` may group digits.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, conflicts_with_all = ["code", "repeat"])]
    pub budget: Option<u64>,
    /// How --budget (or --code) shares the bytes: `uniform` scales every
    /// SDClip k by one factor (the recipe's ratios kept, as by hand);
    /// `per-tensor` gives each tensor the k of least total error (see
    /// docs/QUANTIZATION.md for when each wins).
    #[arg(long, value_enum, default_value_t = AllocationArg::Uniform)]
    pub allocate: AllocationArg,
    /// Fit the artifact to --cap minus these files' bytes (the submission's
    /// code, e.g. train_gpt.py; repeatable).
    #[arg(long, value_name = "FILE", conflicts_with = "repeat")]
    pub code: Vec<PathBuf>,
    /// The cap the artifact and the --code files share.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "16000000", requires = "code")]
    pub cap: u64,
    /// After the run, compute every code N more times (warm) and report
    /// the median time of the codes alone, on the chosen backend.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub repeat: usize,
    /// Leave out non-float tensors (integer buffers such as position ids)
    /// instead of refusing the checkpoint; they are listed on stderr.
    #[arg(long)]
    pub drop_non_float: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print a JSON report instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `--allocate`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocationArg {
    Uniform,
    PerTensor,
}

impl From<AllocationArg> for Allocation {
    fn from(arg: AllocationArg) -> Self {
        match arg {
            AllocationArg::Uniform => Allocation::Uniform,
            AllocationArg::PerTensor => Allocation::PerTensor,
        }
    }
}

/// A byte count: digits, optionally grouped with `_` or `,`.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    digits
        .parse::<u64>()
        .map_err(|_| format!("{text:?} is not a byte count (digits, e.g. 15990000 or 15_990_000)"))
}

/// "338,653 bytes under" / "4,167,524 bytes over".
pub fn headroom_phrase(headroom: i64) -> String {
    if headroom >= 0 {
        format!("{} bytes under", thousands(headroom as u64))
    } else {
        format!("{} bytes OVER", thousands(headroom.unsigned_abs()))
    }
}

#[derive(Serialize)]
struct QuantizeJson {
    output: String,
    #[serde(flatten)]
    report: Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<Repeat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<BudgetReport>,
}

pub fn render_rows(rows: &[TensorRow]) -> String {
    let with_rtn = rows.iter().any(|r| r.report.rtn.is_some());
    let with_h = rows.iter().any(|r| r.report.hessian_error.is_some());
    let mut header = vec![
        "tensor".to_string(),
        "shape".into(),
        "method".into(),
        ">bytes".into(),
        ">bits/w".into(),
        ">rel rmse".into(),
        ">snr dB".into(),
    ];
    if with_rtn {
        header.push(">RTN rel rmse".into());
    }
    if with_h {
        header.extend([
            ">H err".to_string(),
            ">RTN H err".into(),
            ">H err / RTN".into(),
        ]);
    }
    let mut table_rows = vec![header];
    let sci = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3e}"));
    for r in rows {
        let report = &r.report;
        let mut row = vec![
            report.name.clone(),
            shape(&report.shape),
            report.method.clone(),
            thousands(r.bytes),
            format!("{:.3}", r.bits_per_weight),
            format!("{:.5}", report.rel_rmse),
            if report.snr_db.is_finite() {
                format!("{:.2}", report.snr_db)
            } else {
                "exact".into()
            },
        ];
        let rtn = report.rtn.as_ref();
        if with_rtn {
            row.push(rtn.map_or(String::new(), |b| format!("{:.5}", b.rel_rmse)));
        }
        if with_h {
            let theirs = rtn.and_then(|b| b.hessian_error);
            row.push(sci(report.hessian_error));
            row.push(sci(theirs));
            row.push(match (report.hessian_error, theirs) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
                _ => String::new(),
            });
        }
        table_rows.push(row);
    }
    table(&table_rows)
}

/// One line for the text report.
pub fn versus_rtn_line(v: &VersusRtn) -> String {
    format!(
        "Hessian proxy tr(E H E^T), not the model's output, vs plain RTN: lower on {} of {} matrices; ratio median {:.3}, worst {:.3}",
        v.improved, v.matrices, v.median_ratio, v.worst_ratio
    )
}

/// `--repeat`: the codes computed again, warm, in one process.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Repeat {
    pub runs: usize,
    /// Host to host, milliseconds: median and fastest.
    pub codes_ms_median: f64,
    pub codes_ms_min: f64,
    /// CUDA: kernels and factorizations alone (device events), median.
    pub device_ms_median: Option<f64>,
    /// Every run gave the first run's codes and scales, bit for bit.
    pub identical: bool,
}

/// The median of `values` (the upper one of an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Computes the codes `runs` more times and times them.
fn repeat_codes(
    backend: &Backend,
    sources: &[SourceTensor],
    planning: &Planning,
    only: &[String],
    hessians: &dyn HessianSource,
    threads: usize,
    runs: usize,
) -> CliResult<Repeat> {
    let what = "the model (--repeat)";
    let plans = planning
        .plan(sources)
        .map_err(|e| pipeline_error(e.into(), what))?;
    let selected = select(sources, only).map_err(|e| pipeline_error(e, what))?;
    let narrowed: Vec<SourceTensor>;
    let sources = if selected.len() == sources.len() {
        sources
    } else {
        narrowed = selected.iter().map(|&i| sources[i].clone()).collect();
        &narrowed
    };
    let plans: Vec<TensorPlan> = selected.iter().map(|&i| plans[i].0.clone()).collect();
    let (mut host, mut device) = (Vec::new(), Vec::new());
    let mut first = None;
    let mut identical = true;
    for _ in 0..runs {
        let (codes, info) = compute_codes(
            backend,
            sources,
            &plans,
            hessians,
            &RunOptions::threads(threads),
        )
        .map_err(|e| pipeline_error(e.into(), what))?;
        host.push(info.codes_ms);
        device.extend(info.device_ms);
        match &first {
            None => first = Some(codes),
            Some(first) => identical &= *first == codes,
        }
    }
    Ok(Repeat {
        runs,
        codes_ms_median: median(&host),
        codes_ms_min: host.iter().copied().fold(f64::INFINITY, f64::min),
        device_ms_median: (!device.is_empty()).then(|| median(&device)),
        identical,
    })
}

/// The files `quantize` reads: its output may be none of them.
fn inputs(args: &QuantizeArgs) -> Vec<&Path> {
    let mut inputs = vec![args.model.as_path()];
    inputs.extend(args.recipe.as_deref());
    inputs.extend(args.hessians.as_deref());
    inputs.extend(args.code.iter().map(PathBuf::as_path));
    inputs
}

/// The byte budget of the run: --budget, or --cap minus the --code files.
fn budget(args: &QuantizeArgs) -> CliResult<Option<(u64, String)>> {
    if let Some(bytes) = args.budget {
        return Ok(Some((bytes, format!("--budget {}", thousands(bytes)))));
    }
    if args.code.is_empty() {
        return Ok(None);
    }
    let files = code_file_sizes(&args.code)?;
    let code: u64 = files.iter().map(|(_, n)| n).sum();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let bytes = args
        .cap
        .checked_sub(code)
        .filter(|&b| b > 0)
        .ok_or_else(|| {
            CliError::usage(format!(
                "the --code files ({}) take {} bytes, the whole --cap of {}",
                names.join(", "),
                thousands(code),
                thousands(args.cap)
            ))
        })?;
    Ok(Some((
        bytes,
        format!(
            "cap {} - code {} ({})",
            thousands(args.cap),
            thousands(code),
            names.join(", ")
        ),
    )))
}

/// The LQER lines of the text report: per corrected tensor, its error
/// before and after and the bytes its correction takes.
pub fn lqer_lines(reports: &[LqerReport], summary: &pgq_format::Summary) -> Vec<String> {
    let mut total = 0;
    let mut lines: Vec<String> = reports
        .iter()
        .map(|r| {
            let bytes = summary
                .tensors
                .iter()
                .find(|t| t.name == r.tensor)
                .map_or(0, |t| t.correction_bytes);
            total += bytes;
            format!(
                "  {}: rank {}, ||W - Q||_F {:.4} -> {:.4} ({:+.1}%), {} bytes",
                r.tensor,
                r.rank,
                r.error_before,
                r.error_after,
                100.0 * (r.error_after / r.error_before - 1.0),
                thousands(bytes)
            )
        })
        .collect();
    lines.insert(
        0,
        format!(
            "LQER: a low-rank correction on {} tensor(s), {} bytes in all (spec/FORMAT.md §6.8):",
            reports.len(),
            thousands(total)
        ),
    );
    lines
}

/// The budget lines of the text report.
pub fn budget_lines(report: &BudgetReport, origin: &str) -> Vec<String> {
    let rounds: Vec<String> = report
        .rounds
        .iter()
        .map(|r| r.quantized.to_string())
        .collect();
    let moved = report
        .tensors
        .iter()
        .filter(|t| t.k.is_some() && t.k != t.rule_k)
        .count();
    let tunable = report.tensors.iter().filter(|t| t.k.is_some()).count();
    let ratios: Vec<f64> = report
        .tensors
        .iter()
        .filter_map(|t| Some(f64::from(t.k?) / f64::from(t.rule_k?)))
        .collect();
    let range = if ratios.is_empty() {
        String::new()
    } else {
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        format!(" (k from {lo:.2} to {hi:.2} x the rule's)")
    };
    let mut lines = vec![format!(
        "budget {} bytes ({origin}): {} bytes, {} under (window {} bytes); {} rounds of codes on {} tensors; search {:.1} s",
        thousands(report.budget_bytes),
        thousands(report.file_bytes),
        thousands(report.headroom_bytes.max(0) as u64),
        thousands(report.slack_bytes),
        report.rounds.len(),
        rounds.join(" + "),
        report.search_seconds,
    )];
    lines.push(format!(
        "k chosen {}: {moved} of {tunable} tunable tensors moved from their rule's k{range}; error weights: {}",
        match report.allocation {
            Allocation::Uniform => "by one factor (--allocate uniform)",
            Allocation::PerTensor => "per tensor (--allocate per-tensor)",
        },
        if report.hessian_weighted {
            "the Hessian's diagonal"
        } else {
            "none (plain squared error; --hessians weights it)"
        }
    ));
    if !report.binding {
        lines.push(
            "the budget does not bind: every tensor has its least-error k and the file is still under the window"
                .into(),
        );
    }
    lines
}

pub fn run(args: &QuantizeArgs) -> CliResult<u8> {
    check_output(&args.output, &inputs(args))?;
    let budget = budget(args)?;
    let planning = match &args.recipe {
        Some(path) => recipe_planning(path)?,
        None => Planning::Policy(args.policy.policy()?),
    };
    let compression = args.codec.compression()?;
    let backend = args.device.select()?;
    let started = Instant::now();
    let checkpoint = checkpoint::load(&args.model, args.drop_non_float)?;
    for (name, dtype) in &checkpoint.dropped {
        eprintln!("pgq: left out {name:?} ({dtype:?}): not a float tensor");
    }
    let sources = checkpoint.tensors;
    let hessians = args.hessians.as_deref().map(load_hessians).transpose()?;
    let what = args.model.display().to_string();
    let bar = progress();
    let options = Options {
        compression,
        threads: args.threads,
        only: args.only.clone(),
        observer: Some(&bar),
        ..Options::default()
    };
    let input = hessians.as_ref().map(|h| h.input());
    let (artifact, fitted) = match &budget {
        None => (
            pipeline::quantize(&backend, &sources, &planning, input.as_ref(), &options),
            None,
        ),
        Some((bytes, _)) => match quantize_to_budget(
            &backend,
            &sources,
            &planning,
            input.as_ref(),
            &options,
            Budget {
                bytes: *bytes,
                allocation: args.allocate.into(),
            },
        ) {
            Ok((artifact, report)) => (Ok(artifact), Some(report)),
            Err(e) => (Err(e), None),
        },
    };
    let artifact = artifact.map_err(|e| pipeline_error(e, &what))?;
    bar.bar.finish_and_clear();
    for warning in &artifact.warnings {
        eprintln!("pgq: warning: {warning}");
    }
    write_atomic(&args.output, &artifact.bytes, &inputs(args))?;
    let seconds = started.elapsed().as_secs_f64();
    let repeat = if args.repeat > 0 {
        let h = hessians
            .as_ref()
            .map_or(&pgq_quantizer::NoHessians as &dyn HessianSource, |h| h);
        Some(repeat_codes(
            &backend,
            &sources,
            &planning,
            &args.only,
            h,
            args.threads,
            args.repeat,
        )?)
    } else {
        None
    };
    let summary = &artifact.summary;
    let mut report = artifact.report();
    report.seconds = seconds;
    let headroom = report.headroom_bytes;
    if args.json {
        let doc = QuantizeJson {
            output: args.output.display().to_string(),
            report,
            repeat,
            budget: fitted,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
    } else {
        print!("{}", render_rows(&report.tensors));
        if let Some(v) = &report.versus_rtn {
            println!("\n{}", versus_rtn_line(v));
        }
        println!();
        for line in backend_lines(&report.backend) {
            println!("{line}");
        }
        if let Some(r) = &repeat {
            let device = r
                .device_ms_median
                .map_or(String::new(), |ms| format!(", kernels {ms:.1} ms"));
            println!(
                "repeat: {} warm runs: codes median {:.1} ms (fastest {:.1} ms{device}); {}",
                r.runs,
                r.codes_ms_median,
                r.codes_ms_min,
                if r.identical {
                    "identical codes every run"
                } else {
                    "CODES DIFFER between runs"
                }
            );
        }
        if let (Some(report), Some((_, origin))) = (&fitted, &budget) {
            println!();
            for line in budget_lines(report, origin) {
                println!("{line}");
            }
        }
        if !report.lqer.is_empty() {
            println!();
            for line in lqer_lines(&report.lqer, summary) {
                println!("{line}");
            }
        }
        let partial = if args.only.is_empty() {
            String::new()
        } else {
            format!(
                " ({} of the checkpoint's tensors, --only)",
                artifact.selected
            )
        };
        println!(
            "\nwrote {}{partial}: {} bytes ({:.3} bits per weight), {} the {}-byte cap before code bytes, in {seconds:.1} s",
            args.output.display(),
            thousands(summary.file_bytes),
            summary.bits_per_weight,
            headroom_phrase(headroom),
            thousands(CAP_BYTES),
        );
    }
    Ok(OK)
}
