//! `pgq verify`: one artifact, the checks a reviewer needs.
//!
//! - `structure`, `crc.header`, `crc.section.N`: the reader's whole
//!   validation (spec/FORMAT.md §9), item by item. A file that fails it is
//!   not reported on: [`verify`] returns the format error (field and byte
//!   offset), which the CLI turns into exit code 2.
//! - `cap`: artifact bytes + code bytes <= cap.
//! - `digest`: the decode digest recorded by the writer
//!   (`pgq.decode.sha256`) against the one recomputed from the decoded
//!   weights.
//! - `fidelity.NAME` (with a reference checkpoint): every tensor against
//!   its reference: relative RMSE, max abs error, SNR, cosine, and with a
//!   Hessian the output-space proxy; `tensors` lists missing, extra and
//!   mismatched tensors.

use std::collections::BTreeMap;

use pgq_format::{
    decode_digest, read, Archive, FormatError, MetaValue, ReadOptions, DECODE_DIGEST_KEY,
};
use pgq_metrics::{compare, hessian_error, HessianSource, SourceTensor};
use serde::Serialize;

use crate::report::{Check, Report, Status};
use crate::CAP_BYTES;

/// Bounds of the fidelity checks. The defaults separate a faithful
/// quantization from a broken or foreign one with a wide margin on both
/// sides:
///
/// - `max_rel_rmse` 0.25: int6 SDClip gives about 0.05 on the demo model
///   and at most 0.19 on MiniLM's worst tensor (docs/REAL_WEIGHTS.md); int8
///   about 0.01. A 2-bit artifact gives about 0.9 and another model's
///   weights about 1.4.
/// - `min_cosine` 0.97: the cosine of a reconstruction with relative RMSE
///   `e` and no bias is about `1 / sqrt(1 + e^2)`: 0.97 is `e = 0.25`.
/// - `max_passthrough_rel_rmse` 1e-3: fp16 rounding alone gives about 3e-4;
///   more means the values changed.
/// - `max_hessian_error` 0.05: the output-space proxy of int6 RTN is about
///   0.015 on the demo's synthetic Hessians and GPTQ's about 0.002.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub max_rel_rmse: f64,
    pub min_cosine: f64,
    pub max_passthrough_rel_rmse: f64,
    pub max_hessian_error: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_rel_rmse: 0.25,
            min_cosine: 0.97,
            max_passthrough_rel_rmse: 1e-3,
            max_hessian_error: 0.05,
        }
    }
}

/// What to check an artifact against.
pub struct VerifyOptions<'a> {
    pub cap: u64,
    /// `(path, bytes)` of the code files counted against the cap.
    pub code_files: Vec<(String, u64)>,
    /// The checkpoint the artifact was made from.
    pub reference: Option<&'a [SourceTensor]>,
    /// Hessians by tensor name, for the output-space proxy.
    pub hessians: Option<&'a dyn HessianSource>,
    pub thresholds: Thresholds,
    pub read: ReadOptions,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        VerifyOptions {
            cap: CAP_BYTES,
            code_files: Vec::new(),
            reference: None,
            hessians: None,
            thresholds: Thresholds::default(),
            read: ReadOptions::default(),
        }
    }
}

/// Verifies the artifact `bytes` (named `subject` in the report). A file
/// the reader rejects is an error, not a report.
pub fn verify(
    bytes: &[u8],
    subject: &str,
    options: &VerifyOptions<'_>,
) -> Result<Report, FormatError> {
    let archive = read(bytes, &options.read)?;
    let mut report = Report::new("pgq verify", subject);
    structure(&mut report, &archive, bytes.len() as u64);
    cap(&mut report, bytes.len() as u64, options);
    digest(&mut report, &archive);
    if let Some(reference) = options.reference {
        fidelity(&mut report, &archive, reference, options);
    }
    Ok(report)
}

fn structure(report: &mut Report, archive: &Archive, file_bytes: u64) {
    let header = &archive.header;
    let quantized = archive
        .header
        .tensors
        .iter()
        .filter(|t| t.kind.is_quantized())
        .count();
    report.push(
        Check::new(
            "structure",
            Status::Pass,
            format!(
                "pgq v{}.{}: {} tensors ({quantized} quantized), {} sections, {} metadata entries; \
                 every length, offset, name, code and scale validated",
                header.major,
                header.minor,
                header.tensors.len(),
                header.sections.len(),
                header.metadata.len()
            ),
        )
        .figure("file_bytes", file_bytes)
        .figure("tensors", header.tensors.len())
        .figure("sections", header.sections.len()),
    );
    report.push(
        Check::new(
            "crc.header",
            Status::Pass,
            format!(
                "CRC-32 of the preamble and the {}-byte header body matches",
                header.header_len
            ),
        )
        .figure("header_bytes", header.header_len),
    );
    for (i, s) in header.sections.iter().enumerate() {
        report.push(
            Check::new(
                format!("crc.section.{i}"),
                Status::Pass,
                format!(
                    "{} section, {} stored / {} decoded bytes: CRC-32 of the decoded bytes matches",
                    s.codec.name(),
                    s.stored_len,
                    s.decoded_len
                ),
            )
            .figure("crc32", format!("{:08x}", s.crc32)),
        );
    }
}

