//! Options and steps shared by `quantize` and `demo`.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use pgq_format::{Compression, MetaValue, Tensor};
use pgq_quantizer::{ClipMode, DefaultPolicy};

use crate::exit::{CliError, CliResult};

pub use pgq_verifier::CAP_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    /// Per section, the smallest of rans, brotli (at --level, default 11)
    /// and zstd-19; sections of codes try brotli only when a quick brotli
    /// beats rans (it never does on real codes, so they take rans's time).
    Auto,
    /// pgq's static interleaved rANS (spec/FORMAT.md §5.5): codes at their
    /// per-tensor (or per-column-class) entropy, 0.5-1% smaller than
    /// brotli-11 on real weights and about 50x faster; no --level.
    Rans,
    /// brotli (default quality 11): about 0.3 MB/s per core at quality 11,
    /// 0.5 MB/s at 10.
    Brotli,
    /// zstd (default level 19): about 0.7% larger than brotli-11 on int6
    /// codes, about 2x faster at 19; levels below 16 are much larger on
    /// codes (their match finder fragments i.i.d. data).
    Zstd,
    /// No compression; codes below 8 bits are bit-packed (int6: 4 in 3 bytes).
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClipArg {
    /// clip = k x std(row or group), unbiased std.
    Sdclip,
    /// clip = max |w| of the row or group.
    Absmax,
}

/// How tensors are quantized (the field's default policy, made explicit).
#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Code bit width of matrices (2..=8).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub bits: u8,
    /// SDClip factor of matrices: scale = k * std / (2^(bits-1) - 1).
    #[arg(long, default_value_t = 12.85)]
    pub k: f32,
    /// Code bit width of embeddings (tensors whose name contains --embed-match).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(2..=8))]
    pub embed_bits: u8,
    /// SDClip factor of embeddings.
    #[arg(long, default_value_t = 20.0)]
    pub embed_k: f32,
    /// Substring (case-insensitive) that marks an embedding tensor name.
    #[arg(long, default_value = "emb")]
    pub embed_match: String,
    /// Columns per scale group; 0 = one fp16 scale per row.
    #[arg(long, default_value_t = 0)]
    pub group_size: u32,
    /// How the clip value of a row or group is chosen.
    #[arg(long, value_enum, default_value_t = ClipArg::Sdclip)]
    pub clip: ClipArg,
    /// Tensors of at most this many elements, and all rank-0/1 tensors, are
    /// kept as fp16 passthrough.
    #[arg(long, default_value_t = 65_536)]
    pub keep_max: u64,
}

impl PolicyArgs {
    pub fn policy(&self) -> CliResult<DefaultPolicy> {
        for (name, k) in [("--k", self.k), ("--embed-k", self.embed_k)] {
            if !(k.is_finite() && k > 0.0) {
                return Err(CliError::usage(format!(
                    "{name} must be a positive number, got {k}"
                )));
            }
        }
        Ok(DefaultPolicy {
            keep_max_elements: self.keep_max,
            matrix_bits: self.bits,
            matrix_k: self.k,
            embed_bits: self.embed_bits,
            embed_k: self.embed_k,
            embed_marker: self.embed_match.clone(),
            group_size: self.group_size,
            clip_mode: match self.clip {
                ClipArg::Sdclip => ClipMode::SdClip,
                ClipArg::Absmax => ClipMode::Absmax,
            },
        })
    }
}

/// How the artifact is compressed.
#[derive(Args, Debug, Clone)]
pub struct CodecArgs {
    /// Section codec.
    #[arg(long, value_enum, default_value_t = CodecArg::Auto)]
    pub codec: CodecArg,
    /// Codec level: brotli 0..=11 (default 11; also auto's brotli), zstd
    /// 1..=22 (default 19).
    #[arg(long)]
    pub level: Option<u32>,
}

impl CodecArgs {
    pub fn compression(&self) -> CliResult<Compression> {
        let name = match self.codec {
            CodecArg::Auto => "auto",
            CodecArg::Rans => "rans",
            CodecArg::Raw => "raw",
            CodecArg::Brotli => "brotli",
            CodecArg::Zstd => "zstd",
        };
        Compression::from_name(name, self.level).map_err(|e| match (self.codec, self.level) {
            (CodecArg::Raw, Some(_)) => CliError::usage("--level has no meaning with --codec raw"),
            (CodecArg::Rans, Some(_)) => {
                CliError::usage("--level has no meaning with --codec rans")
            }
            _ => CliError::usage(e),
        })
    }
}

/// The artifact bytes of `tensors`, with `metadata` (provenance) and the
/// decode digest that `pgq verify` recomputes (`pipeline::encode`).
pub fn encode_artifact(
    tensors: &[Tensor],
    metadata: &BTreeMap<String, MetaValue>,
    compression: Compression,
) -> CliResult<Vec<u8>> {
    pgq_quantizer::pipeline::encode(tensors, metadata, compression).map_err(|e| {
        CliError::malformed(anyhow::Error::new(e).context("cannot write the artifact"))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// CUDA when the NVIDIA driver, a GPU, NVRTC, cuBLAS and cuSOLVER are
    /// all found, else the CPU (a one-line note on stderr says why).
    Auto,
    /// The CPU path (faer, all cores): the reference.
    Cpu,
    /// The GPU, or exit 3 with what is missing.
    Cuda,
}

/// Where quantization runs.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Backend for computing codes: every matrix of the model in one batch
    /// on the GPU (kernels compiled at run time by NVRTC), or the CPU.
    /// Reports are measured on the CPU either way; `pgq doctor` lists what
    /// this machine has.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
}

impl DeviceArgs {
    /// Opens the backend; prints auto's fallback note on stderr. An
    /// unavailable `--device cuda` is a usage error (exit 3).
    pub fn select(&self) -> CliResult<pgq_quantizer::backend::Backend> {
        use pgq_quantizer::backend::{select, DeviceChoice};
        let choice = match self.device {
            DeviceArg::Auto => DeviceChoice::Auto,
            DeviceArg::Cpu => DeviceChoice::Cpu,
            DeviceArg::Cuda => DeviceChoice::Cuda,
        };
        let selection =
            select(choice).map_err(|e| CliError::usage(format!("--device cuda: {e}")))?;
        if let Some(note) = selection.note {
            eprintln!("pgq: {note}");
        }
        Ok(selection.backend)
    }
}
