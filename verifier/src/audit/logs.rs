//! What one train log says about its run: the seed, the artifact's size
//! lines, the final score, training and evaluation times.
//!
//! The parser is one pass that keeps only the latest of each figure, so a
//! log of any length costs constant memory. Lines seen in the public
//! records (fixtures under tests/records) include:
//!
//! ```text
//! seed:1337                                              (or "  seed: 42")
//! stopping_early: wallclock_cap train_time:600038ms step:13780/20000
//! Serialized model int8+zlib: 15815847 bytes (payload:...)
//! Code size (compressed): 27610 bytes
//! Total submission size quantized+brotli: 15988983 bytes
//! quantized_sliding_window val_loss:2.80691494 val_bpb:1.08664424 eval_time:84115ms
//! final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570
//! total_eval_time:329.0s
//! ```

use super::text::{
    duration_ms, excerpt, field, find_ignoring_case, parse_count, ByteCount, Printed,
};

/// How the final score is chosen, quoted in reports.
///
/// Logs evaluate the model several times: periodically during training
/// (lines counted by step, `step:13780/20000 val_loss:...` or
/// `4986/20000 val_loss: ...`), before quantization, then on the
/// quantized artifact once it is serialized and its size printed. The
/// score is the last evaluation printed after the last "Total submission
/// size" line, ignoring step-counted ones; when a log prints the same
/// evaluation twice (`final_int8_zlib_roundtrip` then its `_exact` digits),
/// the later, more precise one is taken.
pub const SCORE_RULE: &str = "the last evaluation printed after the last 'Total submission size' line (step-counted training evaluations ignored)";

/// How much room a line's quoted text may take in a report.
const QUOTE_CHARS: usize = 120;

/// Everything a log says, with `None` for what it does not print.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    /// From the first `seed:` / `seed =` line (the hyperparameter dump).
    pub seed: Option<String>,
    /// The last "Total submission size" line: the final artifact.
    pub total: Option<SizeLine>,
    /// How many total lines the log printed (the naive baseline prints an
    /// unquantized total before the int8+zlib one).
    pub totals_printed: usize,
    /// The last "Serialized model" line.
    pub model: Option<SizeLine>,
    /// The last "Code size" line of each label (`uncompressed`,
    /// `compressed`, or none), in order of first appearance.
    pub code: Vec<SizeLine>,
    pub score: Option<Score>,
    /// True when the log prints evaluations but no size line to anchor
    /// the score after: the score is then the last evaluation printed, and
    /// whether it is of the quantized artifact cannot be told.
    pub score_unanchored: bool,
    pub train: Option<TrainTime>,
    pub steps: Option<u64>,
    pub eval: Option<EvalTime>,
}

/// A `<phrase> <label>: <count> bytes` line.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeLine {
    /// The text between the phrase and the colon, e.g. `quantized+brotli`,
    /// `int8+zlib` (sometimes stale: field.md), `compressed`; empty if none.
    pub label: String,
    pub bytes: ByteCount,
    pub quote: String,
}

