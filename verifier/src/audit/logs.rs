//! What one train log says about its run: the seed and the configuration
//! it printed, the artifact's size lines, the evaluations of the final
//! artifact, training and evaluation times, and the stages between them
//! (calibration, compression), each with the line it came from.
//!
//! The parser is one pass that keeps only what it needs (the latest of
//! each figure, a bounded list of evaluations and configuration keys), so
//! a log of any length costs bounded memory. Lines seen in the public
//! records include:
//!
//! ```text
//! seed:1337                                              (or "  seed: 42")
//! world_size:8 grad_accum_steps:1                        (configuration)
//! stopping_early: wallclock_cap train_time:600038ms step:13780/20000
//! gptq:reserving 0s, effective=599500ms
//! GPTQ:collected 67 Hessians in 4.9s
//! Serialized model int8+zlib: 15815847 bytes (payload:...)
//! Code size (compressed): 27610 bytes
//! Total submission size quantized+brotli: 15988983 bytes
//! quantized_sliding_window val_loss:2.80691494 val_bpb:1.08664424 eval_time:84115ms
//! final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570
//! total_eval_time:329.0s
//! ```
//!
//! Many logs start with a copy of the training script: its lines
//! (`log0(f"seed:{args.seed}")`) never match, since every figure must be a
//! literal number and configuration lines may not hold code punctuation.

use super::config::Config;
use super::text::{
    duration_ms, excerpt, field, find_ignoring_case, parse_count, ByteCount, Printed,
};

/// How much room a line's quoted text may take in a report.
const QUOTE_CHARS: usize = 120;
/// Evaluations kept per log (the latest): real logs print fewer than ten
/// after the final size line.
const MAX_EVALUATIONS: usize = 32;
/// More code-size labels than any real log prints: bounds memory on
/// hostile input.
const MAX_CODE_LABELS: usize = 8;
/// Post-training stages kept (compression, decompression, warm-ups).
const MAX_STAGES: usize = 16;
/// Lines longer than this are not read for figures.
const MAX_LINE_BYTES: usize = 4096;

/// A figure and the (1-based) line it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
}

/// Everything a log says, with `None` for what it does not print.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    /// The seed the run printed: `seed:N` / `seed: N` (the hyperparameter
    /// dump), else `seed = N`.
    pub seed: Option<Located<String>>,
    /// The configuration printed before training started.
    pub config: Config,
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
    /// The evaluations of the final artifact: those printed after the last
    /// total line, or, when the log prints no total, every evaluation that
    /// is not counted by training step. In order; `_exact` reprints merged.
    pub evaluations: Vec<Evaluation>,
    pub train: Option<TrainTime>,
    pub steps: Option<u64>,
    /// `total_eval_time`, in seconds.
    pub total_eval: Option<Located<f64>>,
    pub stages: Stages,
    /// Lines that make this a train log.
    pub evidence: Evidence,
}

/// A `<phrase> <label>: <count> bytes` line.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeLine {
    /// The text between the phrase and the colon, e.g. `quantized+brotli`,
    /// `int8+zlib` (sometimes stale: field.md), `compressed`; empty if none.
    pub label: String,
    pub bytes: ByteCount,
    pub quote: String,
    pub line: usize,
}

/// An evaluation line.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// What the log calls it, without an `_exact` suffix:
    /// `quantized_sliding_window`, `final_int8_zlib_roundtrip`,
    /// `quantized_ttt_phased`.
    pub label: String,
    pub val_loss: Option<Printed>,
    pub val_bpb: Printed,
    /// Its `eval_time`, in seconds, when printed.
    pub seconds: Option<f64>,
    pub quote: String,
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainTime {
    pub seconds: f64,
    /// True when taken from the `stopping_early` line, false when from the
    /// last step line (a run that did not stop on the wallclock cap).
    pub from_stop_line: bool,
    pub line: usize,
}

