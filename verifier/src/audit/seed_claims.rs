//! Per-seed claims (`seed_results` and the like) against that seed's log:
//! val_bpb and val_loss within the rounding of both sides' printed digits,
//! artifact bytes and steps exactly.

use serde_json::Value;

use crate::report::{Check, Status};

use super::claims::Evidence;
use super::folder::FileEntry;
use super::runs::Run;
use super::scoring::seed_tolerance;
use super::submission::{Claimed, ClaimedBytes, SeedClaim};
use super::text::{agreement, thousands, Printed};

/// The checks of one seed's claims, `claims.seed.<s>.<figure>`.
pub fn seed_claim_checks(claim: &SeedClaim, evidence: &Evidence<'_>) -> Vec<Check> {
    let seed = claim.seed.as_str();
    let of_seed = |r: &&Run| r.seed.as_deref() == Some(seed);
    let run = evidence
        .claimed
        .iter()
        .copied()
        .find(of_seed)
        .or_else(|| evidence.runs.iter().find(of_seed));
    let score = run.and_then(|r| evidence.scoring.score(r));
    let id = |figure: &str| format!("claims.seed.{seed}.{figure}");
    let mut checks = Vec::new();
    if let Some(claimed) = &claim.val_bpb {
        checks.push(seed_decimal(
            id("val_bpb"),
            seed,
            claimed,
            run.is_some(),
            score.map(|s| s.val_bpb),
        ));
    }
    if let Some(claimed) = &claim.val_loss {
        let logged = score.and_then(|s| s.val_loss);
        checks.push(seed_decimal(
            id("val_loss"),
            seed,
            claimed,
            run.is_some(),
            logged,
        ));
    }
    if let Some(claimed) = &claim.bytes {
        checks.push(seed_bytes(
            id("bytes"),
            seed,
            claimed,
            run,
            evidence.script,
            evidence.cap,
        ));
    }
    if let Some(claimed) = claim.steps {
        checks.push(seed_steps(id("steps"), seed, claimed, run));
    }
    checks
}

fn seed_decimal(
    id: String,
    seed: &str,
    claim: &Claimed,
    has_log: bool,
    logged: Option<Printed>,
) -> Check {
    let base = |status, detail: String| {
        Check::new(id.clone(), status, detail).figure("claimed", claim.value.value)
    };
    let Some(logged) = logged else {
        let why = if has_log {
            "its log prints no final figure"
        } else {
            "there is no log for it"
        };
        return base(
            Status::Unknown,
            format!("seed {seed}: claimed {} {}: {why}", claim.key, claim.value),
        )
        .figure("logged", Value::Null);
    };
    let tolerance = seed_tolerance(&claim.value, &logged);
    let difference = (claim.value.value - logged.value).abs();
    let (status, verb) = agreement(difference, tolerance);
    base(
        status,
        format!(
            "seed {seed}: claimed {} {} {verb} the log's {logged}",
            claim.key, claim.value
        ),
    )
    .figure("logged", logged.value)
    .figure("difference", difference)
    .figure("tolerance", tolerance)
}

/// A seed's claimed artifact bytes against its log's final total. One
/// known way they differ: code minified after the runs, so the claim adds
/// the committed script's size to the logged model bytes instead of the
/// logged code size; the detail says so when the numbers fit that.
fn seed_bytes(
    id: String,
    seed: &str,
    claim: &ClaimedBytes,
    run: Option<&Run>,
    script: Option<&FileEntry>,
    cap: u64,
) -> Check {
    let base = |status, detail: String| {
        Check::new(id.clone(), status, detail).figure("claimed", claim.bytes)
    };
    let claimed = format!(
        "seed {seed}: claimed {} {} bytes",
        claim.key,
        thousands(claim.bytes)
    );
    let Some(logged) = run.and_then(|r| r.log.total_bytes()) else {
        let why = if run.is_some() {
            "its log prints no total"
        } else {
            "there is no log for it"
        };
        return base(Status::Unknown, format!("{claimed}: {why}")).figure("logged", Value::Null);
    };
    if claim.bytes == logged {
        return base(Status::Pass, format!("{claimed}, as its log prints"))
            .figure("logged", logged);
    }
    let counts_committed_script = run
        .and_then(|r| r.log.model_bytes())
        .zip(script)
        .is_some_and(|(model, script)| model.checked_add(script.bytes) == Some(claim.bytes));
    // Counting the shipped script is what the rule counts; the log's
    // total is of the script that ran. Within the cap it is a warning.
    let (status, explanation) = if counts_committed_script {
        (
            if claim.bytes <= cap {
                Status::Warn
            } else {
                Status::Fail
            },
            " (the claim is the logged model bytes + the shipped script: the script that ran differs from the one submitted)",
        )
    } else {
        (Status::Fail, "")
    };
    base(
        status,
        format!(
            "{claimed}, but its log prints {}{explanation}",
            thousands(logged)
        ),
    )
    .figure("logged", logged)
}

fn seed_steps(id: String, seed: &str, claimed: u64, run: Option<&Run>) -> Check {
    let base =
        |status, detail: String| Check::new(id.clone(), status, detail).figure("claimed", claimed);
    match run.and_then(|r| r.log.steps) {
        None => base(
            Status::Unknown,
            format!("seed {seed}: claimed {claimed} steps: no step count logged"),
        )
        .figure("logged", Value::Null),
        Some(logged) if logged == claimed => base(
            Status::Pass,
            format!("seed {seed}: claimed {claimed} steps, as its log prints"),
        )
        .figure("logged", logged),
        Some(logged) => base(
            Status::Fail,
            format!("seed {seed}: claimed {claimed} steps, but its log stops at {logged}"),
        )
        .figure("logged", logged),
    }
}
