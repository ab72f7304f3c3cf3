//! `pgq import` on artifacts written by the records' own serialization code
//! with real PyTorch (tests/fixtures/records/, made by make_record_ptz.py),
//! checked bit for bit against the records' own dequantization functions
//! run with torch: every distinct code path of the public records, from the
//! baseline's int8_clean_per_row_v1 bundle to the 2026-04-27 record's
//! attention gates and LQER low-rank corrections (both forms), and the
//! precise refusal of what pgq cannot read yet (the PGRP per-group lrzip
//! container).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgq_format::{read, write, Compression, ReadOptions, Tensor, WriteOptions};
use pgq_verifier::import::{import, ImportError, ImportOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/records")
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(folder().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The sha256 of a tensor's weights as contiguous little-endian float32,
/// as make_record_ptz.py hashes the record's dequantized tensors.
fn weights_sha256(tensor: &Tensor) -> String {
    let mut hash = Sha256::new();
    for x in tensor.dequantize() {
        hash.update(x.to_le_bytes());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn round_trip(tensors: &[Tensor]) -> Vec<Tensor> {
    let options = WriteOptions {
        compression: Compression::Zstd(3),
        ..WriteOptions::default()
    };
    let bytes = write(tensors, &Default::default(), &options).unwrap();
    read(&bytes, &ReadOptions::default()).unwrap().tensors
}

/// Every tensor the record's dequantization returns, by name, equal to
/// pgq's weights bit for bit (and nothing else imported).
fn assert_equal_to_the_records_dequantization(id: &str, tensors: &[Tensor], expected: &Value) {
    let want: BTreeMap<&str, &Value> = expected["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    let got: BTreeMap<&str, &Tensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{id}: the tensors imported"
    );
    for (name, record) in want {
        let tensor = got[name];
        let shape: Vec<u64> = record["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(tensor.shape, shape, "{id} {name}: shape");
        let first: Vec<u64> = tensor
            .dequantize()
            .iter()
            .take(4)
            .map(|x| u64::from(x.to_bits()))
            .collect();
        let want_first: Vec<u64> = record["first"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(first, want_first, "{id} {name}: first weights' bits");
        assert_eq!(
            weights_sha256(tensor),
            record["sha256"].as_str().unwrap(),
            "{id} {name}: every weight's bits"
        );
    }
}

#[test]
fn every_records_serialization_imports_equal_to_its_own_dequantization() {
    let manifest = json("manifest.json");
    let mut imported = Vec::new();
    for fixture in manifest["fixtures"].as_array().unwrap() {
        let id = fixture["id"].as_str().unwrap();
        let expected = json(fixture["expected"].as_str().unwrap());
        let bytes = std::fs::read(folder().join(fixture["ptz"].as_str().unwrap())).unwrap();
        let result = import(&bytes, &ImportOptions::default());
        if let Some(refused) = expected["refused"].as_str() {
            match result {
                Err(error @ ImportError::Unsupported { .. }) => {
                    let message = error.to_string();
                    assert!(
                        message.contains(refused) && message.contains("not supported yet"),
                        "{id}: {message}"
                    );
                }
                Err(other) => panic!("{id}: refused, but not as unsupported: {other}"),
                Ok(_) => panic!("{id}: imported, but must be refused ({refused})"),
            }
            continue;
        }
        let imported_fixture = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        let detected = &imported_fixture.detected;
        assert_eq!(
            detected.layout.name(),
            fixture["layout"].as_str().unwrap(),
            "{id}"
        );
        assert_eq!(
            detected.compressor.name(),
            fixture["compressor"].as_str().unwrap(),
            "{id}"
        );
        assert_eq!(
            detected.shuffle.map(u64::from),
            fixture["shuffle"].as_u64(),
            "{id}"
        );
        assert_equal_to_the_records_dequantization(id, &imported_fixture.tensors, &expected);
        // And through pgq's own container.
        assert_equal_to_the_records_dequantization(
            id,
            &round_trip(&imported_fixture.tensors),
            &expected,
        );
        imported.push(id);
    }
    // The records' distinct code paths: the baseline bundle (and its fp16
    // embedding variant), int6 with dict meta under zstd and lzma, GPTQ
    // with BSHF + brotli (two records), the 2026-04-27 gates, and its
    // low-rank corrections in both forms.
    assert_eq!(imported.len(), 9, "{imported:?}");
    assert!(imported.contains(&"g_gptq_gate_brotli"));
    assert!(imported.contains(&"h_gptq_lqer_asym_brotli"));
}

/// The records' LQER factors become pgq corrections code for code: the
/// asymmetric form as full-range int2 `A` with one scale and int4 `B` in
/// groups of 64, the symmetric one with a scale per row of each factor.
#[test]
fn low_rank_corrections_keep_the_records_factors() {
    use pgq_format::{CodeRange, TensorData};
    for (id, asym) in [
        ("h_gptq_lqer_asym_brotli", true),
        ("h2_gptq_lqer_sym_brotli", false),
    ] {
        let bytes = std::fs::read(folder().join(format!("{id}.ptz"))).unwrap();
        let imported = import(&bytes, &ImportOptions::default()).unwrap();
        let mut corrected = 0;
        for t in &imported.tensors {
            let TensorData::Quantized {
                correction: Some(c),
                ..
            } = &t.data
            else {
                continue;
            };
            corrected += 1;
            let (rows, cols) = (t.shape[0] as u32, t.shape[1] as u32);
            assert_eq!(c.rank, 4, "{id} {}", t.name);
            if asym {
                assert_eq!((c.a.range, c.b.range), (CodeRange::Full, CodeRange::Full));
                assert_eq!((c.a.bits, c.a.group), (2, rows * 4), "{id} {}", t.name);
                assert!(c.b.bits <= 4 && c.b.group == 64, "{id} {}", t.name);
                assert!(c.a.codes.iter().all(|&q| (-2..=1).contains(&q)));
            } else {
                assert_eq!(c.a.range, CodeRange::Symmetric);
                assert_eq!((c.a.group, c.b.group), (4, cols), "{id} {}", t.name);
                assert!(c.a.bits <= 4 && c.b.bits <= 4, "{id} {}", t.name);
            }
        }
        // The record's top-3 tensors by quantization error.
        assert_eq!(corrected, 3, "{id}");
    }
}
