//! One run per train log, named by its seed: the seed the log prints, else
//! the one in its file name (`train_seed42.log`), else `unknown`.

use crate::report::{Check, Status};

use super::folder::{LogFile, LOG_READ_LIMIT};
use super::logs::RunLog;
use super::text::{id_part, thousands};

pub struct Run {
    /// Unique among the folder's runs; safe in a check id.
    pub seed: String,
    pub file: String,
    pub log: RunLog,
}

/// The runs of the readable logs, and checks about the logs themselves
/// (unreadable, truncated, seed disagreeing with the file name).
pub fn runs_of(logs: &[LogFile]) -> (Vec<Run>, Vec<Check>) {
    let mut runs: Vec<Run> = Vec::new();
    let mut checks = Vec::new();
    for file in logs {
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
        if file.skipped_bytes > 0 {
            checks.push(
                Check::new(
                    format!("log.{id}.read"),
                    Status::Warn,
                    format!(
                        "{}: {} bytes, over the {} MiB read limit: the first and last {} MiB were read, {} bytes between them were not",
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
        let log = RunLog::parse(text);
        let named = seed_in_file_name(&file.name);
        if let (Some(printed), Some(named)) = (&log.seed, &named) {
            if printed != named {
                checks.push(
                    Check::new(
                        format!("log.{id}.seed"),
                        Status::Warn,
                        format!("{}: the file name says seed {named} but the log prints seed {printed}; the log's is used", file.name),
                    )
                    .figure("seed_in_name", named.as_str())
                    .figure("seed_in_log", printed.as_str()),
                );
            }
        }
        let seed = log
            .seed
            .clone()
            .or(named)
            .unwrap_or_else(|| "unknown".into());
        // Two logs of one seed (or two without one) stay apart, named by file.
        let seed = if runs.iter().any(|r| r.seed == seed) {
            format!("{seed}~{}", id_part(file.name.trim_end_matches(".log")))
        } else {
            seed
        };
        runs.push(Run {
            seed,
            file: file.name.clone(),
            log,
        });
    }
    (runs, checks)
}

/// `train_seed42.log`, `seed_7.log`, `log-seed=3.log` → the digits after
/// "seed".
fn seed_in_file_name(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
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

    fn log(name: &str, text: &str) -> LogFile {
        LogFile {
            name: name.into(),
            bytes: text.len() as u64,
            text: Ok(text.into()),
            skipped_bytes: 0,
        }
    }

    #[test]
    fn seeds_come_from_the_log_then_the_name() {
        assert_eq!(seed_in_file_name("train_seed42.log").as_deref(), Some("42"));
        assert_eq!(seed_in_file_name("Seed-7.log").as_deref(), Some("7"));
        assert_eq!(seed_in_file_name("train.log"), None);
        assert_eq!(seed_in_file_name("seeds.log"), None);
        let (runs, checks) = runs_of(&[
            log("train.log", "seed:1337"),
            log("train_seed42.log", ""),
            log("x.log", ""),
            log("train_seed43.log", "seed: 44"),
        ]);
        let seeds: Vec<&str> = runs.iter().map(|r| r.seed.as_str()).collect();
        assert_eq!(seeds, ["1337", "42", "unknown", "44"]);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].id, "log.train_seed43.log.seed");
        assert_eq!(checks[0].status, Status::Warn);
    }

    #[test]
    fn duplicate_seeds_stay_apart_and_unreadable_logs_are_reported() {
        let mut broken = log("c.log", "");
        broken.text = Err("permission denied".into());
        let (runs, checks) = runs_of(&[log("a.log", "seed: 1"), log("b.log", "seed: 1"), broken]);
        let seeds: Vec<&str> = runs.iter().map(|r| r.seed.as_str()).collect();
        assert_eq!(seeds, ["1", "1~b"]);
        assert_eq!(checks[0].id, "log.c.log.read");
        assert_eq!(checks[0].status, Status::Unknown);
    }
}
