//! `pgq inspect`: where the bytes of an artifact go.

use std::path::PathBuf;

use clap::Args;
use pgq_format::{read, ReadOptions, Summary};
use serde::Serialize;

use pgq_verifier::inspect::{inspect, Inspection};
use pgq_verifier::layers::layer_budgets;
use pgq_verifier::CAP_BYTES;

use crate::exit::{CliResult, Malformed, OK};
use crate::files::{check_memory, read_limited};
use crate::render::{shape, table, thousands};

/// Show where the bytes of a .pgq artifact go, per tensor and per section.
///
/// Prints each tensor's shape, kind, bits, group size, parameters, the
/// bytes attributed to it and its bits per weight; each section's codec and
/// sizes; the metadata; and totals.
///
/// The whole file is validated (structure, every CRC, every value) first:
/// a malformed file exits with code 2 and names the field and byte offset.
///
/// Bytes of a shared compressed section are attributed to its tensors in
/// proportion to their decoded bytes (spec/FORMAT.md, "Byte attribution");
/// per-tensor bytes plus the header overhead add up to the file size.
///
/// --layers prints the bit budget per layer instead: tensors grouped by
/// name up to the first number (blocks.3, encoder.layer.11; otherwise the
/// first name component), in natural order, each split into codes, scales,
/// passthrough values and table entries, with bits per weight, share of
/// the 16,000,000-byte cap and a bar.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The .pgq artifact.
    pub file: PathBuf,
    /// Print JSON (top-level `file_bytes`, `tensors`, `layers`, `sections`,
    /// `metadata`) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Print the bit budget per layer.
    #[arg(long)]
    pub layers: bool,
}

#[derive(Serialize)]
struct InspectJson<'a> {
    file: String,
    #[serde(flatten)]
    inspection: &'a Inspection,
}

pub fn run(args: &InspectArgs) -> CliResult<u8> {
    let options = ReadOptions::default();
    let bytes = read_limited(&args.file, options.max_file_bytes)?;
    check_memory(&bytes, &args.file, false)?;
    let archive = read(&bytes, &options)
        .malformed(format!("{} is not a valid .pgq file", args.file.display()))?;
    let inspection = inspect(&archive.header);
    let (summary, metadata) = (&inspection.summary, &inspection.metadata);
    if args.json {
        let doc = InspectJson {
            file: args.file.display().to_string(),
            inspection: &inspection,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
        return Ok(OK);
    }
    let file = args.file.display().to_string();
    if args.layers {
        print!("{}", render_layers(&file, summary));
    } else {
        print!("{}", render_text(&file, summary, metadata));
    }
    Ok(OK)
}

/// Width of the widest bar in `--layers`.
const BAR_WIDTH: f64 = 40.0;

fn render_layers(file: &str, s: &Summary) -> String {
    let layers = layer_budgets(s, CAP_BYTES);
    let widest = layers.iter().map(|l| l.bytes).max().unwrap_or(1).max(1) as f64;
    let mut rows = vec![vec![
        "layer".to_string(),
        ">tensors".into(),
        ">params".into(),
        ">codes".into(),
        ">scales".into(),
        ">passthrough".into(),
        ">entries".into(),
        ">bytes".into(),
        ">bits/w".into(),
        ">of cap".into(),
        "codes # scales = passthrough -".into(),
    ]];
    for l in &layers {
        let cells = |n: u64| ((n as f64 / widest) * BAR_WIDTH).round() as usize;
        let bar = "#".repeat(cells(l.code_bytes))
            + &"=".repeat(cells(l.scale_bytes))
            + &"-".repeat(cells(l.passthrough_bytes));
        rows.push(vec![
            l.layer.clone(),
            l.tensors.to_string(),
            thousands(l.params),
            thousands(l.code_bytes),
            thousands(l.scale_bytes),
            thousands(l.passthrough_bytes),
            thousands(l.entry_bytes),
            thousands(l.bytes),
            format!("{:.3}", l.bits_per_weight),
            format!("{:.2}%", 100.0 * l.share_of_cap),
            bar,
        ]);
    }
    let headroom = CAP_BYTES as i64 - s.file_bytes as i64;
    format!(
        "{file}: {} layers\n\n{}\nheader outside the tensor table: {} bytes\n\
         total: {} bytes, {:.2}% of the {}-byte cap: {} it before code bytes\n",
        layers.len(),
        table(&rows),
        thousands(s.overhead_bytes),
        thousands(s.file_bytes),
        100.0 * s.file_bytes as f64 / CAP_BYTES as f64,
        thousands(CAP_BYTES),
        super::quantize::headroom_phrase(headroom),
    )
}

fn render_text(
    file: &str,
    s: &Summary,
    metadata: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut rows = vec![vec![
        "tensor".to_string(),
        "shape".into(),
        "kind".into(),
        ">bits".into(),
        ">group".into(),
        ">params".into(),
        ">bytes".into(),
        ">bits/w".into(),
    ]];
    for t in &s.tensors {
        rows.push(vec![
            t.name.clone(),
            shape(&t.shape),
            t.kind.name().into(),
            t.bits.map_or("-".into(), |b| b.to_string()),
            t.group_size.map_or("-".into(), |g| {
                if g == 0 {
                    "row".into()
                } else {
                    g.to_string()
                }
            }),
            thousands(t.params),
            thousands(t.bytes),
            format!("{:.3}", t.bits_per_weight),
        ]);
    }
    let mut out = format!(
        "{file}: pgq v{}.{}, {} tensors, {} sections\n\n",
        s.major,
        s.minor,
        s.tensors.len(),
        s.sections.len()
    );
    out += &table(&rows);
    let mut srows = vec![vec![
        "section".to_string(),
        "codec".into(),
        ">stored".into(),
        ">decoded".into(),
        ">ratio".into(),
        ">regions".into(),
    ]];
    for sec in &s.sections {
        srows.push(vec![
            sec.index.to_string(),
            sec.codec.into(),
            thousands(sec.stored_bytes),
            thousands(sec.decoded_bytes),
            format!("{:.3}", sec.ratio),
            sec.regions.to_string(),
        ]);
    }
    out += "\n";
    out += &table(&srows);
    if !metadata.is_empty() {
        out += "\nmetadata:\n";
        for (k, v) in metadata {
            out += &format!("  {k} = {v}\n");
        }
    }
    out += &format!(
        "\ntotal: {} bytes = {} in tensors + {} header overhead (metadata {}); {} parameters, {:.3} bits per weight\n",
        thousands(s.file_bytes),
        thousands(s.file_bytes - s.overhead_bytes),
        thousands(s.overhead_bytes),
        thousands(s.metadata_bytes),
        thousands(s.params),
        s.bits_per_weight
    );
    out
}