fn cap(report: &mut Report, file_bytes: u64, options: &VerifyOptions<'_>) {
    let code: u64 = options.code_files.iter().map(|(_, n)| n).sum();
    let total = file_bytes.saturating_add(code);
    let headroom = options.cap as i128 - total as i128;
    let status = if headroom < 0 {
        Status::Fail
    } else {
        Status::Pass
    };
    let code_part = if options.code_files.is_empty() {
        " (no code files given: pass them with --code)".to_string()
    } else {
        format!(
            " + {code} code bytes in {} file(s)",
            options.code_files.len()
        )
    };
    let mut check = Check::new(
        "cap",
        status,
        format!(
            "{file_bytes} artifact bytes{code_part} = {total} bytes, {} {} the {}-byte cap",
            headroom.unsigned_abs(),
            if headroom < 0 { "OVER" } else { "under" },
            options.cap
        ),
    )
    .figure("artifact_bytes", file_bytes)
    .figure("code_bytes", code)
    .figure("total_bytes", total)
    .figure("cap_bytes", options.cap)
    .figure("headroom_bytes", headroom as i64);
    if options.code_files.is_empty() && status == Status::Pass {
        check.status = Status::Warn;
    }
    for (path, n) in &options.code_files {
        check = check.figure(&format!("code:{path}"), *n);
    }
    report.push(check);
}

fn digest(report: &mut Report, archive: &Archive) {
    let recorded = archive.header.metadata_value(DECODE_DIGEST_KEY);
    let actual = decode_digest(&archive.tensors);
    let check = match recorded {
        None => Check::new(
            "digest",
            Status::Unknown,
            format!("no {DECODE_DIGEST_KEY} recorded (another writer, or an imported artifact)"),
        ),
        Some(MetaValue::Str(s)) if *s == actual => Check::new(
            "digest",
            Status::Pass,
            "the decoded weights hash to the digest the writer recorded",
        ),
        Some(MetaValue::Str(s)) => Check::new(
            "digest",
            Status::Fail,
            "the decoded weights do NOT hash to the digest the writer recorded",
        )
        .figure("recorded", s.clone()),
        Some(other) => Check::new(
            "digest",
            Status::Fail,
            format!("{DECODE_DIGEST_KEY} is not a string: {other:?}"),
        ),
    };
    report.push(check.figure("sha256", actual));
}

