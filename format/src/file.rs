//! Reading input files the one safe way every pgq tool uses: open first,
//! without blocking, then check the open handle (not the path) is a regular
//! file, and read at most a bound. A FIFO, a device, a directory, or a
//! symlink flipped to one between a check and an open is refused, never
//! waited on; nothing is allocated from the size a file declares.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading without blocking and checks, on the open
/// handle, that it is a regular file. Returns the file and its length.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    }
    Ok((file, meta.len()))
}

/// The whole of the regular file `path`, refused when it holds more than
/// `max_bytes` (checked on the handle's length, and again on the bytes
/// read, so a file that grows while read is caught too).
pub fn read_regular(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let (file, declared) = open_regular(path)?;
    let over = |bytes: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{bytes} bytes, over the limit of {max_bytes}"),
        )
    };
    if declared > max_bytes {
        return Err(over(declared));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(over(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_only_and_within_the_bound() {
        let dir = std::env::temp_dir().join(format!("pgq-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.txt");
        std::fs::write(&f, b"hello").unwrap();
        assert_eq!(read_regular(&f, 5).unwrap(), b"hello");
        assert!(read_regular(&f, 4)
            .unwrap_err()
            .to_string()
            .contains("over the limit"));
        assert!(read_regular(&dir, 10)
            .unwrap_err()
            .to_string()
            .contains("directory"));
        #[cfg(unix)]
        {
            let dev = Path::new("/dev/zero");
            if dev.exists() {
                let error = read_regular(dev, 10).unwrap_err();
                assert!(error.to_string().contains("not a regular file"), "{error}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