/// An evaluation line.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// What the log calls it: `quantized_sliding_window`,
    /// `final_int8_zlib_roundtrip_exact`, `quantized_ttt_phased`.
    pub label: String,
    pub val_loss: Option<Printed>,
    pub val_bpb: Printed,
    pub quote: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainTime {
    pub seconds: f64,
    /// True when taken from the `stopping_early` line, false when from the
    /// last step line (a run that did not stop on the wallclock cap).
    pub from_stop_line: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvalTime {
    pub seconds: f64,
    /// `total_eval_time` when the log prints it, else the evaluations on
    /// the quantized artifact whose `eval_time` was summed.
    pub source: String,
}

const TOTAL_PHRASE: &str = "total submission size";
const MODEL_PHRASE: &str = "serialized model";
const CODE_PHRASE: &str = "code size";
/// More code-size labels than any real log prints: bounds memory on
/// hostile input.
const MAX_CODE_LABELS: usize = 8;

impl RunLog {
    pub fn parse(text: &str) -> RunLog {
        let mut log = RunLog::default();
        let mut pass = Pass::default();
        for line in text.lines() {
            log.read_line(line, &mut pass);
        }
        log.finish(pass);
        log
    }

    fn read_line(&mut self, line: &str, pass: &mut Pass) {
        if self.seed.is_none() {
            self.seed = seed_of_line(line);
        }
        if let Some(size) = size_line(line, TOTAL_PHRASE) {
            self.total = Some(size);
            self.totals_printed += 1;
            pass.evals_after_total = EvalsAfterTotal::default();
            return;
        }
        if let Some(size) = size_line(line, MODEL_PHRASE) {
            self.model = Some(size);
            return;
        }
        if let Some(size) = size_line(line, CODE_PHRASE) {
            self.record_code_size(size);
            return;
        }
        if let Some(total_eval) = field(line, "total_eval_time:").and_then(duration_ms) {
            pass.total_eval_ms = Some(total_eval);
        }
        if let Some(counter) = step_counter(line) {
            pass.last_step = Some(counter);
        }
        if let Some(seconds) = field(line, "train_time:")
            .and_then(duration_ms)
            .map(|ms| ms / 1000.0)
        {
            if line.contains("stopping_early") {
                self.train = Some(TrainTime {
                    seconds,
                    from_stop_line: true,
                });
                self.steps = field(line, "step:").and_then(numerator);
            } else if !self.train.is_some_and(|t| t.from_stop_line) {
                self.train = Some(TrainTime {
                    seconds,
                    from_stop_line: false,
                });
            }
        }
        if let Some(score) = score_line(line) {
            let after_total = &mut pass.evals_after_total;
            if self.total.is_some() {
                if let Some(ms) = field(line, "eval_time:").and_then(duration_ms) {
                    after_total.ms += ms;
                    after_total.labels.push_label(&score.label);
                }
            }
            pass.last_score = Some(score);
            pass.last_score_after_total = self.total.is_some();
        }
    }

    fn record_code_size(&mut self, size: SizeLine) {
        if let Some(same) = self.code.iter_mut().find(|c| c.label == size.label) {
            *same = size;
        } else if self.code.len() < MAX_CODE_LABELS {
            self.code.push(size);
        }
    }

    fn finish(&mut self, pass: Pass) {
        if self.total.is_some() {
            if pass.last_score_after_total {
                self.score = pass.last_score;
            }
        } else {
            self.score_unanchored = pass.last_score.is_some();
            self.score = pass.last_score;
        }
        if self.steps.is_none() {
            self.steps = pass.last_step;
        }
        self.eval = match pass.total_eval_ms {
            Some(ms) => Some(EvalTime {
                seconds: ms / 1000.0,
                source: "total_eval_time".into(),
            }),
            None if pass.evals_after_total.labels.0.is_empty() => None,
            None => Some(EvalTime {
                seconds: pass.evals_after_total.ms / 1000.0,
                source: format!(
                    "sum of eval_time of {}",
                    pass.evals_after_total.labels.0.join(" + ")
                ),
            }),
        };
    }

    pub fn total_bytes(&self) -> Option<u64> {
        self.total.as_ref()?.bytes.value
    }

    pub fn model_bytes(&self) -> Option<u64> {
        self.model.as_ref()?.bytes.value
    }

    pub fn counted_code_bytes(&self) -> Option<u64> {
        self.counted_code()?.bytes.value
    }

    /// The code size counted in the total: the one for which model + code
    /// equals the total (the PhasedTTT record counts its compressed code,
    /// not the uncompressed script), else the last printed.
    pub fn counted_code(&self) -> Option<&SizeLine> {
        let sum_matches = |code: &&SizeLine| {
            let sum = self
                .model_bytes()
                .zip(code.bytes.value)
                .and_then(|(m, c)| m.checked_add(c));
            sum.is_some() && sum == self.total_bytes()
        };
        self.code.iter().find(sum_matches).or(self.code.last())
    }
}

/// State of the single pass that is not part of the result.
#[derive(Default)]
struct Pass {
    last_score: Option<Score>,
    last_score_after_total: bool,
    evals_after_total: EvalsAfterTotal,
    total_eval_ms: Option<f64>,
    last_step: Option<u64>,
}

/// The evaluations printed since the last total line: those of the
/// quantized artifact, whose times make up the evaluation budget.
#[derive(Default)]
struct EvalsAfterTotal {
    ms: f64,
    labels: Labels,
}

/// A few distinct labels, for the evaluation time's source.
#[derive(Default)]
struct Labels(Vec<String>);

impl Labels {
    fn push_label(&mut self, label: &str) {
        const MAX: usize = 8;
        if self.0.len() < MAX && !self.0.iter().any(|l| l == label) {
            self.0.push(label.to_string());
        }
    }
}

fn seed_of_line(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    let rest = trimmed
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("seed"))
        .map(|_| &trimmed[4..])?;
    let value = rest.trim_start().strip_prefix([':', '='])?.trim();
    let is_seed =
        !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
    is_seed.then(|| value.to_string())
}