fn fidelity(
    report: &mut Report,
    archive: &Archive,
    reference: &[SourceTensor],
    options: &VerifyOptions<'_>,
) {
    let t = options.thresholds;
    let by_name: BTreeMap<&str, &SourceTensor> =
        reference.iter().map(|s| (s.name.as_str(), s)).collect();
    let in_artifact: BTreeMap<&str, usize> = archive
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let missing: Vec<&str> = reference
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !in_artifact.contains_key(n))
        .collect();
    let extra: Vec<&str> = archive
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| !by_name.contains_key(n))
        .collect();
    let mut mismatched = Vec::new();
    let mut worst: Option<(f64, String)> = None;
    for tensor in &archive.tensors {
        let Some(source) = by_name.get(tensor.name.as_str()) else {
            continue;
        };
        if tensor.shape != source.shape || source.values.len() as u64 != tensor.elements() {
            mismatched.push(format!(
                "{}: {:?} in the artifact, {:?} in the reference",
                tensor.name, tensor.shape, source.shape
            ));
            continue;
        }
        let decoded = tensor.dequantize();
        let f = compare(&source.values, &decoded);
        let cosine = cosine(&source.values, &decoded);
        let quantized = matches!(tensor.data, pgq_format::TensorData::Quantized { .. });
        let max_rel = if quantized {
            t.max_rel_rmse
        } else {
            t.max_passthrough_rel_rmse
        };
        let proxy = options
            .hessians
            .and_then(|h| h.hessian(&tensor.name))
            .filter(|_| quantized)
            .map(|h| {
                let (rows, cols) = pgq_format::types::rows_cols(&tensor.shape);
                hessian_error(&source.values, &decoded, rows as usize, cols as usize, h)
            });
        let mut problems = Vec::new();
        if !within(f.rel_rmse, max_rel) {
            problems.push(format!("rel RMSE {:.4} > {max_rel}", f.rel_rmse));
        }
        if quantized && !within(t.min_cosine, cosine) {
            problems.push(format!("cosine {cosine:.4} < {}", t.min_cosine));
        }
        let proxy_value = match &proxy {
            Some(Ok(v)) => {
                if !within(*v, t.max_hessian_error) {
                    problems.push(format!(
                        "output-space error {v:.4} > {}",
                        t.max_hessian_error
                    ));
                }
                Some(*v)
            }
            Some(Err(e)) => {
                problems.push(format!("Hessian unusable: {e}"));
                None
            }
            None => None,
        };
        if quantized && worst.as_ref().is_none_or(|(w, _)| f.rel_rmse > *w) {
            worst = Some((f.rel_rmse, tensor.name.clone()));
        }
        let status = if problems.is_empty() {
            Status::Pass
        } else {
            Status::Fail
        };
        let detail = if problems.is_empty() {
            format!(
                "rel RMSE {:.4}, SNR {:.1} dB, cosine {cosine:.5}",
                f.rel_rmse, f.snr_db
            )
        } else {
            problems.join("; ")
        };
        report.push(
            Check::new(format!("fidelity.{}", tensor.name), status, detail)
                .figure("rel_rmse", finite(f.rel_rmse))
                .figure("max_abs_err", finite(f.max_abs_err))
                .figure("snr_db", finite(f.snr_db))
                .figure("cosine", finite(cosine))
                .figure("hessian_error", proxy_value.and_then(finite)),
        );
    }
    let status = if missing.is_empty() && extra.is_empty() && mismatched.is_empty() {
        Status::Pass
    } else {
        Status::Fail
    };
    let list = |v: &[&str]| {
        let shown: Vec<&str> = v.iter().take(10).copied().collect();
        if v.len() > shown.len() {
            format!("{} (+{} more)", shown.join(", "), v.len() - shown.len())
        } else {
            shown.join(", ")
        }
    };
    let mismatched_refs: Vec<&str> = mismatched.iter().map(String::as_str).collect();
    let mut check = Check::new(
        "tensors",
        status,
        format!(
            "{} in the artifact, {} in the reference: {} missing, {} extra, {} shape mismatches",
            archive.tensors.len(),
            reference.len(),
            missing.len(),
            extra.len(),
            mismatched.len()
        ),
    )
    .figure("missing", list(&missing))
    .figure("extra", list(&extra))
    .figure("shape_mismatches", list(&mismatched_refs));
    if let Some((rel, name)) = worst {
        check = check
            .figure("worst_rel_rmse", rel)
            .figure("worst_tensor", name);
    }
    report.push(check);
}

/// `low <= high`, false when either is NaN: a figure that is not clearly
/// within its bound fails.
fn within(low: f64, high: f64) -> bool {
    matches!(
        low.partial_cmp(&high),
        Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
    )
}

/// `<a, b> / (|a| |b|)` in f64; 1 when both are zero, 0 when one is.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    match (aa == 0.0, bb == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        _ => ab / (aa.sqrt() * bb.sqrt()),
    }
}

