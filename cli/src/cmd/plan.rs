//! What `quantize` and `demo` hand to `pgq_quantizer::pipeline`: a recipe
//! or policy, Hessians read from a file, a progress bar, and the pipeline's
//! errors in the CLI's words and exit codes.

use std::path::Path;

use pgq_quantizer::backend::RunInfo;
use pgq_quantizer::pipeline::{Hessians, PipelineError, ProgressBar};
pub use pgq_quantizer::pipeline::{Planning, DEFAULT_RECIPE};
use pgq_quantizer::Recipe;

use crate::checkpoint;
use crate::exit::{CliError, CliResult};

/// Loads `path` as a recipe; a bad recipe is malformed input (exit 2).
pub fn recipe_planning(path: &Path) -> CliResult<Planning> {
    Recipe::load(path)
        .map(Planning::Recipe)
        .map_err(CliError::malformed)
}

/// Reads Hessians from a safetensors file: one square `[in, in]` matrix
/// (f32, f16 or bf16) per weight, under the weight's name.
pub fn load_hessians(path: &Path) -> CliResult<Hessians> {
    let file = checkpoint::load(path, false)?;
    Hessians::new(path.display().to_string(), file.tensors).map_err(CliError::malformed)
}

/// A pipeline error as the CLI reports it: `--only` mistakes are usage
/// errors (exit 3), everything else is input that cannot be quantized
/// (exit 2). `what` names the model.
pub fn pipeline_error(error: PipelineError, what: &str) -> CliError {
    match error {
        PipelineError::BadGlob { glob, reason } => {
            CliError::usage(format!("--only {glob:?}: {reason}"))
        }
        PipelineError::SelectsNothing { globs, tensors } => CliError::usage(format!(
            "--only {} matches none of the {tensors} tensors (globs match whole names; `*` \
             crosses dots: \"blocks.3.*\")",
            globs.join(" --only "),
        )),
        PipelineError::MissingHessians { missing, origin } => {
            let source = match origin {
                None => "no --hessians file was given".to_string(),
                Some(origin) => format!("{origin} has no matrix under these names"),
            };
            CliError::malformed(anyhow::anyhow!(
                "{}",
                pgq_quantizer::pipeline::missing_hessians_message(&missing, &source)
            ))
        }
        PipelineError::NoTensors => CliError::malformed(anyhow::anyhow!("{what} holds no tensors")),
        PipelineError::Backend(e) => {
            CliError::malformed(anyhow::Error::new(e).context(format!("cannot quantize {what}")))
        }
        PipelineError::Budget(e) => CliError::check_failed(e),
        e @ PipelineError::LqerWith(_) => CliError::usage(e.to_string()),
        other => CliError::malformed(other),
    }
}

/// The CLI's progress bar as the pipeline's observer.
pub fn progress() -> ProgressBar {
    ProgressBar::new("quantize")
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
