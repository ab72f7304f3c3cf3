//! `pgq quantize`: a safetensors checkpoint into a .pgq artifact.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use pgq_format::{read_header, summarize, ReadOptions, Summary};
use pgq_quantizer::{HessianSource, SourceTensor, TensorPlan, TensorReport};
use serde::Serialize;

use super::common::{encode_artifact, CodecArgs, DeviceArgs, PolicyArgs, CAP_BYTES};
use super::plan::{
    backend_error, backend_lines, run_plans, select, HessianFile, Planning, Provenance,
};
use crate::checkpoint;
use crate::exit::{CliError, CliResult, Malformed, OK};
use crate::files::{check_output, write_atomic};
use crate::render::{shape, table, thousands};
use pgq_quantizer::cuda::{compute_codes, Backend, RunInfo};

/// Quantize a safetensors checkpoint (f32, f16 or bf16) into a .pgq artifact.
///
/// Without --recipe this is the field's default policy, with plain RTN:
/// matrices int6 with SDClip k = 12.85 (scale = k * std(row) / 31, rounded
/// to fp16, floor 1e-7), embeddings int8 with k = 20, tensors of at most
/// 65,536 elements kept as fp16; codes rounded half to even; brotli-11
/// sections. The policy flags below adjust it.
///
/// With --recipe R.toml, ordered per-tensor rules decide everything (RTN or
/// GPTQ, bits, groups, SDClip / absmax / percentile clip search); see
/// recipes/README.md and the shipped recipes in recipes/. GPTQ and the
/// Hessian-weighted clip search need --hessians H.safetensors: one f32
/// [in, in] matrix X^T X / n per weight, under the weight's name
/// (examples/pytorch/pgq_hessians.py collects them with forward hooks).
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
/// every tensor, the SHA-256 of the checkpoint and of the Hessians, and any
/// damping retry.
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
///       --hessians hessians.safetensors --device cuda --repeat 20
#[derive(Args, Debug)]
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

/// "338,653 bytes under" / "4,167,524 bytes over".
pub fn headroom_phrase(headroom: i64) -> String {
    if headroom >= 0 {
        format!("{} bytes under", thousands(headroom as u64))
    } else {
        format!("{} bytes OVER", thousands(headroom.unsigned_abs()))
    }
}

/// One tensor of the report: what the quantizer did and what it cost.
#[derive(Serialize)]
pub struct TensorRow<'a> {
    #[serde(flatten)]
    pub report: &'a TensorReport,
    pub bytes: u64,
    pub bits_per_weight: f64,
}

#[derive(Serialize)]
struct QuantizeJson<'a> {
    output: String,
    file_bytes: u64,
    cap_bytes: u64,
    headroom_bytes: i64,
    seconds: f64,
    /// What computed the codes, in how long, and what it left to the CPU.
    backend: RunInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<Repeat>,
    /// Output-space error against plain RTN (with Hessians).
    versus_rtn: Option<VersusRtn>,
    tensors: Vec<TensorRow<'a>>,
}

pub fn rows<'a>(reports: &'a [TensorReport], summary: &Summary) -> Vec<TensorRow<'a>> {
    reports
        .iter()
        .zip(&summary.tensors)
        .map(|(report, t)| TensorRow {
            report,
            bytes: t.bytes,
            bits_per_weight: t.bits_per_weight,
        })
        .collect()
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
        let report = r.report;
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

