//! `pgq audit` on the real record folders in tests/records (their
//! submission.json, README.md and train logs, byte for byte from the
//! public parameter-golf repository), on edited copies of them, and on
//! hostile folders. Every figure asserted here was read by hand from the
//! fixture files.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use pgq_verifier::audit::{audit, Against, AuditError, AuditOptions};
use pgq_verifier::{Check, Report, Status};
use serde_json::Value;

const NAIVE: &str = "2026-03-17_NaiveBaseline";
const SDCLIP: &str = "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2";
const PHASED: &str = "2026-04-14_MultiPhaseGlobalSGD_PhasedTTT";

fn fixture(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/records")
        .join(name);
    assert!(dir.is_dir(), "fixture folder missing: {}", dir.display());
    dir
}

fn run(dir: &Path) -> Report {
    audit(dir, &AuditOptions::default()).expect("the folder is readable")
}

fn check<'a>(report: &'a Report, id: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in\n{}", report.to_text()))
}

fn figure<'a>(check: &'a Check, name: &str) -> &'a Value {
    &check
        .figures
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no figure {name} in {check:?}"))
        .value
}

fn assert_status(report: &Report, id: &str, status: Status) {
    let c = check(report, id);
    assert_eq!(c.status, status, "{id}: {}", c.detail);
}

fn ids_with(report: &Report, status: Status) -> Vec<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == status)
        .map(|c| c.id.as_str())
        .collect()
}

