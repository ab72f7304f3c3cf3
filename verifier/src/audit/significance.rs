//! Whether the record beats a baseline by the field's margin: its per-seed
//! final val_loss (nats) must improve on the baseline by at least
//! `min_improvement` with p < `alpha`, one-sided over seeds.

use crate::report::{Check, Status};

use super::folder::RecordFolder;
use super::runs::{runs_of, Run};
use super::stats::{mean, one_sample_greater, welch_greater};
use super::{Against, AuditError, AuditOptions};

const ID: &str = "significance";
/// A t-test needs a spread, so at least two seeds a side.
const MIN_SEEDS: usize = 2;

/// The baseline: a fixed val_loss, or another record's seeds.
enum Baseline {
    Fixed(f64),
    Seeds(Vec<f64>),
}

pub fn significance_check(
    runs: &[Run],
    against: &Against,
    options: &AuditOptions,
) -> Result<Check, AuditError> {
    let (baseline, name, method) = match against {
        Against::ValLoss(value) => (
            Baseline::Fixed(*value),
            format!("val_loss {value}"),
            "one-sample one-sided t-test of baseline - val_loss",
        ),
        Against::Record(path) => {
            let folder = RecordFolder::read(path).map_err(|source| AuditError::Baseline {
                source: Box::new(source),
            })?;
            let (baseline_runs, _) = runs_of(&folder.logs);
            (
                Baseline::Seeds(final_losses(&baseline_runs)),
                format!("record {}", path.display()),
                "Welch one-sided t-test (Welch–Satterthwaite df)",
            )
        }
    };
    let losses = final_losses(runs);
    let margin = options.min_improvement;
    let check = |status, detail: String| {
        Check::new(ID, status, detail)
            .figure("baseline", name.as_str())
            .figure("method", method)
            .figure("seeds", losses.len())
            .figure(
                "baseline_seeds",
                match &baseline {
                    Baseline::Fixed(_) => None,
                    Baseline::Seeds(seeds) => Some(seeds.len()),
                },
            )
            .figure("min_improvement_nats", margin)
            .figure("alpha", options.alpha)
    };
    if losses.len() < MIN_SEEDS {
        return Ok(check(
            Status::Unknown,
            format!(
                "{} seed(s) with a final val_loss: a t-test needs at least {MIN_SEEDS}",
                losses.len()
            ),
        ));
    }
    let (test, improvement) = match &baseline {
        Baseline::Seeds(seeds) if seeds.len() < MIN_SEEDS => {
            return Ok(check(
                Status::Unknown,
                format!("the baseline {name} has {} seed(s) with a final val_loss: a t-test needs at least {MIN_SEEDS}", seeds.len()),
            ));
        }
        Baseline::Seeds(seeds) => (
            welch_greater(seeds, &losses, margin),
            mean(seeds) - mean(&losses),
        ),
        Baseline::Fixed(value) => {
            let differences: Vec<f64> = losses.iter().map(|x| value - x).collect();
            (one_sample_greater(&differences, margin), mean(&differences))
        }
    };
    let Some(test) = test.filter(|test| !test.p.is_nan()) else {
        return Ok(check(
            Status::Unknown,
            format!("the test is undefined for these figures (improvement {improvement} nats)"),
        ));
    };
    let shown = test.p < options.alpha;
    let detail = format!(
        "improvement over {name}: {improvement:.5} nats over {} seeds; >= {margin} nats {} at p < {}: t = {:.3}, df = {:.2}, p = {:.3e}",
        losses.len(),
        if shown { "shown" } else { "not shown" },
        options.alpha,
        test.t,
        test.df,
        test.p
    );
    // Non-finite figures (t is infinite for seeds with no spread) become
    // JSON null.
    Ok(
        check(if shown { Status::Pass } else { Status::Fail }, detail)
            .figure("improvement_nats", improvement)
            .figure("t", test.t)
            .figure("df", test.df)
            .figure("p", test.p),
    )
}

/// Each seed's final val_loss, from its log.
fn final_losses(runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| Some(r.log.score.as_ref()?.val_loss?.value))
        .collect()
}
