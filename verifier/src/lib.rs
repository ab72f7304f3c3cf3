//! Checks of parameter-golf artifacts and records, for reviewers and CI.
//!
//! - [`report`]: the one [`Report`] every check writes into, rendered as
//!   text, Markdown or JSON.
//! - [`verify`]: an artifact: structure and CRCs, the 16,000,000-byte cap
//!   with the code bytes, decode fidelity against a reference checkpoint,
//!   the decode digest.
//! - [`inspect`]: where an artifact's bytes go (`pgq inspect --json`).
//! - [`audit`]: a record folder as a reviewer reads it: submission.json,
//!   train logs, code files.
//! - [`import`]: today's `.ptz` artifacts (torch.save + byte shuffle +
//!   compressor) into `.pgq`, through a restricted pickle reader that never
//!   executes anything.

#![forbid(unsafe_code)]

pub mod audit;
pub mod format;
pub mod import;
pub mod inspect;
pub mod layers;
pub mod report;
pub mod verify;

pub use report::{Check, Figure, Report, Status};

pub use pgq_format::CAP_BYTES;
