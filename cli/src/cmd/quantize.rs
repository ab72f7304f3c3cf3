//! `pgq quantize`: a safetensors checkpoint into a .pgq artifact.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use pgq_format::{read_header, summarize, ReadOptions, Summary};
use pgq_quantizer::{quantize_model, SourceTensor, TensorReport};
use serde::Serialize;

use super::common::{encode_artifact, progress_bar, CodecArgs, PolicyArgs, CAP_BYTES};
use crate::checkpoint;
use crate::exit::{CliError, CliResult, Malformed, OK};
use crate::files::write_atomic;
use crate::render::{shape, table, thousands};

/// Quantize a safetensors checkpoint (f32, f16 or bf16) into a .pgq artifact.
///
/// Without options this is the field's default recipe: matrices int6 with
/// SDClip k = 12.85 (scale = k * std(row) / 31, rounded to fp16, floor
/// 1e-7), embeddings int8 with k = 20, tensors of at most 65,536 elements
/// kept as fp16; codes rounded half to even; brotli-11 sections.
///
/// The report gives, per tensor, the method, the bytes attributed to it and
/// its fidelity against the source (relative RMSE, SNR), and the total
/// against the 16,000,000-byte cap.
///
/// Examples:
///   pgq quantize model.safetensors -o model.pgq
///   pgq quantize model.safetensors -o model.pgq --group-size 128 --k 13
///   pgq quantize model.safetensors -o model.pgq --embed-bits 7 --embed-k 15 --codec zstd
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The safetensors checkpoint.
    pub model: PathBuf,
    /// Output .pgq path.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub codec: CodecArgs,
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
    let mut table_rows = vec![vec![
        "tensor".to_string(),
        "shape".into(),
        "method".into(),
        ">bytes".into(),
        ">bits/w".into(),
        ">rel rmse".into(),
        ">snr dB".into(),
    ]];
    for r in rows {
        table_rows.push(vec![
            r.report.name.clone(),
            shape(&r.report.shape),
            r.report.method.clone(),
            thousands(r.bytes),
            format!("{:.3}", r.bits_per_weight),
            format!("{:.5}", r.report.rel_rmse),
            if r.report.snr_db.is_finite() {
                format!("{:.2}", r.report.snr_db)
            } else {
                "exact".into()
            },
        ]);
    }
    table(&table_rows)
}

pub fn sources_of(tensors: Vec<checkpoint::SourceTensor>) -> Vec<SourceTensor> {
    tensors
        .into_iter()
        .map(|t| SourceTensor {
            name: t.name,
            shape: t.shape,
            values: t.values,
        })
        .collect()
}

pub fn run(args: &QuantizeArgs) -> CliResult<u8> {
    let policy = args.policy.policy()?;
    let compression = args.codec.compression()?;
    let started = Instant::now();
    let checkpoint = checkpoint::load(&args.model, args.drop_non_float)?;
    for (name, dtype) in &checkpoint.dropped {
        eprintln!("pgq: left out {name:?} ({dtype:?}): not a float tensor");
    }
    let sources = sources_of(checkpoint.tensors);
    if sources.is_empty() {
        return Err(CliError::malformed(anyhow::anyhow!(
            "{} holds no tensors",
            args.model.display()
        )));
    }
    let bar = progress_bar(sources.len(), "quantize");
    let tick = |done: usize, _total: usize, name: &str| {
        bar.set_position(done as u64);
        bar.set_message(name.to_string());
    };
    let model = quantize_model(&sources, &policy, args.threads, Some(&tick)).map_err(|e| {
        CliError::malformed(
            anyhow::Error::new(e).context(format!("cannot quantize {}", args.model.display())),
        )
    })?;
    bar.set_message(format!("compressing ({})", compression.describe()));
    let bytes = encode_artifact(&model.tensors, &policy, compression)?;
    bar.finish_and_clear();
    write_atomic(&args.output, &bytes)?;
    let header = read_header(&bytes, &ReadOptions::default())
        .malformed("the written artifact does not parse (a pgq bug)")?;
    let summary = summarize(&header);
    let seconds = started.elapsed().as_secs_f64();
    let rows = rows(&model.reports, &summary);
    let headroom = CAP_BYTES as i64 - summary.file_bytes as i64;
    if args.json {
        let doc = QuantizeJson {
            output: args.output.display().to_string(),
            file_bytes: summary.file_bytes,
            cap_bytes: CAP_BYTES,
            headroom_bytes: headroom,
            seconds,
            tensors: rows,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
    } else {
        print!("{}", render_rows(&rows));
        println!(
            "\nwrote {}: {} bytes ({:.3} bits per weight), {} the {}-byte cap before code bytes, in {seconds:.1} s",
            args.output.display(),
            thousands(summary.file_bytes),
            summary.bits_per_weight,
            headroom_phrase(headroom),
            thousands(CAP_BYTES),
        );
    }
    Ok(OK)
}
