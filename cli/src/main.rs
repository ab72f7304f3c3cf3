//! `pgq`: one binary over the pgq toolkit.

mod checkpoint;
mod cmd;
mod exit;
mod files;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use exit::{CliError, USAGE};

const ABOUT: &str = "Quantize, inspect, export and check parameter-golf model artifacts.";

const LONG_ABOUT: &str = "\
Quantize, inspect, export and check parameter-golf model artifacts.

A parameter-golf submission is scored on a model whose artifact (code bytes +
compressed weights) must fit in 16,000,000 bytes. pgq stores weights in .pgq,
a specified container (spec/FORMAT.md) for int2..int8 codes with fp16 scales
per row or per group, entropy-coded per stream with pgq's own rANS coder
(or brotli or zstd where smaller), validated by CRCs, decodable
bit-identically by a 6 KB Python decoder (spec/reference/pgq_decode.py).

Typical session:
  pgq demo --out demo-out                        # build, quantize, verify a 36M model
  pgq quantize model.safetensors -o model.pgq    # int6 SDClip k=12.85, int8 embedding
  pgq inspect model.pgq                          # where every byte goes
  pgq export model.pgq -o dequant.safetensors    # weights back for evaluation
  pgq verify model.pgq --code train_gpt.py --reference model.safetensors
                                                 # cap, CRCs, digest, fidelity
  pgq audit records/2026-04-05_SP8192_...        # a record folder: logs vs claims vs cap
  pgq import final_model.int6.ptz -o record.pgq  # today's artifacts, read safely
  pgq view model.pgq --code train_gpt.py         # the browser viewer, on 127.0.0.1
  pgq doctor                                     # CPU and CUDA backends found, kernels compiled
  pgq compare cpu.pgq cuda.pgq                   # codes and scales of two artifacts, per tensor

Memory: every command that reads an artifact first computes, from its
declared sizes, the memory it needs, and refuses (exit 2) one that needs
more than --max-memory (default 2 GiB), so that a small file declaring a
billion weights is an error, not an abort. Commands that dequantize hold
one tensor's f32 values at a time (export writes tensor by tensor).

Exit codes: 0 success, 1 a check failed, 2 malformed or unreadable input,
3 usage error.";

#[derive(Parser, Debug)]
#[command(name = "pgq", version, about = ABOUT, long_about = LONG_ABOUT, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The most memory a command may need for an artifact's contents, as
    /// declared in its header (bytes, or with K, M, G, KiB, MiB, GiB): an
    /// artifact needing more is refused with exit 2 before it is read.
    #[arg(long, global = true, value_name = "BYTES", default_value = "2GiB", value_parser = files::parse_bytes)]
    max_memory: u64,
}

#[derive(Subcommand, Debug)]
enum Command {
    Quantize(cmd::quantize::QuantizeArgs),
    Inspect(cmd::inspect::InspectArgs),
    Export(cmd::export::ExportArgs),
    Demo(cmd::demo::DemoArgs),
    Verify(cmd::verify::VerifyArgs),
    Audit(cmd::audit::AuditArgs),
    Import(cmd::import::ImportArgs),
    View(cmd::view::ViewArgs),
    Compare(cmd::compare::CompareArgs),
    Doctor(cmd::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { USAGE } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    files::set_max_memory(cli.max_memory);
    let result = match &cli.command {
        Command::Quantize(args) => cmd::quantize::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::View(args) => cmd::view::run(args),
        Command::Compare(args) => cmd::compare::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(CliError { code, error }) => {
            // Errors quote input (file names, pickle globals, tensor names):
            // control characters are escaped so that none reaches the
            // terminal raw.
            let message = format!("{error:#}");
            eprintln!("pgq: error: {}", pgq_verifier::format::printable(&message));
            ExitCode::from(code)
        }
    }
}
