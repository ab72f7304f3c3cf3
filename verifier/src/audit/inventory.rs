//! What the folder holds: the inventory, submission.json's parse, the logs
//! and the training script against the code bytes the logs count.

use serde_json::{json, Value};

use crate::report::{Check, Status};

use super::folder::{FileEntry, RecordFolder, SUBMISSION_NAME};
use super::runs::Run;
use super::submission::Claims;
use super::text::{excerpt, thousands};

/// The script all counted code is meant to live in (field.md).
const COUNTED_SCRIPT: &str = "train_gpt.py";

pub fn inventory_check(folder: &RecordFolder) -> Check {
    let files = |entries: &[FileEntry]| -> Value {
        entries
            .iter()
            .map(|f| json!({"name": f.name, "bytes": f.bytes}))
            .collect()
    };
    let logs: Value = folder
        .logs
        .iter()
        .map(|l| json!({"name": l.name, "bytes": l.bytes}))
        .collect();
    let submission = folder
        .submission
        .as_ref()
        .map_or("no submission.json".to_string(), |s| {
            format!("{SUBMISSION_NAME} ({} bytes)", thousands(s.bytes))
        });
    Check::new(
        "inventory",
        Status::Pass,
        format!(
            "{submission}, {} train log(s), {} code file(s), {} other file(s)",
            folder.logs.len(),
            folder.code.len(),
            folder.other.len()
        ),
    )
    .figure(
        "submission_bytes",
        folder.submission.as_ref().map(|s| s.bytes),
    )
    .figure("logs", logs)
    .figure("code_files", files(&folder.code))
    .figure("other_files", files(&folder.other))
}

/// The `submission` check and the claims it holds, if it can be read.
pub fn submission_check(folder: &RecordFolder) -> (Check, Option<Claims>) {
    let fail = |detail: String| (Check::new("submission", Status::Fail, detail), None);
    let Some(file) = &folder.submission else {
        return fail(format!(
            "no {SUBMISSION_NAME}: a record states its claims there"
        ));
    };
    let bytes = match &file.content {
        Ok(bytes) => bytes,
        Err(why) => return fail(format!("{SUBMISSION_NAME} could not be read: {why}")),
    };
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(why) => {
            return fail(format!(
                "{SUBMISSION_NAME} is not valid JSON: {}",
                excerpt(&why.to_string(), 120)
            ))
        }
    };
    let Some(root) = value.as_object() else {
        return fail(format!("{SUBMISSION_NAME} is not a JSON object"));
    };
    let claims = Claims::from_json(root, bytes);
    let check = Check::new(
        "submission",
        Status::Pass,
        format!("{SUBMISSION_NAME}: {}", claims.summary()),
    )
    .figure("fields", root.len());
    (check, Some(claims))
}

pub fn logs_check(folder: &RecordFolder, runs: &[Run]) -> Check {
    if folder.logs.is_empty() {
        return Check::new(
            "logs",
            Status::Fail,
            "no train log (*.log): nothing backs the claims",
        );
    }
    let named: Vec<String> = runs
        .iter()
        .map(|r| format!("{} → seed {}", r.file, r.seed))
        .collect();
    Check::new(
        "logs",
        Status::Pass,
        format!("{} readable log(s): {}", runs.len(), named.join(", ")),
    )
    .figure(
        "seeds",
        runs.iter().map(|r| r.seed.as_str()).collect::<Vec<_>>(),
    )
}

/// train_gpt.py's bytes against the code sizes the logs print (any label:
/// a log may print the script's raw size and a compressed one).
pub fn code_check(folder: &RecordFolder, runs: &[Run]) -> Check {
    let present: Vec<&str> = folder.code.iter().map(|f| f.name.as_str()).collect();
    let Some(script) = folder.code.iter().find(|f| f.name == COUNTED_SCRIPT) else {
        let detail = if present.is_empty() {
            format!("no code file in the folder: the code bytes the logs count cannot be checked against {COUNTED_SCRIPT}")
        } else {
            format!(
                "no {COUNTED_SCRIPT} among the code files [{}]",
                present.join(", ")
            )
        };
        return Check::new("code", Status::Unknown, detail).figure("script_bytes", Value::Null);
    };
    let logged: Vec<(u64, &str)> = runs
        .iter()
        .flat_map(|r| &r.log.code)
        .filter_map(|c| Some((c.bytes.value?, c.label.as_str())))
        .collect();
    let base = |status, detail: String| {
        Check::new("code", status, detail).figure("script_bytes", script.bytes)
    };
    let size = thousands(script.bytes);
    if logged.is_empty() {
        return base(
            Status::Unknown,
            format!("{COUNTED_SCRIPT} is {size} bytes; no log prints a code size"),
        );
    }
    if logged.iter().any(|(bytes, _)| *bytes == script.bytes) {
        return base(
            Status::Pass,
            format!("{COUNTED_SCRIPT} is {size} bytes, as the logs' code size"),
        );
    }
    let mut printed: Vec<String> = logged
        .iter()
        .map(|(bytes, label)| {
            if label.is_empty() {
                thousands(*bytes)
            } else {
                format!("{} ({label})", thousands(*bytes))
            }
        })
        .collect();
    printed.sort();
    printed.dedup();
    base(
        Status::Warn,
        format!(
            "{COUNTED_SCRIPT} is {size} bytes; the logs print code sizes [{}]: the script that ran is not the one in the folder",
            printed.join(", ")
        ),
    )
}
