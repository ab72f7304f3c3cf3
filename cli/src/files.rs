//! Reading inputs with a size check first, and writing outputs atomically.

use std::io::Write;
use std::path::Path;

use std::sync::OnceLock;

use pgq_format::{read_header, ReadOptions};

use crate::exit::{CliError, CliResult, Malformed};

/// The memory budget of this run (`--max-memory`).
static MAX_MEMORY: OnceLock<u64> = OnceLock::new();

/// The default budget: what any machine that trains a parameter-golf
/// model has many times over; a real artifact needs under 200 MB.
pub const DEFAULT_MAX_MEMORY: u64 = 2 << 30;

pub fn set_max_memory(bytes: u64) {
    let _ = MAX_MEMORY.set(bytes);
}

pub fn max_memory() -> u64 {
    MAX_MEMORY.get().copied().unwrap_or(DEFAULT_MAX_MEMORY)
}

/// `2GiB`, `512M`, `1000000`: a byte count with an optional decimal (K, M,
/// G) or binary (KiB, MiB, GiB) suffix.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use K, M, G, KiB, MiB or GiB)"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count"))?;
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} overflows 64 bits"))
}

/// Refuses (exit 2) an artifact whose declared contents need more memory
/// than `--max-memory` ([`pgq_format::types::Header::memory_needed`]),
/// before anything is decoded. A file whose header does not parse is left
/// to the read that follows, which reports it precisely.
pub fn check_memory(bytes: &[u8], path: &Path, f32_weights: bool) -> CliResult {
    let Ok(header) = read_header(bytes, &ReadOptions::default()) else {
        return Ok(());
    };
    let needed = header.memory_needed(f32_weights);
    let budget = max_memory();
    if needed <= budget {
        return Ok(());
    }
    let weights: u64 = header
        .tensors
        .iter()
        .fold(0u64, |n, t| n.saturating_add(t.elements()));
    Err(CliError::malformed(anyhow::anyhow!(
        "{} declares {weights} weights in {} bytes: reading it needs about {needed} bytes, over the --max-memory budget of {budget}; raise --max-memory if this machine has the memory",
        path.display(),
        bytes.len()
    )))
}

/// Reads a whole regular file of at most `max_bytes`, checked on the open
/// handle: a huge or endless input (a FIFO, /dev/zero) is refused, not
/// slurped or waited on (pgq_format::file).
pub fn read_limited(path: &Path, max_bytes: u64) -> CliResult<Vec<u8>> {
    pgq_format::file::read_regular(path, max_bytes)
        .malformed(format!("cannot read {}", path.display()))
}

/// Refuses, as a usage error (exit 3), an output path that pgq must not
/// replace: a directory, device node, FIFO or socket (writing there would
/// replace the node with a regular file, or block), or the same file as
/// one of `inputs` (compared by device and inode, not by name, so
/// `-o ./model.safetensors` and a hard link are caught too). Called before
/// the work starts, and again just before writing.
pub fn check_output(path: &Path, inputs: &[&Path]) -> CliResult {
    let Ok(target) = std::fs::metadata(path) else {
        // Nothing there yet (or unreachable: the write will say).
        return Ok(());
    };
    if !target.is_file() {
        let what = if target.is_dir() {
            "a directory"
        } else {
            "not a regular file (a device, FIFO or socket)"
        };
        return Err(CliError::usage(format!(
            "output {} is {what}: pgq writes regular files only, through a temporary file and a rename",
            path.display()
        )));
    }
    for input in inputs {
        if std::fs::metadata(input).is_ok_and(|meta| same_file(&meta, &target)) {
            return Err(CliError::usage(format!(
                "output {} is the input {}: write to another path",
                path.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so a reader never sees a half-written artifact. The temporary
/// file has an unpredictable name and is created exclusively (`O_EXCL`,
/// which does not follow a symlink planted under its name); the target is
/// checked first ([`check_output`]).
pub fn write_atomic(path: &Path, bytes: &[u8], inputs: &[&Path]) -> CliResult {
    write_atomic_with(path, inputs, |out| out.write_all(bytes))
}

/// [`write_atomic`], with the content written by `write` into the
/// temporary file (buffered), so that a large output is never held whole.
pub fn write_atomic_with(
    path: &Path,
    inputs: &[&Path],
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> CliResult {
    check_output(path, inputs)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        unpredictable()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let mut out = std::io::BufWriter::with_capacity(1 << 20, options.open(&tmp)?);
        write(&mut out)?;
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.malformed(format!("cannot write {}", path.display()))
}

/// 64 bits no other process can guess: the standard library's randomly
/// keyed hasher (seeded from the OS), over the clock.
fn unpredictable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
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
