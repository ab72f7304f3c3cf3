//! The checks of one seed's log on its own: its score, its artifact
//! against the cap, the size arithmetic, its training and evaluation times;
//! and the number of seeds.

use serde_json::Value;

use crate::report::{Check, Status};

use super::logs::SCORE_RULE;
use super::runs::Run;
use super::text::thousands;
use super::AuditOptions;

/// Seeds a record claim is usually shown over. field.md: "A new record must
/// beat the best by >= 0.005 nats, shown over seeds (3 is usual). Each
/// seed's artifact must fit the cap on its own."
pub const USUAL_SEEDS: usize = 3;

pub fn checks_of_run(run: &Run, options: &AuditOptions) -> Vec<Check> {
    vec![
        score(run),
        cap(run, options.cap),
        size_sum(run),
        train_time(run, options.max_seconds),
        eval_time(run, options.max_seconds),
    ]
}

fn score(run: &Run) -> Check {
    let id = format!("seed.{}.score", run.seed);
    let Some(score) = &run.log.score else {
        return Check::new(
            id,
            Status::Unknown,
            format!(
                "seed {} ({}): no final evaluation found ({SCORE_RULE})",
                run.seed, run.file
            ),
        )
        .figure("val_loss", Value::Null)
        .figure("val_bpb", Value::Null);
    };
    let loss = score.val_loss.map_or("unknown".into(), |l| l.to_string());
    let (status, rule) = if run.log.score_unanchored {
        (Status::Warn, "the log prints no size line, so whether this evaluation was of the quantized artifact cannot be told")
    } else {
        (Status::Pass, SCORE_RULE)
    };
    Check::new(
        id,
        status,
        format!(
            "seed {}: val_loss {loss}, val_bpb {} ('{}'): {rule}",
            run.seed, score.val_bpb, score.label
        ),
    )
    .figure("val_loss", score.val_loss.map(|l| l.value))
    .figure("val_bpb", score.val_bpb.value)
    .figure("label", score.label.as_str())
    .figure("line", score.quote.as_str())
}

fn cap(run: &Run, cap: u64) -> Check {
    let id = format!("seed.{}.cap", run.seed);
    let seed = &run.seed;
    let Some(total) = &run.log.total else {
        return Check::new(
            id,
            Status::Unknown,
            format!(
                "seed {seed} ({}): the log prints no 'Total submission size' line",
                run.file
            ),
        )
        .figure("total_bytes", Value::Null)
        .figure("cap_bytes", cap);
    };
    let label = if total.label.is_empty() {
        "unlabelled"
    } else {
        total.label.as_str()
    };
    let (status, detail, total_bytes, headroom_bytes) = match total.bytes.value {
        Some(bytes) if bytes <= cap => (
            Status::Pass,
            format!(
                "seed {seed}: {} bytes ({label}), {} under the {}-byte cap",
                thousands(bytes),
                thousands(cap - bytes),
                thousands(cap)
            ),
            Value::from(bytes),
            headroom(cap, bytes),
        ),
        Some(bytes) => (
            Status::Fail,
            format!(
                "seed {seed}: {} bytes ({label}) is {} over the {}-byte cap",
                thousands(bytes),
                thousands(bytes - cap),
                thousands(cap)
            ),
            Value::from(bytes),
            headroom(cap, bytes),
        ),
        None if total.bytes.is_overflowing_digits() => (
            Status::Fail,
            format!(
                "seed {seed}: the final total '{}' is too large to be a byte count, far over the cap",
                total.bytes.printed
            ),
            Value::from(total.bytes.printed.as_str()),
            Value::Null,
        ),
        None => (
            Status::Unknown,
            format!("seed {seed}: the final total line has no byte count ('{}')", total.quote),
            Value::Null,
            Value::Null,
        ),
    };
    Check::new(id, status, detail)
        .figure("total_bytes", total_bytes)
        .figure("headroom_bytes", headroom_bytes)
        .figure("cap_bytes", cap)
        .figure("label", label)
        .figure("totals_printed", run.log.totals_printed)
        .figure("line", total.quote.as_str())
}

/// Cap minus total, negative when over.
fn headroom(cap: u64, total: u64) -> Value {
    let difference = i128::from(cap) - i128::from(total);
    i64::try_from(difference).map_or(Value::Null, Value::from)
}

