//! `pgq demo`: build a parameter-golf-shaped model, quantize it, verify the
//! artifact round-trips, and report where its bytes go.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use pgq_format::{read, summarize, Kind, MetaValue, ReadOptions, Summary};
use pgq_quantizer::checkpoint::write_f32_safetensors;
use pgq_quantizer::pipeline::{self, HessianInput, Options};
use pgq_quantizer::{
    code_entropy, status_quo_bytes, DefaultPolicy, DemoConfig, DemoHessians, Recipe,
};
use serde::Serialize;

use super::common::{CodecArgs, DeviceArgs, CAP_BYTES};
use super::plan::{
    backend_lines, pipeline_error, progress, recipe_planning, Planning, DEFAULT_RECIPE,
};
use super::quantize::{versus_rtn_line, VersusRtn};
use crate::exit::{CliError, CliResult, Malformed, CHECK_FAILED, OK};
use crate::files::{write_atomic, write_atomic_with};
use crate::render::{table, thousands};

/// Build a parameter-golf-shaped model, quantize it, verify it, report.
///
/// Builds a deterministic model (vocab 8192 x 512 embedding, 11 blocks of
/// attention and 4x MLP matrices, small control tensors: 35.9M parameters,
/// heavy-tailed weights with per-row spread) and synthetic calibration
/// Hessians of correlated activations for its matrices, writes the model
/// as DIR/demo.safetensors, quantizes it with the default recipe
/// (recipes/default.toml: GPTQ int6 SDClip k 12.85, GPTQ int8 k 20
/// embedding, fp16 control tensors) into DIR/demo.pgq, reads the artifact
/// back and checks every code, scale and dequantized weight, and reports
/// bytes against the 16,000,000-byte cap, bits per weight per tensor class,
/// and GPTQ's Hessian proxy of output error against plain RTN's (a
/// per-layer proxy: the model's own output decides which method is better).
///
/// The codec is `pgq quantize`'s default, auto: rANS for the codes (under a
/// second), brotli-11 or zstd where they are smaller (scales, control
/// tensors); --codec brotli compresses everything with brotli as files did
/// before rANS (about 30 s more).
/// --rtn quantizes with the default policy's plain RTN instead (no
/// Hessians; what `pgq quantize` does without --recipe).
///
/// Exits 1 if the round trip differs or the artifact exceeds the cap.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for demo.safetensors and demo.pgq (created if missing).
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    #[command(flatten)]
    pub codec: CodecArgs,
    /// Also encode the same codes the status-quo way (torch.save of int8
    /// codes + fp16 scales + fp16 passthrough, BSHF stride-2 shuffle,
    /// brotli-11) and compare sizes; adds about a minute.
    #[arg(long)]
    pub compare_status_quo: bool,
    /// Print a JSON report instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Quantize with another recipe (with the synthetic Hessians).
    #[arg(long, conflicts_with = "rtn")]
    pub recipe: Option<PathBuf>,
    /// Quantize with plain RTN (the default policy, no Hessians).
    #[arg(long)]
    pub rtn: bool,
    /// Also write the synthetic Hessians as DIR/demo-hessians.safetensors
    /// (about 210 MB), for `pgq quantize --hessians`.
    #[arg(long)]
    pub write_hessians: bool,
    /// Write DIR/demo.safetensors (and with --write-hessians the Hessians)
    /// and stop: the inputs of `pgq quantize` (bench/gpu/check.sh uses it).
    #[arg(long)]
    pub model_only: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Use a tiny model of the same structure (for tests).
    #[arg(long, hide = true)]
    pub tiny: bool,
}

#[derive(Serialize, Default, Clone)]
struct ClassRow {
    class: String,
    tensors: usize,
    params: u64,
    bytes: u64,
    bits_per_weight: f64,
    share_of_cap: f64,
}

