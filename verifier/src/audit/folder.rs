//! Reading a record folder: every file of it and of its subfolders, sorted
//! into the submission, candidate logs, code, documents and the rest, with
//! bounds on everything (a folder may hold anything: nothing is allocated
//! from a size the filesystem or a file declares, only from bytes read).
//!
//! Files are sorted by content and extension, never by a name pattern:
//! records name their logs `train_seed42.log`, `train_v0.txt`,
//! `logs/train0.txt` or `ternary_log_42.txt`, so every text file that is not
//! code, a document or structured data is a candidate log, and the log
//! parser decides by its lines whether it is one.
//!
//! Each file is opened first and checked after (`fstat` on the open
//! handle), without blocking: a FIFO, a device or a symlink flipped between
//! a listing and the open is refused rather than read or waited on.
//! Symlinked folders are not followed (no loops), the walk stops at
//! [`MAX_DEPTH`] and [`MAX_ENTRIES`], and all text read from one folder is
//! bounded by [`FOLDER_READ_BUDGET`].

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use pgq_format::file::open_regular;

use super::AuditError;

/// Per text file, at most this much is read: the first half and the last
/// half, since a log's seed and hyperparameters are at its start and its
/// sizes and scores at its end. Real logs are at most a few hundred
/// kilobytes (the 4-hour run's is 180 KB).
pub const LOG_READ_LIMIT: u64 = 8 << 20;

/// All text read from one folder, logs and documents together: bounds the
/// time an audit takes whatever the folder holds.
pub const FOLDER_READ_BUDGET: u64 = 32 << 20;

/// submission.json files are a few kilobytes; anything past this is not
/// one, and is reported rather than read.
pub const SUBMISSION_READ_LIMIT: u64 = 1 << 20;

/// READMEs are read for the command that names the counted script and for
/// the evaluation they say is scored.
const DOC_READ_LIMIT: u64 = 1 << 20;

/// Subfolders deeper than this are not read (`logs/` is one level).
pub const MAX_DEPTH: usize = 4;

/// Files and folders visited at most; the rest are reported as skipped.
pub const MAX_ENTRIES: usize = 2_000;

/// The bytes looked at to tell text from binary.
const SNIFF_BYTES: u64 = 8 << 10;

/// Code that may be counted as the submission's code.
const CODE_EXTENSIONS: &[&str] = &[
    "py", "sh", "c", "cc", "cpp", "cu", "cuh", "h", "hpp", "rs", "pyx", "ipynb",
];
/// Documents: they describe runs and may quote log lines, but are not runs.
const DOC_EXTENSIONS: &[&str] = &["md", "markdown", "rst", "html", "htm", "tex"];
/// Structured data and packaging: never logs.
const DATA_EXTENSIONS: &[&str] = &[
    "json", "jsonl", "toml", "yaml", "yml", "cfg", "ini", "csv", "tsv", "lock", "xml", "svg",
];

/// The folder's files, sorted by relative path.
pub struct RecordFolder {
    /// The submission file: `submission.json`, else the only or first
    /// `submission*.json` (`submission_ternary.json`).
    pub submission: Option<SubmissionFile>,
    /// Other `submission*.json` files, not read.
    pub other_submissions: Vec<FileEntry>,
    /// Text files that may be train logs.
    pub texts: Vec<TextFile>,
    pub code: Vec<FileEntry>,
    pub docs: Vec<DocFile>,
    /// Binary files, data, and text files that are not logs.
    pub other: Vec<FileEntry>,
    /// What was not read, and why.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Clone)]
pub struct FileEntry {
    /// The path relative to the folder, `/`-separated, with control
    /// characters escaped (safe to print on a terminal).
    pub name: String,
    pub bytes: u64,
}

pub struct SubmissionFile {
    pub name: String,
    pub bytes: u64,
    /// The raw bytes, or why they could not be read.
    pub content: Result<Vec<u8>, String>,
}

pub struct TextFile {
    pub name: String,
    pub bytes: u64,
    /// The text (invalid UTF-8 replaced), or why it could not be read.
    pub text: Result<String, String>,
    /// Bytes in the middle of the file left unread (over the limit).
    pub skipped_bytes: u64,
}

pub struct DocFile {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub why: String,
}

/// A file found by the walk, before it is read.
struct Found {
    path: PathBuf,
    name: String,
    depth: usize,
}

impl RecordFolder {
    pub fn read(dir: &Path) -> Result<RecordFolder, AuditError> {
        let unreadable = |source| AuditError::Unreadable {
            path: dir.to_path_buf(),
            source,
        };
        if !fs::metadata(dir).map_err(unreadable)?.is_dir() {
            return Err(AuditError::NotAFolder {
                path: dir.to_path_buf(),
            });
        }
        // The top level must be listable; a subfolder that is not is
        // reported as skipped.
        fs::read_dir(dir).map_err(unreadable)?;
        let mut walk = Walk::default();
        walk.visit(dir, "", 0);
        walk.found.sort_by(|a, b| a.name.cmp(&b.name));

        let mut folder = RecordFolder {
            submission: None,
            other_submissions: Vec::new(),
            texts: Vec::new(),
            code: Vec::new(),
            docs: Vec::new(),
            other: Vec::new(),
            skipped: walk.skipped,
        };
        let submission = choose_submission(&walk.found);
        let mut budget = FOLDER_READ_BUDGET;
        for found in walk.found {
            folder.sort(found, submission.as_deref(), &mut budget);
        }
        Ok(folder)
    }

