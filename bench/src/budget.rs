//! `pgq-bench budget`: `--budget` on the demo model against the records'
//! hand-tuned recipes at their own bytes, and its time against a plain
//! GPTQ run, side by side in one run.
//!
//! The error is the total output-space error `sum tr(E H E^T)` over the
//! matrices (absolute, so that a matrix whose outputs carry more energy
//! weighs more), with the demo's synthetic Hessians.

use std::time::Instant;

use pgq_metrics::hessian::{hessian_terms, symmetric_hessian};
use pgq_quantizer::backend::Backend;
use pgq_quantizer::budget::{quantize_to_budget, Allocation, Budget};
use pgq_quantizer::pipeline::{quantize, Artifact, HessianInput, Options, Planning};
use pgq_quantizer::{DemoConfig, DemoHessians, HessianSource, Recipe, SourceTensor};

/// The records' hand-tuned recipes, as shipped.
const HAND_TUNED: [(&str, &str); 3] = [
    ("default", "uniform k 12.85, int8 k 20 embedding"),
    (
        "per-class-clip",
        "MLP k 12, attention k 13, int7 k 15 embedding",
    ),
    (
        "groupwise-hessian",
        "groupwise int6 g128, Hessian-weighted clip search",
    ),
];

fn recipe(name: &str) -> Planning {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    Planning::Recipe(Recipe::load(dir.join(format!("{name}.toml"))).expect("recipe"))
}

/// `tr(W H W^T)` of every matrix with a Hessian, by name.
fn energies(sources: &[SourceTensor], hessians: &DemoHessians) -> Vec<(String, f64)> {
    sources
        .iter()
        .filter_map(|s| {
            let h = hessians.hessian(&s.name)?;
            let cols = *s.shape.last()? as usize;
            let rows = s.values.len() / cols;
            let h = symmetric_hessian(h, cols).ok()?;
            let sum = hessian_terms(rows, cols, &h, 0, 1, |row, slots| {
                for (slot, &x) in slots
                    .iter_mut()
                    .zip(&s.values[row * cols..(row + 1) * cols])
                {
                    *slot = f64::from(x);
                }
            })[0];
            Some((s.name.clone(), sum))
        })
        .collect()
}

/// The artifact's total `tr(E H E^T)`: each report's relative error times
/// its matrix's energy.
fn total_error(artifact: &Artifact, energies: &[(String, f64)]) -> f64 {
    artifact
        .reports
        .iter()
        .filter_map(|r| {
            let (_, energy) = energies.iter().find(|(n, _)| *n == r.name)?;
            Some(r.hessian_error? * energy)
        })
        .sum()
}

pub fn run() {
    let config = DemoConfig::default();
    let sources = config.generate(0).expect("demo model");
    let hessians = DemoHessians::generate(&config, 0).expect("hessians");
    let energies = energies(&sources, &hessians);
    let input = HessianInput {
        source: &hessians,
        names: Vec::new(),
        origin: "synthetic".into(),
        sha256: None,
    };
    let options = Options::default();
    let timed = |f: &dyn Fn() -> Artifact| {
        let t = Instant::now();
        let a = f();
        (a, t.elapsed().as_secs_f64())
    };
    println!(
        "demo model ({} parameters), synthetic Hessians; error = sum over matrices of tr(E H E^T)\n",
        sources.iter().map(|s| s.values.len()).sum::<usize>()
    );
    println!("| hand-tuned recipe | bytes | error | `--budget` at those bytes (default recipe) | bytes | error | error ratio | time: recipe / budget |");
    println!("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
    // The default recipe fitted to `bytes`.
    let default = recipe("default");
    let fit_default = |bytes: u64, allocation: Allocation| {
        quantize_to_budget(
            &Backend::Cpu,
            &sources,
            &default,
            Some(&input),
            &options,
            Budget { bytes, allocation },
        )
    };
    let mut plain_default = None;
    for (name, what) in HAND_TUNED {
        let planning = recipe(name);
        let (hand, t_hand) = timed(&|| {
            quantize(&Backend::Cpu, &sources, &planning, Some(&input), &options).expect("quantize")
        });
        let bytes = hand.bytes.len() as u64;
        let e_hand = total_error(&hand, &energies);
        if name == "default" {
            plain_default = Some((bytes, t_hand));
        }
        for allocation in [Allocation::Uniform, Allocation::PerTensor] {
            let label = format!("`--allocate {}`", allocation.name());
            match fit_default(bytes, allocation) {
                Ok((fit, report)) => {
                    let e_fit = total_error(&fit, &energies);
                    println!(
                        "| {name}.toml ({what}) | {bytes} | {e_hand:.2} | {label}{} | {} | {e_fit:.2} | {:.3} | {:.1} / {:.1} s |",
                        if report.binding { "" } else { " (not binding)" },
                        fit.bytes.len(),
                        e_fit / e_hand,
                        t_hand,
                        fit.seconds,
                    );
                }
                Err(e) => println!(
                    "| {name}.toml ({what}) | {bytes} | {e_hand:.2} | {label}: {e} | | | | |"
                ),
            }
        }
    }
    let Some((size, t_plain)) = plain_default else {
        return;
    };
    println!("\n| `--budget` | `--allocate` | bytes | rounds (tensors quantized) | search | whole run | vs plain GPTQ ({t_plain:.1} s) |");
    println!("| ---: | --- | ---: | --- | ---: | ---: | ---: |");
    for bytes in [15_990_000, size, 15_000_000, 14_000_000] {
        for allocation in [Allocation::Uniform, Allocation::PerTensor] {
            match fit_default(bytes, allocation) {
                Ok((fit, report)) => {
                    let rounds: Vec<String> = report
                        .rounds
                        .iter()
                        .map(|r| r.quantized.to_string())
                        .collect();
                    println!(
                        "| {bytes} | {} | {} | {} | {:.1} s | {:.1} s | {:.2}x |",
                        allocation.name(),
                        fit.bytes.len(),
                        rounds.join(" + "),
                        report.search_seconds,
                        fit.seconds,
                        fit.seconds / t_plain
                    );
                }
                Err(e) => println!("| {bytes} | {} | {e} | | | | |", allocation.name()),
            }
        }
    }
}
