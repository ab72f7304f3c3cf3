//! The runs of a folder: one per train log, each run counted once.
//!
//! A text file is a train log when its lines say so ([`RunLog::is_train_log`]).
//! Two logs of one run are counted once: byte-identical copies (a
//! `train.log` kept beside `train_seed1337.log`) and near-identical ones
//! (the same seed with the same final figures: size, training time and
//! every final evaluation). The copy kept is the one whose file name
//! carries the seed, else the first by path.
//!
//! A run is named by its seed: the seed the log prints, else the one in its
//! file name (`train_seed42.log`), else `unknown`; runs sharing a seed are
//! told apart by file (`1337~train_v1.txt`).

use crate::report::{Check, Status};

use super::folder::{TextFile, LOG_READ_LIMIT};
use super::logs::{split_runs, RunLog};
use super::text::{id_part, thousands};

pub struct Run {
    /// Unique among the folder's runs; safe in a check id.
    pub id: String,
    /// The seed printed by the log, else the one of its file name.
    pub seed: Option<String>,
    pub file: String,
    /// Other files holding a copy of this run's log.
    pub copies: Vec<Copy>,
    pub log: RunLog,
}

pub struct Copy {
    pub file: String,
    /// Byte for byte, or the same run's figures in a different file.
    pub identical: bool,
}

/// What the text files of a folder hold.
pub struct Runs {
    pub runs: Vec<Run>,
    /// Checks about the logs themselves: unreadable, read in part, a seed
    /// that disagrees with the file name.
    pub checks: Vec<Check>,
    /// Text files whose lines are not a train log's.
    pub not_logs: Vec<String>,
}

pub fn runs_of(texts: &[TextFile]) -> Runs {
    // (file name, text, its log): one per run; a file holding several runs
    // gives several, named `file:first_line`.
    let mut parsed: Vec<(String, &str, RunLog)> = Vec::new();
    let mut checks = Vec::new();
    let mut not_logs = Vec::new();
    for file in texts {
        let id = id_part(&file.name);
        let text = match &file.text {
            Ok(text) => text,
            Err(why) => {
                checks.push(
                    Check::new(
                        format!("log.{id}.read"),
                        Status::Unknown,
                        format!("{}: could not be read: {why}", file.name),
                    )
                    .figure("file", file.name.as_str()),
                );
                continue;
            }
        };
        // Split only where every piece is a run of its own.
        let mut pieces: Vec<(usize, &str, RunLog)> = split_runs(text)
            .into_iter()
            .map(|(first, piece)| (first, piece, RunLog::parse_from(piece, first)))
            .collect();
        if pieces.len() > 1 && !pieces.iter().all(|(_, _, log)| log.is_train_log()) {
            pieces = vec![(1, text.as_str(), RunLog::parse_from(text, 1))];
        }
        pieces.retain(|(_, _, log)| log.is_train_log());
        if pieces.is_empty() {
            not_logs.push(file.name.clone());
            continue;
        }
        if file.skipped_bytes > 0 {
            checks.push(
                Check::new(
                    format!("log.{id}.read"),
                    Status::Warn,
                    format!(
                        "{}: {} bytes, over the {} MiB read limit: the first and last {} MiB were read, {} bytes between them were not (line numbers past the gap count the lines read)",
                        file.name,
                        thousands(file.bytes),
                        LOG_READ_LIMIT >> 20,
                        LOG_READ_LIMIT >> 21,
                        thousands(file.skipped_bytes)
                    ),
                )
                .figure("file_bytes", file.bytes)
                .figure("skipped_bytes", file.skipped_bytes),
            );
        }
        let several = pieces.len() > 1;
        for (first, piece, log) in pieces {
            let name = if several {
                format!("{}:{first}", file.name)
            } else {
                file.name.clone()
            };
            parsed.push((name, piece, log));
        }
    }

    let mut runs: Vec<Run> = Vec::new();
    for (name, text, log) in &parsed {
        let named = seed_in_file_name(name);
        if let (Some(printed), Some(named)) = (&log.seed, &named) {
            if &printed.value != named {
                checks.push(
                    Check::new(
                        format!("log.{}.seed", id_part(name)),
                        Status::Fail,
                        format!(
                            "{name}: the file name says seed {named}, but line {} prints seed {}: this log ran another seed",
                            printed.line, printed.value
                        ),
                    )
                    .figure("seed_in_name", named.as_str())
                    .figure("seed_in_log", printed.value.as_str())
                    .figure("line", printed.line),
                );
            }
        }
        let seed = log.seed.as_ref().map(|s| s.value.clone()).or(named);
        // A copy of a run already read, or the run a later copy repeats.
        let original = parsed
            .iter()
            .take_while(|(other, _, _)| other != name)
            .position(|(_, other_text, other_log)| other_text == text || same_run(log, other_log));
        if let Some(index) = original {
            let (first, first_text, _) = &parsed[index];
            if let Some(run) = runs
                .iter_mut()
                .find(|r| &r.file == first || r.copies.iter().any(|c| &c.file == first))
            {
                let identical = first_text == text;
                // Keep the file whose name carries the seed.
                let prefer_this = seed.as_ref().is_some_and(|s| {
                    seed_in_file_name(name).as_ref() == Some(s)
                        && seed_in_file_name(&run.file).as_ref() != Some(s)
                });
                if prefer_this {
                    let old = std::mem::replace(&mut run.file, name.clone());
                    run.log = log.clone();
                    run.copies.push(Copy {
                        file: old,
                        identical,
                    });
                } else {
                    run.copies.push(Copy {
                        file: name.clone(),
                        identical,
                    });
                }
                continue;
            }
        }
        runs.push(Run {
            id: String::new(),
            seed,
            file: name.clone(),
            copies: Vec::new(),
            log: log.clone(),
        });
    }
    name_runs(&mut runs);
    Runs {
        runs,
        checks,
        not_logs,
    }
}