/// What happened between the end of training and the final evaluation, as
/// far as the log prints it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stages {
    /// The GPTQ reserve the run stopped training early by
    /// (`gptq:reserving 10s, effective=590000ms`), in seconds.
    pub reserve: Option<Located<f64>>,
    /// The training budget left after the reserve (`effective=590000ms`),
    /// in seconds.
    pub effective_budget: Option<f64>,
    /// Hessian collection (calibration), in seconds.
    pub calibration: Option<Calibration>,
    /// Other timed stages after training (`Serialize: per-group compression
    /// done in 97.8s`).
    pub timed: Vec<Stage>,
    /// A logged wall clock for producing the artifact
    /// (`artifact_production_wallclock: 825-1121s`): the largest figure.
    pub artifact_wallclock: Option<Located<f64>>,
    pub artifact_wallclock_quote: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub seconds: Option<f64>,
    pub line: usize,
    pub quote: String,
    /// Printed after the training stop line.
    pub after_training: bool,
    /// The log says the calibration data was generated (by the model, at
    /// random), not read from the training set.
    pub generated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub label: String,
    pub seconds: f64,
    pub line: usize,
}

/// Counts of the lines that only a train log prints.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// Training progress: `step:N/M train_loss:...`, `N/M val_loss:...`.
    pub step_lines: usize,
    pub stop_lines: usize,
    pub size_lines: usize,
    pub evaluation_lines: usize,
}

impl Evidence {
    /// A train log prints training progress and at least one of an
    /// evaluation, a size line or a stop line; an evaluation-only log
    /// prints a total size and evaluations after it. A README quoting a
    /// line or two, or a requirements file, is neither.
    pub fn is_train_log(&self, has_final_evaluation: bool, has_total: bool) -> bool {
        let trained = self.step_lines > 0
            && (self.evaluation_lines > 0 || self.size_lines > 0 || self.stop_lines > 0);
        trained || (has_total && has_final_evaluation)
    }
}

const TOTAL_PHRASE: &str = "total submission size";
const MODEL_PHRASE: &str = "serialized model";
const CODE_PHRASE: &str = "code size";

impl RunLog {
    #[cfg(test)]
    pub fn parse(text: &str) -> RunLog {
        RunLog::parse_from(text, 1)
    }

    /// Parses `text` whose first line is line `first_line` of its file.
    pub fn parse_from(text: &str, first_line: usize) -> RunLog {
        let mut log = RunLog::default();
        let mut pass = Pass::default();
        for (index, line) in text.lines().enumerate() {
            log.read_line(line, first_line + index, &mut pass);
        }
        if log.seed.is_none() {
            log.seed = pass.assigned_seed;
        }
        if log.steps.is_none() {
            log.steps = pass.last_step;
        }
        log
    }

    pub fn is_train_log(&self) -> bool {
        self.evidence
            .is_train_log(!self.evaluations.is_empty(), self.total.is_some())
    }

    fn read_line(&mut self, line: &str, number: usize, pass: &mut Pass) {
        // No figure is printed on a line this long (a log's longest are its
        // quoted script's); skipping them bounds the work per byte.
        if line.len() > MAX_LINE_BYTES {
            return;
        }
        if self.seed.is_none() {
            match seed_of_line(line) {
                Some((seed, true)) => {
                    self.seed = Some(Located {
                        value: seed,
                        line: number,
                    })
                }
                Some((seed, false)) if pass.assigned_seed.is_none() => {
                    pass.assigned_seed = Some(Located {
                        value: seed,
                        line: number,
                    })
                }
                _ => {}
            }
        }
        let step = step_counter(line);
        if !pass.training_started {
            if step.is_some() {
                pass.training_started = true;
            } else {
                self.config.read_line(line, number);
            }
        }
        // Training progress, most of a log's lines: only its step, time
        // and evidence matter.
        if let Some(counter) = step {
            self.read_progress(line, number, counter, pass);
            return;
        }
        if let Some(size) = size_line(line, TOTAL_PHRASE, number) {
            self.evidence.size_lines += 1;
            self.total = Some(size);
            self.totals_printed += 1;
            // The evaluations of the final artifact follow its size line.
            self.evaluations.clear();
            return;
        }
        if let Some(size) = size_line(line, MODEL_PHRASE, number) {
            self.evidence.size_lines += 1;
            self.model = Some(size);
            return;
        }
        if let Some(size) = size_line(line, CODE_PHRASE, number) {
            self.evidence.size_lines += 1;
            self.record_code_size(size);
            return;
        }
        if let Some(ms) = field(line, "total_eval_time:").and_then(duration_ms) {
            self.total_eval = Some(Located {
                value: ms / 1000.0,
                line: number,
            });
        }
        if let Some(seconds) = field(line, "train_time:")
            .and_then(duration_ms)
            .map(|ms| ms / 1000.0)
        {
            if line.contains("stopping_early") {
                self.evidence.stop_lines += 1;
                self.train = Some(TrainTime {
                    seconds,
                    from_stop_line: true,
                    line: number,
                });
                self.steps = field(line, "step:").and_then(numerator);
            }
        }
        if let Some(evaluation) = evaluation_line(line, number) {
            self.evidence.evaluation_lines += 1;
            self.record_evaluation(evaluation);
            return;
        }
        self.stages
            .read_line(line, number, self.train.is_some_and(|t| t.from_stop_line));
    }

