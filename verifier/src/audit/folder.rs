//! Reading a record folder: which files it holds, and their contents read
//! with bounds (a log may be any size; nothing is allocated from a size the
//! filesystem or a file declares, only from bytes actually read).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::AuditError;

/// Per log, at most this much is read: the first half and the last half,
/// since a log's seed and hyperparameters are at its start and its sizes
/// and scores at its end. Real logs are tens of kilobytes.
pub const LOG_READ_LIMIT: u64 = 64 << 20;

/// submission.json files are a few kilobytes; anything past this is not
/// one, and is reported rather than read.
pub const SUBMISSION_READ_LIMIT: u64 = 1 << 20;

pub const SUBMISSION_NAME: &str = "submission.json";

/// Extensions of files that may be counted as code.
const CODE_EXTENSIONS: &[&str] = &["py", "sh", "c", "cc", "cpp", "cu", "cuh", "h", "hpp", "rs"];

/// The folder's top-level files, sorted by name.
pub struct RecordFolder {
    pub submission: Option<SubmissionFile>,
    pub logs: Vec<LogFile>,
    pub code: Vec<FileEntry>,
    pub other: Vec<FileEntry>,
}

#[derive(Debug, Clone)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
}

pub struct SubmissionFile {
    pub bytes: u64,
    /// The raw bytes, or why they could not be read.
    pub content: Result<Vec<u8>, String>,
}

pub struct LogFile {
    pub name: String,
    pub bytes: u64,
    /// The text (invalid UTF-8 replaced), or why it could not be read.
    pub text: Result<String, String>,
    /// Bytes in the middle of the file left unread (over the limit).
    pub skipped_bytes: u64,
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
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            // Follows symlinks: a link to a regular file is read like one,
            // a link to a device or a folder is skipped.
            if let Ok(meta) = fs::metadata(entry.path()) {
                if meta.is_file() {
                    files.push(FileEntry {
                        name: entry.file_name().to_string_lossy().into_owned(),
                        bytes: meta.len(),
                    });
                }
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));

        let mut folder = RecordFolder {
            submission: None,
            logs: Vec::new(),
            code: Vec::new(),
            other: Vec::new(),
        };
        for file in files {
            let path = dir.join(&file.name);
            if file.name == SUBMISSION_NAME {
                folder.submission = Some(SubmissionFile {
                    bytes: file.bytes,
                    content: read_submission(&path, file.bytes).map_err(|e| e.to_string()),
                });
            } else if extension(&file.name) == Some("log") {
                let (text, skipped_bytes) = match read_log(&path, file.bytes) {
                    Ok((text, skipped)) => (Ok(text), skipped),
                    Err(why) => (Err(why.to_string()), 0),
                };
                folder.logs.push(LogFile {
                    name: file.name,
                    bytes: file.bytes,
                    text,
                    skipped_bytes,
                });
            } else if extension(&file.name).is_some_and(|e| CODE_EXTENSIONS.contains(&e)) {
                folder.code.push(file);
            } else {
                folder.other.push(file);
            }
        }
        Ok(folder)
    }
}

fn extension(name: &str) -> Option<&str> {
    Path::new(name).extension().and_then(|e| e.to_str())
}

fn read_submission(path: &Path, declared: u64) -> io::Result<Vec<u8>> {
    if declared > SUBMISSION_READ_LIMIT {
        return Err(io::Error::other(format!(
            "{declared} bytes, over the {SUBMISSION_READ_LIMIT}-byte limit for a submission.json"
        )));
    }
    let mut bytes = Vec::new();
    File::open(path)?
        .take(SUBMISSION_READ_LIMIT)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The log's text and how many bytes of its middle were skipped.
fn read_log(path: &Path, declared: u64) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    if declared <= LOG_READ_LIMIT {
        let mut bytes = Vec::new();
        file.take(LOG_READ_LIMIT).read_to_end(&mut bytes)?;
        return Ok((String::from_utf8_lossy(&bytes).into_owned(), 0));
    }
    let half = LOG_READ_LIMIT / 2;
    let mut head = Vec::new();
    (&mut file).take(half).read_to_end(&mut head)?;
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