/// Total = model + code, as the training script computes it: a total that
/// does not add up was edited, or printed for another artifact.
fn size_sum(run: &Run) -> Check {
    let id = format!("seed.{}.size_sum", run.seed);
    let log = &run.log;
    let code = log.counted_code();
    let parts = (
        log.total_bytes(),
        log.model_bytes(),
        code.and_then(|c| c.bytes.value),
    );
    let (Some(total), Some(model), Some(code_bytes)) = parts else {
        return Check::new(
            id,
            Status::Unknown,
            format!(
                "seed {}: the log does not print all of total, serialized model and code sizes",
                run.seed
            ),
        );
    };
    let label = match code.map(|c| c.label.as_str()) {
        None | Some("") => String::new(),
        Some(label) => format!(" ({label})"),
    };
    let sum = model.checked_add(code_bytes);
    let (status, verdict) = if sum == Some(total) {
        (Status::Pass, "equal to")
    } else {
        (Status::Warn, "not")
    };
    Check::new(
        id,
        status,
        format!(
            "seed {}: model {} + code {}{label} = {} bytes, {verdict} the total printed, {}",
            run.seed,
            thousands(model),
            thousands(code_bytes),
            sum.map_or("overflow".into(), thousands),
            thousands(total)
        ),
    )
    .figure("model_bytes", model)
    .figure("code_bytes", code_bytes)
    .figure("total_bytes", total)
}

fn train_time(run: &Run, max_seconds: f64) -> Check {
    let id = format!("seed.{}.train_time", run.seed);
    let seed = &run.seed;
    let Some(train) = run.log.train else {
        return Check::new(
            id,
            Status::Unknown,
            format!("seed {seed}: the log prints no train_time"),
        )
        .figure("train_seconds", Value::Null);
    };
    let source = if train.from_stop_line {
        "stopping_early line"
    } else {
        "last step line"
    };
    // A wallclock stop is checked between steps, so a run stops at the
    // first step boundary past the cap: an overrun shorter than one step is
    // the script doing what it should (the naive baseline: 600.038 s).
    let step_seconds = run
        .log
        .steps
        .filter(|&s| s > 0)
        .map(|s| train.seconds / s as f64);
    let over = train.seconds - max_seconds;
    let (status, verdict) = if over <= 0.0 {
        (Status::Pass, format!("within {max_seconds} s"))
    } else if step_seconds.is_some_and(|step| over < step) {
        (
            Status::Warn,
            format!("{over:.3} s over {max_seconds} s, less than one step: stopped at the first step boundary past the cap"),
        )
    } else {
        (
            Status::Fail,
            format!("{over:.3} s over the {max_seconds} s budget"),
        )
    };
    Check::new(
        id,
        status,
        format!(
            "seed {seed}: trained {:.3} s ({source}): {verdict}",
            train.seconds
        ),
    )
    .figure("train_seconds", train.seconds)
    .figure("max_seconds", max_seconds)
    .figure("steps", run.log.steps)
    .figure("step_seconds", step_seconds)
}

fn eval_time(run: &Run, max_seconds: f64) -> Check {
    let id = format!("seed.{}.eval_time", run.seed);
    let seed = &run.seed;
    let Some(eval) = &run.log.eval else {
        return Check::new(
            id,
            Status::Unknown,
            format!("seed {seed}: the log prints no total_eval_time and no eval_time after the final size line"),
        )
        .figure("eval_seconds", Value::Null);
    };
    let status = if eval.seconds <= max_seconds {
        Status::Pass
    } else {
        Status::Fail
    };
    Check::new(
        id,
        status,
        format!(
            "seed {seed}: evaluation {:.3} s ({}), budget {max_seconds} s",
            eval.seconds, eval.source
        ),
    )
    .figure("eval_seconds", eval.seconds)
    .figure("max_seconds", max_seconds)
    .figure("source", eval.source.as_str())
}

/// Seeds with a final score: a record claim needs several.
pub fn seed_count(runs: &[Run]) -> Check {
    let scored: Vec<&str> = runs
        .iter()
        .filter(|r| r.log.score.is_some())
        .map(|r| r.seed.as_str())
        .collect();
    let n = scored.len();
    // runs_of names a second log of one seed `<seed>~<file>`.
    let repeated: Vec<&str> = runs
        .iter()
        .filter(|r| r.seed.contains('~'))
        .map(|r| r.file.as_str())
        .collect();
    let (status, verdict) = if n < USUAL_SEEDS {
        (
            Status::Warn,
            format!(": fewer than the {USUAL_SEEDS} seeds a record claim is usually shown over (a new record must beat the best by >= 0.005 nats across seeds)"),
        )
    } else if !repeated.is_empty() {
        (
            Status::Warn,
            format!(
                ": logs [{}] repeat a seed (or name none), so the runs may not be independent",
                repeated.join(", ")
            ),
        )
    } else {
        (Status::Pass, String::new())
    };
    Check::new(
        "seeds",
        status,
        format!(
            "{n} seed(s) with a final score [{}]{verdict}",
            scored.join(", ")
        ),
    )
    .figure("seeds", n)
    .figure("seed_list", scored)
}
