//! Which evaluation of a log is the score, and which runs a claim rests on.
//!
//! Logs evaluate the final artifact several times: a round trip, a sliding
//! window, test-time training, sometimes an extra evaluation after the
//! scored one (the 2026-04-04 record's seed 42 ran a TTT evaluation after
//! its sliding-window score). The scored evaluation is chosen once for the
//! folder, by the first rule that decides:
//!
//! 1. the evaluation whose figures submission.json's claims match (per-seed
//!    figures, the mean, or one run's figures), the same label in every
//!    run;
//! 2. an evaluation label that the README names verbatim;
//! 3. the last evaluation after the final "Total submission size" line.
//!
//! A claimed figure is the mean of the runs it is over, or one run's exact
//! figure: many submission.json files quote one seed's figures (the
//! 2026-03-18 record quotes seed 1337's). [`quoted`] tells which.

use super::folder::DocFile;
use super::logs::Evaluation;
use super::runs::Run;
use super::stats::mean;
use super::submission::{Claimed, Claims};
use super::text::{Printed, FLOAT_SLACK};

/// The rule of the last resort, quoted in reports.
pub const LAST_EVALUATION: &str =
    "the last evaluation after the final 'Total submission size' line";

/// The scored evaluation, the same label in every run.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// The label scored; `None`: each run's last evaluation.
    pub label: Option<String>,
    /// Which rule chose it, for the report.
    pub rule: String,
}

impl Scoring {
    /// The run's scored evaluation: the chosen label's, else its last.
    pub fn score<'r>(&self, run: &'r Run) -> Option<&'r Evaluation> {
        self.label
            .as_deref()
            .and_then(|label| run.log.evaluation(label))
            .or_else(|| run.log.evaluations.last())
    }

    /// True when the run prints no evaluation with the chosen label.
    pub fn falls_back(&self, run: &Run) -> bool {
        self.label
            .as_deref()
            .is_some_and(|label| run.log.evaluation(label).is_none())
    }

    pub fn val_bpb(&self, run: &Run) -> Option<Printed> {
        self.score(run).map(|e| e.val_bpb)
    }

    pub fn val_loss(&self, run: &Run) -> Option<Printed> {
        self.score(run).and_then(|e| e.val_loss)
    }
}

/// Tolerance of a claim against one logged figure: the rounding of both.
pub fn seed_tolerance(claim: &Printed, logged: &Printed) -> f64 {
    claim.half_unit() + logged.half_unit() + FLOAT_SLACK
}

/// Tolerance of a claim against a mean: a whole unit of the claim's last
/// place plus half of the logs', since records often round the mean of
/// already rounded per-seed figures (the SDClip record claims 1.08563, the
/// mean of its rounded seeds; the mean of its logs is 1.0856248).
pub fn mean_tolerance(claim: &Printed, logged: &[Printed]) -> f64 {
    let log_rounding = logged.iter().map(Printed::half_unit).fold(0.0, f64::max);
    2.0 * claim.half_unit() + log_rounding + FLOAT_SLACK
}

/// What a claimed figure is, against the runs it may be over.
pub enum Quoted<'r> {
    /// The mean of these runs (one run: its figure).
    Mean {
        mean: f64,
        difference: f64,
        tolerance: f64,
    },
    /// One run's figure, closer than the mean of all.
    OneRun {
        run: &'r Run,
        figure: Printed,
        mean: f64,
    },
    /// Neither.
    Neither {
        mean: f64,
        difference: f64,
        tolerance: f64,
    },
}

