//! `pgq import`: a `.ptz` artifact of today's records into `.pgq`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use pgq_format::{read_header, summarize, MetaValue, ReadOptions};
use pgq_verifier::import::{import, Detected, ImportOptions};
use serde::Serialize;

use super::common::{encode_artifact, CodecArgs};
use crate::exit::{CliError, CliResult, Malformed, OK};
use crate::files::{check_output, max_memory, read_limited, write_atomic};
use crate::render::thousands;
use pgq_quantizer::sha256_hex;

/// Convert a .ptz artifact (torch.save + byte shuffle + compressor) to .pgq.
///
/// Reads today's submission artifacts so that reviewers can inspect and
/// verify them with pgq: detects the compressor (zstd, xz, zlib, or brotli
/// as the fallback; an uncompressed torch zip is accepted), undoes the BSHF
/// byte shuffle (any stride), reads the torch zip strictly and its pickle
/// with a restricted interpreter: only the opcodes torch.save emits and an
/// allow-list of globals (torch._utils._rebuild_tensor_v2, torch storage
/// types, collections.OrderedDict). Any other global (os.system,
/// builtins.eval, ...) is refused with exit 2; nothing is ever executed.
///
/// Layouts, as the records' own loaders read them:
///   {"w": ..., "m": ...}   meta "int6", "gptq (int6)", {"type": "int8"}...:
///                          name.q int8 codes, name.scale fp16 per row (or
///                          0-d); meta "passthrough", "passthrough_ctrl",
///                          "passthrough (float16)": name as stored; meta
///                          "gate_int8_row" (attention gates, 2026-04-22
///                          on): name.gq int8 codes, name.gs fp16 per row
///   int8_clean_per_row_v1  the baseline's bundle (quantized, scales,
///                          passthrough, qmeta)
/// The conversion is lossless: every weight `pgq export` gives equals the
/// record's own dequantization (q * scale) bit for bit, a low-rank
/// correction (meta "+lqer", "+lqer_asym", 2026-04-27 on) included: it
/// becomes a tensor of kind 4 (format 1.2), whose W = Q*s + A*B decodes as
/// the record's own torch product does.
///
/// Refused with exit 2, naming what is not supported yet: the 2026-04-27
/// record's PGRP per-group container (lrzip streams; serialize with
/// COMPRESSOR=brotli to import).
///
/// Examples:
///   pgq import final_model.int6.ptz -o record.pgq
///   pgq import final_model.int6.ptz -o record.pgq --codec zstd && pgq verify record.pgq --code train_gpt.py
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// The .ptz artifact.
    pub artifact: PathBuf,
    /// Output .pgq path.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub codec: CodecArgs,
    /// Print a JSON report instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ImportJson {
    input: String,
    input_bytes: u64,
    output: String,
    output_bytes: u64,
    params: u64,
    detected: Detected,
    seconds: f64,
}

pub fn run(args: &ImportArgs) -> CliResult<u8> {
    let compression = args.codec.compression()?;
    check_output(&args.output, &[&args.artifact])?;
    let started = Instant::now();
    // The decompressed stream, the codes copied out of it and the .pgq
    // written from them live at once: a quarter of the memory budget for
    // the stream (512 MiB by default, 15 times a real artifact's).
    let options = ImportOptions {
        max_decompressed_bytes: ImportOptions::default()
            .max_decompressed_bytes
            .min(max_memory() / 4),
    };
    // The compressed artifact is at most a few times the 16 MB cap; the
    // decompressed stream is bounded separately by the importer.
    let bytes = read_limited(&args.artifact, options.max_decompressed_bytes)?;
    let imported =
        import(&bytes, &options).malformed(format!("cannot import {}", args.artifact.display()))?;
    let mut metadata = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        metadata.insert(k.to_string(), MetaValue::Str(v));
    };
    put("pgq.producer", format!("pgq {}", env!("CARGO_PKG_VERSION")));
    put("pgq.codec", compression.describe());
    put("pgq.source.sha256", sha256_hex(&bytes));
    let d = &imported.detected;
    put(
        "pgq.imported",
        format!(
            "{} layout, {}{}",
            d.layout,
            d.compressor,
            d.shuffle
                .map_or(String::new(), |s| format!(", BSHF stride {s}"))
        ),
    );
    let out = encode_artifact(&imported.tensors, &metadata, compression)?;
    write_atomic(&args.output, &out, &[&args.artifact])?;
    let header = read_header(&out, &ReadOptions::default())
        .malformed("the written artifact does not parse (a pgq bug)")?;
    let summary = summarize(&header);
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let doc = ImportJson {
            input: args.artifact.display().to_string(),
            input_bytes: bytes.len() as u64,
            output: args.output.display().to_string(),
            output_bytes: out.len() as u64,
            params: summary.params,
            detected: imported.detected.clone(),
            seconds,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc)
                .map_err(|e| CliError::malformed(anyhow::anyhow!("cannot render JSON: {e}")))?
        );
    } else {
        println!(
            "{}: {} bytes, {} layout, {}{}: {} tensors, {} parameters",
            args.artifact.display(),
            thousands(bytes.len() as u64),
            d.layout,
            d.compressor,
            d.shuffle
                .map_or(String::new(), |s| format!(" + BSHF stride {s}")),
            d.tensors,
            thousands(summary.params)
        );
        println!(
            "wrote {}: {} bytes ({}), {:+.2}% vs the .ptz, in {seconds:.1} s",
            args.output.display(),
            thousands(out.len() as u64),
            compression.describe(),
            100.0 * (out.len() as f64 / bytes.len() as f64 - 1.0)
        );
    }
    Ok(OK)
}