/// JSON has no infinity or NaN: those become null.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgq_format::{write, Compression, Tensor, WriteOptions};
    use pgq_quantizer::{quantize_model, DefaultPolicy, DemoConfig};

    fn demo() -> (Vec<SourceTensor>, Vec<Tensor>) {
        let sources = DemoConfig::tiny().generate(0).unwrap();
        let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None).unwrap();
        (sources, model.tensors)
    }

    fn artifact(tensors: &[Tensor], digest: bool) -> Vec<u8> {
        let mut meta = BTreeMap::new();
        if digest {
            meta.insert(
                DECODE_DIGEST_KEY.to_string(),
                MetaValue::Str(decode_digest(tensors)),
            );
        }
        let options = WriteOptions {
            compression: Compression::Zstd(3),
            ..WriteOptions::default()
        };
        write(tensors, &meta, &options).unwrap()
    }

    fn status_of(report: &Report, id: &str) -> Status {
        report
            .checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id}"))
            .status
    }

    #[test]
    fn a_faithful_artifact_passes_every_check() {
        let (sources, tensors) = demo();
        let bytes = artifact(&tensors, true);
        let options = VerifyOptions {
            reference: Some(&sources),
            code_files: vec![("train_gpt.py".into(), 47_642)],
            ..VerifyOptions::default()
        };
        let report = verify(&bytes, "demo.pgq", &options).unwrap();
        assert_eq!(report.status, Status::Pass, "{}", report.to_text());
        assert_eq!(status_of(&report, "digest"), Status::Pass);
        assert_eq!(status_of(&report, "tensors"), Status::Pass);
        let fidelity = report
            .checks
            .iter()
            .filter(|c| c.id.starts_with("fidelity."))
            .count();
        assert_eq!(fidelity, sources.len());
    }

    #[test]
    fn cap_counts_code_bytes_and_fails_over_it() {
        let (_, tensors) = demo();
        let bytes = artifact(&tensors, true);
        let n = bytes.len() as u64;
        let at_cap = VerifyOptions {
            cap: n + 100,
            code_files: vec![("a.py".into(), 60), ("b.py".into(), 40)],
            ..VerifyOptions::default()
        };
        let report = verify(&bytes, "x", &at_cap).unwrap();
        assert_eq!(status_of(&report, "cap"), Status::Pass);
        let over = VerifyOptions {
            cap: n + 99,
            ..at_cap
        };
        let report = verify(&bytes, "x", &over).unwrap();
        assert_eq!(status_of(&report, "cap"), Status::Fail);
        assert!(report.to_text().contains("1 OVER"), "{}", report.to_text());
        // Without code files the cap check warns that it is incomplete.
        let report = verify(&bytes, "x", &VerifyOptions::default()).unwrap();
        assert_eq!(status_of(&report, "cap"), Status::Warn);
    }

    #[test]
    fn another_model_or_two_bits_fail_on_fidelity() {
        let (sources, tensors) = demo();
        let other = DemoConfig {
            seed: 99,
            ..DemoConfig::tiny()
        }
        .generate(0)
        .unwrap();
        let options = VerifyOptions {
            reference: Some(&other),
            ..VerifyOptions::default()
        };
        let report = verify(&artifact(&tensors, true), "x", &options).unwrap();
        assert_eq!(report.status, Status::Fail);
        assert_eq!(status_of(&report, "fidelity.tok_emb.weight"), Status::Fail);

        let two_bits = DefaultPolicy {
            matrix_bits: 2,
            embed_bits: 2,
            ..DefaultPolicy::default()
        };
        let model = quantize_model(&sources, &two_bits, 0, None).unwrap();
        let options = VerifyOptions {
            reference: Some(&sources),
            ..VerifyOptions::default()
        };
        let report = verify(&artifact(&model.tensors, true), "x", &options).unwrap();
        assert_eq!(status_of(&report, "fidelity.tok_emb.weight"), Status::Fail);
        assert_eq!(status_of(&report, "digest"), Status::Pass);
    }

    #[test]
    fn missing_extra_and_reshaped_tensors_fail() {
        let (mut sources, tensors) = demo();
        sources.pop();
        sources[0].shape = vec![sources[0].values.len() as u64];
        sources.push(SourceTensor {
            name: "new".into(),
            shape: vec![1],
            values: vec![1.0],
        });
        let options = VerifyOptions {
            reference: Some(&sources),
            ..VerifyOptions::default()
        };
        let report = verify(&artifact(&tensors, true), "x", &options).unwrap();
        let check = report.checks.iter().find(|c| c.id == "tensors").unwrap();
        assert_eq!(check.status, Status::Fail);
        assert!(
            check
                .detail
                .contains("1 missing, 1 extra, 1 shape mismatches"),
            "{}",
            check.detail
        );
    }

    #[test]
    fn digest_absent_is_unknown_and_wrong_is_a_failure() {
        let (_, tensors) = demo();
        let report = verify(&artifact(&tensors, false), "x", &VerifyOptions::default()).unwrap();
        assert_eq!(status_of(&report, "digest"), Status::Unknown);

        let mut meta = BTreeMap::new();
        meta.insert(
            DECODE_DIGEST_KEY.to_string(),
            MetaValue::Str("0".repeat(64)),
        );
        let bytes = write(&tensors, &meta, &WriteOptions::default()).unwrap();
        let report = verify(&bytes, "x", &VerifyOptions::default()).unwrap();
        assert_eq!(status_of(&report, "digest"), Status::Fail);
    }

    #[test]
    fn malformed_artifacts_are_format_errors() {
        let (_, tensors) = demo();
        let mut bytes = artifact(&tensors, true);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        let err = verify(&bytes, "x", &VerifyOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("sections[") && err.to_string().contains("at byte"),
            "{err}"
        );
    }

    #[test]
    fn cosine_edges() {
        assert_eq!(cosine(&[0.0, 0.0], &[0.0, 0.0]), 1.0);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 0.0]), 0.0);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 0.0], &[0.0, 1.0])).abs() < 1e-12);
    }
}
