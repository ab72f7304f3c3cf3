//! `pgq quantize` with recipes, Hessians and `--only`, driven through the
//! real binary: the sequential-calibration workflow of
//! examples/pytorch/, its provenance, and its errors.

mod support;

use std::path::{Path, PathBuf};

use pgq_format::{read, MetaValue, ReadOptions, Tensor};
use support::{code, json, pgq, scratch, stderr, tiny_demo};

fn recipe(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../recipes/{name}.toml"))
        .display()
        .to_string()
}

fn load(path: &Path) -> (Vec<Tensor>, std::collections::BTreeMap<String, MetaValue>) {
    let bytes = std::fs::read(path).expect("artifact");
    let archive = read(&bytes, &ReadOptions::default()).expect("valid artifact");
    (
        archive.tensors,
        archive.header.metadata.into_iter().collect(),
    )
}

fn text(meta: &std::collections::BTreeMap<String, MetaValue>, key: &str) -> String {
    match meta.get(key) {
        Some(MetaValue::Str(s)) => s.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

/// Sequential GPTQ: one `--only` step per block, then one full run with the
/// same Hessians. Every step's tensors are bit-identical to the full run's.
#[test]
fn only_steps_reproduce_the_full_run() {
    let dir = scratch("sequential");
    let (model, hessians) = tiny_demo(&dir);
    // The tiny model's attention matrices are small enough to be kept:
    // recipes with a rule per class would have an unused rule.
    let gptq = recipe("default");
    let run = |out: &Path, globs: &[&str]| {
        let mut args = vec![
            "quantize",
            &model,
            "-o",
            out.to_str().unwrap(),
            "--recipe",
            &gptq,
            "--hessians",
            &hessians,
            "--codec",
            "zstd",
            "--level",
            "3",
        ];
        for g in globs {
            args.extend(["--only", g]);
        }
        pgq(&args)
    };
    let full = dir.join("full.pgq");
    let o = run(&full, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (full_tensors, meta) = load(&full);

    let mut covered = 0;
    for (step, globs) in [
        ("b0", vec!["blocks.0.*"]),
        ("b1", vec!["blocks.1.*"]),
        ("rest", vec!["tok_emb.weight", "skip_weights"]),
    ] {
        let out = dir.join(format!("{step}.pgq"));
        let o = run(&out, &globs);
        assert_eq!(code(&o), 0, "{step}: {}", stderr(&o));
        let (tensors, step_meta) = load(&out);
        assert!(!tensors.is_empty());
        for t in &tensors {
            let same = full_tensors
                .iter()
                .find(|f| f.name == t.name)
                .expect("step tensor in the full run");
            assert_eq!(t, same, "{step}: {} differs from the full run", t.name);
        }
        covered += tensors.len();
        assert_eq!(text(&step_meta, "pgq.only"), globs.join(" "));
        assert_eq!(text(&step_meta, "pgq.recipe"), text(&meta, "pgq.recipe"));
    }
    assert_eq!(
        covered,
        full_tensors.len(),
        "the steps cover the model once"
    );
}

/// The content digest of a safetensors file's tensors, computed here from
/// spec/FORMAT.md's definition (§4.3): sorted by name; per tensor the name's
/// length and bytes, the rank and dimensions (u64 LE), the f32 LE values.
fn content_digest(path: &str) -> String {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(path).expect("safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let mut tensors = st.tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    h.update(b"pgq.tensors.v1\0\0");
    h.update((tensors.len() as u64).to_le_bytes());
    for (name, view) in &tensors {
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "the demo writes f32");
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((view.shape().len() as u64).to_le_bytes());
        for &d in view.shape() {
            h.update((d as u64).to_le_bytes());
        }
        h.update(view.data());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The same tensors saved as bf16 and as f32 (values bf16 holds exactly)
/// make the same artifact, and saved in another order the same source
/// digest: provenance digests the content, not the file.
#[test]
fn one_model_saved_two_ways_gives_one_artifact() {
    let dir = scratch("two-ways");
    let (model, _) = tiny_demo(&dir);
    let bytes = std::fs::read(&model).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    // Every tensor rounded to bf16 first, so that a bf16 copy holds exactly
    // the same values as the f32 one; in the trainer's order (by offset).
    let mut named: Vec<(usize, String, Vec<usize>, Vec<f32>)> = st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let values = v
                .data()
                .chunks_exact(4)
                .map(|b| {
                    half::bf16::from_f32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])).to_f32()
                })
                .collect();
            (v.data().as_ptr() as usize, name, v.shape().to_vec(), values)
        })
        .collect();
    named.sort_by_key(|t| t.0);
    let mut named: Vec<(String, Vec<usize>, Vec<f32>)> =
        named.into_iter().map(|(_, n, s, v)| (n, s, v)).collect();
    let write = |named: &[(String, Vec<usize>, Vec<f32>)], path: &Path, bf16: bool| {
        let data: Vec<Vec<u8>> = named
            .iter()
            .map(|(_, _, v)| {
                v.iter()
                    .flat_map(|x| {
                        if bf16 {
                            half::bf16::from_f32(*x).to_le_bytes().to_vec()
                        } else {
                            x.to_le_bytes().to_vec()
                        }
                    })
                    .collect()
            })
            .collect();
        let dtype = if bf16 {
            safetensors::Dtype::BF16
        } else {
            safetensors::Dtype::F32
        };
        let views: Vec<(String, safetensors::tensor::TensorView)> = named
            .iter()
            .zip(&data)
            .map(|((name, shape, _), d)| {
                (
                    name.clone(),
                    safetensors::tensor::TensorView::new(dtype, shape.clone(), d).unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, path).unwrap();
    };
    let (f32_path, bf16_path) = (dir.join("f32.safetensors"), dir.join("bf16.safetensors"));
    write(&named, &f32_path, false);
    write(&named, &bf16_path, true);
    named.reverse();
    let reversed_path = dir.join("reversed.safetensors");
    write(&named, &reversed_path, false);
    let quantize = |input: &Path, out: &str| {
        let out = dir.join(out);
        let o = pgq(&[
            "quantize",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--codec",
            "raw",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        std::fs::read(out).unwrap()
    };
    let (a, b) = (quantize(&f32_path, "a.pgq"), quantize(&bf16_path, "b.pgq"));
    assert_ne!(
        std::fs::read(&f32_path).unwrap(),
        std::fs::read(&bf16_path).unwrap()
    );
    assert!(a == b, "one model, two files, two artifacts");
    let (_, meta) = load(&dir.join("a.pgq"));
    let digest = text(&meta, "pgq.source.sha256");
    assert_eq!(digest, content_digest(f32_path.to_str().unwrap()));
    quantize(&reversed_path, "c.pgq");
    let (_, reversed_meta) = load(&dir.join("c.pgq"));
    assert_eq!(text(&reversed_meta, "pgq.source.sha256"), digest);
}

#[test]
fn provenance_names_recipe_rules_and_digests() {
    let dir = scratch("provenance");
    let (model, hessians) = tiny_demo(&dir);
    let out = dir.join("q.pgq");
    let o = pgq(&[
        "quantize",
        &model,
        "-o",
        out.to_str().unwrap(),
        "--recipe",
        &recipe("default"),
        "--hessians",
        &hessians,
        "--codec",
        "raw",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json(&o);
    let (tensors, meta) = load(&out);
    assert!(text(&meta, "pgq.recipe").starts_with("recipe v1: 0 \"*\" n<=65536 keep; "));
    let rules: Vec<usize> = text(&meta, "pgq.rules")
        .split(',')
        .map(|r| r.parse().unwrap())
        .collect();
    assert_eq!(rules.len(), tensors.len());
    for (t, rule) in tensors.iter().zip(&rules) {
        let expected = match t.name.as_str() {
            "tok_emb.weight" => 1,
            _ if matches!(t.data, pgq_format::TensorData::F16(_)) => 0,
            _ => 2,
        };
        assert_eq!(*rule, expected, "{}", t.name);
    }
    assert_eq!(text(&meta, "pgq.source.sha256"), content_digest(&model));
    assert_eq!(
        text(&meta, "pgq.hessians.sha256"),
        content_digest(&hessians)
    );
    assert!(
        !meta.contains_key("pgq.damp"),
        "no retry on synthetic Hessians"
    );

    // The report: GPTQ beside plain RTN, in output space.
    let versus = &report["versus_rtn"];
    assert_eq!(versus["matrices"], versus["improved"]);
    for t in report["tensors"].as_array().unwrap() {
        if t["method"] == "keep-f16" {
            assert!(t["rtn"].is_null() && t["hessian_error"].is_null());
        } else {
            assert!(t["method"].as_str().unwrap().starts_with("gptq-"), "{t}");
            assert!(
                t["hessian_error"].as_f64().unwrap() < t["rtn"]["hessian_error"].as_f64().unwrap()
            );
            assert_eq!(t["damp_attempts"], 1);
        }
    }
}

#[test]
fn inputs_that_do_not_fit_are_clear_errors() {
    let dir = scratch("plan-errors");
    let (model, hessians) = tiny_demo(&dir);
    let out = dir.join("x.pgq");
    let out = out.to_str().unwrap();

    // GPTQ without Hessians: exit 2, every tensor named in one message.
    let o = pgq(&[
        "quantize",
        &model,
        "-o",
        out,
        "--recipe",
        &recipe("default"),
    ]);
    assert_eq!(code(&o), 2);
    let message = stderr(&o);
    assert!(
        message.contains("need a Hessian") && message.contains("tok_emb.weight"),
        "{message}"
    );
    assert!(message.contains("no --hessians file"), "{message}");

    // Hessians of another model: exit 2 naming the tensor.
    let other = scratch("plan-errors-other");
    let o = pgq(&["demo", "--tiny", "--rtn", "--out", other.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = pgq(&[
        "quantize",
        &model,
        "-o",
        out,
        "--recipe",
        &recipe("default"),
        "--hessians",
        other.join("demo.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("square"), "{}", stderr(&o));

    // A recipe rule that no tensor reaches: exit 2, the rule named.
    let shadowed = dir.join("shadowed.toml");
    std::fs::write(
        &shadowed,
        "[[rule]]\nmatch = \"*\"\nkeep = true\n[[rule]]\nmatch = \"blocks.*\"\nbits = 6\nclip = \"absmax\"\n",
    )
    .unwrap();
    let o = pgq(&[
        "quantize",
        &model,
        "-o",
        out,
        "--recipe",
        shadowed.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("rule 1"), "{}", stderr(&o));

    // --only that selects nothing, and a recipe with policy flags: usage.
    let o = pgq(&["quantize", &model, "-o", out, "--only", "blocks.9.*"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("matches none"), "{}", stderr(&o));
    let o = pgq(&[
        "quantize",
        &model,
        "-o",
        out,
        "--recipe",
        &recipe("default"),
        "--k",
        "13",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(!Path::new(out).exists(), "no output after an error");

    // Extra Hessians are fine (a warning), and RTN reports use them.
    let o = pgq(&[
        "quantize",
        &model,
        "-o",
        out,
        "--hessians",
        &hessians,
        "--only",
        "blocks.1.mlp.*",
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json(&o);
    assert_eq!(report["tensors"].as_array().unwrap().len(), 2);
    assert!(report["tensors"][0]["hessian_error"].as_f64().unwrap() > 0.0);
}