/// Whether `claim` is the mean of `runs`' figures or one run's. `None`
/// when a run has no figure (the caller reports which).
pub fn quoted<'r>(
    claim: &Printed,
    runs: &[&'r Run],
    figure: &dyn Fn(&Run) -> Option<Printed>,
) -> Option<Quoted<'r>> {
    let figures: Vec<(&Run, Printed)> = runs
        .iter()
        .map(|r| Some((*r, figure(r)?)))
        .collect::<Option<_>>()?;
    if figures.is_empty() {
        return None;
    }
    let values: Vec<f64> = figures.iter().map(|(_, p)| p.value).collect();
    let printed: Vec<Printed> = figures.iter().map(|(_, p)| *p).collect();
    let mean = mean(&values);
    let difference = (claim.value - mean).abs();
    let tolerance = mean_tolerance(claim, &printed);
    if figures.len() > 1 {
        let closest = figures
            .iter()
            .filter(|(_, p)| (claim.value - p.value).abs() <= seed_tolerance(claim, p))
            .min_by(|a, b| {
                let da = (claim.value - a.1.value).abs();
                let db = (claim.value - b.1.value).abs();
                da.total_cmp(&db)
            });
        if let Some((run, p)) = closest {
            if (claim.value - p.value).abs() < difference {
                return Some(Quoted::OneRun {
                    run,
                    figure: *p,
                    mean,
                });
            }
        }
    }
    Some(if difference <= tolerance {
        Quoted::Mean {
            mean,
            difference,
            tolerance,
        }
    } else {
        Quoted::Neither {
            mean,
            difference,
            tolerance,
        }
    })
}

/// Chooses the scored evaluation for the folder (the module's rules).
pub fn choose(claims: Option<&Claims>, claimed: &[&Run], docs: &[DocFile]) -> Scoring {
    let mut labels: Vec<&str> = Vec::new();
    for run in claimed {
        for label in run.log.evaluation_labels() {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    let last = Scoring {
        label: None,
        rule: LAST_EVALUATION.to_string(),
    };
    if let Some(claims) = claims {
        let matched = |scoring: &Scoring| matches(claims, claimed, scoring);
        let mut best = (matched(&last), last.clone());
        for label in &labels {
            let candidate = Scoring {
                label: Some(label.to_string()),
                rule: String::new(),
            };
            let n = matched(&candidate);
            if n > best.0 {
                best = (n, candidate);
            }
        }
        if best.0 > 0 {
            let (n, mut scoring) = best;
            scoring.rule = match &scoring.label {
                None => format!("{LAST_EVALUATION}, which {n} of submission.json's figures match"),
                Some(label) => format!(
                    "the '{label}' evaluation, which {n} of submission.json's figures match (not always the last one printed)"
                ),
            };
            return scoring;
        }
    }
    for label in labels.iter().rev() {
        if let Some(doc) = docs.iter().find(|d| d.text.contains(label)) {
            return Scoring {
                label: Some(label.to_string()),
                rule: format!("the '{label}' evaluation, named in {}", doc.name),
            };
        }
    }
    last
}

/// How many of the claims' score figures `scoring` makes agree with the
/// logs: per-seed val_bpb and val_loss, the top-level ones as a mean or as
/// one run's.
fn matches(claims: &Claims, claimed: &[&Run], scoring: &Scoring) -> usize {
    let near = |claim: &Claimed, logged: Option<Printed>| {
        logged.is_some_and(|l| {
            (claim.value.value - l.value).abs() <= seed_tolerance(&claim.value, &l)
        })
    };
    let mut n = 0;
    for seed_claim in &claims.per_seed {
        let Some(run) = claimed
            .iter()
            .find(|r| r.seed.as_deref() == Some(seed_claim.seed.as_str()))
        else {
            continue;
        };
        if let Some(claim) = &seed_claim.val_bpb {
            n += usize::from(near(claim, scoring.val_bpb(run)));
        }
        if let Some(claim) = &seed_claim.val_loss {
            n += usize::from(near(claim, scoring.val_loss(run)));
        }
    }
    let aggregate = [
        (
            &claims.val_bpb,
            &(|r: &Run| scoring.val_bpb(r)) as &dyn Fn(&Run) -> Option<Printed>,
        ),
        (&claims.val_loss, &|r: &Run| scoring.val_loss(r)),
    ];
    for (claim, figure) in aggregate {
        if let Some(claim) = claim {
            let agrees = matches!(
                quoted(&claim.value, claimed, figure),
                Some(Quoted::Mean { .. } | Quoted::OneRun { .. })
            );
            n += usize::from(agrees);
        }
    }
    n
}
