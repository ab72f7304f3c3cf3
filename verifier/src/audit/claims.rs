//! submission.json's claims against the logs. A claim that disagrees with
//! its log fails with both numbers; a claim with no log figure to compare is
//! unknown. A top-level score is the mean of the runs it is over, or one
//! run's figure (a warning: the claim should be the mean), per
//! [`super::scoring::quoted`]; per-seed claims are in
//! [`super::seed_claims`].

use serde_json::Value;

use crate::report::{Check, Status};

use super::folder::FileEntry;
use super::runs::Run;
use super::scoring::{quoted, Quoted, Scoring};
use super::seed_claims::seed_claim_checks;
use super::stats::sample_variance;
use super::submission::{Claimed, ClaimedBytes, Claims};
use super::text::{thousands, Printed, FLOAT_SLACK};

/// What the claim checks read besides the claims.
pub struct Evidence<'a> {
    pub runs: &'a [Run],
    /// The runs the claims are over: the claimed seeds', else all.
    pub claimed: &'a [&'a Run],
    /// Claimed seeds no log is of.
    pub missing_seeds: &'a [String],
    pub scoring: &'a Scoring,
    /// The script counted as the submission's code, when present.
    pub script: Option<&'a FileEntry>,
    pub cap: u64,
}

pub fn claim_checks(claims: &Claims, evidence: &Evidence<'_>) -> Vec<Check> {
    let scoring = evidence.scoring;
    let mut checks = vec![
        score_claim("val_bpb", claims.val_bpb.as_ref(), evidence, &|r| {
            scoring.val_bpb(r)
        }),
        seed_list(claims, evidence.runs),
    ];
    if let Some(claim) = &claims.val_loss {
        checks.push(score_claim("val_loss", Some(claim), evidence, &|r| {
            scoring.val_loss(r)
        }));
    }
    if let Some(claim) = &claims.val_bpb_std {
        checks.push(std_claim(claim, evidence));
    }
    for (name, claim, logged) in [
        (
            "bytes_total",
            &claims.bytes_total,
            (|r| r.log.total_bytes()) as fn(&Run) -> Option<u64>,
        ),
        ("bytes_model", &claims.bytes_model, |r| r.log.model_bytes()),
        ("bytes_code", &claims.bytes_code, |r| {
            r.log.counted_code_bytes()
        }),
    ] {
        if let Some(claim) = claim {
            checks.push(bytes_claim(name, claim, evidence, logged));
        }
    }
    for seed_claim in &claims.per_seed {
        checks.extend(seed_claim_checks(seed_claim, evidence));
    }
    checks
}

/// A top-level score against the claimed runs: their mean, or one run's.
fn score_claim(
    name: &str,
    claim: Option<&Claimed>,
    evidence: &Evidence<'_>,
    logged: &dyn Fn(&Run) -> Option<Printed>,
) -> Check {
    let id = format!("claims.{name}");
    let Some(claim) = claim else {
        return Check::new(
            id,
            Status::Unknown,
            format!("submission.json claims no {name}"),
        )
        .figure("claimed", Value::Null);
    };
    let base = |status, detail: String| {
        Check::new(id.clone(), status, detail)
            .figure("claimed", claim.value.value)
            .figure("scored", evidence.scoring.rule.as_str())
    };
    let claimed = format!("submission.json's {} {}", claim.key, claim.value);
    let mut missing: Vec<&str> = evidence.missing_seeds.iter().map(String::as_str).collect();
    missing.extend(
        evidence
            .claimed
            .iter()
            .filter(|r| logged(r).is_none())
            .map(|r| r.id.as_str()),
    );
    let result = if missing.is_empty() {
        quoted(&claim.value, evidence.claimed, logged)
    } else {
        None
    };
    let Some(result) = result else {
        let why = if evidence.claimed.is_empty() {
            format!("no run logs a final {name}")
        } else {
            format!("no logged {name} for [{}]", missing.join(", "))
        };
        return base(Status::Unknown, format!("{claimed}: {why} to compare"))
            .figure("logged_mean", Value::Null);
    };
    let n = evidence.claimed.len();
    let over = if n == 1 {
        format!("run {}'s", evidence.claimed[0].id)
    } else {
        format!("the mean of {n} runs,")
    };
    match result {
        Quoted::Mean {
            mean,
            difference,
            tolerance,
        } => base(
            Status::Pass,
            format!(
                "{claimed} agrees with {over} {mean:.8} (difference {difference:.2e}, tolerance {tolerance:.1e})"
            ),
        )
        .figure("logged_mean", mean)
        .figure("runs", n)
        .figure("difference", difference)
        .figure("tolerance", tolerance),
        Quoted::OneRun { run, figure, mean } => {
            let line = evidence.scoring.score(run).map_or(0, |e| e.line);
            base(
                Status::Warn,
                format!(
                    "{claimed} is run {}'s figure ({figure}, {} line {line}), not the mean of the {n} runs, {mean:.8}: a record's claim is the mean over its seeds",
                    run.id, run.file
                ),
            )
            .figure("logged_mean", mean)
            .figure("runs", n)
            .figure("quoted_run", run.id.as_str())
            .figure("quoted_file", run.file.as_str())
            .figure("quoted_line", line)
        }
        Quoted::Neither {
            mean,
            difference,
            tolerance,
        } => base(
            Status::Fail,
            format!(
                "{claimed} disagrees with {over} {mean:.8} (difference {difference:.2e}, tolerance {tolerance:.1e}), and with every single run's"
            ),
        )
        .figure("logged_mean", mean)
        .figure("runs", n)
        .figure("difference", difference)
        .figure("tolerance", tolerance),
    }
}