    fn read_progress(&mut self, line: &str, number: usize, step: u64, pass: &mut Pass) {
        pass.last_step = Some(step);
        if ["train_loss:", "train_time:", "val_loss:"]
            .iter()
            .any(|k| field(line, k).is_some())
        {
            self.evidence.step_lines += 1;
        }
        let seconds = field(line, "train_time:")
            .and_then(duration_ms)
            .map(|ms| ms / 1000.0);
        if let Some(seconds) = seconds {
            if !self.train.is_some_and(|t| t.from_stop_line) {
                self.train = Some(TrainTime {
                    seconds,
                    from_stop_line: false,
                    line: number,
                });
            }
        }
    }

    fn record_code_size(&mut self, size: SizeLine) {
        if let Some(same) = self.code.iter_mut().find(|c| c.label == size.label) {
            *same = size;
        } else if self.code.len() < MAX_CODE_LABELS {
            self.code.push(size);
        }
    }

    /// `final_x val_loss:2.0727 ... eval_time:1401ms` then
    /// `final_x_exact val_loss:2.07269931 ...` is one evaluation printed
    /// twice: the second's digits, the first's time.
    fn record_evaluation(&mut self, mut evaluation: Evaluation) {
        if let Some(stem) = evaluation.label.strip_suffix("_exact") {
            if let Some(last) = self.evaluations.last_mut() {
                if last.label == stem {
                    evaluation.label = stem.to_string();
                    evaluation.seconds = evaluation.seconds.or(last.seconds);
                    *last = evaluation;
                    return;
                }
            }
        }
        if self.evaluations.len() == MAX_EVALUATIONS {
            self.evaluations.remove(0);
        }
        self.evaluations.push(evaluation);
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

    /// The labels of the final evaluations, in order, each once.
    pub fn evaluation_labels(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = Vec::new();
        for e in &self.evaluations {
            if !labels.contains(&e.label.as_str()) {
                labels.push(&e.label);
            }
        }
        labels
    }

    /// The last final evaluation with `label`.
    pub fn evaluation(&self, label: &str) -> Option<&Evaluation> {
        self.evaluations.iter().rev().find(|e| e.label == label)
    }
}

/// One file may hold several runs, one after the other (a shell loop over
/// seeds appending to one log): a new run starts where a seed is printed
/// after training progress, or rather just after the previous run's last
/// evaluation or size line, so that the configuration it printed before
/// its seed goes with it. The pieces, each with its first line.
pub fn split_runs(text: &str) -> Vec<(usize, &str)> {
    let mut pieces = Vec::new();
    let (mut start, mut first_line) = (0, 1);
    let mut trained = false;
    // Where the current run's output last ended: byte offset, next line.
    let mut output_end: Option<(usize, usize)> = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if trained && matches!(seed_of_line(line), Some((_, true))) {
            let (cut, cut_line) = output_end.unwrap_or((offset, index + 1));
            pieces.push((first_line, &text[start..cut]));
            (start, first_line, trained, output_end) = (cut, cut_line, false, None);
        }
        let step = step_counter(line).is_some();
        trained |= step;
        offset += line.len();
        let ends_output = || {
            field(line, "val_bpb:").is_some()
                || field(line, "total_eval_time:").is_some()
                || find_ignoring_case(line, TOTAL_PHRASE).is_some()
        };
        if trained && !step && ends_output() {
            output_end = Some((offset, index + 2));
        }
    }
    pieces.push((first_line, &text[start..]));
    pieces
}

