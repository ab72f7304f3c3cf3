//! submission.json's claims against the logs. A claim that disagrees with
//! its log fails with both numbers; a claim with no log figure to compare is
//! unknown.
//!
//! Decimals are compared within what rounding to the printed digits allows:
//! for a mean, a whole unit of the claim's last place plus half of the
//! logs', since records often round the mean of already rounded per-seed
//! figures (the SDClip record claims 1.08563, the mean of its rounded
//! seeds; the mean of its logs is 1.0856248). Per-seed claims are in
//! [`super::seed_claims`].

use serde_json::Value;

use crate::report::{Check, Status};

use super::folder::FileEntry;
use super::runs::Run;
use super::seed_claims::seed_claim_checks;
use super::stats::{mean, sample_variance};
use super::submission::{Claimed, ClaimedBytes, Claims};
use super::text::{agreement, thousands, Printed, FLOAT_SLACK};

pub fn claim_checks(
    claims: &Claims,
    runs: &[Run],
    code_files: &[FileEntry],
    cap: u64,
) -> Vec<Check> {
    let claimed_seeds = claims.claimed_seeds();
    // The mean is over the claimed seeds when submission.json names them:
    // a log of an unclaimed run must not move it.
    let counted: Vec<&Run> = runs
        .iter()
        .filter(|r| claimed_seeds.is_empty() || claimed_seeds.contains(&r.seed))
        .collect();
    let mut checks = vec![
        mean_claim(
            "val_bpb",
            claims.val_bpb.as_ref(),
            &counted,
            &claimed_seeds,
            |r| r.log.score.as_ref().map(|s| s.val_bpb),
        ),
        seed_list(claims, runs),
    ];
    if let Some(claim) = &claims.val_loss {
        checks.push(mean_claim(
            "val_loss",
            Some(claim),
            &counted,
            &claimed_seeds,
            |r| r.log.score.as_ref().and_then(|s| s.val_loss),
        ));
    }
    if let Some(claim) = &claims.val_bpb_std {
        checks.push(std_claim(claim, &counted));
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
            checks.push(bytes_claim(name, claim, &counted, logged, cap));
        }
    }
    for seed_claim in &claims.per_seed {
        checks.extend(seed_claim_checks(seed_claim, runs, code_files));
    }
    checks
}

/// A top-level score against the mean of the seeds' logged scores.
fn mean_claim(
    name: &str,
    claim: Option<&Claimed>,
    runs: &[&Run],
    claimed_seeds: &[String],
    logged: fn(&Run) -> Option<Printed>,
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
        Check::new(id.clone(), status, detail).figure("claimed", claim.value.value)
    };
    let missing: Vec<&str> = claimed_seeds
        .iter()
        .filter(|seed| !runs.iter().any(|r| &&r.seed == seed && logged(r).is_some()))
        .map(String::as_str)
        .collect();
    let figures: Vec<Printed> = runs.iter().filter_map(|r| logged(r)).collect();
    if figures.is_empty() || !missing.is_empty() {
        let why = if missing.is_empty() {
            format!("no seed log prints a final {name}")
        } else {
            format!("no logged {name} for seed(s) [{}]", missing.join(", "))
        };
        return base(
            Status::Unknown,
            format!(
                "submission.json's {} {}: {why} to compare",
                claim.key, claim.value
            ),
        )
        .figure("logged_mean", Value::Null);
    }
    let values: Vec<f64> = figures.iter().map(|p| p.value).collect();
    let mean = mean(&values);
    let log_rounding = figures.iter().map(Printed::half_unit).fold(0.0, f64::max);
    let tolerance = 2.0 * claim.value.half_unit() + log_rounding + FLOAT_SLACK;
    let difference = (claim.value.value - mean).abs();
    let (status, verdict) = agreement(difference, tolerance);
    base(
        status,
        format!(
            "submission.json's {} {} {verdict} the mean of {} seed log(s), {mean:.8} (difference {difference:.2e}, tolerance {tolerance:.1e})",
            claim.key,
            claim.value,
            figures.len()
        ),
    )
    .figure("logged_mean", mean)
    .figure("seeds", figures.len())
    .figure("difference", difference)
    .figure("tolerance", tolerance)
}

/// The claimed spread of val_bpb over seeds. Records use either
/// convention (the SDClip record's 0.0007 is the sample std, ddof 1; the
/// PhasedTTT record's 0.00063 the population std, ddof 0): either passes.
fn std_claim(claim: &Claimed, runs: &[&Run]) -> Check {
    let id = "claims.val_bpb_std";
    let figures: Vec<Printed> = runs
        .iter()
        .filter_map(|r| r.log.score.as_ref().map(|s| s.val_bpb))
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
    let logged: Vec<&str> = runs.iter().map(|r| r.seed.as_str()).collect();
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
    let status = if !without_log.is_empty() {
        Status::Fail
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

/// A top-level byte count against the seeds' logged ones. The cap applies
/// to each seed's artifact, so the claim that matters is the largest; the
/// SDClip record claims the mean of its five (15,985,678, while seed 42
/// logs 15,988,983): that is reported as a warning, not a failure.
fn bytes_claim(
    name: &str,
    claim: &ClaimedBytes,
    runs: &[&Run],
    logged: fn(&Run) -> Option<u64>,
    cap: u64,
) -> Check {
    let id = format!("claims.{name}");
    let per_seed: Vec<(&str, u64)> = runs
        .iter()
        .filter_map(|r| Some((r.seed.as_str(), logged(r)?)))
        .collect();
    let base = |status, detail: String| {
        Check::new(id.clone(), status, detail).figure("claimed", claim.bytes)
    };
    let claimed = format!(
        "submission.json's {} {} bytes",
        claim.key,
        thousands(claim.bytes)
    );
    let Some(&(largest_seed, largest)) = per_seed.iter().max_by_key(|(_, bytes)| *bytes) else {
        return base(
            Status::Unknown,
            format!("{claimed}; no log prints that figure"),
        )
        .figure("logged_max", Value::Null);
    };
    let sum: u128 = per_seed.iter().map(|(_, b)| u128::from(*b)).sum();
    let count = per_seed.len() as u128;
    // The mean as a record would print it: rounded half up to whole bytes.
    let mean = (2 * sum + count) / (2 * count);
    let over_cap = if claim.bytes > cap && name == "bytes_total" {
        format!(" (over the {}-byte cap)", thousands(cap))
    } else {
        String::new()
    };
    let (status, detail) = if claim.bytes == largest {
        let whose = if per_seed.iter().all(|(_, b)| *b == largest) {
            format!("every seed's log ({})", per_seed.len())
        } else {
            format!("the largest, seed {largest_seed}'s")
        };
        (
            Status::Pass,
            format!("{claimed}{over_cap}: equal to {whose}"),
        )
    } else if u128::from(claim.bytes) == mean {
        (
            Status::Warn,
            format!(
                "{claimed}{over_cap}: the mean of {} seeds' logs; the largest is seed {largest_seed}'s {} ({} more) and the cap applies to each seed",
                per_seed.len(),
                thousands(largest),
                thousands(largest.abs_diff(claim.bytes))
            ),
        )
    } else if let Some((seed, _)) = per_seed.iter().find(|(_, b)| *b == claim.bytes) {
        (
            Status::Warn,
            format!(
                "{claimed}{over_cap}: seed {seed}'s, not the largest (seed {largest_seed}'s {})",
                thousands(largest)
            ),
        )
    } else {
        (
            Status::Fail,
            format!(
                "{claimed}{over_cap}, but the logs print {} (the largest, seed {largest_seed}'s)",
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
