//! How `verify` and `audit` print their report, and their exit code.

use clap::Args;
use pgq_verifier::{Report, Status};

use crate::exit::{CliResult, CHECK_FAILED, OK};

/// Text by default; one of these instead.
#[derive(Args, Debug, Clone)]
#[group(multiple = false)]
pub struct ReportFormat {
    /// Print the report as JSON (for CI).
    #[arg(long)]
    pub json: bool,
    /// Print the report as GitHub Markdown (to paste in a pull request).
    #[arg(long)]
    pub markdown: bool,
}

/// Prints `report` and returns the exit code: 1 when a check failed.
pub fn emit(report: &Report, format: &ReportFormat) -> CliResult<u8> {
    if format.json {
        println!("{}", report.to_json());
    } else if format.markdown {
        print!("{}", report.to_markdown());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.status == Status::Fail {
        CHECK_FAILED
    } else {
        OK
    })
}
