//! `pgq export`: the dequantized weights as f32 safetensors.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use pgq_format::{read, MetaValue, ReadOptions};

use crate::exit::{CliResult, Malformed, OK};
use crate::files::{check_memory, check_output, read_limited, write_atomic_with};
use pgq_quantizer::checkpoint::write_f32_safetensors;

/// Write the dequantized f32 weights of an artifact as safetensors.
///
/// Each quantized value is `f32(code) * f32(scale)` (one IEEE f32
/// multiply), exactly what every conforming decoder produces; passthrough
/// tensors are widened exactly. The output loads with
/// `safetensors.torch.load_file(path)` and `model.load_state_dict(...)`.
/// String metadata of the artifact is copied into the safetensors header.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The .pgq artifact.
    pub file: PathBuf,
    /// Output safetensors path.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: &ExportArgs) -> CliResult<u8> {
    check_output(&args.output, &[&args.file])?;
    let options = ReadOptions::default();
    let bytes = read_limited(&args.file, options.max_file_bytes)?;
    check_memory(&bytes, &args.file, true)?;
    let archive = read(&bytes, &options)
        .malformed(format!("{} is not a valid .pgq file", args.file.display()))?;
    let layout: Vec<(String, Vec<u64>)> = archive
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let mut metadata: HashMap<String, String> = archive
        .header
        .metadata
        .iter()
        .filter_map(|(k, v)| match v {
            MetaValue::Str(s) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect();
    metadata.insert("format".into(), "pt".into());
    // One tensor's f32 values at a time: memory for the largest tensor,
    // not for the whole model (Header::memory_needed).
    let mut written = 0;
    write_atomic_with(&args.output, &[&args.file], |out| {
        written =
            write_f32_safetensors(out, &layout, &metadata, |i| archive.tensors[i].dequantize())?;
        Ok(())
    })?;
    eprintln!(
        "wrote {} tensors ({written} bytes) to {}",
        layout.len(),
        args.output.display()
    );
    Ok(OK)
}