/// A folder under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pgq-audit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A writable copy of a fixture folder (the fixtures are read-only).
    fn copy_of(name: &str) -> Scratch {
        let scratch = Scratch::new(name);
        for entry in fs::read_dir(fixture(name)).unwrap() {
            let entry = entry.unwrap();
            fs::write(
                scratch.0.join(entry.file_name()),
                fs::read(entry.path()).unwrap(),
            )
            .unwrap();
        }
        scratch
    }

    fn write(&self, file: &str, bytes: impl AsRef<[u8]>) {
        fs::write(self.0.join(file), bytes).unwrap();
    }

    fn replace(&self, file: &str, from: &str, to: &str) {
        let text = fs::read_to_string(self.0.join(file)).unwrap();
        assert!(text.contains(from), "{file} lacks {from:?}");
        self.write(file, text.replace(from, to));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Per seed: final total bytes, val_bpb and val_loss as each log prints
/// them on its last size line and its last evaluation.
fn assert_seeds(report: &Report, expected: &[(&str, u64, f64, f64)]) {
    for &(seed, total, bpb, loss) in expected {
        let cap = check(report, &format!("seed.{seed}.cap"));
        assert_eq!(cap.status, Status::Pass, "{}", cap.detail);
        assert_eq!(figure(cap, "total_bytes"), total);
        assert_eq!(figure(cap, "headroom_bytes"), 16_000_000 - total as i64);
        let score = check(report, &format!("seed.{seed}.score"));
        assert_eq!(score.status, Status::Pass, "{}", score.detail);
        assert_eq!(figure(score, "val_bpb"), bpb);
        assert_eq!(figure(score, "val_loss"), loss);
        for claim in ["val_bpb", "val_loss", "bytes"] {
            assert_status(report, &format!("claims.seed.{seed}.{claim}"), Status::Pass);
        }
        assert_status(report, &format!("seed.{seed}.size_sum"), Status::Pass);
        assert_status(report, &format!("seed.{seed}.train_time"), Status::Pass);
        assert_status(report, &format!("seed.{seed}.eval_time"), Status::Pass);
    }
}

#[test]
fn the_fixture_path_resolves_to_the_copy() {
    let dir = fixture(NAIVE).canonicalize().unwrap();
    assert!(
        dir.ends_with("tests/records/2026-03-17_NaiveBaseline"),
        "{}",
        dir.display()
    );
}

#[test]
fn naive_baseline() {
    let report = run(&fixture(NAIVE));
    assert_eq!(report.tool, "pgq audit");
    assert!(report.subject.ends_with(NAIVE));
    // train.log prints "seed:1337"; its first total (67,272,625, the
    // unquantized model) is superseded by the int8+zlib one.
    let cap = check(&report, "seed.1337.cap");
    assert_eq!(cap.status, Status::Pass);
    assert_eq!(figure(cap, "total_bytes"), 15_863_489);
    assert_eq!(figure(cap, "headroom_bytes"), 136_511);
    assert_eq!(figure(cap, "label"), "int8+zlib");
    assert_eq!(figure(cap, "totals_printed"), 2);
    // final_int8_zlib_roundtrip, with the digits of its _exact reprint.
    let score = check(&report, "seed.1337.score");
    assert_eq!(figure(score, "label"), "final_int8_zlib_roundtrip");
    assert_eq!(figure(score, "line"), 448);
    assert_eq!(figure(score, "val_bpb"), 1.2243657);
    assert_eq!(figure(score, "val_loss"), 2.07269931);
    let sum = check(&report, "seed.1337.size_sum");
    assert_eq!(
        (figure(sum, "model_bytes"), figure(sum, "code_bytes")),
        (&Value::from(15_815_847), &Value::from(47_642))
    );
    // stopping_early: train_time:600038ms step:13780/20000: 38 ms over
    // 600 s, within the stock stopping rule (steps of 43.5 ms).
    let train = check(&report, "seed.1337.train_time");
    assert_eq!(train.status, Status::Warn, "{}", train.detail);
    assert_eq!(figure(train, "train_seconds"), 600.038);
    assert_eq!(figure(train, "steps"), 13_780);
    assert_eq!(
        figure(check(&report, "seed.1337.eval_time"), "eval_seconds"),
        1.401
    );
    for id in [
        "claims.val_bpb",
        "claims.val_loss",
        "claims.bytes_total",
        "claims.bytes_code",
    ] {
        assert_status(&report, id, Status::Pass);
    }
    // submission.json lists no seeds; one seed is below the usual three.
    // The folder holds no training script (not copied upstream), so the
    // shipped code cannot be counted.
    assert_status(&report, "claims.seeds", Status::Unknown);
    assert_eq!(figure(check(&report, "seeds"), "seeds"), 1);
    assert_eq!(
        ids_with(&report, Status::Warn),
        ["seed.1337.train_time", "seeds"]
    );
    assert_eq!(
        ids_with(&report, Status::Unknown),
        ["code", "seed.1337.byte_ledger", "claims.seeds"]
    );
    assert_eq!(ids_with(&report, Status::Fail), Vec::<&str>::new());
    assert_eq!(report.status, Status::Warn);
}

#[test]
fn sdclip_five_seeds() {
    let report = run(&fixture(SDCLIP));
    assert_seeds(
        &report,
        &[
            ("1", 15_987_547, 1.08553523, 2.80405024),
            ("42", 15_988_983, 1.08664424, 2.80691494),
            ("1234", 15_983_318, 1.08462640, 2.80170263),
            ("1337", 15_984_924, 1.08554182, 2.80406725),
            ("2025", 15_983_617, 1.08577632, 2.80467299),
        ],
    );
    let steps = [
        ("1", 4988),
        ("42", 4986),
        ("1234", 4989),
        ("1337", 4992),
        ("2025", 4989),
    ];
    for (seed, n) in steps {
        let c = check(&report, &format!("claims.seed.{seed}.steps"));
        assert_eq!(
            (c.status, figure(c, "logged")),
            (Status::Pass, &Value::from(n))
        );
    }
    assert_eq!(
        figure(check(&report, "seed.42.cap"), "label"),
        "quantized+brotli"
    );
    assert_eq!(
        figure(check(&report, "seed.42.train_time"), "train_seconds"),
        588.136
    );
    // quantized (7467 ms) + quantized_sliding_window (84115 ms).
    assert_eq!(
        figure(check(&report, "seed.42.eval_time"), "eval_seconds"),
        91.582
    );
    assert_eq!(
        figure(check(&report, "claims.seeds"), "claimed"),
        &serde_json::json!(["1", "42", "1234", "1337", "2025"])
    );
    assert_status(&report, "claims.seeds", Status::Pass);
    // 1.08563 claimed; the logs' mean is 1.085624802 (the claim is the
    // mean of the rounded seeds), within one unit of the fifth decimal.
    let bpb = check(&report, "claims.val_bpb");
    assert_eq!(bpb.status, Status::Pass, "{}", bpb.detail);
    assert!((figure(bpb, "logged_mean").as_f64().unwrap() - 1.085624802).abs() < 1e-9);
    assert_status(&report, "claims.val_loss", Status::Pass);
    let std = check(&report, "claims.val_bpb_std");
    assert_eq!(std.status, Status::Pass);
    assert!(std.detail.contains("sample std"), "{}", std.detail);
    // bytes_total 15,985,678 is the mean of the five totals; seed 42's
    // 15,988,983 is the one the cap bears on.
    let total = check(&report, "claims.bytes_total");
    assert_eq!(total.status, Status::Warn, "{}", total.detail);
    assert_eq!(figure(total, "logged_max"), 15_988_983);
    assert_eq!(figure(total, "logged_mean"), 15_985_678);
    assert_status(&report, "claims.bytes_code", Status::Pass);
    assert_eq!(ids_with(&report, Status::Warn), ["claims.bytes_total"]);
    assert_eq!(
        ids_with(&report, Status::Unknown),
        without_script(&["1", "1234", "1337", "2025", "42"])
    );
    assert_eq!(report.status, Status::Warn);
}

/// The unknown checks of a folder without its training script: `code` and
/// each run's byte ledger.
fn without_script(runs: &[&str]) -> Vec<String> {
    let mut ids = vec!["code".to_string()];
    ids.extend(runs.iter().map(|r| format!("seed.{r}.byte_ledger")));
    ids
}

#[test]
fn phased_ttt_three_seeds() {
    let report = run(&fixture(PHASED));
    assert_seeds(
        &report,
        &[
            ("42", 15_932_897, 1.07280131, 2.77115720),
            ("0", 15_939_841, 1.07134229, 2.76738841),
            ("1234", 15_932_419, 1.07163775, 2.76815161),
        ],
    );
    // The total counts the compressed code (27,610), not the 122,168-byte
    // script.
    let sum = check(&report, "seed.0.size_sum");
    assert_eq!(
        (figure(sum, "model_bytes"), figure(sum, "code_bytes")),
        (&Value::from(15_912_231), &Value::from(27_610))
    );
    let times: BTreeMap<&str, (f64, f64)> = [
        ("42", (596.148, 329.0)),
        ("0", (596.103, 332.1)),
        ("1234", (596.178, 332.8)),
    ]
    .into_iter()
    .collect();
    let eval_lines: BTreeMap<&str, usize> = [("42", 743), ("0", 739), ("1234", 744)]
        .into_iter()
        .collect();
    for (seed, (train, eval)) in times {
        assert_eq!(
            figure(
                check(&report, &format!("seed.{seed}.train_time")),
                "train_seconds"
            ),
            train
        );
        let eval_check = check(&report, &format!("seed.{seed}.eval_time"));
        assert_eq!(
            (
                figure(eval_check, "eval_seconds"),
                figure(eval_check, "source")
            ),
            (
                &Value::from(eval),
                &Value::from(format!("total_eval_time, line {}", eval_lines[seed]))
            )
        );
    }
    let bpb = check(&report, "claims.val_bpb");
    assert_eq!(bpb.status, Status::Pass);
    assert!((figure(bpb, "logged_mean").as_f64().unwrap() - 1.0719271166666668).abs() < 1e-12);
    assert!(check(&report, "claims.val_bpb_std")
        .detail
        .contains("population std"));
    assert_status(&report, "claims.seeds", Status::Pass);
    assert_eq!(figure(check(&report, "seeds"), "seeds"), 3);
    assert_eq!(
        ids_with(&report, Status::Unknown),
        without_script(&["0", "1234", "42"])
    );
    assert_eq!(ids_with(&report, Status::Warn), Vec::<&str>::new());
    assert_eq!(report.status, Status::Unknown);
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["status"], "unknown");
}

