//! Whether the record beats a baseline by the field's margin: its per-seed
//! final val_loss (nats) must improve on the baseline by at least
//! `min_improvement` with p < `alpha`, one-sided over seeds.

use crate::report::{Check, Status};

use super::stats::{mean, one_sample_greater, welch_greater};
use super::{Against, AuditOptions};

const ID: &str = "significance";
/// A t-test needs a spread, so at least two seeds a side.
const MIN_SEEDS: usize = 2;

/// The baseline: a fixed val_loss, or another record's seeds (the scored
/// val_loss of the runs its claims are over).
pub enum Baseline {
    Fixed(f64),
    Seeds(Vec<f64>),
}

/// `losses`: the scored val_loss of each run the record's claims are over.
pub fn significance_check(
    losses: &[f64],
    baseline: &Baseline,
    against: &Against,
    options: &AuditOptions,
) -> Check {
    let (name, method) = match against {
        Against::ValLoss(value) => (
            format!("val_loss {value}"),
            "one-sample one-sided t-test of baseline - val_loss",
        ),
        Against::Record(path) => (
            format!("record {}", path.display()),
            "Welch one-sided t-test (Welch–Satterthwaite df)",
        ),
    };
    let margin = options.min_improvement;
    let check = |status, detail: String| {
        Check::new(ID, status, detail)
            .figure("baseline", name.as_str())
            .figure("method", method)
            .figure("seeds", losses.len())
            .figure(
                "baseline_seeds",
                match baseline {
                    Baseline::Fixed(_) => None,
                    Baseline::Seeds(seeds) => Some(seeds.len()),
                },
            )
            .figure("min_improvement_nats", margin)
            .figure("alpha", options.alpha)
    };
    if losses.len() < MIN_SEEDS {
        return check(
            Status::Unknown,
            format!(
                "{} seed(s) with a final val_loss: a t-test needs at least {MIN_SEEDS}",
                losses.len()
            ),
        );
    }
    let (test, improvement) = match baseline {
        Baseline::Seeds(seeds) if seeds.len() < MIN_SEEDS => {
            return check(
                Status::Unknown,
                format!("the baseline {name} has {} seed(s) with a final val_loss: a t-test needs at least {MIN_SEEDS}", seeds.len()),
            );
        }
        Baseline::Seeds(seeds) => (
            welch_greater(seeds, losses, margin),
            mean(seeds) - mean(losses),
        ),
        Baseline::Fixed(value) => {
            let differences: Vec<f64> = losses.iter().map(|x| value - x).collect();
            (one_sample_greater(&differences, margin), mean(&differences))
        }
    };
    let Some(test) = test.filter(|test| !test.p.is_nan()) else {
        return check(
            Status::Unknown,
            format!("the test is undefined for these figures (improvement {improvement} nats)"),
        );
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
    check(if shown { Status::Pass } else { Status::Fail }, detail)
        .figure("improvement_nats", improvement)
        .figure("t", test.t)
        .figure("df", test.df)
        .figure("p", test.p)
}
