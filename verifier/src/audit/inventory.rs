//! What the folder holds: the inventory, submission.json's parse, the logs
//! found by their content, and the code counted as the submission's.

use serde_json::{json, Value};

use crate::report::{Check, Status};

use super::folder::{FileEntry, RecordFolder};
use super::runs::Runs;
use super::submission::Claims;
use super::text::{excerpt, thousands};
use super::track::TrackOf;

/// The script all counted code is meant to live in (field.md).
pub const COUNTED_SCRIPT: &str = "train_gpt.py";

pub fn inventory_check(folder: &RecordFolder, runs: &Runs) -> Check {
    let files = |entries: &[FileEntry]| -> Value {
        entries
            .iter()
            .map(|f| json!({"name": f.name, "bytes": f.bytes}))
            .collect()
    };
    let logs: Value = runs
        .runs
        .iter()
        .flat_map(|r| {
            std::iter::once(r.file.as_str()).chain(r.copies.iter().map(|c| c.file.as_str()))
        })
        .collect();
    let mut other = folder.other.clone();
    other.extend(folder.docs.iter().map(|d| FileEntry {
        name: d.name.clone(),
        bytes: d.text.len() as u64,
    }));
    other.extend(
        folder
            .texts
            .iter()
            .filter(|t| runs.not_logs.contains(&t.name))
            .map(|t| FileEntry {
                name: t.name.clone(),
                bytes: t.bytes,
            }),
    );
    other.extend(folder.other_submissions.iter().cloned());
    other.sort_by(|a, b| a.name.cmp(&b.name));
    let submission = folder
        .submission
        .as_ref()
        .map_or("no submission*.json".to_string(), |s| {
            format!("{} ({} bytes)", s.name, thousands(s.bytes))
        });
    let skipped: Vec<Value> = folder
        .skipped
        .iter()
        .map(|s| json!({"name": s.name, "why": s.why}))
        .collect();
    let skipped_note = if folder.skipped.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = folder
            .skipped
            .iter()
            .take(4)
            .map(|s| format!("{}: {}", s.name, s.why))
            .collect();
        format!("; not read: {}", names.join("; "))
    };
    let status = if folder.skipped.is_empty() {
        Status::Pass
    } else {
        Status::Warn
    };
    Check::new(
        "inventory",
        status,
        format!(
            "{submission}, {} train log(s), {} code file(s), {} other file(s){skipped_note}",
            logs.as_array().map_or(0, Vec::len),
            folder.code.len(),
            other.len()
        ),
    )
    .figure(
        "submission_bytes",
        folder.submission.as_ref().map(|s| s.bytes),
    )
    .figure("logs", logs)
    .figure("code_files", files(&folder.code))
    .figure("other_files", files(&other))
    .figure("skipped", skipped)
}

/// The `submission` check, the parsed document and the claims it holds.
pub fn submission_check(folder: &RecordFolder) -> (Check, Option<Value>, Option<Claims>) {
    let fail = |detail: String| (Check::new("submission", Status::Fail, detail), None, None);
    let Some(file) = &folder.submission else {
        return fail("no submission.json: a record states its claims there".into());
    };
    let name = &file.name;
    let bytes = match &file.content {
        Ok(bytes) => bytes,
        Err(why) => return fail(format!("{name} could not be read: {why}")),
    };
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(why) => {
            return fail(format!(
                "{name} is not valid JSON: {}",
                excerpt(&why.to_string(), 120)
            ))
        }
    };
    let Some(root) = value.as_object() else {
        return fail(format!("{name} is not a JSON object"));
    };
    let claims = Claims::from_json(root, bytes);
    let others = if folder.other_submissions.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = folder
            .other_submissions
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        format!(" (also present, not read: {})", names.join(", "))
    };
    let check = Check::new(
        "submission",
        Status::Pass,
        format!("{name}: {}{others}", claims.summary()),
    )
    .figure("file", name.as_str())
    .figure("fields", root.len());
    (check, Some(value), Some(claims))
}