#[test]
fn a_total_over_the_cap_fails_naming_the_seed_and_the_bytes() {
    let folder = Scratch::copy_of(SDCLIP);
    folder.replace(
        "train_seed42.log",
        "Total submission size quantized+brotli: 15988983 bytes",
        "Total submission size quantized+brotli: 16054963 bytes",
    );
    let report = run(&folder.0);
    assert_eq!(report.status, Status::Fail);
    let cap = check(&report, "seed.42.cap");
    assert_eq!(cap.status, Status::Fail);
    assert!(
        cap.detail.contains("seed 42") && cap.detail.contains("16,054,963"),
        "{}",
        cap.detail
    );
    assert!(cap.detail.contains("54,963 over"), "{}", cap.detail);
    assert_eq!(figure(cap, "total_bytes"), 16_054_963);
    assert_eq!(figure(cap, "headroom_bytes"), -54_963);
    // The claim no longer matches the log, and the log's own sum no
    // longer adds up.
    let claim = check(&report, "claims.seed.42.bytes");
    assert_eq!(claim.status, Status::Fail);
    assert!(
        claim.detail.contains("15,988,983") && claim.detail.contains("16,054,963"),
        "{}",
        claim.detail
    );
    assert_status(&report, "seed.42.size_sum", Status::Warn);
    assert_status(&report, "seed.1.cap", Status::Pass);
    assert!(report.to_text().contains("[FAIL   ] seed.42.cap"));
}

