//! `pgq audit` through the real binary, on the real record folders of
//! tests/records (copied from the public records) and on a copy whose log
//! is over the cap.

mod support;

use std::path::PathBuf;

use support::{code, json, pgq, scratch, stderr, stdout};

fn records() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/records")
}

const SDCLIP: &str = "2026-04-05_SP8192_GPTQ-Embeddings_SDClip_Loop45x2";
const PHASED: &str = "2026-04-14_MultiPhaseGlobalSGD_PhasedTTT";

/// The checks of a JSON report, by id.
fn checks(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of<'a>(checks: &'a [(String, String, String)], id: &str) -> (&'a str, &'a str) {
    checks
        .iter()
        .find(|(i, _, _)| i == id)
        .map(|(_, s, d)| (s.as_str(), d.as_str()))
        .unwrap_or_else(|| panic!("no check {id}: {checks:#?}"))
}

/// Every real record folder of tests/records, with the verdict a careful
/// reviewer reaches reading its files by hand (docs/VERIFIER.md explains
/// each): (folder, report status, checks that must have a given status,
/// with a phrase their detail must hold).
#[test]
fn every_real_record_gets_the_reviewers_verdict() {
    type Expect = (&'static str, &'static str, &'static str);
    let cases: [(&str, &str, &[Expect]); 12] = [
        (
            "2026-03-17_LoRA_TTT",
            "warn",
            &[
                // Logs named train_v*.txt, all four of seed 1337; the
                // claims are train_v3.txt's figures.
                ("logs", "pass", "4 run(s)"),
                ("claims.val_bpb", "warn", "train_v3.txt line 1828"),
                ("claims.bytes_total", "warn", "the shipped train_gpt.py"),
                // The 2xH100 run trained 2,400 s; the claims are not its.
                (
                    "seed.1337~train_v1.txt.train_time",
                    "warn",
                    "the claims do not rest on this run",
                ),
                ("seeds.config", "warn", "world_size"),
            ],
        ),
        (
            "2026-03-17_NaiveBaseline",
            "warn",
            &[("seed.1337.train_time", "warn", "within two mean steps")],
        ),
        (
            "2026-03-18_FP16Embed_WD3600",
            "warn",
            &[
                ("claims.val_bpb", "warn", "run 1337's figure"),
                ("claims.val_loss", "warn", "not the mean of the 2 runs"),
            ],
        ),
        (
            "2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271",
            "warn",
            &[
                (
                    "logs",
                    "pass",
                    "train.log is a byte-identical copy, counted once",
                ),
                ("claims.val_bpb", "warn", "not the mean of the 3 runs"),
            ],
        ),
        (
            "2026-03-23_LeakyReLU_LegalTTT_ParallelMuon",
            "warn",
            &[
                (
                    "seed.42.train_time",
                    "warn",
                    "0.128 s over 600 s, within two mean steps",
                ),
                ("claims.val_bpb", "pass", "the mean of 3 runs"),
                ("seed.42.score", "pass", "legal_ttt"),
            ],
        ),
        (
            "2026-04-04_SP4096_DepthRecurrence_ParallelResid_MuonEqR",
            "warn",
            &[
                (
                    "seed.42.score",
                    "pass",
                    "later evaluations not scored: [final_int6_ttt]",
                ),
                ("claims.val_bpb", "pass", "the mean of 3 runs"),
                ("claims.seed.42.val_bpb", "pass", "1.08938974"),
                ("seeds.config", "warn", "ttt_enabled"),
            ],
        ),
        (
            SDCLIP,
            "warn",
            &[("claims.bytes_total", "warn", "the mean of 5 runs")],
        ),
        (
            "2026-04-10_VarLenAttn",
            "warn",
            &[
                ("logs", "pass", "logs/train0.txt"),
                ("claims.val_bpb", "pass", "the mean of 3 runs"),
                (
                    "seed.0.byte_ledger",
                    "warn",
                    "16,086,048 bytes (86,048 OVER the cap)",
                ),
            ],
        ),
        (
            PHASED,
            "unknown",
            &[("claims.val_bpb", "pass", "the mean of 3 runs")],
        ),
        (
            "2026-04-27_SP8192_LQER_SparseGate_BOSSmearFix_9HpStack_1.0611",
            "warn",
            &[
                (
                    "seed.0.time_ledger",
                    "warn",
                    "Hessians collected on training data after training stopped",
                ),
                (
                    "seed.0.byte_ledger",
                    "warn",
                    "16,027,377 bytes (27,377 OVER the cap)",
                ),
                ("claims.val_bpb", "pass", "the mean of 3 runs"),
            ],
        ),
        (
            "non-record_2026-03-18_Quasi10Bfrom50B_SP1024_9x512_KV4_4h_pgut3",
            "unknown",
            &[
                ("track", "pass", "non-record track"),
                ("seed.1337.train_time", "skip", "14400.039 s"),
                ("seeds", "pass", "asks for no number of seeds"),
            ],
        ),
        (
            "non-record_2026-03-30_ByteJEPA",
            "unknown",
            &[
                ("logs", "pass", "logs/train_run_rtx5090.txt"),
                ("seed.1337.train_time", "skip", "3600.476 s"),
                ("claims.val_bpb", "pass", "1.34960213"),
            ],
        ),
    ];
    for (folder, status, expected) in cases {
        let path = records().join(folder);
        let o = pgq(&["audit", path.to_str().unwrap(), "--json"]);
        assert_eq!(code(&o), 0, "{folder}: {}", stdout(&o));
        let report = json(&o);
        assert_eq!(report["status"], status, "{folder}: {}", stdout(&o));
        let all = checks(&report);
        assert!(all.iter().all(|(_, s, _)| s != "fail"), "{folder}");
        for (id, want, phrase) in expected {
            let (got, detail) = status_of(&all, id);
            assert_eq!(got, *want, "{folder}: {id}: {detail}");
            assert!(
                detail.contains(phrase),
                "{folder}: {id}: {detail:?} lacks {phrase:?}"
            );
        }
    }
}

#[test]
fn a_log_over_the_cap_fails_naming_the_seed_and_bytes() {
    let dir = scratch("audit-over-cap");
    let source = records().join(SDCLIP);
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
    let new = records().join(PHASED);
    let old = records().join(SDCLIP);
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
    let folder = records().join("2026-03-17_NaiveBaseline");
    let o = pgq(&["audit", folder.to_str().unwrap(), "--alpha", "2"]);
    assert_eq!(code(&o), 3);
}

/// Runs `pgq audit` on `dir`, killing it if it has not ended in a minute (a
/// hang guard, not a timing assertion).
fn audit_without_hanging(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgq"))
        .arg("audit")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pgq");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("pgq audit {} hung", dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[cfg(unix)]
#[test]
fn hostile_folders_neither_panic_nor_hang_nor_forge_lines() {
    use std::os::unix::fs::symlink;
    let dir = scratch("audit-hostile");
    // A real record to start from.
    for entry in std::fs::read_dir(records().join(SDCLIP)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    // A FIFO named like a log, and a symlink to another FIFO.
    for fifo in ["train_seed9.log", "pipe"] {
        let status = std::process::Command::new("mkfifo")
            .arg(dir.join(fifo))
            .status()
            .expect("mkfifo");
        assert!(status.success());
    }
    symlink(dir.join("pipe"), dir.join("train_seed8.log")).unwrap();
    // A symlink loop, a dangling link, a link to the folder itself.
    symlink(&dir, dir.join("loop")).unwrap();
    symlink(dir.join("missing"), dir.join("dangling.log")).unwrap();
    std::fs::create_dir_all(dir.join("a/b/c/d/e/f")).unwrap();
    std::fs::write(dir.join("a/b/c/d/e/f/deep.log"), "seed:1\n").unwrap();
    // Binary files, one named like a log.
    let binary: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(dir.join("final_model.int6.ptz"), &binary).unwrap();
    std::fs::write(dir.join("train_seed7.log"), &binary).unwrap();
    // A log named with a newline and an escape sequence that would forge
    // a passing line on a terminal.
    let forged = "x\n[pass   ] seed.42.cap: fine\u{1b}[2K.log";
    std::fs::write(dir.join(forged), "seed:5\nstep:1/2 train_loss:3 train_time:1ms\nTotal submission size q: 99 bytes\nfinal val_loss:2 val_bpb:1.2\n").unwrap();

    let o = audit_without_hanging(&dir, &[]);
    let out = stdout(&o);
    assert!(
        matches!(code(&o), 0 | 1),
        "exit {}: {}{}",
        code(&o),
        out,
        stderr(&o)
    );
    assert!(!out.contains('\u{1b}'), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("[pass   ] seed.42.cap: fine")),
        "{out}"
    );
    assert!(
        out.contains("\\u{a}[pass   ]"),
        "the name is shown escaped: {out}"
    );
    let o = audit_without_hanging(&dir, &["--json"]);
    let report = json(&o);
    let skipped = report["checks"][0]["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "skipped")
        .unwrap()["value"]
        .to_string();
    for name in [
        "train_seed9.log",
        "train_seed8.log",
        "loop",
        "dangling.log",
        "a/b/c/d/e/",
    ] {
        assert!(
            skipped.contains(name),
            "{name} not reported as skipped: {skipped}"
        );
    }
    // The real runs are all still read, and the binary log is not a run.
    let all = checks(&report);
    assert_eq!(status_of(&all, "seed.42.cap").0, "pass");
    assert!(all.iter().all(|(id, _, _)| !id.starts_with("seed.7.")));
    let _ = audit_without_hanging(&dir, &["--markdown"]);
}
