//! `pgq quantize --budget` through the real binary: the tiny demo model
//! with GPTQ and its synthetic Hessians, and real MiniLM weights with RTN
//! (no Hessians), each fitted to several budgets; `--code` and `--cap`;
//! a budget under the smallest artifact (exit 1); a value that is no byte
//! count (exit 3).

use std::path::Path;

mod support;

use support::{code, json, pgq, quantize_minilm, repo_root, scratch, stderr, tiny_demo};

fn recipe() -> String {
    repo_root()
        .join("recipes/default.toml")
        .display()
        .to_string()
}

/// `pgq quantize` of the tiny demo with the default recipe and `extra`.
fn quantize(model: &str, hessians: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let recipe = recipe();
    let mut args = vec![
        "quantize",
        model,
        "--recipe",
        &recipe,
        "--hessians",
        hessians,
        "-o",
        out.to_str().expect("utf-8"),
        "--json",
    ];
    args.extend(extra);
    pgq(&args)
}

/// `n` with its digits grouped by commas, as the report prints it.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn assert_in_window(path: &Path, budget: u64) -> u64 {
    let bytes = std::fs::metadata(path).unwrap().len();
    assert!(
        bytes <= budget && bytes + 2_000 >= budget,
        "{}: {bytes} bytes for a budget of {budget}",
        path.display()
    );
    bytes
}

#[test]
fn the_demo_lands_within_2000_bytes_under_every_budget() {
    let dir = scratch("budget-demo");
    let (model, hessians) = tiny_demo(&dir);
    let plain = quantize(&model, &hessians, &dir.join("plain.pgq"), &[]);
    assert_eq!(code(&plain), 0, "{}", stderr(&plain));
    let size = json(&plain)["file_bytes"].as_u64().unwrap();
    let plain_error: f64 = json(&plain)["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["hessian_error"].as_f64())
        .sum();

    for (budget, allocate) in [
        (size * 85 / 100, "uniform"),
        (size * 95 / 100, "per-tensor"),
        (size, "per-tensor"),
        (size * 110 / 100, "uniform"),
    ] {
        let out = dir.join(format!("b{budget}.pgq"));
        let arg = budget.to_string();
        let o = quantize(
            &model,
            &hessians,
            &out,
            &["--budget", &arg, "--allocate", allocate],
        );
        assert_eq!(code(&o), 0, "{budget}: {}", stderr(&o));
        let bytes = assert_in_window(&out, budget);
        let report = json(&o);
        let b = &report["budget"];
        assert_eq!(b["budget_bytes"].as_u64(), Some(budget));
        assert_eq!(b["allocation"].as_str(), Some(allocate));
        assert_eq!(b["file_bytes"].as_u64(), Some(bytes));
        assert_eq!(b["headroom_bytes"].as_i64(), Some((budget - bytes) as i64));
        assert!(b["rounds"].as_array().unwrap().len() <= 8);
        // Every matrix of the default recipe clips with SDClip: each has a k.
        let tensors = b["tensors"].as_array().unwrap();
        assert!(!tensors.is_empty());
        assert!(tensors.iter().all(|t| t["k"].as_f64().is_some()));
        // At the plain run's own size, per-tensor k gives less total
        // relative Hessian error than the recipe's uniform k.
        if budget == size {
            let error: f64 = report["tensors"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t["hessian_error"].as_f64())
                .sum();
            assert!(error < plain_error, "{error} vs {plain_error}");
        }
        // A fitted artifact is an ordinary artifact.
        let v = pgq(&["verify", out.to_str().unwrap()]);
        assert_eq!(code(&v), 0, "{}", stderr(&v));
    }
}

#[test]
fn code_files_and_the_cap_set_the_budget() {
    let dir = scratch("budget-code");
    let (model, hessians) = tiny_demo(&dir);
    let plain = quantize(&model, &hessians, &dir.join("plain.pgq"), &[]);
    assert_eq!(code(&plain), 0, "{}", stderr(&plain));
    let budget = json(&plain)["file_bytes"].as_u64().unwrap() - 20_000;
    let cap = budget + 12_345;
    let train = dir.join("train_gpt.py");
    std::fs::write(&train, vec![b'#'; 12_345]).unwrap();
    let out = dir.join("fit.pgq");
    let cap_arg = cap.to_string();
    let o = quantize(
        &model,
        &hessians,
        &out,
        &["--code", train.to_str().unwrap(), "--cap", &cap_arg],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_in_window(&out, budget);
    assert_eq!(json(&o)["budget"]["budget_bytes"].as_u64(), Some(budget));
    // The text report says where the budget came from; `,` and `_` may
    // group digits.
    let grouped = thousands(cap);
    let text = pgq(&[
        "quantize",
        &model,
        "--recipe",
        &recipe(),
        "--hessians",
        &hessians,
        "-o",
        dir.join("fit2.pgq").to_str().unwrap(),
        "--code",
        train.to_str().unwrap(),
        "--cap",
        &grouped,
    ]);
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains(&format!("(cap {grouped} - code 12,345 (")),
        "{stdout}"
    );
}

#[test]
fn impossible_budgets_and_bad_values_are_refused() {
    let dir = scratch("budget-refused");
    let (model, hessians) = tiny_demo(&dir);
    let out = dir.join("small.pgq");
    let o = quantize(&model, &hessians, &out, &["--budget", "10000"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let message = stderr(&o);
    assert!(
        message.contains("under the smallest artifact this recipe allows"),
        "{message}"
    );
    assert!(!out.exists(), "no artifact is written for a failed budget");

    let o = quantize(&model, &hessians, &out, &["--budget", "15.9MB"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("not a byte count"), "{}", stderr(&o));

    let code_file = dir.join("huge.py");
    std::fs::write(&code_file, vec![b'x'; 2_000]).unwrap();
    let o = quantize(
        &model,
        &hessians,
        &out,
        &["--code", code_file.to_str().unwrap(), "--cap", "1500"],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("the whole --cap"), "{}", stderr(&o));
}

#[test]
fn minilm_without_hessians_lands_within_2000_bytes() {
    let dir = scratch("budget-minilm");
    for (budget, allocate) in [(11_000_000u64, "uniform"), (10_000_000, "per-tensor")] {
        let out = dir.join(format!("minilm-{budget}.pgq"));
        let arg = budget.to_string();
        let o = quantize_minilm(
            &out,
            None,
            &["--budget", &arg, "--allocate", allocate, "--json"],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_in_window(&out, budget);
        let report = json(&o);
        assert_eq!(report["budget"]["hessian_weighted"], false);
        assert_eq!(report["budget"]["binding"], true);
    }
}
