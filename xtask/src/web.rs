//! `cargo xtask web [--release | --dev]` builds the browser viewer:
//!
//! 1. `cargo build -p pgq-web --target wasm32-unknown-unknown` (profile
//!    `wasm-release`, size-tuned, by default; `--dev` for a debug build);
//! 2. checks that the `wasm-bindgen` CLI is the exact version of the
//!    `wasm-bindgen` crate in Cargo.lock (their outputs only fit together
//!    at the same version) and says how to install it otherwise;
//! 3. `wasm-bindgen --target web --no-typescript --out-dir web/dist
//!    --out-name pgq_web`;
//! 4. copies web/index.html and web/static/ into web/dist;
//! 5. prints every file's size, raw and gzipped, and the total.
//!
//! Other files in web/dist (an artifact copied there to be served beside
//! the viewer) are left alone and not counted.
//!
//! No network and no other tool: wasm-opt is not used (Debian's is too old
//! for the wasm features rustc emits).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run, USAGE};

/// The goal for the whole bundle, gzipped.
const GZIP_BUDGET: u64 = 600 * 1024;

pub fn web(args: &[String]) -> Result<(), String> {
    let mut release = true;
    for a in args {
        match a.as_str() {
            "--release" => release = true,
            "--dev" | "--debug" => release = false,
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}")),
        }
    }
    let root = root();
    let pinned = locked_version(&root.join("Cargo.lock"), "wasm-bindgen")?;
    // Check the CLI first: a missing tool should not cost a build.
    check_cli(&pinned)?;

    let profile = if release { "wasm-release" } else { "dev" };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "-p",
        "pgq-web",
        "--bin",
        "pgq-web",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        profile,
    ]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let profile_dir = if release { "wasm-release" } else { "debug" };
    let wasm = target_dir
        .join("wasm32-unknown-unknown")
        .join(profile_dir)
        .join("pgq-web.wasm");
    if !wasm.is_file() {
        return Err(format!("the build did not produce {}", wasm.display()));
    }

    let dist = root.join("web").join("dist");
    // Only this command's outputs are replaced: an artifact copied into
    // web/dist to be served beside the viewer stays.
    for stale in ["pgq_web.js", "pgq_web_bg.wasm", "index.html", "static"] {
        let path = dist.join(stale);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    let mut bindgen = Command::new("wasm-bindgen");
    bindgen
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            "pgq_web",
        ])
        .arg("--out-dir")
        .arg(&dist)
        .arg(&wasm);
    if !release {
        bindgen.arg("--debug");
    }
    run(&mut bindgen)?;

    copy(&root.join("web/index.html"), &dist.join("index.html"))?;
    copy_dir(&root.join("web/static"), &dist.join("static"))?;

    report_sizes(&dist, release)
}

/// The version of `package` in Cargo.lock (the crate that is compiled).
fn locked_version(lock: &Path, package: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(lock)
        .map_err(|e| format!("cannot read {}: {e}", lock.display()))?;
    let wanted = format!("name = \"{package}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(v.to_string());
            }
        }
    }
    Err(format!(
        "{package} is not in {}: run `cargo build -p pgq-web` once",
        lock.display()
    ))
}

fn install_hint(version: &str) -> String {
    format!("cargo install wasm-bindgen-cli --version {version} --locked")
}

/// The `wasm-bindgen` CLI must be the pinned version exactly.
fn check_cli(pinned: &str) -> Result<(), String> {
    let output = Command::new("wasm-bindgen").arg("--version").output();
    let found = match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => {
            return Err(format!(
                "`wasm-bindgen --version` failed ({}): install the CLI with\n    {}",
                o.status,
                install_hint(pinned)
            ))
        }
        Err(e) => {
            return Err(format!(
                "the wasm-bindgen CLI is not installed ({e}); install version {pinned}, the one \
                 pgq-web pins, with\n    {}",
                install_hint(pinned)
            ))
        }
    };
    // "wasm-bindgen 0.2.129"
    let version = found.split_whitespace().nth(1).unwrap_or("");
    if version != pinned {
        return Err(format!(
            "wasm-bindgen CLI {version:?} ({found}) differs from the wasm-bindgen crate {pinned} \
             that pgq-web pins (web/Cargo.toml, Cargo.lock); their outputs only fit together at \
             the same version. Install it with\n    {}",
            install_hint(pinned)
        ));
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            copy(&path, &dest)?;
        }
    }
    Ok(())
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Size of `bytes` gzipped at the best level (what a server sends).
fn gzip_len(bytes: &[u8]) -> Result<u64, String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|_| encoder.finish())
        .map(|v| v.len() as u64)
        .map_err(|e| format!("gzip failed: {e}"))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report_sizes(dist: &Path, release: bool) -> Result<(), String> {
    let mut rows = Vec::new();
    let (mut raw_total, mut gz_total) = (0u64, 0u64);
    let mut bundle = vec![
        dist.join("index.html"),
        dist.join("pgq_web.js"),
        dist.join("pgq_web_bg.wasm"),
    ];
    bundle.extend(files_under(&dist.join("static"))?);
    for path in bundle {
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let gz = gzip_len(&bytes)?;
        raw_total += bytes.len() as u64;
        gz_total += gz;
        let name = path
            .strip_prefix(dist)
            .unwrap_or(&path)
            .display()
            .to_string();
        rows.push((name, bytes.len() as u64, gz));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(5);
    println!("\nweb/dist ({}):", if release { "release" } else { "dev" });
    println!(
        "  {:<width$}  {:>11}  {:>11}",
        "file", "raw bytes", "gzip bytes"
    );
    for (name, raw, gz) in &rows {
        println!(
            "  {name:<width$}  {:>11}  {:>11}",
            thousands(*raw),
            thousands(*gz)
        );
    }
    println!(
        "  {:<width$}  {:>11}  {:>11}",
        "total",
        thousands(raw_total),
        thousands(gz_total)
    );
    let verdict = if gz_total <= GZIP_BUDGET {
        "within"
    } else {
        "OVER"
    };
    println!(
        "\nbundle: {} bytes raw, {} bytes gzipped ({verdict} the {} KB gzip budget)",
        thousands(raw_total),
        thousands(gz_total),
        GZIP_BUDGET / 1024
    );
    println!(
        "serve it: python3 -m http.server --bind 127.0.0.1 --directory web/dist 8000, then open \
         http://127.0.0.1:8000/ (add ?artifact=/model.pgq to preload a file copied there)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_wasm_bindgen_is_read_from_the_lock_file() {
        let dir = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("Cargo.lock");
        std::fs::write(
            &lock,
            "[[package]]\nname = \"wasm-bindgen-shared\"\nversion = \"0.2.1\"\n\n\
             [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.129\"\n",
        )
        .unwrap();
        assert_eq!(locked_version(&lock, "wasm-bindgen").unwrap(), "0.2.129");
        assert!(locked_version(&lock, "leptos").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_workspace_pins_wasm_bindgen_exactly() {
        let root = root();
        let manifest = std::fs::read_to_string(root.join("web/Cargo.toml")).unwrap();
        let locked = locked_version(&root.join("Cargo.lock"), "wasm-bindgen").unwrap();
        assert!(
            manifest.contains(&format!("wasm-bindgen = \"={locked}\"")),
            "web/Cargo.toml must pin wasm-bindgen = \"={locked}\""
        );
        assert_eq!(
            install_hint(&locked),
            format!("cargo install wasm-bindgen-cli --version {locked} --locked")
        );
    }

    #[test]
    fn gzip_and_thousands() {
        assert!(gzip_len(&[0u8; 10_000]).unwrap() < 200);
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