#[test]
fn the_cap_is_an_option() {
    let options = AuditOptions {
        cap: 15_985_000,
        ..AuditOptions::default()
    };
    let report = audit(&fixture(SDCLIP), &options).unwrap();
    let failing: Vec<&str> = ids_with(&report, Status::Fail);
    assert_eq!(failing, ["seed.1.cap", "seed.42.cap", "claims.bytes_total"]);
}

#[test]
fn the_training_script_is_checked_against_the_logged_code_size() {
    let folder = Scratch::copy_of(NAIVE);
    folder.write("train_gpt.py", vec![b'#'; 47_642]);
    let report = run(&folder.0);
    assert_status(&report, "code", Status::Pass);
    assert_status(&report, "seed.1337.byte_ledger", Status::Pass);
    folder.write("train_gpt.py", vec![b'#'; 40_000]);
    let report = run(&folder.0);
    let ledger = check(&report, "seed.1337.byte_ledger");
    assert_eq!(ledger.status, Status::Warn);
    assert!(
        ledger.detail.contains("47,642") && ledger.detail.contains("40,000"),
        "{}",
        ledger.detail
    );
    assert_eq!(figure(ledger, "total_with_shipped_script"), 15_855_847);
}

#[test]
fn a_claim_counting_the_committed_script_is_explained() {
    let folder = Scratch::new("minified");
    folder.write(
        "train_seed1.log",
        "Serialized model int6+zstd: 1000 bytes\nCode size: 500 bytes\nTotal submission size int6+zstd: 1500 bytes\nfinal val_loss:2.5 val_bpb:1.5\n",
    );
    folder.write("train_gpt.py", vec![b'#'; 300]);
    folder.write(
        "submission.json",
        r#"{"val_bpb": 1.5, "seed_results": [{"seed": 1, "bytes_total": 1300}]}"#,
    );
    let report = run(&folder.0);
    // The shipped script counted instead of the logged code size, within
    // the cap: a warning that explains it.
    let claim = check(&report, "claims.seed.1.bytes");
    assert_eq!(claim.status, Status::Warn);
    assert!(
        claim.detail.contains("the shipped script"),
        "{}",
        claim.detail
    );
}

#[test]
fn claims_that_disagree_with_the_logs_fail_with_both_numbers() {
    let folder = Scratch::copy_of(PHASED);
    folder.replace(
        "submission.json",
        "\"val_bpb\": 1.07193",
        "\"val_bpb\": 1.0700",
    );
    folder.replace(
        "submission.json",
        "\"0\": {\"val_bpb\": 1.07134",
        "\"0\": {\"val_bpb\": 1.07034",
    );
    let report = run(&folder.0);
    let mean = check(&report, "claims.val_bpb");
    assert_eq!(mean.status, Status::Fail);
    assert!(
        mean.detail.contains("1.0700") && mean.detail.contains("1.07192712"),
        "{}",
        mean.detail
    );
    let seed = check(&report, "claims.seed.0.val_bpb");
    assert_eq!(seed.status, Status::Fail);
    assert!(
        seed.detail.contains("1.07034") && seed.detail.contains("1.07134229"),
        "{}",
        seed.detail
    );

    // A claimed seed without a log fails, and leaves the claimed mean with
    // nothing to be checked against.
    folder.replace(
        "submission.json",
        "\"seeds\": [42, 0, 1234]",
        "\"seeds\": [42, 0, 1234, 7]",
    );
    let report = run(&folder.0);
    let seeds = check(&report, "claims.seeds");
    assert_eq!(seeds.status, Status::Fail);
    assert!(
        seeds.detail.contains("no log for claimed seed(s) [7]"),
        "{}",
        seeds.detail
    );
    assert_status(&report, "claims.val_bpb", Status::Unknown);
}

