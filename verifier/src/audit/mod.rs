//! `pgq audit`: a record folder as a reviewer reads it. Its train logs,
//! found by their content wherever they are in the folder, are the
//! evidence: each run's final artifact size against the cap, its score,
//! its training and evaluation times, what happened between them (the
//! time ledger) and what its bytes are made of (the byte ledger);
//! submission.json's claims are checked against the runs they rest on,
//! and optionally the improvement over a baseline for significance.
//!
//! Everything about the folder's content is a check in the report, never an
//! error: a missing or garbled file is a failing or unknown check, and a
//! figure a log does not print is unknown, never guessed. A limit that does
//! not apply to the record's track is `skip`. Only a folder that cannot be
//! read at all is an [`AuditError`]. docs/VERIFIER.md states every rule and
//! the real record that motivated it.
//!
//! Check ids: `inventory`, `track`, `submission`, `logs`, `code`,
//! `seeds.config`, `log.<file>.read`, `log.<file>.seed`,
//! `seed.<run>.{score,cap,size_sum,train_time,eval_time,time_ledger,byte_ledger}`,
//! `seeds`,
//! `claims.{val_bpb,val_loss,val_bpb_std,seeds,bytes_total,bytes_model,bytes_code}`,
//! `claims.seed.<s>.{val_bpb,val_loss,bytes,steps}`, `significance`.

mod claims;
mod config;
mod consistency;
mod folder;
mod inventory;
mod json_digits;
mod ledger;
mod logs;
mod runs;
mod scoring;
mod seed_checks;
mod seed_claims;
mod significance;
mod stats;
mod submission;
mod text;
mod track;

use std::path::{Path, PathBuf};

use crate::report::Report;
use crate::CAP_BYTES;

/// What to check a record against.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOptions {
    /// Bytes each seed's artifact must fit in.
    pub cap: u64,
    /// A baseline to test the improvement against, if any.
    pub against: Option<Against>,
    /// The improvement a record must show, in nats of val_loss.
    pub min_improvement: f64,
    /// The one-sided significance level of that improvement.
    pub alpha: f64,
    /// The training budget, and separately the evaluation budget, in
    /// seconds.
    pub max_seconds: f64,
}

impl Default for AuditOptions {
    /// The parameter-golf rules: 16,000,000 bytes, 600 s of training and
    /// 600 s of evaluation, records beating the best by 0.005 nats at
    /// p < 0.01.
    fn default() -> Self {
        AuditOptions {
            cap: CAP_BYTES,
            against: None,
            min_improvement: 0.005,
            alpha: 0.01,
            max_seconds: 600.0,
        }
    }
}

/// The baseline of the significance test.
#[derive(Debug, Clone, PartialEq)]
pub enum Against {
    /// A fixed val_loss in nats (e.g. the current best's mean).
    ValLoss(f64),
    /// Another record folder, whose seeds' final val_loss are read from its
    /// logs.
    Record(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: not a directory", path.display())]
    NotAFolder { path: PathBuf },
    #[error("{}: cannot read the folder: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The `--against` record folder; `source` names its path.
    #[error("baseline record: {source}")]
    Baseline {
        #[source]
        source: Box<AuditError>,
    },
}

/// A record folder read and interpreted: its runs, its claims, the
/// scored evaluation and the runs the claims rest on.
struct Record {
    folder: folder::RecordFolder,
    runs: runs::Runs,
    submission: crate::report::Check,
    claims: Option<submission::Claims>,
    track: track::TrackOf,
    scoring: scoring::Scoring,
    /// Indices into `runs.runs`: the runs the claims are over.
    claimed: Vec<usize>,
    /// Indices of the runs the claims rest on: the claimed seeds', or the
    /// one run whose figures submission.json quotes, or all.
    backing: Vec<usize>,
    /// Claimed seeds that no log is of.
    missing_seeds: Vec<String>,
}

impl Record {
    fn read(dir: &Path) -> Result<Record, AuditError> {
        let folder = folder::RecordFolder::read(dir)?;
        let runs = runs::runs_of(&folder.texts);
        let (submission, document, claims) = inventory::submission_check(&folder);
        let track = track::track_of(document.as_ref(), dir);
        let all = &runs.runs;
        let claimed_seeds = claims
            .as_ref()
            .map(submission::Claims::claimed_seeds)
            .unwrap_or_default();
        let claimed: Vec<usize> = if claimed_seeds.is_empty() {
            (0..all.len()).collect()
        } else {
            // One run per claimed seed: a second log of a seed is another
            // run, not another seed. A trained run before an
            // evaluation-only one.
            claimed_seeds
                .iter()
                .filter_map(|seed| {
                    let of_seed = |r: &&runs::Run| r.seed.as_ref() == Some(seed);
                    all.iter()
                        .position(|r| of_seed(&r) && r.log.train.is_some())
                        .or_else(|| all.iter().position(|r| of_seed(&r)))
                })
                .collect()
        };
        let missing_seeds: Vec<String> = claimed_seeds
            .iter()
            .filter(|seed| !all.iter().any(|r| r.seed.as_ref() == Some(seed)))
            .cloned()
            .collect();
        let claimed_runs: Vec<&runs::Run> = claimed.iter().map(|&i| &all[i]).collect();
        let scoring = scoring::choose(claims.as_ref(), &claimed_runs, &folder.docs);
        let quoted_one = claims.as_ref().and_then(|c| {
            let claim = c.val_bpb.as_ref()?;
            match scoring::quoted(&claim.value, &claimed_runs, &|r| scoring.val_bpb(r))? {
                scoring::Quoted::OneRun { run, .. } => all.iter().position(|r| r.id == run.id),
                _ => None,
            }
        });
        let backing = match quoted_one {
            Some(index) if claimed_seeds.is_empty() => vec![index],
            _ => claimed.clone(),
        };
        Ok(Record {
            folder,
            runs,
            submission,
            claims,
            track,
            scoring,
            claimed,
            backing,
            missing_seeds,
        })
    }

