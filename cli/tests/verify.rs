//! `pgq verify` through the real binary: verdicts, exit codes, renderings.

mod support;

use std::path::Path;

use support::{code, json, pgq, scratch, stderr, stdout};

fn demo(dir: &Path, extra: &[&str]) {
    let mut args = vec!["demo", "--tiny", "--rtn", "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = pgq(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[test]
fn the_demo_artifact_passes_with_its_reference_and_code() {
    let dir = scratch("verify-pass");
    demo(&dir, &[]);
    let artifact = dir.join("demo.pgq");
    let reference = dir.join("demo.safetensors");
    let code_file = dir.join("train_gpt.py");
    std::fs::write(&code_file, vec![b'#'; 47_642]).unwrap();
    let o = pgq(&[
        "verify",
        artifact.to_str().unwrap(),
        "--reference",
        reference.to_str().unwrap(),
        "--code",
        code_file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let report = json(&o);
    assert_eq!(report["status"], "pass");
    let cap = check(&report, "cap");
    let artifact_bytes = std::fs::metadata(&artifact).unwrap().len();
    let total = cap["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "total_bytes")
        .unwrap()["value"]
        .as_u64()
        .unwrap();
    assert_eq!(total, artifact_bytes + 47_642);
    assert_eq!(check(&report, "digest")["status"], "pass");
    assert_eq!(check(&report, "fidelity.tok_emb.weight")["status"], "pass");

    // The same bytes against a cap just below them: exit 1, named.
    let o = pgq(&[
        "verify",
        artifact.to_str().unwrap(),
        "--code",
        code_file.to_str().unwrap(),
        "--cap",
        &(artifact_bytes + 47_641).to_string(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("1 OVER"), "{}", stdout(&o));

    // Markdown for a pull request.
    let o = pgq(&["verify", artifact.to_str().unwrap(), "--markdown"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("### `pgq verify`"), "{}", stdout(&o));
    assert!(stdout(&o).contains("<details>"));
}

#[test]
fn another_model_or_two_bits_fail_on_fidelity() {
    let dir = scratch("verify-fail");
    demo(&dir, &[]);
    let artifact = dir.join("demo.pgq");
    let reference = dir.join("demo.safetensors");

    // Two-bit matrices and embedding, from the same checkpoint.
    let two = dir.join("two.pgq");
    let o = pgq(&[
        "quantize",
        reference.to_str().unwrap(),
        "-o",
        two.to_str().unwrap(),
        "--bits",
        "2",
        "--embed-bits",
        "2",
        "--codec",
        "zstd",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = pgq(&[
        "verify",
        two.to_str().unwrap(),
        "--reference",
        reference.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let report = json(&o);
    assert_eq!(check(&report, "fidelity.tok_emb.weight")["status"], "fail");
    assert_eq!(check(&report, "digest")["status"], "pass");

    // The artifact against the checkpoint of a different model (another
    // seed, same names and shapes).
    let other = scratch("verify-other");
    let reshuffled = other.join("other.safetensors");
    let tensors = safetensors::SafeTensors::deserialize(&std::fs::read(&reference).unwrap())
        .unwrap()
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            // Reverse each tensor's values: same shapes, different weights.
            let mut data = view.data().to_vec();
            let mut values: Vec<[u8; 4]> = data
                .chunks_exact(4)
                .map(|c| c.try_into().unwrap())
                .collect();
            values.reverse();
            data = values.concat();
            (name, view.shape().to_vec(), data)
        })
        .collect::<Vec<_>>();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(&reshuffled, safetensors::serialize(views, None).unwrap()).unwrap();
    let o = pgq(&[
        "verify",
        artifact.to_str().unwrap(),
        "--reference",
        reshuffled.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("[FAIL   ] fidelity."), "{}", stdout(&o));
}

#[test]
fn usage_and_input_errors() {
    let dir = scratch("verify-errors");
    demo(&dir, &[]);
    let artifact = dir.join("demo.pgq");
    let a = artifact.to_str().unwrap();
    assert_eq!(code(&pgq(&["verify", a, "--json", "--markdown"])), 3);
    assert_eq!(
        code(&pgq(&["verify", a, "--hessians", a])),
        3,
        "needs --reference"
    );
    let o = pgq(&["verify", a, "--code", "/nonexistent/train_gpt.py"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("/nonexistent/train_gpt.py"),
        "{}",
        stderr(&o)
    );
    let o = pgq(&["verify", dir.join("demo.safetensors").to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("bad_magic"), "{}", stderr(&o));
}