/// `<phrase><label>: <count>`, e.g. `Total submission size int8+zlib: 15863489 bytes`.
fn size_line(line: &str, phrase: &str) -> Option<SizeLine> {
    let after = &line[find_ignoring_case(line, phrase)? + phrase.len()..];
    let (label, rest) = after.split_once(':')?;
    let token = rest.split_whitespace().next()?;
    Some(SizeLine {
        label: excerpt(
            label.trim().trim_start_matches('(').trim_end_matches(')'),
            40,
        ),
        bytes: ByteCount::parse(token),
        quote: excerpt(line, QUOTE_CHARS),
    })
}

/// An evaluation: a line with a `val_bpb:` figure that is not counted by
/// training step.
fn score_line(line: &str) -> Option<Score> {
    let val_bpb = Printed::parse(field(line, "val_bpb:")?)?;
    let label_end = [line.find("val_loss:"), line.find("val_bpb:")]
        .into_iter()
        .flatten()
        .min()?;
    let label = line[..label_end].trim();
    if step_counter(label).is_some() {
        return None;
    }
    Some(Score {
        label: excerpt(label, 60),
        val_loss: field(line, "val_loss:").and_then(Printed::parse),
        val_bpb,
        quote: excerpt(line, QUOTE_CHARS),
    })
}

/// The step of a training progress line: `step:13780/20000 ...` or
/// `4986/20000 val_loss: ...`.
fn step_counter(line: &str) -> Option<u64> {
    let first = line.split_whitespace().next()?;
    numerator(first.strip_prefix("step:").unwrap_or(first))
}

