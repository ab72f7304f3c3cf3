//! `pgq audit`: a record folder, read the way a reviewer reads it.

use std::path::PathBuf;

use clap::Args;
use pgq_verifier::audit::{audit, Against, AuditOptions};
use pgq_verifier::CAP_BYTES;

use super::report::{emit, ReportFormat};
use crate::exit::{CliError, CliResult};

/// Audit a parameter-golf record folder: submission.json, train logs, code.
///
/// Reads submission.json (no schema: field names vary between records),
/// every *.log (size lines whatever their label, the final val_loss and
/// val_bpb after quantization, train and eval time, steps) and the code
/// files present, then checks:
///   seed.S.cap          each seed's logged total <= the cap (fails naming
///                       the seed and the bytes)
///   seed.S.train_time,  training and evaluation each within 600 s where
///   seed.S.eval_time    logged
///   claims.*            submission.json's figures against the logs (val_bpb,
///                       val_loss, std, bytes, per-seed figures, seed list)
///   seeds               how many seeds (records need several)
///   significance        with --against: improvement >= 0.005 nats at
///                       p < 0.01, one-sided Welch t-test over seeds
/// Figures the files do not give are reported as unknown, never guessed.
///
/// Exit codes: 0 no check failed, 1 a check failed, 2 the folder cannot be
/// read, 3 usage.
///
/// Examples:
///   pgq audit records/track_10min_16mb/2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2
///   pgq audit NEW_RECORD --against records/track_10min_16mb/CURRENT_BEST --markdown
///   pgq audit NEW_RECORD --against 2.8043 --json
#[derive(Args, Debug)]
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
    /// seconds.
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
