//! `--device`, `pgq doctor` and `pgq compare` through the real binary. On a
//! machine without CUDA (CI): auto falls back with a note, cuda fails with
//! exit 3 and a clear message, never a panic.

mod support;

use std::path::{Path, PathBuf};

use support::{code, json, pgq, scratch, stderr, stdout, tiny_demo};

fn recipe() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../recipes/default.toml")
        .display()
        .to_string()
}

/// The tiny demo model and its Hessians, written and nothing else.
fn tiny_inputs(dir: &Path) -> (String, String) {
    let inputs = tiny_demo(dir);
    assert!(
        !dir.join("demo.pgq").exists(),
        "--model-only must not quantize"
    );
    inputs
}

fn cuda_usable() -> bool {
    pgq_quantizer::cuda::probe().unavailable().is_none()
}

#[test]
fn without_cuda_auto_falls_back_and_cuda_is_a_clear_usage_error() {
    if cuda_usable() {
        eprintln!("skipped: this machine has CUDA (bench/gpu/check.sh covers it)");
        return;
    }
    let dir = scratch("device-fallback");
    let (model, hessians) = tiny_inputs(&dir);
    let out = dir.join("auto.pgq").display().to_string();
    let args = |device: &'static str, out: &str| {
        let mut a: Vec<String> = ["quantize", &model, "-o", out, "--recipe", &recipe()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend([
            "--hessians".into(),
            hessians.clone(),
            "--codec".into(),
            "zstd".into(),
        ]);
        a.extend(["--json".into(), "--device".into(), device.into()]);
        a
    };
    let run = |a: Vec<String>| pgq(&a.iter().map(String::as_str).collect::<Vec<_>>());

    let o = run(args("auto", &out));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let note = stderr(&o);
    assert!(
        note.contains("--device auto: quantizing on the CPU") && note.contains("not available"),
        "{note}"
    );
    let doc = json(&o);
    assert_eq!(doc["backend"]["backend"], "cpu");
    assert!(doc["backend"]["matrices"].as_u64().unwrap() > 0);

    let cuda_out = dir.join("cuda.pgq");
    let o = run(args("cuda", &cuda_out.display().to_string()));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let message = stderr(&o);
    assert!(
        message.contains("--device cuda") && !message.contains("panicked"),
        "{message}"
    );
    assert!(!cuda_out.exists(), "no artifact on failure");

    let o = run(args("cpu", &dir.join("cpu.pgq").display().to_string()));
    assert_eq!(code(&o), 0);
    assert!(!stderr(&o).contains("--device auto"), "{}", stderr(&o));

    // The same codes either way: the fallback is the CPU path.
    let o = pgq(&["compare", &out, &dir.join("cpu.pgq").display().to_string()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("pass"));
}

#[test]
fn repeat_times_the_codes_warm_and_checks_they_do_not_move() {
    let dir = scratch("device-repeat");
    let (model, hessians) = tiny_inputs(&dir);
    let out = dir.join("r.pgq").display().to_string();
    let recipe = recipe();
    let quantize = |extra: &[&str]| {
        let mut args = vec![
            "quantize",
            &model,
            "-o",
            &out,
            "--recipe",
            &recipe,
            "--hessians",
            &hessians,
            "--codec",
            "zstd",
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        let o = pgq(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        o
    };
    let doc = json(&quantize(&["--repeat", "2", "--json"]));
    assert_eq!(doc["repeat"]["runs"], 2);
    assert_eq!(doc["repeat"]["identical"], true);
    assert!(doc["repeat"]["codes_ms_median"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["backend"]["fallbacks"].as_array().unwrap().len(), 0);
    let text = stdout(&quantize(&["--repeat", "1"]));
    assert!(
        text.contains("backend: cpu: codes of") && text.contains("repeat: 1 warm runs"),
        "{text}"
    );
}

#[test]
fn compare_finds_differing_codes() {
    let dir = scratch("device-compare");
    let (model, _) = tiny_inputs(&dir);
    let a = dir.join("a.pgq").display().to_string();
    let b = dir.join("b.pgq").display().to_string();
    for (out, k) in [(&a, "12.85"), (&b, "6")] {
        let o = pgq(&[
            "quantize", &model, "-o", out, "--k", k, "--codec", "zstd", "--device", "cpu",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let o = pgq(&["compare", &a, &a, "--json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)["worst_agreement"], 1.0);
    let o = pgq(&["compare", &a, &b, "--json"]);
    assert_eq!(code(&o), 1);
    let doc = json(&o);
    assert!(doc["worst_agreement"].as_f64().unwrap() < 0.9);
    let fc = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "blocks.0.mlp.fc.weight")
        .unwrap();
    assert!(fc["scale_agreement"].as_f64().unwrap() < 0.5);
    // A tolerance lets near-identical artifacts pass.
    let o = pgq(&["compare", &a, &b, "--min-agreement", "0"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
}

#[test]
fn doctor_lists_the_backends_and_compiles_the_kernels_when_nvrtc_is_there() {
    let o = pgq(&["doctor"]);
    let text = stdout(&o);
    assert_eq!(code(&o), 0, "{text}{}", stderr(&o));
    for needle in [
        "cpu:",
        "NVIDIA driver (libcuda.so.1):",
        "NVRTC",
        "cuSOLVER",
        "--device auto uses:",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    let kernels = pgq_quantizer::cuda::compile::KERNELS.len();
    if pgq_quantizer::cuda::compile::nvrtc_present() {
        assert!(
            text.contains(&format!("{kernels} kernels compiled for sm_90")) || cuda_usable(),
            "{text}"
        );
        assert_eq!(code(&pgq(&["doctor", "--require-nvrtc"])), 0);
    } else {
        assert!(text.contains("kernels: not compiled"), "{text}");
        let o = pgq(&["doctor", "--require-nvrtc", "--json"]);
        assert_eq!(code(&o), 1);
        assert_eq!(json(&o)["passed"], false);
    }
    if !cuda_usable() {
        assert_eq!(code(&pgq(&["doctor", "--require-cuda"])), 1);
        let o = pgq(&["doctor", "--self-test"]);
        assert_eq!(code(&o), 1);
        assert!(
            stdout(&o).contains("self-test: FAILED to run"),
            "{}",
            stdout(&o)
        );
    }
}
