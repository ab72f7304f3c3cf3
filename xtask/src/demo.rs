//! `cargo xtask demo [PGQ DEMO OPTIONS]`: the README's first command. On a
//! fresh machine it installs what the viewer's bundle needs
//! (`scripts/setup.sh viewer`: clang, the wasm32 target, the pinned
//! wasm-bindgen CLI), builds the bundle, builds `pgq` in release with the
//! bundle embedded, runs `pgq demo`, and prints the `pgq view` command.
//!
//! The demo does not need the viewer: when the viewer cannot be built (no
//! apt, no network for `cargo install`), this says why and runs the demo
//! anyway; `pgq view` then says which command builds the viewer.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run};

pub fn demo(args: &[String]) -> Result<(), String> {
    let root = root();
    let asks_help = args.iter().any(|a| a == "-h" || a == "--help");
    if !asks_help {
        let viewer = run(Command::new("bash")
            .current_dir(&root)
            .args(["scripts/setup.sh", "viewer"]))
        .and_then(|()| crate::web::web(&[]));
        if let Err(e) = viewer {
            eprintln!("xtask: the browser viewer was not built, the demo runs without it:\n  {e}");
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "pgq"]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let pgq = target_dir.join("release").join("pgq");
    run(Command::new(&pgq).current_dir(&root).arg("demo").args(args))?;
    if !asks_help {
        // On stderr: `--json` keeps stdout for the report.
        eprintln!(
            "\nsee where the bytes go, in the browser: {} view {}",
            relative(&pgq, &root),
            out_dir(args).join("demo.pgq").display()
        );
    }
    Ok(())
}

/// The folder `pgq demo` writes to: `--out DIR`, `--out=DIR`, or its
/// default.
fn out_dir(args: &[String]) -> PathBuf {
    let mut out = PathBuf::from("demo-out");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--out" {
            if let Some(v) = it.next() {
                out = PathBuf::from(v);
            }
        } else if let Some(v) = a.strip_prefix("--out=") {
            out = PathBuf::from(v);
        }
    }
    out
}

fn relative(path: &std::path::Path, root: &std::path::Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn out_dir_follows_pgq_demos_option() {
        assert_eq!(out_dir(&strings(&[])), PathBuf::from("demo-out"));
        assert_eq!(
            out_dir(&strings(&["--rtn", "--out", "x"])),
            PathBuf::from("x")
        );
        assert_eq!(
            out_dir(&strings(&["--out=y/z", "--codec=rans"])),
            PathBuf::from("y/z")
        );
        assert_eq!(
            out_dir(&strings(&["--out", "a", "--out", "b"])),
            PathBuf::from("b")
        );
    }
}