#[test]
fn significance_against_a_value_and_a_record() {
    let against = |baseline| AuditOptions {
        against: Some(baseline),
        ..AuditOptions::default()
    };
    let p_of = |report: &Report| figure(check(report, "significance"), "p").as_f64().unwrap();

    // The PhasedTTT seeds improve 0.0354 nats on the SDClip mean (2.80428).
    let report = audit(&fixture(PHASED), &against(Against::ValLoss(2.80428))).unwrap();
    assert_status(&report, "significance", Status::Pass);
    assert!(
        (p_of(&report) - 7.153_214_487_481_764e-4).abs() < 1e-9,
        "{}",
        p_of(&report)
    );

    // Only 0.0061 on 2.775: above 0.005 on average but not at p < 0.01.
    let report = audit(&fixture(PHASED), &against(Against::ValLoss(2.775))).unwrap();
    let c = check(&report, "significance");
    assert_eq!(c.status, Status::Fail, "{}", c.detail);
    assert!((p_of(&report) - 0.219_773_861_054_977_04).abs() < 1e-9);

    // Welch against the SDClip record's five seeds (scipy: t 21.4023,
    // df 4.0804, p 1.2015e-5).
    let report = audit(&fixture(PHASED), &against(Against::Record(fixture(SDCLIP)))).unwrap();
    let c = check(&report, "significance");
    assert_eq!(c.status, Status::Pass, "{}", c.detail);
    assert!((figure(c, "t").as_f64().unwrap() - 21.402_337_287_087_697).abs() < 1e-8);
    assert!((figure(c, "df").as_f64().unwrap() - 4.080_439_597_213_381).abs() < 1e-8);
    assert!((p_of(&report) - 1.201_547_694_519_014_5e-5).abs() < 1e-11);
    assert_eq!(figure(c, "baseline_seeds"), 5);

    // One seed on a side is not enough for a t-test.
    let report = audit(&fixture(PHASED), &against(Against::Record(fixture(NAIVE)))).unwrap();
    assert_status(&report, "significance", Status::Unknown);
    let report = audit(&fixture(NAIVE), &against(Against::ValLoss(3.0))).unwrap();
    assert_status(&report, "significance", Status::Unknown);

    let missing = fixture(NAIVE).join("no-such-record");
    match audit(&fixture(PHASED), &against(Against::Record(missing.clone()))) {
        Err(error @ AuditError::Baseline { .. }) => {
            assert!(error.to_string().contains("no-such-record"), "{error}");
        }
        other => panic!("expected a baseline error, got {other:?}"),
    }
}

#[test]
fn unreadable_folders_are_errors_naming_the_path() {
    let missing = std::env::temp_dir().join("pgq-audit-does-not-exist");
    let error = audit(&missing, &AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::Unreadable { .. }));
    assert!(error.to_string().contains("pgq-audit-does-not-exist"));
    let file = fixture(NAIVE).join("submission.json");
    let error = audit(&file, &AuditOptions::default()).unwrap_err();
    assert!(matches!(error, AuditError::NotAFolder { .. }), "{error}");
    assert!(error.to_string().contains("submission.json"));
}

#[test]
fn an_empty_folder_fails_without_panicking() {
    let folder = Scratch::new("empty");
    let report = run(&folder.0);
    assert_eq!(report.status, Status::Fail);
    assert_status(&report, "submission", Status::Fail);
    assert_status(&report, "logs", Status::Fail);
    assert_status(&report, "seeds", Status::Warn);
    assert!(report.checks.iter().all(|c| !c.id.starts_with("claims.")));
}

#[test]
fn garbage_is_reported_not_trusted() {
    let folder = Scratch::new("garbage");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    folder.write("submission.json", &noise);
    folder.write("train_seed3.log", &noise);
    let mut mixed = b"seed: 5\n\xff\xfe\x00 Total submission size q\xc3: 15000000 bytes\n".to_vec();
    mixed.extend_from_slice(b"\xffquantized val_loss:2.9\xff val_bpb:1.2 eval_time:5ms\n");
    folder.write("train_seed5.log", &mixed);
    let report = run(&folder.0);
    let submission = check(&report, "submission");
    assert_eq!(submission.status, Status::Fail);
    assert!(
        submission.detail.contains("not valid JSON"),
        "{}",
        submission.detail
    );
    // Noise is binary: not read as a log, listed with the other files.
    assert!(report.checks.iter().all(|c| !c.id.starts_with("seed.3.")));
    let other = figure(check(&report, "inventory"), "other_files");
    assert!(other.to_string().contains("train_seed3.log"), "{other}");
    // Invalid UTF-8 around the figures does not hide them.
    assert_eq!(
        figure(check(&report, "seed.5.cap"), "total_bytes"),
        15_000_000
    );
    assert_eq!(figure(check(&report, "seed.5.score"), "val_bpb"), 1.2);
}

