//! `pgq audit` through the real binary, on the real record folders of
//! tests/records (copied from the public records) and on a copy whose log
//! is over the cap.

mod support;

use std::path::PathBuf;

use support::{code, json, pgq, scratch, stderr, stdout};

fn records() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/records")
}

const FOLDERS: [&str; 3] = [
    "2026-03-17_NaiveBaseline",
    "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2",
    "2026-04-14_MultiPhaseGlobalSGD_PhasedTTT",
];

#[test]
fn every_fixture_record_passes_with_its_figures() {
    for folder in FOLDERS {
        let path = records().join(folder);
        let o = pgq(&["audit", path.to_str().unwrap(), "--json"]);
        assert_eq!(code(&o), 0, "{folder}: {}", stdout(&o));
        let report = json(&o);
        assert_ne!(report["status"], "fail", "{folder}");
        let caps: Vec<&serde_json::Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"].as_str().unwrap().ends_with(".cap"))
            .collect();
        let expected = match folder {
            "2026-03-17_NaiveBaseline" => 1,
            "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2" => 5,
            _ => 3,
        };
        assert_eq!(caps.len(), expected, "{folder}");
        assert!(caps.iter().all(|c| c["status"] == "pass"), "{folder}");
    }
}

#[test]
fn a_log_over_the_cap_fails_naming_the_seed_and_bytes() {
    let dir = scratch("audit-over-cap");
    let source = records().join(FOLDERS[1]);
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let log = dir.join("train_seed42.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let edited = text.replace(
        "Total submission size quantized+brotli: 15988983 bytes",
        "Total submission size quantized+brotli: 16054963 bytes",
    );
    assert_ne!(edited, text);
    std::fs::write(&log, edited).unwrap();
    let o = pgq(&["audit", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("seed.42.cap"), "{out}");
    assert!(out.contains("16,054,963"), "{out}");
    let o = pgq(&["audit", dir.to_str().unwrap(), "--markdown"]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("❌ **fail** | `seed.42.cap`"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn significance_against_another_record() {
    let new = records().join(FOLDERS[2]);
    let old = records().join(FOLDERS[1]);
    let o = pgq(&[
        "audit",
        new.to_str().unwrap(),
        "--against",
        old.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let report = json(&o);
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "significance")
        .unwrap();
    assert_eq!(check["status"], "pass", "{check}");
    // A fixed baseline the record does not beat by 0.005 nats: fails.
    let o = pgq(&["audit", new.to_str().unwrap(), "--against", "2.775"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
}

#[test]
fn unreadable_folders_and_bad_options() {
    let o = pgq(&["audit", "/nonexistent/record"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("/nonexistent/record"), "{}", stderr(&o));
    let folder = records().join(FOLDERS[0]);
    let o = pgq(&["audit", folder.to_str().unwrap(), "--alpha", "2"]);
    assert_eq!(code(&o), 3);
}
