//! The runs of a record are one configuration over several seeds: the
//! configuration each log printed before training (`key:value` lines, the
//! hyperparameter dump) is compared across runs.
//!
//! Keys that name the run rather than configure it (seed, run id, paths,
//! ranks) are not compared. Among the runs the claims rest on, a
//! difference in how the model was trained (a learning rate, a schedule,
//! the model's shape: a seed run with another configuration,
//! openai/parameter-golf #2124) means the runs are not one submission over
//! seeds, and fails naming the key, the values and the lines. Differences
//! that leave the training alone are warnings: evaluation settings (an
//! evaluation switched on for one seed, the 2026-04-04 record's
//! `ttt_enabled`), hardware and logging (a log on other hardware, the
//! 2026-03-17 LoRA TTT record's `world_size:2`), the time budget (checked
//! by the time rule), and `train_shards` counts (argued about in #2127);
//! so are all differences in runs the claims do not rest on.

use serde_json::{json, Value};

use crate::report::{Check, Status};

use super::runs::Run;

/// Keys that identify a run or a machine, not the configuration.
const IDENTITY_KEYS: &[&str] = &[
    "run_id",
    "logfile",
    "rank",
    "local_rank",
    "is_main_process",
    "hostname",
    "date",
];
const IDENTITY_SUFFIXES: &[&str] = &["_path", "_dir", "_files", "_file", "_pattern"];
/// Parts of keys that name a seed (`seed`, `data_seed`).
const SEED_PART: &str = "seed";

/// Parts of keys that leave the trained model alone: evaluation, logging,
/// hardware, the time budget, data shard counts.
const NOT_TRAINING: &[&str] = &[
    "ttt",
    "eval",
    "val_",
    "sliding",
    "stride",
    "_every",
    "log",
    "world_size",
    "grad_accum_steps",
    "wallclock",
    "reserve",
    "train_shards",
    "warmup_steps",
    "compile",
    "num_workers",
    // The machine and the software: other hardware, not another recipe.
    "time",
    "elapsed",
    "version",
    "host",
    "device",
    "gpu",
    "cuda",
    "nccl",
    "torch",
    "python",
    "mem",
    "pid",
    "node",
    "date",
];

/// Differences listed in a report, at most.
const MAX_LISTED: usize = 12;

pub fn config_check(runs: &[Run], backing: &[&Run]) -> Check {
    let id = "seeds.config";
    if runs.len() < 2 {
        return Check::new(
            id,
            Status::Pass,
            format!("{} run(s): nothing to compare", runs.len()),
        );
    }
    let mut keys: Vec<&str> = Vec::new();
    for run in runs {
        for entry in run.log.config.entries() {
            if compared(&entry.key) && !keys.contains(&entry.key.as_str()) {
                keys.push(&entry.key);
            }
        }
    }
    let mut differences: Vec<Difference> = Vec::new();
    for key in keys {
        let values: Vec<(&Run, &str, usize)> = runs
            .iter()
            .filter_map(|r| {
                let e = r.log.config.entry(key)?;
                Some((r, e.value.as_str(), e.line))
            })
            .collect();
        if values.len() < 2 || values.iter().all(|(_, v, _)| *v == values[0].1) {
            continue;
        }
        let among_backing = {
            let backed: Vec<&str> = values
                .iter()
                .filter(|(r, _, _)| backing.iter().any(|b| b.id == r.id))
                .map(|(_, v, _)| *v)
                .collect();
            backed.iter().any(|v| *v != backed[0])
        };
        differences.push(Difference {
            key,
            trains: among_backing
                && !NOT_TRAINING
                    .iter()
                    .any(|p| key.to_ascii_lowercase().contains(p)),
            values,
        });
    }
    // What fails first.
    differences.sort_by_key(|d| !d.trains);
    let compared_runs = runs.len();
    if differences.is_empty() {
        return Check::new(
            id,
            Status::Pass,
            format!("{compared_runs} runs print the same configuration (seeds, run ids and paths aside)"),
        )
        .figure("differences", Value::Array(Vec::new()));
    }
    let status = if differences.iter().any(|d| d.trains) {
        Status::Fail
    } else {
        Status::Warn
    };
    let listed: Vec<String> = differences
        .iter()
        .take(MAX_LISTED)
        .map(|d| {
            let values: Vec<String> = d
                .values
                .iter()
                .map(|(r, v, line)| format!("{v} ({} line {line})", r.file))
                .collect();
            format!("{}: {}", d.key, values.join(", "))
        })
        .collect();
    let more = differences.len().saturating_sub(MAX_LISTED);
    let more = if more > 0 {
        format!("; {more} more")
    } else {
        String::new()
    };
    let verdict = if status == Status::Fail {
        "the runs the claims rest on were not trained alike"
    } else {
        "the runs differ in configuration"
    };
    let figures: Vec<Value> = differences
        .iter()
        .map(|d| {
            json!({
                "key": d.key,
                "training": d.trains,
                "values": d.values.iter().map(|(r, v, line)| json!({"run": r.id, "file": r.file, "value": v, "line": line})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Check::new(
        id,
        status,
        format!("{verdict}: {}{more}", listed.join("; ")),
    )
    .figure("differences", figures)
}

struct Difference<'a> {
    key: &'a str,
    /// A training setting differing among the runs the claims rest on.
    trains: bool,
    values: Vec<(&'a Run, &'a str, usize)>,
}

fn compared(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    !IDENTITY_KEYS.contains(&lower.as_str())
        && !IDENTITY_SUFFIXES.iter().any(|s| lower.ends_with(s))
        && !lower.contains(SEED_PART)
}