#[derive(Serialize)]
struct StatusQuo {
    status_quo_bytes: u64,
    pgq_bytes: u64,
    /// pgq / status quo.
    ratio: f64,
    /// Order-0 entropy of the codes of each bit width, summed, in bytes: a
    /// bound for coders that see codes one at a time (scales excluded).
    code_entropy_bytes: f64,
}

#[derive(Serialize)]
struct DemoJson {
    safetensors: String,
    artifact: String,
    codec: String,
    params: u64,
    file_bytes: u64,
    cap_bytes: u64,
    headroom_bytes: i64,
    round_trip: bool,
    /// The recipe or policy, as recorded in the artifact.
    plan: String,
    /// GPTQ's Hessian proxy of output error against plain RTN's (with
    /// Hessians).
    versus_rtn: Option<VersusRtn>,
    classes: Vec<ClassRow>,
    seconds: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_quo: Option<StatusQuo>,
}

/// The class a tensor's bytes are reported under.
fn class_of(name: &str, kind: Kind) -> &'static str {
    if !kind.is_quantized() {
        "control (fp16)"
    } else if name.contains("emb") {
        "embedding"
    } else if name.contains(".attn.") {
        "attention"
    } else if name.contains(".mlp.") {
        "mlp"
    } else {
        "other matrices"
    }
}

fn classes(summary: &Summary) -> Vec<ClassRow> {
    let mut by: BTreeMap<&'static str, ClassRow> = BTreeMap::new();
    for t in &summary.tensors {
        let class = class_of(&t.name, t.kind);
        let row = by.entry(class).or_insert_with(|| ClassRow {
            class: class.into(),
            ..ClassRow::default()
        });
        row.tensors += 1;
        row.params += t.params;
        row.bytes += t.bytes;
    }
    let order = [
        "embedding",
        "attention",
        "mlp",
        "other matrices",
        "control (fp16)",
    ];
    let mut rows: Vec<ClassRow> = order.iter().filter_map(|c| by.remove(c)).collect();
    rows.push(ClassRow {
        class: "header overhead".into(),
        bytes: summary.overhead_bytes,
        ..ClassRow::default()
    });
    let total = ClassRow {
        class: "total".into(),
        tensors: summary.tensors.len(),
        params: summary.params,
        bytes: summary.file_bytes,
        ..ClassRow::default()
    };
    rows.push(total);
    for r in &mut rows {
        r.bits_per_weight = if r.params == 0 {
            0.0
        } else {
            8.0 * r.bytes as f64 / r.params as f64
        };
        r.share_of_cap = r.bytes as f64 / CAP_BYTES as f64;
    }
    rows
}