    fn sort(&mut self, found: Found, submission: Option<&str>, budget: &mut u64) {
        let name = found.name;
        let (mut file, bytes) = match open_regular(&found.path) {
            Ok(opened) => opened,
            Err(why) => {
                self.skipped.push(Skipped {
                    name,
                    why: why.to_string(),
                });
                return;
            }
        };
        if is_submission_name(&name) {
            if submission == Some(name.as_str()) {
                let content = read_refusing_over(&mut file, bytes, SUBMISSION_READ_LIMIT);
                self.submission = Some(SubmissionFile {
                    name,
                    bytes,
                    content: content.map_err(|e| e.to_string()),
                });
            } else {
                self.other_submissions.push(FileEntry { name, bytes });
            }
            return;
        }
        let entry = FileEntry {
            name: name.clone(),
            bytes,
        };
        let extension = extension(&name);
        let is = |kind: &[&str]| extension.as_deref().is_some_and(|e| kind.contains(&e));
        if is(CODE_EXTENSIONS) {
            self.code.push(entry);
            return;
        }
        if is(DATA_EXTENSIONS) {
            self.other.push(entry);
            return;
        }
        match is_text(&mut file) {
            Ok(true) => {}
            Ok(false) => {
                self.other.push(entry);
                return;
            }
            Err(why) => {
                self.skipped.push(Skipped {
                    name,
                    why: why.to_string(),
                });
                return;
            }
        }
        if *budget == 0 {
            self.skipped.push(Skipped {
                name,
                why: format!(
                    "not read: the folder's {} MiB read budget is spent",
                    FOLDER_READ_BUDGET >> 20
                ),
            });
            return;
        }
        let limit = LOG_READ_LIMIT.min(*budget);
        if is(DOC_EXTENSIONS) {
            let limit = limit.min(DOC_READ_LIMIT);
            // A README past the limit is read in part: its start is enough.
            if let Ok(bytes) = read_prefix(&mut file, limit) {
                *budget = budget.saturating_sub(bytes.len() as u64);
                self.docs.push(DocFile {
                    name,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                });
            }
            return;
        }
        let (text, skipped_bytes) = match read_head_and_tail(&mut file, bytes, limit) {
            Ok((text, skipped)) => {
                *budget = budget.saturating_sub(bytes.saturating_sub(skipped));
                (Ok(text), skipped)
            }
            Err(why) => (Err(why.to_string()), 0),
        };
        self.texts.push(TextFile {
            name,
            bytes,
            text,
            skipped_bytes,
        });
    }
}

#[derive(Default)]
struct Walk {
    found: Vec<Found>,
    skipped: Vec<Skipped>,
    entries: usize,
    /// Entries not visited once MAX_ENTRIES was reached.
    over: usize,
}

impl Walk {
    fn visit(&mut self, dir: &Path, prefix: &str, depth: usize) {
        let listing = match fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(why) => {
                self.skipped.push(Skipped {
                    name: format!("{prefix}/"),
                    why: format!("cannot list the folder: {why}"),
                });
                return;
            }
        };
        let mut children: Vec<(String, PathBuf)> = Vec::new();
        for entry in listing {
            let Ok(entry) = entry else { continue };
            if self.entries >= MAX_ENTRIES {
                self.over += 1;
                continue;
            }
            self.entries += 1;
            let name = format!(
                "{prefix}{}",
                safe_name(&entry.file_name().to_string_lossy())
            );
            children.push((name, entry.path()));
        }
        if self.over > 0 && depth == 0 {
            self.skipped.push(Skipped {
                name: "…".into(),
                why: format!(
                    "{} more entries not read: at most {MAX_ENTRIES} files and folders are",
                    self.over
                ),
            });
        }
        children.sort();
        for (name, path) in children {
            let Ok(link) = fs::symlink_metadata(&path) else {
                continue;
            };
            let target = if link.file_type().is_symlink() {
                match fs::metadata(&path) {
                    Ok(target) if target.is_dir() => {
                        self.skipped.push(Skipped {
                            name,
                            why: "a symlink to a folder: not followed".into(),
                        });
                        continue;
                    }
                    Ok(target) => target,
                    Err(why) => {
                        self.skipped.push(Skipped {
                            name,
                            why: format!("a dangling symlink: {why}"),
                        });
                        continue;
                    }
                }
            } else {
                link
            };
            if target.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    self.skipped.push(Skipped {
                        name: format!("{name}/"),
                        why: format!("deeper than {MAX_DEPTH} levels: not read"),
                    });
                } else {
                    self.visit(&path, &format!("{name}/"), depth + 1);
                }
            } else {
                // Files, and whatever else is there (FIFOs, sockets,
                // devices): the open refuses what is not a regular file.
                self.found.push(Found { path, name, depth });
            }
        }
    }
}