#[test]
fn odd_json_and_huge_numbers_do_not_panic() {
    let folder = Scratch::new("huge");
    folder.write(
        "train_seed1.log",
        "Total submission size: 99999999999999999999999999 bytes\nfinal val_loss:1e999 val_bpb:1e-999\nstopping_early: train_time:99999999999999999999999ms step:18446744073709551616/1\n",
    );
    folder.write(
        "train_seed2.log",
        "Total submission size int8: n/a\nfinal val_loss:2 val_bpb:1.2\n",
    );
    let documents = [
        r#"{"val_bpb": 1e308, "bytes_total": 1e300, "seeds": [1e300, -1, 18446744073709551615], "seed_results": {"1": {"val_bpb": "x"}, "99999999999999999999": {}}}"#.to_string(),
        "[]".into(),
        "{}".into(),
        "null".into(),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        r#"{"val_bpb": 1.0"#.into(),
    ];
    for json in documents {
        folder.write("submission.json", &json);
        let report = run(&folder.0);
        let cap = check(&report, "seed.1.cap");
        assert_eq!(cap.status, Status::Fail, "{}", cap.detail);
        assert_eq!(figure(cap, "total_bytes"), "99999999999999999999999999");
        assert_status(&report, "seed.2.cap", Status::Unknown);
        assert_status(&report, "seed.1.train_time", Status::Fail);
        let _ = (report.to_text(), report.to_markdown(), report.to_json());
    }
}

#[test]
fn a_100_mb_log_is_read_in_part_and_says_so() {
    let folder = Scratch::new("big");
    let path = folder.0.join("train_seed7.log");
    let mut out = BufWriter::new(fs::File::create(&path).unwrap());
    writeln!(out, "seed: 7").unwrap();
    let filler = format!(
        "step:1/20000 train_loss:2.5 train_time:1ms {}\n",
        "x".repeat(1000)
    );
    let mut written = 0;
    while written < 100 << 20 {
        out.write_all(filler.as_bytes()).unwrap();
        written += filler.len();
    }
    writeln!(
        out,
        "stopping_early: wallclock_cap train_time:590000ms step:5000/20000"
    )
    .unwrap();
    writeln!(
        out,
        "Total submission size quantized+brotli: 15900000 bytes"
    )
    .unwrap();
    writeln!(
        out,
        "quantized_sliding_window val_loss:2.8 val_bpb:1.08 eval_time:80000ms"
    )
    .unwrap();
    out.into_inner().unwrap().sync_all().unwrap();

    let report = run(&folder.0);
    let read = check(&report, "log.train_seed7.log.read");
    assert_eq!(read.status, Status::Warn);
    assert!(figure(read, "skipped_bytes").as_u64().unwrap() > 30 << 20);
    // The seed from the head, the final figures from the tail.
    assert_eq!(
        figure(check(&report, "seed.7.cap"), "total_bytes"),
        15_900_000
    );
    assert_eq!(figure(check(&report, "seed.7.score"), "val_bpb"), 1.08);
    assert_eq!(
        figure(check(&report, "seed.7.train_time"), "train_seconds"),
        590.0
    );
}

/// A train log as the stock script prints it: configuration, progress, the
/// stop, sizes, then the evaluations of the final artifact.
fn synthetic_log(seed: u32, train_ms: u64, config: &str, evaluations: &[(&str, f64)]) -> String {
    let mut log = format!(
        "world_size:8 grad_accum_steps:1\n{config}\nseed:{seed}\n\
         step:1/20000 train_loss:6.9 train_time:120ms step_avg:120.00ms\n\
         step:5000/20000 train_loss:2.8 train_time:{train_ms}ms step_avg:120.00ms\n\
         stopping_early: wallclock_cap train_time:{train_ms}ms step:5000/20000\n\
         Serialized model int6+brotli: 15900000 bytes\nCode size: 30000 bytes\n\
         Total submission size int6+brotli: 15930000 bytes\n"
    );
    for (label, bpb) in evaluations {
        log.push_str(&format!(
            "{label} val_loss:{:.8} val_bpb:{bpb:.8} eval_time:60000ms\n",
            bpb * 2.58
        ));
    }
    log
}

