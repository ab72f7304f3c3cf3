//! Reading inputs with a size check first, and writing outputs atomically.

use std::io::Write;
use std::path::Path;

use crate::exit::{CliError, CliResult, Malformed};

/// Reads a whole regular file of at most `max_bytes`, checked on the open
/// handle: a huge or endless input (a FIFO, /dev/zero) is refused, not
/// slurped or waited on (pgq_format::file).
pub fn read_limited(path: &Path, max_bytes: u64) -> CliResult<Vec<u8>> {
    pgq_format::file::read_regular(path, max_bytes)
        .malformed(format!("cannot read {}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so a reader never sees a half-written artifact.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> CliResult {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.malformed(format!("cannot write {}", path.display()))
}

/// The `--code` files counted against the cap (the training script and
/// whatever it ships with), as (path as shown, bytes). A path that is not a
/// readable file is an error naming it.
pub fn code_file_sizes(paths: &[std::path::PathBuf]) -> CliResult<Vec<(String, u64)>> {
    paths
        .iter()
        .map(|path| {
            let meta =
                std::fs::metadata(path).malformed(format!("cannot read {}", path.display()))?;
            if !meta.is_file() {
                return Err(CliError::usage(format!(
                    "--code {}: not a file",
                    path.display()
                )));
            }
            Ok((path.display().to_string(), meta.len()))
        })
        .collect()
}