/// `submission.json` at the shallowest level, else the first
/// `submission*.json` there.
fn choose_submission(found: &[Found]) -> Option<String> {
    let candidates: Vec<&Found> = found
        .iter()
        .filter(|f| is_submission_name(&f.name))
        .collect();
    let shallowest = candidates.iter().map(|f| f.depth).min()?;
    let level: Vec<&&Found> = candidates
        .iter()
        .filter(|f| f.depth == shallowest)
        .collect();
    level
        .iter()
        .find(|f| base_name(&f.name).eq_ignore_ascii_case("submission.json"))
        .or(level.first())
        .map(|f| f.name.clone())
}

fn is_submission_name(name: &str) -> bool {
    let base = base_name(name).to_ascii_lowercase();
    base.starts_with("submission") && base.ends_with(".json")
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn extension(name: &str) -> Option<String> {
    let base = base_name(name);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// A file name made safe to print: control characters (a newline, an
/// escape sequence) are written as `\u{..}` escapes, so a name cannot forge
/// a line of a report.
pub fn safe_name(name: &str) -> String {
    crate::format::printable(name).into_owned()
}

/// Text: fewer than one byte in 64 of the first [`SNIFF_BYTES`] is a
/// control character other than whitespace and escape. A log with a stray
/// NUL or invalid UTF-8 is still read; a torch.save zip, a compressed
/// artifact or a tokenizer model is not.
fn is_text(file: &mut File) -> io::Result<bool> {
    let mut head = Vec::new();
    (&mut *file).take(SNIFF_BYTES).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let control = head
        .iter()
        .filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b)) || b == 0x7f)
        .count();
    Ok(control * 64 < head.len().max(1))
}

/// A submission.json: refused, not cut, past the limit.
fn read_refusing_over(file: &mut File, declared: u64, limit: u64) -> io::Result<Vec<u8>> {
    if declared > limit {
        return Err(io::Error::other(format!(
            "{declared} bytes, over the {limit}-byte limit for a submission.json"
        )));
    }
    read_prefix(file, limit)
}

/// At most the first `limit` bytes.
fn read_prefix(file: &mut File, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The file's text and how many bytes of its middle were skipped.
fn read_head_and_tail(file: &mut File, declared: u64, limit: u64) -> io::Result<(String, u64)> {
    if declared <= limit {
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes)?;
        return Ok((String::from_utf8_lossy(&bytes).into_owned(), 0));
    }
    let half = limit / 2;
    let mut head = Vec::new();
    (&mut *file).take(half).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(declared - half))?;
    let mut tail = Vec::new();
    file.take(half).read_to_end(&mut tail)?;
    // Each half is cut mid-line at the gap: drop the partial lines so no
    // figure is read from half a line.
    let head = &head[..head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)];
    let tail = &tail[tail
        .iter()
        .position(|&b| b == b'\n')
        .map_or(tail.len(), |i| i + 1)..];
    let read = (head.len() + tail.len()) as u64;
    let mut text = String::from_utf8_lossy(head).into_owned();
    text.push_str(&String::from_utf8_lossy(tail));
    Ok((text, declared.saturating_sub(read)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_extensions() {
        assert!(is_submission_name("submission.json"));
        assert!(is_submission_name("sub/Submission_ternary.json"));
        assert!(!is_submission_name("my_submission.json"));
        assert_eq!(extension("logs/train0.txt").as_deref(), Some("txt"));
        assert_eq!(extension(".hidden"), None);
        assert_eq!(extension("README.MD").as_deref(), Some("md"));
        assert_eq!(safe_name("a\nb\u{1b}[0m"), "a\\u{a}b\\u{1b}[0m");
    }
}