pub fn run(args: &DemoArgs) -> CliResult<u8> {
    let config = if args.tiny {
        DemoConfig::tiny()
    } else {
        DemoConfig::default()
    };
    let compression = args.codec.compression()?;
    let mut seconds = BTreeMap::new();
    std::fs::create_dir_all(&args.out)
        .malformed(format!("cannot create {}", args.out.display()))?;
    let say = |msg: &str| {
        if !args.json {
            eprintln!("{msg}");
        }
    };

    let t = Instant::now();
    let sources = config
        .generate(args.threads)
        .map_err(|e| CliError::usage(format!("demo configuration: {e}")))?;
    let params: u64 = sources.iter().map(|s| s.values.len() as u64).sum();
    let st_path = args.out.join("demo.safetensors");
    let layout: Vec<(String, Vec<u64>)> = sources
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    write_atomic_with(&st_path, &[], |out| {
        write_f32_safetensors(out, &layout, &Default::default(), |i| &sources[i].values)?;
        Ok(())
    })?;
    seconds.insert("generate", t.elapsed().as_secs_f64());
    say(&format!(
        "built {} tensors, {} parameters -> {} ({:.1} s)",
        sources.len(),
        thousands(params),
        st_path.display(),
        seconds["generate"]
    ));

    let planning = if args.rtn {
        Planning::Policy(DefaultPolicy::default())
    } else if let Some(path) = &args.recipe {
        recipe_planning(path)?
    } else {
        Planning::Recipe(
            Recipe::parse(DEFAULT_RECIPE).malformed("the embedded default recipe (a pgq bug)")?,
        )
    };
    let hessians = if args.rtn {
        None
    } else {
        let t = Instant::now();
        let hessians = DemoHessians::generate(&config, args.threads)
            .map_err(|e| CliError::usage(format!("demo configuration: {e}")))?;
        if args.write_hessians {
            let matrices: Vec<(&str, usize, &[f32])> = hessians.tensors().collect();
            let layout: Vec<(String, Vec<u64>)> = matrices
                .iter()
                .map(|(name, cols, _)| (name.to_string(), vec![*cols as u64; 2]))
                .collect();
            let path = args.out.join("demo-hessians.safetensors");
            write_atomic_with(&path, &[], |out| {
                write_f32_safetensors(out, &layout, &Default::default(), |i| matrices[i].2)?;
                Ok(())
            })?;
            say(&format!(
                "wrote {} Hessians -> {}",
                matrices.len(),
                path.display()
            ));
        }
        seconds.insert("hessians", t.elapsed().as_secs_f64());
        Some(hessians)
    };
    if args.model_only {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&seconds).malformed("cannot render JSON")?
            );
        }
        return Ok(OK);
    }
    let backend = args.device.select()?;

    let t = Instant::now();
    let bar = progress();
    let options = Options {
        compression,
        threads: args.threads,
        source_digest: false,
        observer: Some(&bar),
        ..Options::default()
    };
    let hessian_input = hessians.as_ref().map(|h| HessianInput {
        source: h,
        names: Vec::new(),
        origin: "the demo's synthetic Hessians".into(),
        sha256: None,
    });
    let artifact = pipeline::quantize(
        &backend,
        &sources,
        &planning,
        hessian_input.as_ref(),
        &options,
    )
    .map_err(|e| pipeline_error(e, "the demo model"))?;
    bar.bar.finish_and_clear();
    let compress_seconds = bar.compress_seconds().unwrap_or(0.0);
    seconds.insert("quantize", t.elapsed().as_secs_f64() - compress_seconds);
    let t = Instant::now();
    // The recipe or policy as the artifact records it.
    let plan_description = artifact
        .metadata
        .get("pgq.recipe")
        .or_else(|| artifact.metadata.get("pgq.policy"))
        .map_or(String::new(), |v| match v {
            MetaValue::Str(s) => s.clone(),
            other => format!("{other:?}"),
        });
    let pgq_path = args.out.join("demo.pgq");
    write_atomic(&pgq_path, &artifact.bytes, &[])?;
    seconds.insert("compress", compress_seconds + t.elapsed().as_secs_f64());
    say(&format!(
        "quantized ({:.1} s) and compressed with {} ({:.1} s) -> {}",
        seconds["quantize"],
        compression.describe(),
        seconds["compress"],
        pgq_path.display()
    ));

    // Verify from the file on disk, as a consumer would see it.
    let t = Instant::now();
    let on_disk =
        std::fs::read(&pgq_path).malformed(format!("cannot read back {}", pgq_path.display()))?;
    let archive = read(&on_disk, &ReadOptions::default())
        .malformed("the written artifact does not validate (a pgq bug)")?;
    let same_content = archive.tensors == artifact.tensors;
    let same_weights = same_content
        && archive.tensors.iter().zip(&artifact.tensors).all(|(a, b)| {
            a.dequantize()
                .iter()
                .map(|x| x.to_bits())
                .eq(b.dequantize().iter().map(|x| x.to_bits()))
        });
    seconds.insert("verify", t.elapsed().as_secs_f64());
    let summary = summarize(&archive.header);

    let status_quo = if args.compare_status_quo {
        say("encoding the same codes the status-quo way (brotli-11)...");
        let t = Instant::now();
        let sq = status_quo_bytes(&artifact.tensors, 11)
            .map_err(|e| CliError::malformed(anyhow::Error::new(e)))?;
        seconds.insert("status_quo", t.elapsed().as_secs_f64());
        let entropy = code_entropy(&artifact.tensors);
        Some(StatusQuo {
            status_quo_bytes: sq.len() as u64,
            pgq_bytes: summary.file_bytes,
            ratio: summary.file_bytes as f64 / sq.len() as f64,
            code_entropy_bytes: entropy.by_bits.values().map(|e| e.bytes).sum(),
        })
    } else {
        None
    };

    let rows = classes(&summary);
    let headroom = CAP_BYTES as i64 - summary.file_bytes as i64;
    let round_trip = same_content && same_weights;
    let versus = artifact.report().versus_rtn;
    if args.json {
        let doc = DemoJson {
            safetensors: st_path.display().to_string(),
            artifact: pgq_path.display().to_string(),
            codec: compression.describe(),
            params,
            file_bytes: summary.file_bytes,
            cap_bytes: CAP_BYTES,
            headroom_bytes: headroom,
            round_trip,
            plan: plan_description,
            versus_rtn: versus,
            classes: rows,
            seconds,
            status_quo,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
    } else {
        let mut t = vec![vec![
            "class".to_string(),
            ">tensors".into(),
            ">params".into(),
            ">bytes".into(),
            ">bits/w".into(),
            ">of cap".into(),
        ]];
        for r in &rows {
            t.push(vec![
                r.class.clone(),
                if r.tensors == 0 {
                    String::new()
                } else {
                    r.tensors.to_string()
                },
                if r.params == 0 {
                    String::new()
                } else {
                    thousands(r.params)
                },
                thousands(r.bytes),
                if r.params == 0 {
                    String::new()
                } else {
                    format!("{:.3}", r.bits_per_weight)
                },
                format!("{:.2}%", 100.0 * r.share_of_cap),
            ]);
        }
        println!();
        print!("{}", table(&t));
        println!();
        println!(
            "artifact: {} bytes, {} the {}-byte cap (what is left is for code bytes)",
            thousands(summary.file_bytes),
            super::quantize::headroom_phrase(headroom),
            thousands(CAP_BYTES),
        );
        println!(
            "round trip: {} ({} tensors: codes, scales and every dequantized f32 bit-identical)",
            if round_trip { "ok" } else { "FAILED" },
            archive.tensors.len()
        );
        if let Some(v) = &versus {
            println!("{} (synthetic Hessians)", versus_rtn_line(v));
        }
        if let Some(sq) = &status_quo {
            println!(
                "status quo (torch.save int8 + fp16 scales, BSHF, brotli-11) of the same codes: {} bytes; pgq is {:.1}% of that ({} bytes smaller); order-0 entropy of the codes: {} bytes",
                thousands(sq.status_quo_bytes),
                100.0 * sq.ratio,
                thousands(sq.status_quo_bytes.saturating_sub(sq.pgq_bytes)),
                thousands(sq.code_entropy_bytes as u64),
            );
        }
        for line in backend_lines(&artifact.run) {
            println!("{line}");
        }
        let hessian_time = seconds
            .get("hessians")
            .map_or(String::new(), |s| format!("Hessians {s:.1} s, "));
        println!(
            "time: generate {:.1} s, {hessian_time}quantize {:.1} s, compress {:.1} s, verify {:.1} s",
            seconds["generate"], seconds["quantize"], seconds["compress"], seconds["verify"]
        );
    }
    if !round_trip {
        return Err(CliError::check_failed(
            "the artifact read back differs from what was written",
        ));
    }
    if headroom < 0 {
        return Ok(CHECK_FAILED);
    }
    Ok(OK)
}