/// The claimed spread of val_bpb over seeds. Records use either
/// convention (the SDClip record's 0.0007 is the sample std, ddof 1; the
/// PhasedTTT record's 0.00063 the population std, ddof 0): either passes.
fn std_claim(claim: &Claimed, evidence: &Evidence<'_>) -> Check {
    let id = "claims.val_bpb_std";
    let figures: Vec<Printed> = evidence
        .claimed
        .iter()
        .filter_map(|r| evidence.scoring.val_bpb(r))
        .collect();
    let base = |status, detail: String| {
        Check::new(id, status, detail).figure("claimed", claim.value.value)
    };
    if figures.len() < 2 {
        return base(
            Status::Unknown,
            format!(
                "submission.json's {} {}: fewer than 2 seeds with a logged val_bpb",
                claim.key, claim.value
            ),
        );
    }
    let values: Vec<f64> = figures.iter().map(|p| p.value).collect();
    let n = values.len() as f64;
    let variance = sample_variance(&values);
    let sample = variance.sqrt();
    let population = (variance * (n - 1.0) / n).sqrt();
    let log_rounding = figures.iter().map(Printed::half_unit).fold(0.0, f64::max);
    let tolerance = claim.value.half_unit() + 2.0 * log_rounding + FLOAT_SLACK;
    let near = |std: f64| (claim.value.value - std).abs() <= tolerance;
    let (status, verdict) = match (near(sample), near(population)) {
        (true, _) => (Status::Pass, "agrees with the sample std (ddof 1)"),
        (false, true) => (Status::Pass, "agrees with the population std (ddof 0)"),
        (false, false) => (
            Status::Fail,
            "disagrees with both the sample and the population std",
        ),
    };
    base(
        status,
        format!(
            "submission.json's {} {} {verdict} of {} seeds' val_bpb: sample {sample:.6}, population {population:.6}",
            claim.key,
            claim.value,
            values.len()
        ),
    )
    .figure("sample_std", sample)
    .figure("population_std", population)
    .figure("tolerance", tolerance)
}

/// The seeds claimed against the logs present.
fn seed_list(claims: &Claims, runs: &[Run]) -> Check {
    let claimed = claims.claimed_seeds();
    let mut logged: Vec<&str> = Vec::new();
    for seed in runs.iter().filter_map(|r| r.seed.as_deref()) {
        if !logged.contains(&seed) {
            logged.push(seed);
        }
    }
    let base = |status, detail: String| {
        Check::new("claims.seeds", status, detail)
            .figure("claimed", claimed.clone())
            .figure("logged", logged.clone())
    };
    if claimed.is_empty() {
        return base(
            Status::Unknown,
            format!(
                "submission.json lists no seeds; logs are present for [{}]",
                logged.join(", ")
            ),
        );
    }
    let without_log: Vec<&str> = claimed
        .iter()
        .map(String::as_str)
        .filter(|s| !logged.contains(s))
        .collect();
    let unclaimed: Vec<&str> = logged
        .iter()
        .copied()
        .filter(|s| !claimed.iter().any(|c| c == s))
        .collect();
    let list_and_results_differ = claims.seed_list.as_ref().is_some_and(|list| {
        !claims.per_seed.is_empty()
            && (list.len() != claims.per_seed.len()
                || claims.per_seed.iter().any(|c| !list.contains(&c.seed)))
    });
    let mut problems = Vec::new();
    if !without_log.is_empty() {
        problems.push(format!(
            "no log for claimed seed(s) [{}]",
            without_log.join(", ")
        ));
    }
    if !unclaimed.is_empty() {
        problems.push(format!(
            "logs of unclaimed run(s) [{}]",
            unclaimed.join(", ")
        ));
    }
    if list_and_results_differ {
        problems.push("the seeds list and the per-seed results name different seeds".into());
    }
    let unnamed = runs.iter().filter(|r| r.seed.is_none()).count();
    if !without_log.is_empty() && unnamed > 0 {
        problems.push(format!(
            "{unnamed} log(s) print no seed and are not named by one, so which seeds they ran cannot be told"
        ));
    }
    let status = if !without_log.is_empty() && unnamed == 0 {
        Status::Fail
    } else if !without_log.is_empty() {
        Status::Unknown
    } else if !problems.is_empty() {
        Status::Warn
    } else {
        Status::Pass
    };
    let detail = if problems.is_empty() {
        format!("claimed seeds [{}] each have a log", claimed.join(", "))
    } else {
        format!(
            "claimed seeds [{}]: {}",
            claimed.join(", "),
            problems.join("; ")
        )
    };
    base(status, detail)
}

