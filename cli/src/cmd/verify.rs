//! `pgq verify`: the cap, the structure and CRCs, the decode digest and,
//! with a reference checkpoint, the fidelity of every tensor.

use std::path::PathBuf;

use clap::Args;
use pgq_format::ReadOptions;
use pgq_quantizer::HessianSource;
use pgq_verifier::verify::{verify, Thresholds, VerifyOptions};
use pgq_verifier::CAP_BYTES;

use super::plan::load_hessians;
use super::report::{emit, ReportFormat};
use crate::checkpoint;
use crate::exit::{CliResult, Malformed};
use crate::files::{check_memory, code_file_sizes, read_limited};

/// Verify an artifact: structure and every CRC, the 16,000,000-byte cap,
/// the decode digest, and decode fidelity against a reference checkpoint.
///
/// Checks, each reported with its figures:
///   structure, crc.*   the reader's whole validation (spec/FORMAT.md §9); a
///                      file that fails it exits 2 naming the field and byte
///   cap                artifact bytes + the bytes of every --code file <= cap
///                      (a warning when no code file is given)
///   digest             the writer's pgq.decode.sha256 against the digest of
///                      the decoded weights (unknown when none is recorded)
///   fidelity.NAME      with --reference: relative RMSE, max abs error, SNR,
///                      cosine per tensor; with --hessians also the
///                      output-space error tr(E H E^T) / tr(W H W^T)
///   tensors            with --reference: missing, extra, reshaped tensors
///
/// Default bounds (docs/VERIFIER.md says why): quantized tensors rel RMSE
/// <= 0.25 and cosine >= 0.97, passthrough rel RMSE <= 1e-3, output-space
/// error <= 0.05.
///
/// Exit codes: 0 every check passed (warnings and unknowns included), 1 a
/// check failed, 2 malformed or unreadable input, 3 usage.
///
/// Examples:
///   pgq verify model.pgq --code train_gpt.py
///   pgq verify model.pgq --code train_gpt.py --reference model.safetensors --markdown
///   pgq verify model.pgq --reference model.safetensors --hessians h.safetensors --json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// The .pgq artifact.
    pub artifact: PathBuf,
    /// A code file counted against the cap (repeatable).
    #[arg(long, value_name = "FILE")]
    pub code: Vec<PathBuf>,
    /// The byte cap.
    #[arg(long, default_value_t = CAP_BYTES)]
    pub cap: u64,
    /// The checkpoint the artifact was made from (safetensors).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Hessians (safetensors, one [in, in] matrix per weight name) for the
    /// output-space error.
    #[arg(long, requires = "reference")]
    pub hessians: Option<PathBuf>,
    /// Upper bound on a quantized tensor's relative RMSE.
    #[arg(long, default_value_t = Thresholds::default().max_rel_rmse)]
    pub max_rel_rmse: f64,
    /// Lower bound on a quantized tensor's cosine similarity.
    #[arg(long, default_value_t = Thresholds::default().min_cosine)]
    pub min_cosine: f64,
    /// Upper bound on a passthrough tensor's relative RMSE.
    #[arg(long, default_value_t = Thresholds::default().max_passthrough_rel_rmse)]
    pub max_passthrough_rel_rmse: f64,
    /// Upper bound on the output-space error (with --hessians).
    #[arg(long, default_value_t = Thresholds::default().max_hessian_error)]
    pub max_hessian_error: f64,
    /// Leave non-float buffers of the reference out.
    #[arg(long)]
    pub drop_non_float: bool,
    #[command(flatten)]
    pub format: ReportFormat,
}

pub fn run(args: &VerifyArgs) -> CliResult<u8> {
    let read = ReadOptions::default();
    let bytes = read_limited(&args.artifact, read.max_file_bytes)?;
    check_memory(&bytes, &args.artifact, true)?;
    let code_files = code_file_sizes(&args.code)?;
    let reference = match &args.reference {
        Some(path) => {
            let checkpoint = checkpoint::load(path, args.drop_non_float)?;
            Some(checkpoint.tensors)
        }
        None => None,
    };
    let hessians = args.hessians.as_deref().map(load_hessians).transpose()?;
    let options = VerifyOptions {
        cap: args.cap,
        code_files,
        reference: reference.as_deref(),
        hessians: hessians.as_ref().map(|h| h as &dyn HessianSource),
        thresholds: Thresholds {
            max_rel_rmse: args.max_rel_rmse,
            min_cosine: args.min_cosine,
            max_passthrough_rel_rmse: args.max_passthrough_rel_rmse,
            max_hessian_error: args.max_hessian_error,
        },
        read,
    };
    let subject = args.artifact.display().to_string();
    let report = verify(&bytes, &subject, &options)
        .malformed(format!("{subject} is not a valid .pgq file"))?;
    emit(&report, &args.format)
}