/// State of the single pass that is not part of the result.
#[derive(Default)]
struct Pass {
    training_started: bool,
    last_step: Option<u64>,
    assigned_seed: Option<Located<String>>,
}

impl Stages {
    fn read_line(&mut self, line: &str, number: usize, after_training: bool) {
        // A script quoted in the log prints these phrases too, inside
        // string literals.
        if line.contains(['{', '}', '"', '\'']) || line.contains(" = ") {
            return;
        }
        let quote = || excerpt(line, QUOTE_CHARS);
        if let Some(at) = find_ignoring_case(line, "artifact_production_wallclock") {
            let rest = &line[at + "artifact_production_wallclock".len()..];
            if let Some(seconds) = largest_duration(rest.trim_start_matches([':', ' ', '='])) {
                self.artifact_wallclock = Some(Located {
                    value: seconds,
                    line: number,
                });
                self.artifact_wallclock_quote = Some(quote());
            }
            return;
        }
        if let Some(at) = find_ignoring_case(line, "reserving") {
            let token = line[at + "reserving".len()..]
                .split_whitespace()
                .next()
                .map(|t| t.trim_end_matches([',', ';']));
            if let Some(ms) = token.and_then(duration_ms) {
                self.reserve = Some(Located {
                    value: ms / 1000.0,
                    line: number,
                });
                self.effective_budget = field(line, "effective=")
                    .and_then(duration_ms)
                    .map(|ms| ms / 1000.0);
            }
            return;
        }
        if find_ignoring_case(line, "hessian").is_some() {
            let generated = [
                "generat",
                "synthetic",
                "random token",
                "self-gen",
                "autoregressive",
            ]
            .iter()
            .any(|w| find_ignoring_case(line, w).is_some());
            let seconds = duration_after_in(line);
            match &mut self.calibration {
                // "collecting..." then "collected ... in 4.9s": one stage.
                Some(c) if c.seconds.is_none() => {
                    c.seconds = seconds;
                    c.generated |= generated;
                    c.line = number;
                    c.quote = quote();
                    c.after_training |= after_training;
                }
                _ => {
                    self.calibration = Some(Calibration {
                        seconds,
                        line: number,
                        quote: quote(),
                        after_training,
                        generated,
                    })
                }
            }
            return;
        }
        if after_training && self.timed.len() < MAX_STAGES {
            if let Some(seconds) = duration_after_in(line) {
                let label = line
                    .find(" in ")
                    .map_or(line, |at| &line[..at])
                    .trim_end_matches(" done");
                self.timed.push(Stage {
                    label: excerpt(label, 60),
                    seconds,
                    line: number,
                });
            }
        }
    }
}

/// `... in 4.9s` / `... done in 97.8s` → 4.9.
fn duration_after_in(line: &str) -> Option<f64> {
    line.match_indices(" in ").find_map(|(at, _)| {
        let token = line[at + 4..].split_whitespace().next()?;
        duration_ms(token.trim_end_matches(['.', ',', ')'])).map(|ms| ms / 1000.0)
    })
}

/// The largest duration in `825-1121s (must be < 600.0)`: a range takes the
/// unit of its last figure.
fn largest_duration(text: &str) -> Option<f64> {
    let token = text.split_whitespace().next()?;
    let unit_at = token
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(token.len());
    let unit = &token[unit_at..];
    let unit = if unit.is_empty() { "s" } else { unit };
    token[..unit_at]
        .split('-')
        .filter_map(|amount| duration_ms(&format!("{amount}{unit}")))
        .map(|ms| ms / 1000.0)
        .reduce(f64::max)
}