/// Three seeds of one configuration, claimed as a mean.
fn three_seeds(folder: &Scratch, config: [&str; 3], train_ms: [u64; 3]) {
    for (i, seed) in [1u32, 2, 3].into_iter().enumerate() {
        let log = synthetic_log(
            seed,
            train_ms[i],
            config[i],
            &[("quantized", 1.1 + 0.001 * seed as f64)],
        );
        folder.write(&format!("train_seed{seed}.log"), log);
    }
    folder.write(
        "submission.json",
        r#"{"val_bpb": 1.102, "seeds": [1, 2, 3], "track": "10min_16mb"}"#,
    );
}

#[test]
fn a_run_over_the_time_limit_by_more_than_the_stopping_rule_fails() {
    let folder = Scratch::new("overtime");
    // 600.2 s at 120 ms a step: within two steps. 600.3 s: not.
    three_seeds(&folder, ["", "", ""], [600_200, 599_000, 600_300]);
    let report = run(&folder.0);
    assert_status(&report, "seed.1.train_time", Status::Warn);
    assert_status(&report, "seed.2.train_time", Status::Pass);
    let over = check(&report, "seed.3.train_time");
    assert_eq!(over.status, Status::Fail, "{}", over.detail);
    assert!(over.detail.contains("0.300 s over"), "{}", over.detail);
    // On the non-record track the limit does not apply.
    folder.replace("submission.json", "10min_16mb", "non-record-16mb");
    let report = run(&folder.0);
    assert_status(&report, "seed.3.train_time", Status::Skip);
    assert_ne!(report.status, Status::Fail);
}

#[test]
fn runs_trained_differently_fail_naming_the_key_and_lines() {
    let folder = Scratch::new("config");
    three_seeds(
        &folder,
        [
            "matrix_lr:0.04 train_shards:80",
            "matrix_lr:0.04 train_shards:80",
            "matrix_lr:0.06 train_shards:79",
        ],
        [590_000; 3],
    );
    let report = run(&folder.0);
    let config = check(&report, "seeds.config");
    assert_eq!(config.status, Status::Fail, "{}", config.detail);
    assert!(
        config.detail.starts_with("the runs the claims rest on were not trained alike: matrix_lr: 0.04 (train_seed1.log line 2)"),
        "{}",
        config.detail
    );
    assert!(
        config.detail.contains("0.06 (train_seed3.log line 2)"),
        "{}",
        config.detail
    );
    // Data shards and evaluation settings alone are warnings.
    three_seeds(
        &folder,
        [
            "ttt_enabled:False train_shards:80",
            "ttt_enabled:True train_shards:80",
            "ttt_enabled:False train_shards:79",
        ],
        [590_000; 3],
    );
    assert_status(&run(&folder.0), "seeds.config", Status::Warn);
}

#[test]
fn calibration_on_training_data_after_the_cap_is_a_warning() {
    let folder = Scratch::new("calibration");
    three_seeds(&folder, ["", "", ""], [599_400; 3]);
    let log = synthetic_log(
        1,
        599_400,
        "gptq:reserving 0s, effective=599500ms",
        &[("quantized", 1.101)],
    );
    let late = log.replace(
        "Serialized model int6+brotli",
        "GPTQ:collecting Hessians from calibration data...\nGPTQ:collected 67 Hessians in 4.9s\nSerialized model int6+brotli",
    );
    folder.write("train_seed1.log", &late);
    let report = run(&folder.0);
    let ledger = check(&report, "seed.1.time_ledger");
    assert_eq!(ledger.status, Status::Warn, "{}", ledger.detail);
    assert!(
        ledger.detail.contains("end at 604.300 s"),
        "{}",
        ledger.detail
    );
    assert!(
        ledger.detail.contains("train_seed1.log line 8"),
        "{}",
        ledger.detail
    );
    // Calibration on data the model generates is not training data.
    folder.write(
        "train_seed1.log",
        late.replace(
            "from calibration data",
            "from autoregressively generated data",
        ),
    );
    assert_status(&run(&folder.0), "seed.1.time_ledger", Status::Pass);
    // A logged artifact production time over the limit.
    folder.write(
        "train_seed1.log",
        format!("{log}artifact_production_wallclock: 825-1121s (must be < 600.0)\n"),
    );
    let ledger = run(&folder.0);
    let ledger = check(&ledger, "seed.1.time_ledger");
    assert_eq!(ledger.status, Status::Warn);
    assert!(ledger.detail.contains("1121 s"), "{}", ledger.detail);
}