/// A top-level byte count against the runs' logged ones. The cap applies
/// to each run's artifact, so the claim that matters is the largest; the
/// SDClip record claims the mean of its five (15,985,678, while seed 42
/// logs 15,988,983) and the LoRA TTT record one run's model bytes plus the
/// shipped script: those are warnings, not failures.
fn bytes_claim(
    name: &str,
    claim: &ClaimedBytes,
    evidence: &Evidence<'_>,
    logged: fn(&Run) -> Option<u64>,
) -> Check {
    let id = format!("claims.{name}");
    let cap = evidence.cap;
    let per_run: Vec<(&str, u64)> = evidence
        .claimed
        .iter()
        .filter_map(|r| Some((r.id.as_str(), logged(r)?)))
        .collect();
    let base = |status, detail: String| {
        Check::new(id.clone(), status, detail).figure("claimed", claim.bytes)
    };
    let claimed = format!(
        "submission.json's {} {} bytes",
        claim.key,
        thousands(claim.bytes)
    );
    let over_cap = if claim.bytes > cap && name == "bytes_total" {
        format!(" (over the {}-byte cap)", thousands(cap))
    } else {
        String::new()
    };
    let script = evidence.script;
    if name == "bytes_code" {
        if let Some(script) = script.filter(|s| s.bytes == claim.bytes) {
            return base(
                Status::Pass,
                format!("{claimed}: the size of the shipped {}", script.name),
            )
            .figure("script_bytes", script.bytes);
        }
    }
    let Some(&(largest_run, largest)) = per_run.iter().max_by_key(|(_, bytes)| *bytes) else {
        return base(
            Status::Unknown,
            format!("{claimed}; no log prints that figure"),
        )
        .figure("logged_max", Value::Null);
    };
    let sum: u128 = per_run.iter().map(|(_, b)| u128::from(*b)).sum();
    let count = per_run.len() as u128;
    // The mean as a record would print it: rounded half up to whole bytes.
    let mean = (2 * sum + count) / (2 * count);
    // A total counting the shipped script instead of the logged code size.
    let with_script = script.and_then(|script| {
        evidence.claimed.iter().find_map(|r| {
            let model = r.log.model_bytes()?;
            (name == "bytes_total" && model.checked_add(script.bytes) == Some(claim.bytes))
                .then_some((r, model, script))
        })
    });
    let (status, detail) = if claim.bytes == largest {
        let whose = if per_run.iter().all(|(_, b)| *b == largest) {
            format!("every run's log ({})", per_run.len())
        } else {
            format!("the largest, run {largest_run}'s")
        };
        (
            Status::Pass,
            format!("{claimed}{over_cap}: equal to {whose}"),
        )
    } else if let Some((run, _)) = per_run.iter().find(|(_, b)| *b == claim.bytes) {
        (
            Status::Warn,
            format!(
                "{claimed}{over_cap}: run {run}'s, not the largest (run {largest_run}'s {})",
                thousands(largest)
            ),
        )
    } else if u128::from(claim.bytes) == mean {
        (
            Status::Warn,
            format!(
                "{claimed}{over_cap}: the mean of {} runs' logs; the largest is run {largest_run}'s {} ({} more) and the cap applies to each run",
                per_run.len(),
                thousands(largest),
                thousands(largest.abs_diff(claim.bytes))
            ),
        )
    } else if let Some((run, model, script)) = with_script {
        (
            Status::Warn,
            format!(
                "{claimed}{over_cap}: run {}'s model bytes {} + the shipped {} ({} bytes), not the total its log prints ({}): the script that ran differs from the one submitted",
                run.id,
                thousands(model),
                script.name,
                thousands(script.bytes),
                run.log.total_bytes().map_or("none".into(), thousands)
            ),
        )
    } else {
        (
            Status::Fail,
            format!(
                "{claimed}{over_cap}, but the logs print {} (the largest, run {largest_run}'s)",
                thousands(largest)
            ),
        )
    };
    let status = if over_cap.is_empty() {
        status
    } else {
        Status::Fail
    };
    base(status, detail)
        .figure("logged_max", largest)
        .figure("logged_mean", u64::try_from(mean).ok())
}
