//! `pgq audit`: a record folder as a reviewer reads it. Its train logs are
//! the evidence: each seed's final artifact size against the cap, its
//! score, its training and evaluation times; submission.json's claims are
//! checked against them, and optionally the improvement over a baseline
//! for significance.
//!
//! Everything about the folder's content is a check in the report, never an
//! error: a missing or garbled file is a failing or unknown check, and a
//! figure a log does not print is unknown, never guessed. Only a folder that
//! cannot be read at all is an [`AuditError`].
//!
//! Check ids: `inventory`, `submission`, `logs`, `code`,
//! `log.<file>.read`, `log.<file>.seed`,
//! `seed.<s>.{score,cap,size_sum,train_time,eval_time}`, `seeds`,
//! `claims.{val_bpb,val_loss,val_bpb_std,seeds,bytes_total,bytes_model,bytes_code}`,
//! `claims.seed.<s>.{val_bpb,val_loss,bytes,steps}`, `significance`.

mod claims;
mod folder;
mod inventory;
mod json_digits;
mod logs;
mod runs;
mod seed_checks;
mod seed_claims;
mod significance;
mod stats;
mod submission;
mod text;

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

/// Audits the record folder `dir`. The report's subject is the folder.
pub fn audit(dir: &Path, options: &AuditOptions) -> Result<Report, AuditError> {
    let folder = folder::RecordFolder::read(dir)?;
    let (submission, claims) = inventory::submission_check(&folder);
    let (runs, log_checks) = runs::runs_of(&folder.logs);

    let mut checks = vec![
        inventory::inventory_check(&folder),
        submission,
        inventory::logs_check(&folder, &runs),
    ];
    checks.extend(log_checks);
    checks.push(inventory::code_check(&folder, &runs));
    for run in &runs {
        checks.extend(seed_checks::checks_of_run(run, options));
    }
    checks.push(seed_checks::seed_count(&runs));
    // With no readable submission.json, its failing check says it all.
    if let Some(claims) = &claims {
        checks.extend(claims::claim_checks(
            claims,
            &runs,
            &folder.code,
            options.cap,
        ));
    }
    if let Some(against) = &options.against {
        checks.push(significance::significance_check(&runs, against, options)?);
    }

    let mut report = Report::new("pgq audit", dir.display().to_string());
    for check in checks {
        report.push(check);
    }
    Ok(report)
}
