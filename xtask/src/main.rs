//! Project automation, run as `cargo xtask COMMAND` (the alias is in
//! .cargo/config.toml): `web` builds the browser viewer (web.rs), `demo`
//! is the README's first command (demo.rs).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod demo;
mod web;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("web") => web::web(&args[1..]),
        Some("demo") => demo::demo(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask web [--release | --dev]
       cargo xtask demo [PGQ DEMO OPTIONS]

  web    build the browser viewer (pgq-web) into web/dist: wasm32 build,
         wasm-bindgen --target web, index.html and static/ copied, sizes
         printed raw and gzipped. --release (the default) uses the
         size-tuned `wasm-release` profile; --dev a debug build.
  demo   the README's demo in one command: installs the viewer's tools if
         missing (scripts/setup.sh viewer), builds the viewer, builds pgq
         (release) with the viewer embedded, runs `pgq demo` with the
         options given (see `pgq demo --help`), and prints the `pgq view`
         command that shows the artifact in the browser.";

fn root() -> PathBuf {
    // xtask/ is one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}