/// Output-space error against plain RTN over the matrices that have both:
/// `(matrices, how many improved, median ratio)`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
pub struct VersusRtn {
    pub matrices: usize,
    pub improved: usize,
    pub median_ratio: f64,
    pub worst_ratio: f64,
}

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
    plans: &[TensorPlan],
    hessians: &dyn HessianSource,
    threads: usize,
    runs: usize,
) -> CliResult<Repeat> {
    let (mut host, mut device) = (Vec::new(), Vec::new());
    let mut first = None;
    let mut identical = true;
    for _ in 0..runs {
        let (codes, info) = compute_codes(backend, sources, plans, hessians, threads)
            .map_err(|e| backend_error(e, "the model (--repeat)"))?;
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
    inputs
}

pub fn run(args: &QuantizeArgs) -> CliResult<u8> {
    check_output(&args.output, &inputs(args))?;
    let planning = match &args.recipe {
        Some(path) => Planning::recipe(path)?,
        None => Planning::Policy(args.policy.policy()?),
    };
    let compression = args.codec.compression()?;
    let backend = args.device.select()?;
    let started = Instant::now();
    let checkpoint = checkpoint::load(&args.model, args.drop_non_float)?;
    for (name, dtype) in &checkpoint.dropped {
        eprintln!("pgq: left out {name:?} ({dtype:?}): not a float tensor");
    }
    let source_digest = checkpoint.sha256.clone();
    let sources = checkpoint.tensors;
    if sources.is_empty() {
        return Err(CliError::malformed(anyhow::anyhow!(
            "{} holds no tensors",
            args.model.display()
        )));
    }
    let plans = planning.plan(&sources)?;
    let selected = select(&sources, &args.only)?;
    let hessians = args
        .hessians
        .as_deref()
        .map(HessianFile::load)
        .transpose()?;
    HessianFile::check(hessians.as_ref(), &sources, &plans, &selected)?;
    let (sources, plans): (Vec<SourceTensor>, Vec<(TensorPlan, Option<usize>)>) = sources
        .into_iter()
        .zip(plans)
        .enumerate()
        .filter(|(i, _)| selected.binary_search(i).is_ok())
        .map(|(_, pair)| pair)
        .unzip();
    let (tensor_plans, rules): (Vec<TensorPlan>, Vec<Option<usize>>) = plans.into_iter().unzip();

    let (model, info, bar) = run_plans(
        &backend,
        &sources,
        &tensor_plans,
        hessians.as_ref().map(|h| h as &dyn HessianSource),
        args.threads,
        &args.model.display().to_string(),
    )?;
    bar.set_message(format!("compressing ({})", compression.describe()));
    let mut provenance = Provenance::new(&planning, compression);
    provenance.put("pgq.source.sha256", source_digest);
    if let Some(h) = &hessians {
        provenance.put("pgq.hessians.sha256", h.sha256.clone());
    }
    if !args.only.is_empty() {
        provenance.put("pgq.only", args.only.join(" "));
    }
    provenance.record_run(&rules, &model);
    let bytes = encode_artifact(&model.tensors, &provenance.entries, compression)?;
    bar.finish_and_clear();
    write_atomic(&args.output, &bytes, &inputs(args))?;
    let seconds = started.elapsed().as_secs_f64();
    let repeat = if args.repeat > 0 {
        let h = hessians
            .as_ref()
            .map_or(&pgq_quantizer::NoHessians as &dyn HessianSource, |h| h);
        Some(repeat_codes(
            &backend,
            &sources,
            &tensor_plans,
            h,
            args.threads,
            args.repeat,
        )?)
    } else {
        None
    };
    let header = read_header(&bytes, &ReadOptions::default())
        .malformed("the written artifact does not parse (a pgq bug)")?;
    let summary = summarize(&header);
    let rows = rows(&model.reports, &summary);
    let headroom = CAP_BYTES as i64 - summary.file_bytes as i64;
    let versus = versus_rtn(&model.reports);
    if args.json {
        let doc = QuantizeJson {
            output: args.output.display().to_string(),
            file_bytes: summary.file_bytes,
            cap_bytes: CAP_BYTES,
            headroom_bytes: headroom,
            seconds,
            backend: info,
            repeat,
            versus_rtn: versus,
            tensors: rows,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
    } else {
        print!("{}", render_rows(&rows));
        if let Some(v) = &versus {
            println!("\n{}", versus_rtn_line(v));
        }
        println!();
        for line in backend_lines(&info) {
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
        let partial = if args.only.is_empty() {
            String::new()
        } else {
            format!(" ({} of the checkpoint's tensors, --only)", sources.len())
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
