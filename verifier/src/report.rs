//! One report per run: named checks with a status, the figures behind it and
//! a one-line explanation, rendered as text (terminals), Markdown (a pull
//! request comment) or JSON (CI). Every renderer reads the same [`Report`],
//! so the three can never disagree.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::format::printable;

/// The outcome of one check. Ordered by severity: a report's status is the
/// most severe of its checks'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not applicable to this subject (a time limit on the non-record
    /// track): reported, never failing.
    Skip,
    /// Checked and within bounds.
    Pass,
    /// A figure needed for the check is missing or unreadable: reported as
    /// such, never guessed. Does not fail the run.
    Unknown,
    /// Within bounds but worth a reviewer's look (e.g. under 1 KB of
    /// headroom).
    Warn,
    /// Checked and out of bounds: the run exits 1.
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Skip => "skip",
            Status::Pass => "pass",
            Status::Unknown => "unknown",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }

    /// A symbol for Markdown tables.
    fn badge(self) -> &'static str {
        match self {
            Status::Skip => "⏭️ skip",
            Status::Pass => "✅ pass",
            Status::Unknown => "❔ unknown",
            Status::Warn => "⚠️ warn",
            Status::Fail => "❌ **fail**",
        }
    }
}

/// A named figure of a check: a number, a string, or null when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: Value,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable identifier for machines, e.g. `cap`, `crc.sections`,
    /// `fidelity.blocks.0.mlp.fc.weight`, `seed.42.cap`.
    pub id: String,
    pub status: Status,
    /// One line: what was checked and what was found.
    pub detail: String,
    pub figures: Vec<Figure>,
}

impl Check {
    pub fn new(id: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Check {
            id: id.into(),
            status,
            detail: detail.into(),
            figures: Vec::new(),
        }
    }

    /// Adds a figure (anything JSON can hold; `None` becomes null).
    pub fn figure(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.figures.push(Figure {
            name: name.into(),
            value: value.into(),
        });
        self
    }
}

/// The checks of one run over one subject (an artifact, a record folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The command, e.g. `pgq verify`.
    pub tool: String,
    /// What was checked, e.g. the artifact's path.
    pub subject: String,
    /// The most severe status of the checks (pass when there are none).
    pub status: Status,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(tool: impl Into<String>, subject: impl Into<String>) -> Self {
        Report {
            tool: tool.into(),
            subject: subject.into(),
            status: Status::Pass,
            checks: Vec::new(),
        }
    }

    pub fn push(&mut self, check: Check) {
        self.status = self.status.max(check.status);
        self.checks.push(check);
    }

    /// How many checks have each status, most severe first.
    pub fn counts(&self) -> Vec<(Status, usize)> {
        [
            Status::Fail,
            Status::Warn,
            Status::Unknown,
            Status::Pass,
            Status::Skip,
        ]
        .into_iter()
        .map(|s| (s, self.checks.iter().filter(|c| c.status == s).count()))
        .filter(|&(_, n)| n > 0)
        .collect()
    }

    fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(s, n)| format!("{n} {}", s.label().to_lowercase()))
            .collect();
        format!(
            "{}: {} ({} checks: {})",
            self.tool,
            if self.status == Status::Fail {
                "FAIL"
            } else {
                "PASS"
            },
            self.checks.len(),
            counts.join(", ")
        )
    }

    /// Plain text: one line per check, failures first, figures indented.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n\n",
            printable(&self.subject),
            printable(&self.summary())
        );
        for check in self.ordered() {
            let _ = writeln!(
                out,
                "[{:<7}] {}: {}",
                check.status.label(),
                printable(&check.id),
                printable(&check.detail)
            );
            if check.status > Status::Pass || check.figures.len() <= 4 {
                for f in &check.figures {
                    let _ = writeln!(
                        out,
                        "          {} = {}",
                        printable(&f.name),
                        printable(&plain(&f.value))
                    );
                }
            }
        }
        out
    }

    /// GitHub-flavoured Markdown: a verdict line, a table of the checks
    /// that need attention, and the passing checks folded in `<details>`.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "### `{}` {}\n\n**{}**\n\n",
            self.tool,
            escape(&self.subject),
            escape(&self.summary())
        );
        let (attention, passing): (Vec<&Check>, Vec<&Check>) =
            self.ordered().partition(|c| c.status > Status::Pass);
        let table = |checks: &[&Check]| {
            let mut t =
                String::from("| status | check | detail | figures |\n| --- | --- | --- | --- |\n");
            for c in checks {
                let figures: Vec<String> = c
                    .figures
                    .iter()
                    .map(|f| format!("{}: `{}`", escape(&f.name), escape(&plain(&f.value))))
                    .collect();
                let _ = writeln!(
                    t,
                    "| {} | `{}` | {} | {} |",
                    c.status.badge(),
                    escape(&c.id),
                    escape(&c.detail),
                    figures.join("<br>")
                );
            }
            t
        };
        if !attention.is_empty() {
            out.push_str(&table(&attention));
            out.push('\n');
        }
        if !passing.is_empty() {
            let _ = write!(
                out,
                "<details><summary>{} passing check(s)</summary>\n\n{}\n</details>\n",
                passing.len(),
                table(&passing)
            );
        }
        out
    }

    pub fn to_json(&self) -> String {
        // A Report holds only strings, numbers and JSON values: infallible.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Failures first, then warnings, unknowns, passes; stable within each.
    fn ordered(&self) -> impl Iterator<Item = &Check> {
        let mut checks: Vec<&Check> = self.checks.iter().collect();
        checks.sort_by_key(|c| std::cmp::Reverse(c.status));
        checks.into_iter()
    }
}

