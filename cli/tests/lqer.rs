//! A recipe's `[lqer]` through the real binary: the tiny demo with GPTQ and
//! its synthetic Hessians gets corrections on its worst tensors (the text
//! report names them, `--json` carries them, the file holds kind-4 tensors
//! that `pgq verify` passes and `pgq export` decodes), and `[lqer]` with
//! `--budget` or `--only` is refused with exit 3.

use std::path::Path;

mod support;

use support::{code, json, pgq, repo_root, scratch, stderr, stdout, tiny_demo};

/// The tiny demo model and its Hessians, and a recipe: the default one
/// with `[lqer]`.
fn inputs(dir: &Path) -> (String, String, String) {
    let (model, hessians) = tiny_demo(dir);
    let recipe = std::fs::read_to_string(repo_root().join("recipes/default.toml")).unwrap()
        + "\n[lqer]\ntop_k = 2\nrank = 4\n";
    let path = dir.join("lqer.toml");
    std::fs::write(&path, recipe).unwrap();
    (model, hessians, path.display().to_string())
}

#[test]
fn an_lqer_recipe_corrects_the_worst_tensors_and_refuses_a_budget() {
    let dir = scratch("lqer");
    let (model, hessians, recipe) = inputs(&dir);
    let out = dir.join("lqer.pgq");
    let out_s = out.display().to_string();
    let base = [
        "quantize",
        model.as_str(),
        "--recipe",
        recipe.as_str(),
        "--hessians",
        hessians.as_str(),
        "-o",
        out_s.as_str(),
    ];
    let o = pgq(&base);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("LQER: a low-rank correction on 2 tensor(s)"),
        "{text}"
    );

    let o = pgq(&[&base[..], &["--json"]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json(&o);
    let lqer = report["lqer"].as_array().unwrap();
    assert_eq!(lqer.len(), 2);
    for r in lqer {
        assert!(
            r["error_after"].as_f64() < r["error_before"].as_f64(),
            "{r}"
        );
        assert_eq!(r["rank"], 4);
    }

    let o = pgq(&["inspect", out_s.as_str(), "--json"]);
    let inspect = json(&o);
    let corrected: Vec<&str> = inspect["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "lowrank")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let named: Vec<&str> = lqer.iter().map(|r| r["tensor"].as_str().unwrap()).collect();
    assert_eq!(corrected, named);
    assert_eq!(inspect["minor"], 2, "a file with kind 4 says format 1.2");

    let o = pgq(&["verify", out_s.as_str()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let exported = dir.join("lqer.safetensors").display().to_string();
    let o = pgq(&["export", out_s.as_str(), "-o", exported.as_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    for extra in [&["--budget", "20000000"][..], &["--only", "blocks.0.*"][..]] {
        let o = pgq(&[&base[..], extra].concat());
        assert_eq!(code(&o), 3, "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("[lqer]") && stderr(&o).contains(extra[0]),
            "{}",
            stderr(&o)
        );
    }
}