/// The logs found by content, their runs and their copies.
pub fn logs_check(runs: &Runs, track: &TrackOf) -> Check {
    if runs.runs.is_empty() {
        let (status, consequence) = if track.time_limits_apply() {
            (Status::Fail, "nothing backs the claims")
        } else {
            (
                Status::Warn,
                "nothing backs the claims (the non-record track is lenient, but a log is expected)",
            )
        };
        let looked = if runs.not_logs.is_empty() {
            "no text file".to_string()
        } else {
            format!("none of [{}]", runs.not_logs.join(", "))
        };
        return Check::new(
            "logs",
            status,
            format!("no train log: {looked} prints training progress and a final evaluation: {consequence}"),
        )
        .figure("runs", Value::Array(Vec::new()));
    }
    let named: Vec<String> = runs
        .runs
        .iter()
        .map(|r| {
            let copies: Vec<String> = r
                .copies
                .iter()
                .map(|c| {
                    let how = if c.identical {
                        "a byte-identical copy"
                    } else {
                        "the same run's figures"
                    };
                    format!("{} is {how}", c.file)
                })
                .collect();
            let copies = if copies.is_empty() {
                String::new()
            } else {
                format!(" ({}, counted once)", copies.join(", "))
            };
            format!("{} → run {}{copies}", r.file, r.id)
        })
        .collect();
    let figures: Vec<Value> = runs
        .runs
        .iter()
        .map(|r| {
            json!({
                "run": r.id,
                "seed": r.seed,
                "file": r.file,
                "copies": r.copies.iter().map(|c| json!({"file": c.file, "identical": c.identical})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Check::new(
        "logs",
        Status::Pass,
        format!(
            "{} run(s), recognised by their lines: {}",
            runs.runs.len(),
            named.join(", ")
        ),
    )
    .figure("runs", figures)
    .figure("not_logs", runs.not_logs.clone())
}

/// The script counted as the submission's code: `train_gpt.py` at the top
/// of the folder (the rule's name), else the script a README's `torchrun`
/// command runs, else the only top-level `.py` file.
pub fn counted_script(folder: &RecordFolder) -> Option<(&FileEntry, String)> {
    let top: Vec<&FileEntry> = folder
        .code
        .iter()
        .filter(|f| !f.name.contains('/') && f.name.ends_with(".py"))
        .collect();
    if let Some(script) = top.iter().find(|f| f.name == COUNTED_SCRIPT) {
        return Some((script, format!("the rules' {COUNTED_SCRIPT}")));
    }
    for doc in &folder.docs {
        for line in doc.text.lines().filter(|l| l.contains("torchrun")) {
            let named = line
                .split_whitespace()
                .find_map(|token| top.iter().find(|f| f.name == token));
            if let Some(script) = named {
                return Some((
                    script,
                    format!("the script {}'s torchrun command runs", doc.name),
                ));
            }
        }
    }
    match top.as_slice() {
        [only] => Some((only, "the only script at the top of the folder".into())),
        _ => None,
    }
}

pub fn code_check(folder: &RecordFolder) -> Check {
    let present: Vec<String> = folder
        .code
        .iter()
        .map(|f| format!("{} ({} bytes)", f.name, thousands(f.bytes)))
        .collect();
    match counted_script(folder) {
        Some((script, why)) => {
            let others = if present.len() > 1 {
                format!("; code files present: {}", present.join(", "))
            } else {
                String::new()
            };
            Check::new(
                "code",
                Status::Pass,
                format!(
                    "counted code: {} ({} bytes), {why}{others}",
                    script.name,
                    thousands(script.bytes)
                ),
            )
            .figure("script", script.name.as_str())
            .figure("script_bytes", script.bytes)
        }
        None => {
            let detail = if present.is_empty() {
                format!("no code file in the folder: the shipped code cannot be counted (the rules count {COUNTED_SCRIPT})")
            } else {
                format!(
                    "no {COUNTED_SCRIPT} and no one script to count among [{}]",
                    present.join(", ")
                )
            };
            Check::new("code", Status::Unknown, detail)
                .figure("script", Value::Null)
                .figure("script_bytes", Value::Null)
        }
    }
}
