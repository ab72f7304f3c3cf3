//! `pgq audit`: a record folder, read the way a reviewer reads it.

use std::path::PathBuf;

use clap::Args;
use pgq_verifier::audit::{audit, Against, AuditOptions};
use pgq_verifier::CAP_BYTES;

use super::report::{emit, ReportFormat};
use crate::exit::{CliError, CliResult};

/// Audit a parameter-golf record folder: submission.json, train logs, code.
///
/// Reads the folder as a reviewer does (docs/VERIFIER.md states every rule
/// and the real record behind it):
///   logs        every text file of the folder and its subfolders whose
///               lines are a train log's (train_seed42.log, train_v0.txt,
///               logs/train0.txt...); copies of one run counted once
///   track       from submission.json's "track" or the folder's path; on
///               the non-record track the time limits are skip
///   claims.*    submission.json's figures against the runs: the mean over
///               the claimed seeds, or one run's figures (a warning); the
///               scored evaluation is the one the claims match, else one
///               the README names, else the last after the final size line
///   seed.R.cap  each run's logged total <= the cap (fails naming the seed
///               and the bytes)
///   seed.R.train_time, seed.R.eval_time
///               within 600 s; up to two mean steps over is the stock
///               stopping rule (a warning); an overrun of a run the claims
///               do not rest on is a warning
///   seed.R.time_ledger
///               reserve, training, calibration, compression, evaluation;
///               warns when Hessians are collected on training data after
///               the cap, or the logged artifact production time is over
///   seed.R.byte_ledger
///               model + code as logged, and model + the shipped script:
///               warns when they differ, with both totals against the cap
///   seeds.config
///               the configuration each log printed, compared: a training
///               setting that differs among the runs the claims rest on
///               fails; evaluation, hardware and data-shard differences warn
///   seeds       how many seeds back the claims (records need several)
///   significance
///               with --against: improvement >= 0.005 nats at p < 0.01,
///               one-sided t-test over seeds
/// Figures the files do not give are reported as unknown, never guessed.
/// FIFOs, devices and symlinked folders are not read; logs over 8 MiB are
/// read head and tail.
///
/// Exit codes: 0 no check failed, 1 a check failed, 2 the folder cannot be
/// read, 3 usage.
///
/// Examples:
///   pgq audit records/track_10min_16mb/2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2
///   pgq audit NEW_RECORD --against records/track_10min_16mb/CURRENT_BEST --markdown
///   pgq audit NEW_RECORD --against 2.8043 --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct AuditArgs {
    /// The record folder.
    pub folder: PathBuf,
    /// The baseline for the significance test: a val_loss in nats, or
    /// another record folder (its seeds' final val_loss).
    #[arg(long, value_name = "VAL_LOSS|FOLDER")]
    pub against: Option<String>,
    /// The byte cap of each seed's total.
    #[arg(long, default_value_t = CAP_BYTES)]
    pub cap: u64,
    /// The improvement required over the baseline, in nats.
    #[arg(long, default_value_t = AuditOptions::default().min_improvement)]
    pub min_improvement: f64,
    /// The one-sided significance level.
    #[arg(long, default_value_t = AuditOptions::default().alpha)]
    pub alpha: f64,
    /// The training budget, and separately the evaluation budget, in
    /// seconds (10-minute track only).
    #[arg(long, default_value_t = AuditOptions::default().max_seconds)]
    pub max_seconds: f64,
    #[command(flatten)]
    pub format: ReportFormat,
}

pub fn run(args: &AuditArgs) -> CliResult<u8> {
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(CliError::usage(format!(
            "--alpha must lie in (0, 1), got {}",
            args.alpha
        )));
    }
    let against = args.against.as_deref().map(|a| match a.parse::<f64>() {
        Ok(v) if v.is_finite() => Against::ValLoss(v),
        _ => Against::Record(PathBuf::from(a)),
    });
    let options = AuditOptions {
        cap: args.cap,
        against,
        min_improvement: args.min_improvement,
        alpha: args.alpha,
        max_seconds: args.max_seconds,
    };
    let report = audit(&args.folder, &options).map_err(CliError::malformed)?;
    emit(&report, &args.format)
}
