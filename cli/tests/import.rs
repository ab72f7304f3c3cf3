//! `pgq import` through the real binary: every fixture of
//! verifier/tests/fixtures imports, exports and equals the record's
//! `q * scale` (or passthrough) bit for bit; hostile pickles exit 2.

#[path = "../../format/tests/support/mutate.rs"]
mod mutate;
#[path = "../../format/tests/support/rng.rs"]
mod rng;
mod support;

use std::path::PathBuf;

use half::{bf16, f16};
use serde_json::Value;
use support::{code, json, pgq, scratch, stderr};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../verifier/tests/fixtures")
}

fn load_json(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join(name)).unwrap()).unwrap()
}

fn numbers(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

/// The f32 bits a record's loader computes for one expected tensor.
fn expected_bits(t: &Value) -> Vec<u32> {
    match t["kind"].as_str().unwrap() {
        "quantized" => {
            let codes = numbers(&t["codes"]);
            let f32_scales = t["scale_dtype"] == "float32";
            let scales: Vec<f32> = numbers(&t["scale_bits"])
                .into_iter()
                .map(|b| {
                    if f32_scales {
                        f32::from_bits(b as u32)
                    } else {
                        f16::from_bits(b as u16).to_f32()
                    }
                })
                .collect();
            // One scale per index of the first dimension, as the records'
            // loaders broadcast it (`scale.view(q.shape[0], 1, ...)`).
            let per_scale = (codes.len() / scales.len().max(1)).max(1);
            codes
                .iter()
                .enumerate()
                .map(|(i, &q)| {
                    let s = scales[(i / per_scale).min(scales.len() - 1)];
                    (q as f32 * s).to_bits()
                })
                .collect()
        }
        "float16" => numbers(&t["value_bits"])
            .into_iter()
            .map(|b| f16::from_bits(b as u16).to_f32().to_bits())
            .collect(),
        "bfloat16" => numbers(&t["value_bits"])
            .into_iter()
            .map(|b| bf16::from_bits(b as u16).to_f32().to_bits())
            .collect(),
        "float32" => numbers(&t["value_bits"])
            .into_iter()
            .map(|b| b as u32)
            .collect(),
        other => panic!("unknown kind {other}"),
    }
}

#[test]
fn every_fixture_round_trips_exactly_through_import_and_export() {
    let dir = scratch("import");
    let manifest = load_json("manifest.json");
    let mut checked = 0;
    for fixture in manifest["fixtures"].as_array().unwrap() {
        if fixture["expect"] != "ok" {
            continue;
        }
        let file = fixture["file"].as_str().unwrap();
        let pgq_path = dir.join(format!("{file}.pgq"));
        let o = pgq(&[
            "import",
            fixtures().join(file).to_str().unwrap(),
            "-o",
            pgq_path.to_str().unwrap(),
            "--codec",
            "zstd",
            "--json",
        ]);
        assert_eq!(code(&o), 0, "{file}: {}", stderr(&o));
        let report = json(&o);
        assert_eq!(
            report["detected"]["compressor"], fixture["compressor"],
            "{file}"
        );
        assert_eq!(report["detected"]["shuffle"], fixture["shuffle"], "{file}");
        assert_eq!(report["detected"]["layout"], fixture["layout"], "{file}");

        let exported = dir.join(format!("{file}.safetensors"));
        let o = pgq(&[
            "export",
            pgq_path.to_str().unwrap(),
            "-o",
            exported.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{file}: {}", stderr(&o));
        let bytes = std::fs::read(&exported).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let expected = load_json(fixture["expected"].as_str().unwrap());
        let tensors = expected["tensors"].as_array().unwrap();
        assert_eq!(st.len(), tensors.len(), "{file}");
        for t in tensors {
            let name = t["name"].as_str().unwrap();
            let view = st
                .tensor(name)
                .unwrap_or_else(|_| panic!("{file}: {name} missing"));
            let got: Vec<u32> = view
                .data()
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(got, expected_bits(t), "{file}: {name}");
        }
        // The imported artifact verifies (structure, CRCs, digest).
        let o = pgq(&["verify", pgq_path.to_str().unwrap(), "--json"]);
        assert_eq!(code(&o), 0, "{file}");
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} fixtures checked");
}

#[test]
fn hostile_pickles_are_refused_with_exit_two_naming_the_global() {
    let dir = scratch("import-hostile");
    for (file, global) in [
        ("hostile_os_system.ptz", "system"),
        ("hostile_builtins_eval.ptz", "builtins.eval"),
    ] {
        let out = dir.join("x.pgq");
        let o = pgq(&[
            "import",
            fixtures().join(file).to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 2, "{file}");
        assert!(stderr(&o).contains(global), "{file}: {}", stderr(&o));
        assert!(stderr(&o).contains("not allowed"), "{file}: {}", stderr(&o));
        assert!(!out.exists(), "{file}: no output");
    }
}

#[test]
fn mutated_ptz_files_import_or_exit_two_never_crash() {
    let dir = scratch("import-mutate");
    let base = std::fs::read(fixtures().join("wm_zstd_bshf2.ptz")).unwrap();
    let mut m = mutate::Mutator::new(0x9E37);
    let (input, output) = (dir.join("mutant.ptz"), dir.join("mutant.pgq"));
    let (mut refused, mut imported) = (0, 0);
    for i in 0..200 {
        let (mutant, what) = m.mutate(&base);
        std::fs::write(&input, &mutant).unwrap();
        let o = pgq(&[
            "import",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--codec",
            "raw",
        ]);
        match code(&o) {
            0 => imported += 1,
            2 => {
                assert!(stderr(&o).contains("cannot import"), "#{i} {what}");
                refused += 1;
            }
            other => panic!("#{i} {what}: exit {other}: {}", stderr(&o)),
        }
    }
    eprintln!("200 mutated .ptz files: {refused} refused (exit 2), {imported} imported");
}

/// Artifacts written by the records' own serialization code with real
/// torch (verifier/tests/fixtures/records/): through the binary, import then
/// export gives the record's own dequantization bit for bit; what pgq cannot
/// hold yet exits 2 naming it.
#[test]
fn the_records_own_artifacts_import_and_export_as_their_dequantization() {
    use sha2::{Digest, Sha256};
    let records = fixtures().join("records");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(records.join("manifest.json")).unwrap()).unwrap();
    let dir = scratch("import-records");
    for fixture in manifest["fixtures"].as_array().unwrap() {
        let id = fixture["id"].as_str().unwrap();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(records.join(fixture["expected"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let ptz = records.join(fixture["ptz"].as_str().unwrap());
        let out = dir.join(format!("{id}.pgq"));
        let o = pgq(&["import", ptz.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        if let Some(refused) = expected["refused"].as_str() {
            assert_eq!(code(&o), 2, "{id}");
            let message = stderr(&o);
            assert!(message.contains(refused), "{id}: {message}");
            assert!(message.contains("not supported yet"), "{id}: {message}");
            continue;
        }
        assert_eq!(code(&o), 0, "{id}: {}", stderr(&o));
        let exported = dir.join(format!("{id}.safetensors"));
        let o = pgq(&[
            "export",
            out.to_str().unwrap(),
            "-o",
            exported.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{id}: {}", stderr(&o));
        let bytes = std::fs::read(&exported).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for t in expected["tensors"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            let view = st
                .tensor(name)
                .unwrap_or_else(|e| panic!("{id} {name}: {e}"));
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{id} {name}");
            let digest: String = Sha256::digest(view.data())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(digest, t["sha256"].as_str().unwrap(), "{id} {name}");
        }
    }
}
