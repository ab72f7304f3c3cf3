//! Exit codes, and the error type that carries one.
//!
//! 0: success. 1: a check failed (the input was read, the verdict is no).
//! 2: the input is malformed or cannot be read. 3: usage error (bad
//! arguments or options). Writing an output that fails is reported as 2
//! too, with the path.

use std::fmt;

pub const OK: u8 = 0;
pub const CHECK_FAILED: u8 = 1;
pub const MALFORMED: u8 = 2;
pub const USAGE: u8 = 3;

#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:#}` prints the whole context chain on one line.
        write!(f, "{:#}", self.error)
    }
}

impl CliError {
    pub fn malformed(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: MALFORMED,
            error: error.into(),
        }
    }
    pub fn usage(message: impl fmt::Display) -> Self {
        CliError {
            code: USAGE,
            error: anyhow::anyhow!("{message}"),
        }
    }
    pub fn check_failed(message: impl fmt::Display) -> Self {
        CliError {
            code: CHECK_FAILED,
            error: anyhow::anyhow!("{message}"),
        }
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

/// Adds context to errors and classifies them as malformed input.
pub trait Malformed<T> {
    fn malformed(self, context: impl fmt::Display) -> CliResult<T>;
}

impl<T, E: Into<anyhow::Error>> Malformed<T> for Result<T, E> {
    fn malformed(self, context: impl fmt::Display) -> CliResult<T> {
        self.map_err(|e| CliError::malformed(e.into().context(context.to_string())))
    }
}