#[test]
fn logs_are_found_by_content_and_the_scored_evaluation_by_the_claims() {
    let folder = Scratch::new("content");
    fs::create_dir_all(folder.0.join("logs")).unwrap();
    // An extra evaluation after the scored one in one log, logs named
    // .txt in a subfolder, a README quoting log lines, a requirements
    // file, and the submission under another name.
    let evals = |seed: u32| {
        let mut e = vec![
            ("quantized", 1.2),
            ("quantized_sliding_window", 1.1 + 0.001 * seed as f64),
        ];
        if seed == 1 {
            e.push(("final_ttt", 1.3));
        }
        e
    };
    for seed in [1u32, 2, 3] {
        folder.write(
            &format!("logs/ternary_log_{seed}.txt"),
            synthetic_log(seed, 590_000, "", &evals(seed)),
        );
    }
    folder.write(
        "README.md",
        "step:1/20000 train_loss:6.9\nTotal submission size: 1 bytes\nquantized val_loss:2 val_bpb:1.0\n",
    );
    folder.write("requirements.txt", "torch==2.9.1\nbrotli\n");
    folder.write(
        "submission_ternary.json",
        r#"{"val_bpb": 1.102, "seed_results": {"1": {"val_bpb": 1.101}, "2": {"val_bpb": 1.102}, "3": {"val_bpb": 1.103}}}"#,
    );
    let report = run(&folder.0);
    assert_status(&report, "submission", Status::Pass);
    let logs = check(&report, "logs");
    assert!(logs.detail.starts_with("3 run(s)"), "{}", logs.detail);
    assert!(
        logs.detail.contains("logs/ternary_log_1.txt → run 1"),
        "{}",
        logs.detail
    );
    let score = check(&report, "seed.1.score");
    assert_eq!(figure(score, "label"), "quantized_sliding_window");
    assert!(
        score
            .detail
            .contains("later evaluations not scored: [final_ttt]"),
        "{}",
        score.detail
    );
    assert_status(&report, "claims.val_bpb", Status::Pass);
    assert_status(&report, "claims.seed.1.val_bpb", Status::Pass);
    assert_ne!(report.status, Status::Fail, "{}", report.to_text());
}

#[test]
fn a_claim_of_one_runs_figures_is_a_warning_and_a_claim_of_none_fails() {
    let folder = Scratch::new("quoted");
    for seed in [1u32, 2, 3] {
        folder.write(
            &format!("train_seed{seed}.log"),
            synthetic_log(
                seed,
                590_000,
                "",
                &[("quantized", 1.1 + 0.001 * seed as f64)],
            ),
        );
    }
    // train.log: a byte-identical copy of seed 1's, counted once.
    folder.write(
        "train.log",
        fs::read(folder.0.join("train_seed1.log")).unwrap(),
    );
    folder.write("submission.json", r#"{"val_bpb": 1.10100000}"#);
    let report = run(&folder.0);
    let claim = check(&report, "claims.val_bpb");
    assert_eq!(claim.status, Status::Warn, "{}", claim.detail);
    assert_eq!(figure(claim, "quoted_file"), "train_seed1.log");
    assert_eq!(figure(claim, "runs"), 3);
    assert!(check(&report, "logs")
        .detail
        .contains("train.log is a byte-identical copy"));
    folder.write("submission.json", r#"{"val_bpb": 1.10200000}"#);
    assert_status(&run(&folder.0), "claims.val_bpb", Status::Pass);
    folder.write("submission.json", r#"{"val_bpb": 1.09}"#);
    assert_status(&run(&folder.0), "claims.val_bpb", Status::Fail);
}

#[test]
fn runs_appended_to_one_file_are_read_as_runs() {
    let folder = Scratch::new("appended");
    let mut all = String::new();
    for seed in [1u32, 2, 3] {
        all.push_str(&synthetic_log(
            seed,
            590_000,
            "",
            &[("quantized", 1.1 + 0.001 * seed as f64)],
        ));
    }
    folder.write("train.log", &all);
    folder.write(
        "submission.json",
        r#"{"val_bpb": 1.102, "seeds": [1, 2, 3]}"#,
    );
    let report = run(&folder.0);
    let logs = check(&report, "logs");
    assert!(
        logs.detail.contains("train.log:11 → run 2"),
        "{}",
        logs.detail
    );
    assert_status(&report, "claims.val_bpb", Status::Pass);
    assert_status(&report, "claims.seeds", Status::Pass);
}