/// `4986` of `4986/20000`.
fn numerator(counter: &str) -> Option<u64> {
    let (done, of) = counter.split_once('/')?;
    parse_count(of)?;
    done.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDCLIP_TAIL: &str = "  seed: 42
4986/20000 val_loss: 2.8178 val_bpb: 1.0909
stopping_early: wallclock_cap train_time: 588136ms step: 4986/20000
pre-quantization post-ema val_loss:2.81543002 val_bpb:1.08994070 eval_time:6006ms
Serialized model: 135426937 bytes
Code size: 15516 bytes
Serialized model quantized+brotli: 15973467 bytes
Total submission size quantized+brotli: 15988983 bytes
quantized val_loss:2.85032574 val_bpb:1.10344992 eval_time:7467ms
quantized_sliding_window val_loss:2.80691494 val_bpb:1.08664424 eval_time:84115ms";

    #[test]
    fn reads_the_final_figures() {
        let log = RunLog::parse(SDCLIP_TAIL);
        assert_eq!(log.seed.as_deref(), Some("42"));
        let total = log.total.as_ref().unwrap();
        assert_eq!(
            (total.label.as_str(), total.bytes.value),
            ("quantized+brotli", Some(15_988_983))
        );
        assert_eq!(log.model.as_ref().unwrap().bytes.value, Some(15_973_467));
        assert_eq!(log.counted_code().unwrap().bytes.value, Some(15_516));
        let score = log.score.as_ref().unwrap();
        assert_eq!(score.label, "quantized_sliding_window");
        assert_eq!(score.val_bpb.value, 1.08664424);
        assert_eq!(score.val_loss.unwrap().value, 2.80691494);
        assert_eq!(
            log.train,
            Some(TrainTime {
                seconds: 588.136,
                from_stop_line: true
            })
        );
        assert_eq!(log.steps, Some(4986));
        let eval = log.eval.unwrap();
        assert_eq!(eval.seconds, 91.582);
        assert_eq!(
            eval.source,
            "sum of eval_time of quantized + quantized_sliding_window"
        );
        assert!(!log.score_unanchored);
    }

    #[test]
    fn the_last_total_is_the_final_artifact() {
        let log = RunLog::parse(
            "Total submission size: 67272625 bytes
Total submission size int8+zlib: 15863489 bytes
final_int8_zlib_roundtrip val_loss:2.0727 val_bpb:1.2244 eval_time:1401ms
final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570",
        );
        assert_eq!(log.totals_printed, 2);
        assert_eq!(log.total.unwrap().bytes.value, Some(15_863_489));
        assert_eq!(log.score.unwrap().val_bpb.decimals, 8);
        assert_eq!(log.eval.unwrap().seconds, 1.401);
    }

    #[test]
    fn a_score_before_the_last_total_is_not_final() {
        let log =
            RunLog::parse("quantized val_loss:2.8 val_bpb:1.1\nTotal submission size x: 15 bytes");
        assert_eq!(log.score, None);
        assert_eq!(log.eval, None);
    }

    #[test]
    fn without_a_total_the_last_evaluation_is_unanchored() {
        let log = RunLog::parse("step:10/20 val_loss:3 val_bpb:2\nfinal val_loss:2.5 val_bpb:1.5\nstep:20/20 val_loss:2 val_bpb:1");
        assert_eq!(log.score.unwrap().val_bpb.value, 1.5);
        assert!(log.score_unanchored);
        assert_eq!(log.steps, Some(20));
    }

    #[test]
    fn code_sizes_keep_their_labels_and_the_counted_one_sums() {
        let log = RunLog::parse(
            "Code size (uncompressed): 122168 bytes
Code size (compressed): 27610 bytes
Serialized model quantized+brotli: 15905287 bytes
Total submission size quantized+brotli: 15932897 bytes
quantized_ttt_phased val_loss:2.77115720 val_bpb:1.07280131 eval_time:329031ms
total_eval_time:329.0s",
        );
        let labels: Vec<&str> = log.code.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["uncompressed", "compressed"]);
        assert_eq!(log.counted_code().unwrap().bytes.value, Some(27_610));
        assert_eq!(
            log.eval.unwrap(),
            EvalTime {
                seconds: 329.0,
                source: "total_eval_time".into()
            }
        );
    }

    #[test]
    fn train_time_falls_back_to_the_last_step_line() {
        let log = RunLog::parse(
            "step:1/2 train_loss:3 train_time:24ms\nstep:2/2 train_loss:3 train_time:67ms",
        );
        assert_eq!(
            log.train,
            Some(TrainTime {
                seconds: 0.067,
                from_stop_line: false
            })
        );
        assert_eq!(log.steps, Some(2));
    }

    #[test]
    fn seeds_are_digits() {
        assert_eq!(seed_of_line("seed:1337"), Some("1337".into()));
        assert_eq!(seed_of_line("  SEED = 7"), Some("7".into()));
        assert_eq!(seed_of_line("seed_everything: True"), None);
        assert_eq!(seed_of_line("seed: abc"), None);
        assert_eq!(seed_of_line("seeds"), None);
        assert_eq!(seed_of_line("sé"), None);
    }
}