/// A JSON value for humans: strings unquoted, null as `unknown`.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => "unknown".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Escapes what would break a Markdown table cell or inject markup, and
/// control characters.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report::new("pgq verify", "model.pgq");
        r.push(
            Check::new("cap", Status::Pass, "15,988,983 of 16,000,000 bytes")
                .figure("total_bytes", 15_988_983u64)
                .figure("headroom_bytes", 11_017i64),
        );
        r.push(
            Check::new("fidelity.w", Status::Fail, "rel RMSE 0.4 > 0.2")
                .figure("rel_rmse", 0.4)
                .figure("cosine", Value::Null),
        );
        r
    }

    #[test]
    fn status_is_the_most_severe() {
        let mut r = Report::new("t", "s");
        assert_eq!(r.status, Status::Pass);
        r.push(Check::new("a", Status::Unknown, ""));
        assert_eq!(r.status, Status::Unknown);
        r.push(Check::new("b", Status::Warn, ""));
        r.push(Check::new("c", Status::Pass, ""));
        assert_eq!(r.status, Status::Warn);
        r.push(Check::new("d", Status::Fail, ""));
        assert_eq!(r.status, Status::Fail);
        assert_eq!(
            r.counts(),
            vec![
                (Status::Fail, 1),
                (Status::Warn, 1),
                (Status::Unknown, 1),
                (Status::Pass, 1)
            ]
        );
    }

    #[test]
    fn text_puts_failures_first_with_their_figures() {
        let text = sample().to_text();
        let fail = text.find("[FAIL   ] fidelity.w").unwrap();
        let pass = text.find("[pass   ] cap").unwrap();
        assert!(fail < pass, "{text}");
        assert!(text.contains("cosine = unknown"), "{text}");
        assert!(
            text.contains("pgq verify: FAIL (2 checks: 1 fail, 1 pass)"),
            "{text}"
        );
    }

    #[test]
    fn markdown_escapes_cells_and_folds_passing_checks() {
        let mut r = sample();
        r.push(Check::new("x|y", Status::Warn, "a <b> | `c`\nd"));
        let md = r.to_markdown();
        assert!(
            md.contains("| ⚠️ warn | `x\\|y` | a &lt;b&gt; \\| 'c' d |"),
            "{md}"
        );
        assert!(
            md.contains("<details><summary>1 passing check(s)</summary>"),
            "{md}"
        );
        let attention = md.find("fidelity.w").unwrap();
        assert!(attention < md.find("<details>").unwrap());
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        let v: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"], "fail");
        assert_eq!(v["checks"][0]["figures"][1]["value"], 11_017);
    }
}
