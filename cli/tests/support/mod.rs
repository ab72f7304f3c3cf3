//! Driving the real `pgq` binary from integration tests.

#![allow(dead_code)] // Each test file uses a different subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn pgq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgq"))
        .args(args)
        .output()
        .expect("run pgq")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh folder under target/ for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// The repository's root (tests run in cli/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// Where the MiniLM weights are (`$PGQ_MINILM`, then
/// `$PGQ_CACHE/minilm/model.safetensors`, then the repository's
/// `.cache/minilm/`), or a failure telling how to fetch them.
pub fn minilm_model() -> PathBuf {
    const HOW: &str = "fetch them with `scripts/fetch-minilm.sh` (writes \
        .cache/minilm/model.safetensors under the repository root), or point \
        PGQ_MINILM at an all-MiniLM-L6-v2 model.safetensors; see docs/REAL_WEIGHTS.md";
    if let Some(p) = std::env::var_os("PGQ_MINILM") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "PGQ_MINILM={} is not a file: {HOW}",
            p.display()
        );
        return p;
    }
    let mut candidates = Vec::new();
    if let Some(cache) = std::env::var_os("PGQ_CACHE") {
        candidates.push(PathBuf::from(cache).join("minilm/model.safetensors"));
    }
    candidates.push(repo_root().join(".cache/minilm/model.safetensors"));
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "the MiniLM weights are missing (looked at {}): {HOW}",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// `pgq quantize` of MiniLM with the default recipe into `out`, with
/// `--codec codec` (the default when `None`) and any `extra` arguments.
pub fn quantize_minilm(out: &Path, codec: Option<&str>, extra: &[&str]) -> Output {
    let model = minilm_model();
    let mut args = vec![
        "quantize",
        model.to_str().expect("utf-8 path"),
        "--drop-non-float",
        "-o",
        out.to_str().expect("utf-8 path"),
    ];
    if let Some(codec) = codec {
        args.extend(["--codec", codec]);
    }
    args.extend(extra);
    pgq(&args)
}

/// `pgq demo --tiny --model-only --write-hessians` into `dir`: the tiny
/// demo model and its synthetic Hessians (paths), nothing quantized.
pub fn tiny_demo(dir: &Path) -> (String, String) {
    let o = pgq(&[
        "demo",
        "--tiny",
        "--model-only",
        "--write-hessians",
        "--out",
        dir.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (
        dir.join("demo.safetensors").display().to_string(),
        dir.join("demo-hessians.safetensors").display().to_string(),
    )
}
