//! `pgq compare`: do two artifacts hold the same codes?

use std::path::{Path, PathBuf};

use clap::Args;
use pgq_format::{read, Archive, ReadOptions, Tensor, TensorData};
use serde::Serialize;

use crate::exit::{CliResult, Malformed, CHECK_FAILED, OK};
use crate::files::{check_memory, read_limited};
use crate::render::{table, thousands};

/// Compare two artifacts tensor by tensor: codes, scales, passthrough values.
///
/// For each tensor of the first artifact: the share of codes equal in the
/// second, the share of scales equal, the largest code difference, and the
/// share of passthrough values equal bit for bit. Made for checking two
/// backends or two runs against each other, e.g. the CPU and CUDA
/// artifacts of one recipe (bench/gpu/check.sh):
///
///   pgq compare cpu.pgq cuda.pgq --min-agreement 0.999
///
/// Exits 1 when a tensor is missing from either side, differs in shape or
/// kind, or agrees on fewer entries than --min-agreement (a share, default
/// 1: identical).
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The reference artifact.
    pub first: PathBuf,
    /// The artifact compared with it.
    pub second: PathBuf,
    /// Smallest share of equal codes (and passthrough values) per tensor.
    #[arg(long, default_value_t = 1.0)]
    pub min_agreement: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One tensor's comparison.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TensorComparison {
    pub name: String,
    pub entries: u64,
    /// Equal codes (or passthrough values) / entries; 0 when the tensors
    /// cannot be compared (shape, kind or bits differ, or one is missing).
    pub agreement: f64,
    /// Equal scales / scales (quantized tensors).
    pub scale_agreement: Option<f64>,
    pub max_code_difference: Option<u8>,
    /// Why the tensors cannot be compared entry by entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
}

#[derive(Serialize)]
struct CompareJson<'a> {
    first: String,
    second: String,
    min_agreement: f64,
    passed: bool,
    worst_agreement: f64,
    tensors: &'a [TensorComparison],
}

fn load(path: &Path) -> CliResult<Archive> {
    let options = ReadOptions::default();
    let bytes = read_limited(path, options.max_file_bytes)?;
    check_memory(&bytes, path, true)?;
    read(&bytes, &options).malformed(format!("{} is not a valid .pgq file", path.display()))
}

fn share(equal: usize, total: usize) -> f64 {
    if total == 0 {
        1.0
    } else {
        equal as f64 / total as f64
    }
}

/// The row of a tensor that `other` lacks.
fn missing(t: &Tensor, other: &Path) -> TensorComparison {
    TensorComparison {
        name: t.name.clone(),
        entries: t.shape.iter().product(),
        agreement: 0.0,
        scale_agreement: None,
        max_code_difference: None,
        mismatch: Some(format!("missing from {}", other.display())),
    }
}

/// Compares tensor `a` with `b` (same name).
pub fn compare_tensors(a: &Tensor, b: &Tensor) -> TensorComparison {
    let mut out = TensorComparison {
        mismatch: None,
        ..missing(a, Path::new(""))
    };
    if a.shape != b.shape {
        out.mismatch = Some(format!("shape {:?} vs {:?}", a.shape, b.shape));
        return out;
    }
    match (&a.data, &b.data) {
        (
            TensorData::Quantized {
                bits,
                group_size,
                codes,
                scales,
                correction,
            },
            TensorData::Quantized {
                bits: bits2,
                group_size: group2,
                codes: codes2,
                scales: scales2,
                correction: correction2,
            },
        ) => {
            if correction != correction2 {
                out.mismatch = Some(match (correction, correction2) {
                    (Some(c), None) => format!("a rank-{} correction vs none", c.rank),
                    (None, Some(c)) => format!("no correction vs a rank-{} one", c.rank),
                    _ => "the low-rank corrections differ".to_owned(),
                });
            }
            if (bits, group_size) != (bits2, group2) || codes.len() != codes2.len() {
                out.mismatch = Some(format!("int{bits} g{group_size} vs int{bits2} g{group2}"));
                return out;
            }
            let equal = codes.iter().zip(codes2).filter(|(x, y)| x == y).count();
            out.agreement = share(equal, codes.len());
            out.max_code_difference = codes
                .iter()
                .zip(codes2)
                .map(|(&x, &y)| (i16::from(x) - i16::from(y)).unsigned_abs() as u8)
                .max()
                .or(Some(0));
            let same = scales
                .iter()
                .zip(scales2)
                .filter(|(x, y)| x.to_bits() == y.to_bits())
                .count();
            out.scale_agreement = Some(if scales.len() == scales2.len() {
                share(same, scales.len())
            } else {
                0.0
            });
        }
        (x, y) if x.kind() == y.kind() => {
            let (p, q) = (a.dequantize(), b.dequantize());
            let equal = p
                .iter()
                .zip(&q)
                .filter(|(x, y)| x.to_bits() == y.to_bits())
                .count();
            out.agreement = share(equal, p.len());
        }
        (x, y) => out.mismatch = Some(format!("{:?} vs {:?}", x.kind(), y.kind())),
    }
    out
}

pub fn run(args: &CompareArgs) -> CliResult<u8> {
    let first = load(&args.first)?;
    let second = load(&args.second)?;
    let mut rows: Vec<TensorComparison> = first
        .tensors
        .iter()
        .map(|a| match second.tensors.iter().find(|b| b.name == a.name) {
            Some(b) => compare_tensors(a, b),
            None => missing(a, &args.second),
        })
        .collect();
    for b in &second.tensors {
        if !first.tensors.iter().any(|a| a.name == b.name) {
            rows.push(missing(b, &args.first));
        }
    }
    let worst = rows.iter().map(|r| r.agreement).fold(1.0, f64::min);
    let passed = rows
        .iter()
        .all(|r| r.mismatch.is_none() && r.agreement >= args.min_agreement);
    if args.json {
        let doc = CompareJson {
            first: args.first.display().to_string(),
            second: args.second.display().to_string(),
            min_agreement: args.min_agreement,
            passed,
            worst_agreement: worst,
            tensors: &rows,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
    } else {
        let mut t = vec![vec![
            "tensor".to_string(),
            ">entries".into(),
            ">equal".into(),
            ">scales equal".into(),
            ">max |dq|".into(),
            "note".into(),
        ]];
        for r in &rows {
            t.push(vec![
                r.name.clone(),
                thousands(r.entries),
                format!("{:.4}%", 100.0 * r.agreement),
                r.scale_agreement
                    .map_or(String::new(), |s| format!("{:.4}%", 100.0 * s)),
                r.max_code_difference
                    .map_or(String::new(), |d| d.to_string()),
                r.mismatch.clone().unwrap_or_default(),
            ]);
        }
        print!("{}", table(&t));
        println!(
            "\n{} tensors; worst agreement {:.4}% (required {:.4}%): {}",
            rows.len(),
            100.0 * worst,
            100.0 * args.min_agreement,
            if passed { "pass" } else { "FAIL" }
        );
    }
    Ok(if passed { OK } else { CHECK_FAILED })
}