    fn runs_at(&self, indices: &[usize]) -> Vec<&runs::Run> {
        indices.iter().map(|&i| &self.runs.runs[i]).collect()
    }

    /// The scored val_loss of each run the claims are over (all the
    /// seeds' evidence of an improvement, even when submission.json quotes
    /// one run's figures).
    fn scored_losses(&self) -> Vec<f64> {
        self.runs_at(&self.claimed)
            .iter()
            .filter_map(|r| Some(self.scoring.val_loss(r)?.value))
            .collect()
    }
}

/// Audits the record folder `dir`. The report's subject is the folder.
pub fn audit(dir: &Path, options: &AuditOptions) -> Result<Report, AuditError> {
    let record = Record::read(dir)?;
    let all = &record.runs.runs;
    let backing = record.runs_at(&record.backing);
    let claimed = record.runs_at(&record.claimed);
    let script = inventory::counted_script(&record.folder).map(|(s, _)| s);

    let mut checks = vec![
        inventory::inventory_check(&record.folder, &record.runs),
        track_check(&record.track, options),
        record.submission.clone(),
        inventory::logs_check(&record.runs, &record.track),
    ];
    checks.extend(record.runs.checks.iter().cloned());
    checks.push(inventory::code_check(&record.folder));
    checks.push(consistency::config_check(all, &backing));
    for run in all {
        let context = seed_checks::RunContext {
            options,
            track: &record.track,
            scoring: &record.scoring,
            backs_claims: backing.iter().any(|b| b.id == run.id),
        };
        checks.extend(seed_checks::checks_of_run(run, &context));
        checks.push(ledger::time_ledger(
            run,
            &record.scoring,
            &record.track,
            options.max_seconds,
        ));
        checks.push(ledger::byte_ledger(run, script, options.cap));
    }
    checks.push(seed_checks::seed_count(all, &backing, &record.track));
    // With no readable submission.json, its failing check says it all.
    if let Some(claims) = &record.claims {
        let evidence = claims::Evidence {
            runs: all,
            claimed: &claimed,
            missing_seeds: &record.missing_seeds,
            scoring: &record.scoring,
            script,
            cap: options.cap,
        };
        checks.extend(claims::claim_checks(claims, &evidence));
    }
    if let Some(against) = &options.against {
        let baseline = match against {
            Against::ValLoss(value) => significance::Baseline::Fixed(*value),
            Against::Record(path) => {
                let other = Record::read(path).map_err(|source| AuditError::Baseline {
                    source: Box::new(source),
                })?;
                significance::Baseline::Seeds(other.scored_losses())
            }
        };
        checks.push(significance::significance_check(
            &record.scored_losses(),
            &baseline,
            against,
            options,
        ));
    }

    let mut report = Report::new("pgq audit", dir.display().to_string());
    for check in checks {
        report.push(check);
    }
    Ok(report)
}

fn track_check(track: &track::TrackOf, options: &AuditOptions) -> crate::report::Check {
    let limits = if track.time_limits_apply() {
        format!(
            "training and evaluation each within {} s, each run's artifact within {} bytes",
            options.max_seconds,
            crate::format::thousands(options.cap)
        )
    } else {
        format!(
            "each run's artifact within {} bytes; the time limits do not apply",
            crate::format::thousands(options.cap)
        )
    };
    crate::report::Check::new(
        "track",
        crate::report::Status::Pass,
        format!("{} ({}): {limits}", track.name(), track.source),
    )
    .figure(
        "track",
        match track.track {
            track::Track::TenMinute => "10min_16mb",
            track::Track::NonRecord => "non_record_16mb",
        },
    )
    .figure("source", track.source.as_str())
}
