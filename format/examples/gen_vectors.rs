//! Writes the conformance vectors into spec/vectors/ (or the folder given as
//! the first argument). Deterministic: running it twice gives the same bytes.

#[path = "../tests/support/rng.rs"]
mod rng;
#[path = "../tests/support/vectors.rs"]
mod vectors;

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors"));
    for sub in ["positive", "negative"] {
        let dir = root.join(sub);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
    }
    let files = vectors::files();
    for (path, bytes) in &files {
        std::fs::write(root.join(path), bytes)?;
    }
    println!("wrote {} files to {}", files.len(), root.display());
    Ok(())
}