/// The seed of a line, and whether it was printed as `seed:N` (true) or
/// assigned as `seed = N` (false, as in a script quoted in the log).
fn seed_of_line(line: &str) -> Option<(String, bool)> {
    let trimmed = line.trim_start();
    let rest = trimmed
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("seed"))
        .map(|_| &trimmed[4..])?;
    let rest = rest.trim_start();
    let printed = rest.starts_with(':');
    let value = rest.strip_prefix([':', '='])?.trim();
    let is_seed =
        !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
    is_seed.then(|| (value.to_string(), printed))
}

/// `<phrase><label>: <count>`, e.g. `Total submission size int8+zlib: 15863489 bytes`.
fn size_line(line: &str, phrase: &str, number: usize) -> Option<SizeLine> {
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
        line: number,
    })
}

/// An evaluation: a line with a `val_bpb:` figure that is not counted by
/// training step.
fn evaluation_line(line: &str, number: usize) -> Option<Evaluation> {
    let val_bpb = Printed::parse(field(line, "val_bpb:")?)?;
    let label_end = [line.find("val_loss:"), line.find("val_bpb:")]
        .into_iter()
        .flatten()
        .min()?;
    let label = line[..label_end].trim();
    if step_counter(label).is_some() || step_counter(line).is_some() {
        return None;
    }
    Some(Evaluation {
        label: excerpt(label, 60),
        val_loss: field(line, "val_loss:").and_then(Printed::parse),
        val_bpb,
        seconds: field(line, "eval_time:")
            .and_then(duration_ms)
            .map(|ms| ms / 1000.0),
        quote: excerpt(line, QUOTE_CHARS),
        line: number,
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
    fn reads_the_final_figures_with_their_lines() {
        let log = RunLog::parse(SDCLIP_TAIL);
        assert_eq!(
            log.seed,
            Some(Located {
                value: "42".into(),
                line: 1
            })
        );
        let total = log.total.as_ref().unwrap();
        assert_eq!(
            (total.label.as_str(), total.bytes.value, total.line),
            ("quantized+brotli", Some(15_988_983), 8)
        );
        assert_eq!(log.model.as_ref().unwrap().bytes.value, Some(15_973_467));
        assert_eq!(log.counted_code().unwrap().bytes.value, Some(15_516));
        assert_eq!(
            log.evaluation_labels(),
            ["quantized", "quantized_sliding_window"]
        );
        let last = log.evaluations.last().unwrap();
        assert_eq!(last.val_bpb.value, 1.08664424);
        assert_eq!(last.seconds, Some(84.115));
        assert_eq!(last.line, 10);
        let train = log.train.unwrap();
        assert_eq!(
            (train.seconds, train.from_stop_line, train.line),
            (588.136, true, 3)
        );
        assert_eq!(log.steps, Some(4986));
        assert!(log.is_train_log());
    }

    #[test]
    fn exact_reprints_merge_and_the_last_total_resets_the_finals() {
        let log = RunLog::parse(
            "step:1/2 train_loss:3 train_time:5ms
Total submission size: 67272625 bytes
final_int8_zlib_roundtrip val_loss:2.0727 val_bpb:1.2244 eval_time:1401ms
Total submission size int8+zlib: 15863489 bytes
final_int8_zlib_roundtrip val_loss:2.0727 val_bpb:1.2244 eval_time:1401ms
final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.22436570",
        );
        assert_eq!(log.totals_printed, 2);
        assert_eq!(log.total.unwrap().bytes.value, Some(15_863_489));
        assert_eq!(log.evaluations.len(), 1);
        let e = &log.evaluations[0];
        assert_eq!(e.label, "final_int8_zlib_roundtrip");
        assert_eq!((e.val_bpb.decimals, e.seconds, e.line), (8, Some(1.401), 6));
    }

    #[test]
    fn scripts_quoted_in_a_log_are_not_figures_and_documents_are_not_logs() {
        let log = RunLog::parse(
            "    log0(f\"seed:{args.seed}\")
    seed = 1337
    log0(f\"Total submission size int8+zlib: {quant_file_bytes + code_bytes} bytes\")
world_size:8 grad_accum_steps:1
seed:42
step:1/2 train_loss:3 train_time:24ms",
        );
        assert_eq!(log.seed.unwrap().value, "42");
        assert_eq!(log.total.unwrap().bytes.value, None);
        assert_eq!(log.config.get("world_size"), Some("8"));
        let readme = RunLog::parse(
            "- Post-quant (int8+zlib roundtrip): `val_loss:0.9355 val_bpb:1.3496`\n\
             - Total submission size int8+zlib: `15132832 bytes`",
        );
        assert!(!readme.is_train_log());
    }

    #[test]
    fn the_stages_after_training() {
        let log = RunLog::parse(
            "gptq:reserving 0s, effective=599500ms
step:1/2 train_loss:3 train_time:5ms
stopping_early: wallclock_cap train_time: 599433ms step: 4932/20000
GPTQ:collecting Hessians from calibration data...
GPTQ:collected 67 Hessians in 4.9s
Serialize: per-group compression done in 97.8s
artifact_production_wallclock: 825-1121s (must be < 600.0)",
        );
        assert_eq!(log.stages.reserve.as_ref().unwrap().value, 0.0);
        assert_eq!(log.stages.effective_budget, Some(599.5));
        let c = log.stages.calibration.as_ref().unwrap();
        assert_eq!(
            (c.seconds, c.line, c.after_training, c.generated),
            (Some(4.9), 5, true, false)
        );
        assert_eq!(log.stages.timed.len(), 1);
        assert_eq!(
            log.stages.timed[0].label,
            "Serialize: per-group compression"
        );
        assert_eq!(log.stages.timed[0].seconds, 97.8);
        assert_eq!(
            log.stages.artifact_wallclock.as_ref().unwrap().value,
            1121.0
        );
    }

    #[test]
    fn runs_appended_to_one_file_are_split_at_their_seeds() {
        let one = "seed:1\nstep:1/2 train_loss:3\nfinal val_loss:2 val_bpb:1.1\n";
        let text = format!("{one}{}", one.replace("seed:1", "seed:2"));
        let pieces = split_runs(&text);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].0, 4);
        let second = RunLog::parse_from(pieces[1].1, pieces[1].0);
        assert_eq!(
            second.seed.unwrap(),
            Located {
                value: "2".into(),
                line: 4
            }
        );
        assert_eq!(split_runs("seed:1\nseed:1\nstep:1/2 x").len(), 1);
    }

    #[test]
    fn train_time_falls_back_to_the_last_step_line() {
        let log = RunLog::parse(
            "step:1/2 train_loss:3 train_time:24ms\nstep:2/2 train_loss:3 train_time:67ms",
        );
        let train = log.train.unwrap();
        assert_eq!((train.seconds, train.from_stop_line), (0.067, false));
        assert_eq!(log.steps, Some(2));
    }

    #[test]
    fn seeds_are_digits() {
        assert_eq!(seed_of_line("seed:1337"), Some(("1337".into(), true)));
        assert_eq!(seed_of_line("  SEED = 7"), Some(("7".into(), false)));
        assert_eq!(seed_of_line("seed_everything: True"), None);
        assert_eq!(seed_of_line("seed: abc"), None);
        assert_eq!(seed_of_line("seeds"), None);
        assert_eq!(seed_of_line("sé"), None);
    }

    #[test]
    fn durations_in_ranges() {
        assert_eq!(
            largest_duration("825-1121s (must be < 600.0)"),
            Some(1121.0)
        );
        assert_eq!(largest_duration("612.5s"), Some(612.5));
        assert_eq!(largest_duration("n/a"), None);
        assert_eq!(
            duration_after_in("collected 3 Hessians in 12.6s"),
            Some(12.6)
        );
        assert_eq!(duration_after_in("in the end"), None);
    }
}