/// Ids from seeds; runs that share one are told apart by file.
fn name_runs(runs: &mut [Run]) {
    let seeds: Vec<Option<String>> = runs.iter().map(|r| r.seed.clone()).collect();
    for (index, run) in runs.iter_mut().enumerate() {
        let seed = run.seed.clone().unwrap_or_else(|| "unknown".into());
        let shared = seeds
            .iter()
            .enumerate()
            .any(|(other, s)| other != index && s.as_deref().unwrap_or("unknown") == seed);
        run.id = if shared {
            format!("{seed}~{}", id_part(&run.file))
        } else {
            id_part(&seed)
        };
    }
}

/// Two logs of one run: the same seed, final size, training time and
/// final evaluations.
fn same_run(a: &RunLog, b: &RunLog) -> bool {
    let figures = |log: &RunLog| {
        (
            log.seed.as_ref().map(|s| s.value.clone()),
            log.total_bytes(),
            log.train.map(|t| t.seconds.to_bits()),
            log.evaluations
                .iter()
                .map(|e| (e.label.clone(), e.val_bpb.value.to_bits()))
                .collect::<Vec<_>>(),
        )
    };
    let (fa, fb) = (figures(a), figures(b));
    fa.0.is_some() && !fa.3.is_empty() && fa == fb
}

/// `train_seed42.log`, `seed_7.log`, `log-seed=3.log` → the digits after
/// "seed".
pub fn seed_in_file_name(name: &str) -> Option<String> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let lower = base.to_ascii_lowercase();
    let after = &lower[lower.find("seed")? + 4..];
    let after = after.strip_prefix(['_', '-', '=']).unwrap_or(after);
    let digits: String = after
        .chars()
        .take_while(char::is_ascii_digit)
        .take(20)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, body: &str) -> TextFile {
        TextFile {
            name: name.into(),
            bytes: body.len() as u64,
            text: Ok(body.into()),
            skipped_bytes: 0,
        }
    }

    fn log(seed: &str, bpb: &str) -> String {
        format!(
            "seed:{seed}\nstep:1/2 train_loss:3 train_time:5ms\nTotal submission size x: 10 bytes\nfinal val_loss:2 val_bpb:{bpb}\n"
        )
    }

    #[test]
    fn seeds_come_from_the_log_then_the_name() {
        assert_eq!(seed_in_file_name("train_seed42.log").as_deref(), Some("42"));
        assert_eq!(seed_in_file_name("logs/Seed-7.txt").as_deref(), Some("7"));
        assert_eq!(seed_in_file_name("seed3/train.log"), None);
        assert_eq!(seed_in_file_name("seeds.log"), None);
        let runs = runs_of(&[
            text("train.log", &log("1337", "1.1")),
            text("train_seed42.log", &log("42", "1.2")),
            text(
                "x.txt",
                "step:1/2 train_loss:3\nfinal val_loss:2 val_bpb:1.3",
            ),
            text("train_seed43.log", &log("44", "1.4")),
            text("notes.txt", "nothing to see"),
        ]);
        let ids: Vec<&str> = runs.runs.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1337", "42", "unknown", "44"]);
        assert_eq!(runs.not_logs, ["notes.txt"]);
        assert_eq!(runs.checks.len(), 1);
        assert_eq!(runs.checks[0].id, "log.train_seed43.log.seed");
        assert_eq!(runs.checks[0].status, Status::Fail);
    }

    #[test]
    fn copies_are_counted_once_and_shared_seeds_stay_apart() {
        let body = log("1337", "1.1");
        let mut near = body.clone();
        near.push_str("some trailing note\n");
        let runs = runs_of(&[
            text("train.log", &body),
            text("train_seed1337.log", &body),
            text("rerun.txt", &near),
            text("v1.txt", &log("1337", "1.2")),
        ]);
        assert_eq!(runs.runs.len(), 2);
        let first = &runs.runs[0];
        assert_eq!(first.file, "train_seed1337.log");
        let copies: Vec<(&str, bool)> = first
            .copies
            .iter()
            .map(|c| (c.file.as_str(), c.identical))
            .collect();
        assert_eq!(copies, [("train.log", true), ("rerun.txt", false)]);
        assert_eq!(runs.runs[0].id, "1337~train_seed1337.log");
        assert_eq!(runs.runs[1].id, "1337~v1.txt");
    }

    #[test]
    fn unreadable_logs_are_reported() {
        let mut broken = text("c.log", "");
        broken.text = Err("permission denied".into());
        let runs = runs_of(&[broken]);
        assert_eq!(runs.checks[0].id, "log.c.log.read");
        assert_eq!(runs.checks[0].status, Status::Unknown);
    }
}
