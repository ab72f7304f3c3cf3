//! The real binary, driven as a user would: exit codes, help, the demo,
//! inspect, export, quantize options, determinism and hostile inputs.

use std::path::{Path, PathBuf};

#[path = "../../format/tests/support/mutate.rs"]
mod mutate;
#[path = "../../format/tests/support/rng.rs"]
mod rng;
mod support;

use support::{code, json, pgq, scratch, stderr, stdout};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

/// Runs the tiny demo into `dir` and returns the artifact path.
fn tiny_demo(dir: &Path) -> PathBuf {
    let o = pgq(&["demo", "--tiny", "--out", dir.to_str().expect("utf-8 path")]);
    assert_eq!(code(&o), 0, "demo failed: {}", stderr(&o));
    dir.join("demo.pgq")
}

#[test]
fn help_teaches_and_exits_zero() {
    let o = pgq(&["--help"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    for needle in [
        "16,000,000",
        "Exit codes",
        "quantize",
        "inspect",
        "export",
        "demo",
        "verify",
        "audit",
        "import",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}");
    }
    let o = pgq(&["quantize", "--help"]);
    assert_eq!(code(&o), 0);
    for needle in [
        "SDClip",
        "12.85",
        "--group-size",
        "--codec",
        "--recipe",
        "--hessians",
        "--only",
        "sequential",
        "Examples",
    ] {
        assert!(
            stdout(&o).contains(needle),
            "quantize --help lacks {needle:?}"
        );
    }
    assert_eq!(code(&pgq(&["--version"])), 0);
}

#[test]
fn usage_errors_exit_three() {
    assert_eq!(code(&pgq(&[])), 3);
    assert_eq!(code(&pgq(&["frobnicate"])), 3);
    assert_eq!(
        code(&pgq(&["quantize", "model.safetensors"])),
        3,
        "missing -o"
    );
    assert_eq!(code(&pgq(&["inspect"])), 3);
    let dir = scratch("usage");
    let out = dir.join("x.pgq");
    let out = out.to_str().expect("utf-8");
    let o = pgq(&[
        "quantize",
        "m.safetensors",
        "-o",
        out,
        "--codec",
        "raw",
        "--level",
        "3",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let o = pgq(&["quantize", "m.safetensors", "-o", out, "--bits", "9"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let o = pgq(&["quantize", "m.safetensors", "-o", out, "--k", "-1"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn malformed_inputs_exit_two_naming_field_and_offset() {
    let o = pgq(&["inspect", "/nonexistent/file.pgq"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors().join("negative/expected.json")).expect("expected.json"),
    )
    .expect("json");
    let cases = expected.as_object().expect("object");
    assert!(cases.len() >= 20);
    for (name, case) in cases {
        let path = vectors().join(format!("negative/{name}.pgq"));
        let o = pgq(&["inspect", path.to_str().expect("utf-8")]);
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        let class = case["error"].as_str().expect("class");
        let err = stderr(&o);
        assert!(
            err.contains(class) && err.contains(" at byte "),
            "{name}: {err}"
        );
    }
    // A safetensors file that is not one.
    let dir = scratch("malformed");
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").expect("write");
    let o = pgq(&[
        "quantize",
        bad.to_str().expect("utf-8"),
        "-o",
        dir.join("o.pgq").to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        !dir.join("o.pgq").exists(),
        "no artifact may be written from a bad input"
    );
}

#[test]
fn demo_inspect_and_export_agree_bit_for_bit() {
    let dir = scratch("demo");
    let artifact = tiny_demo(&dir);
    let o = pgq(&["inspect", artifact.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let doc = json(&o);
    let file_bytes = std::fs::metadata(&artifact).expect("artifact").len();
    assert_eq!(doc["file_bytes"].as_u64(), Some(file_bytes));
    let tensors = doc["tensors"].as_array().expect("tensors");
    let attributed: u64 = tensors
        .iter()
        .map(|t| t["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(
        attributed + doc["overhead_bytes"].as_u64().expect("overhead"),
        file_bytes
    );
    let quantized = tensors.iter().filter(|t| t["kind"] == "quantized").count();
    assert!(
        quantized >= 5,
        "the tiny demo quantizes its embedding and MLP matrices"
    );
    let text = pgq(&["inspect", artifact.to_str().expect("utf-8")]);
    assert!(stdout(&text).contains("tok_emb.weight") && stdout(&text).contains("bits/w"));

    let exported = dir.join("dequant.safetensors");
    let o = pgq(&[
        "export",
        artifact.to_str().expect("utf-8"),
        "-o",
        exported.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let archive = pgq_format::read(
        &std::fs::read(&artifact).expect("read"),
        &Default::default(),
    )
    .expect("valid");
    let bytes = std::fs::read(&exported).expect("exported");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    assert_eq!(st.len(), archive.tensors.len());
    for t in &archive.tensors {
        let view = st.tensor(&t.name).expect("tensor exported");
        assert_eq!(
            view.shape().iter().map(|&d| d as u64).collect::<Vec<_>>(),
            t.shape
        );
        let want: Vec<u8> = t
            .dequantize()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert!(view.data() == want.as_slice(), "{} differs", t.name);
    }
}

#[test]
fn quantize_is_deterministic_and_honours_its_options() {
    let dir = scratch("quantize");
    tiny_demo(&dir);
    let model = dir.join("demo.safetensors");
    let model = model.to_str().expect("utf-8");
    let run = |name: &str, extra: &[&str]| -> (Vec<u8>, serde_json::Value) {
        let out = dir.join(name);
        let mut args = vec![
            "quantize",
            model,
            "-o",
            out.to_str().expect("utf-8"),
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = pgq(&args);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        (std::fs::read(&out).expect("artifact"), json(&o))
    };
    let (a, report) = run("a.pgq", &["--codec", "zstd", "--level", "3"]);
    let (b, _) = run(
        "b.pgq",
        &["--codec", "zstd", "--level", "3", "--threads", "1"],
    );
    assert!(
        a == b,
        "same input and options must give the same bytes, whatever the thread count"
    );
    assert_eq!(report["file_bytes"].as_u64(), Some(a.len() as u64));
    let rows = report["tensors"].as_array().expect("tensors");
    let fc = rows
        .iter()
        .find(|r| r["name"] == "blocks.0.mlp.fc.weight")
        .expect("fc");
    assert_eq!(fc["method"], "rtn-sdclip k=12.85 int6");
    assert!(fc["rel_rmse"].as_f64().expect("rmse") < 0.2);

    let (g, _) = run(
        "g.pgq",
        &[
            "--codec",
            "raw",
            "--group-size",
            "64",
            "--bits",
            "7",
            "--embed-bits",
            "7",
        ],
    );
    let archive = pgq_format::read(&g, &Default::default()).expect("valid");
    for t in &archive.tensors {
        if let pgq_format::TensorData::Quantized {
            bits, group_size, ..
        } = &t.data
        {
            assert_eq!(*bits, 7, "{}", t.name);
            assert_eq!(*group_size, 64, "{}", t.name);
        }
    }
    let packed = archive
        .header
        .tensors
        .iter()
        .filter(|t| {
            t.quant
                .is_some_and(|q| q.layout == pgq_format::Layout::Packed)
        })
        .count();
    assert!(packed > 0, "raw sections bit-pack codes below 8 bits");
}

#[test]
fn mutated_artifacts_exit_two_in_inspect_and_verify_or_decode_identically() {
    let dir = scratch("mutate");
    let artifact = tiny_demo(&dir);
    let base = std::fs::read(&artifact).expect("artifact");
    let original = pgq_format::read(&base, &Default::default()).expect("valid");
    let mut m = mutate::Mutator::new(0xFEED);
    let path = dir.join("mutant.pgq");
    let (mut rejected, mut identical) = (0, 0);
    for i in 0..300 {
        let (mutant, what) = m.mutate(&base);
        std::fs::write(&path, &mutant).expect("write mutant");
        let o = pgq(&["inspect", path.to_str().expect("utf-8"), "--json"]);
        match code(&o) {
            2 => {
                assert!(
                    stderr(&o).contains(" at byte "),
                    "#{i} {what}: {}",
                    stderr(&o)
                );
                rejected += 1;
            }
            0 => {
                let again =
                    pgq_format::read(&mutant, &Default::default()).expect("accepted by the CLI");
                assert_eq!(
                    again.tensors, original.tensors,
                    "#{i} {what}: accepted with other values"
                );
                identical += 1;
            }
            other => panic!("#{i} {what}: exit code {other}: {}", stderr(&o)),
        }
        // verify agrees: the same files are malformed, and an accepted one
        // passes (every byte is under a CRC, so accepted means unchanged).
        let v = pgq(&["verify", path.to_str().expect("utf-8"), "--json"]);
        assert_eq!(
            code(&v),
            code(&o),
            "#{i} {what}: verify vs inspect: {}",
            stderr(&v)
        );
        if code(&v) == 2 {
            assert!(
                stderr(&v).contains(" at byte "),
                "#{i} {what}: {}",
                stderr(&v)
            );
        }
    }
    eprintln!("300 mutated artifacts through the CLI: {rejected} rejected (exit 2), {identical} identical");
}

#[test]
fn three_thousand_in_process_mutations_of_a_demo_artifact() {
    use pgq_quantizer::{quantize_model, DefaultPolicy, DemoConfig};
    let sources = DemoConfig::tiny().generate(0).expect("demo");
    let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None).expect("quantize");
    let options = pgq_format::WriteOptions {
        compression: pgq_format::Compression::Zstd(3),
        ..Default::default()
    };
    let base = pgq_format::write(&model.tensors, &Default::default(), &options).expect("write");
    let mut m = mutate::Mutator::new(0xD3A0);
    let (mut rejected, mut identical) = (0, 0);
    for _ in 0..3000 {
        let (mutant, what) = m.mutate(&base);
        let outcome = std::panic::catch_unwind(|| pgq_format::read(&mutant, &Default::default()));
        match outcome {
            Err(_) => panic!("reader panicked on: {what}"),
            Ok(Err(e)) => {
                assert!(!e.field.is_empty(), "{what}: {e}");
                rejected += 1;
            }
            Ok(Ok(a)) => {
                assert_eq!(
                    a.tensors, model.tensors,
                    "{what}: accepted with other values"
                );
                identical += 1;
            }
        }
    }
    eprintln!(
        "3000 mutations of the tiny demo artifact: {rejected} rejected, {identical} identical"
    );
}

#[test]
fn non_float_buffers_are_refused_unless_dropped() {
    use safetensors::{tensor::TensorView, Dtype};
    let dir = scratch("nonfloat");
    let weights: Vec<u8> = (0..256 * 300)
        .flat_map(|i| ((i % 17) as f32 * 0.01 - 0.08).to_le_bytes())
        .collect();
    let ids: Vec<u8> = (0..512i64).flat_map(|i| i.to_le_bytes()).collect();
    let views = vec![
        (
            "w".to_string(),
            TensorView::new(Dtype::F32, vec![256, 300], &weights).expect("view"),
        ),
        (
            "position_ids".to_string(),
            TensorView::new(Dtype::I64, vec![1, 512], &ids).expect("view"),
        ),
    ];
    let model = dir.join("m.safetensors");
    std::fs::write(
        &model,
        safetensors::serialize(views, None).expect("serialize"),
    )
    .expect("write");
    let out = dir.join("m.pgq");
    let (m, o) = (model.to_str().expect("utf-8"), out.to_str().expect("utf-8"));
    let refused = pgq(&["quantize", m, "-o", o]);
    assert_eq!(code(&refused), 2);
    assert!(
        stderr(&refused).contains("position_ids") && stderr(&refused).contains("--drop-non-float"),
        "{}",
        stderr(&refused)
    );
    let kept = pgq(&[
        "quantize",
        m,
        "-o",
        o,
        "--drop-non-float",
        "--codec",
        "zstd",
        "--level",
        "3",
    ]);
    assert_eq!(code(&kept), 0, "{}", stderr(&kept));
    assert!(stderr(&kept).contains("left out \"position_ids\""));
    let archive = pgq_format::read(&std::fs::read(&out).expect("artifact"), &Default::default())
        .expect("valid");
    let names: Vec<&str> = archive.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["w"]);
}

#[test]
fn inspect_layers_add_up_to_the_file_in_natural_order() {
    let dir = scratch("layers");
    let artifact = tiny_demo(&dir);
    let a = artifact.to_str().expect("utf-8");
    let doc = json(&pgq(&["inspect", a, "--json"]));
    let layers = doc["layers"].as_array().expect("layers");
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blocks.0", "blocks.1", "skip_weights", "tok_emb"]);
    let total: u64 = layers.iter().map(|l| l["bytes"].as_u64().unwrap()).sum();
    assert_eq!(
        total + doc["overhead_bytes"].as_u64().unwrap(),
        doc["file_bytes"].as_u64().unwrap()
    );
    for l in layers {
        let parts: u64 = [
            "code_bytes",
            "scale_bytes",
            "passthrough_bytes",
            "entry_bytes",
        ]
        .iter()
        .map(|k| l[*k].as_u64().unwrap())
        .sum();
        assert_eq!(parts, l["bytes"].as_u64().unwrap(), "{l}");
    }
    let o = pgq(&["inspect", a, "--layers"]);
    assert_eq!(code(&o), 0);
    let text = stdout(&o);
    assert!(
        text.contains("4 layers") && text.contains("of the 16,000,000-byte cap"),
        "{text}"
    );
    assert!(text.find("blocks.1").unwrap() < text.find("tok_emb").unwrap());
}

/// Hostile globs and recipe files (issue 12): a 300-deep `--only` glob is a
/// usage error (exit 3), a recipe whose `match` nests as deep, a FIFO or
/// `/dev/zero` given as the recipe are malformed input (exit 2); none of
/// them panics, hangs or reads without bound.
#[cfg(unix)]
#[test]
fn hostile_globs_and_recipe_files_are_refused() {
    let dir = scratch("hostile-recipes");
    tiny_demo(&dir);
    let model = dir.join("demo.safetensors");
    let out = dir.join("out.pgq");
    let deep = format!("{}blocks{}", "{".repeat(300), "}".repeat(300));
    let quantize = |extra: &[&str]| {
        let mut args = vec![
            "quantize",
            model.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        pgq(&args)
    };
    let o = quantize(&["--only", &deep]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("nested 300 deep"), "{}", stderr(&o));

    let recipe = dir.join("deep.toml");
    std::fs::write(
        &recipe,
        format!("[[rule]]\nmatch = \"{deep}\"\nkeep = true\n"),
    )
    .unwrap();
    let o = quantize(&["--recipe", recipe.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("nested 300 deep"), "{}", stderr(&o));

    let fifo = dir.join("recipe.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for hostile in [fifo.as_path(), Path::new("/dev/zero")] {
        let o = quantize(&["--recipe", hostile.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{}: {}", hostile.display(), stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    }
}

/// Outputs never replace what they should not (issue 12): a device node,
/// a FIFO or a directory given as `-o` is refused with exit 3 and left as
/// it is, and so is an output that is one of the command's inputs (by
/// inode: a hard link is caught too).
#[cfg(unix)]
#[test]
fn outputs_refuse_devices_fifos_folders_and_their_own_inputs() {
    use std::os::unix::fs::FileTypeExt;
    let dir = scratch("hostile-outputs");
    let artifact = tiny_demo(&dir);
    let model = dir.join("demo.safetensors");
    let artifact_bytes = std::fs::read(&artifact).unwrap();
    let export = |out: &Path| {
        pgq(&[
            "export",
            artifact.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
    };

    let fifo = dir.join("out.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let device = dir.join("null.dev");
    // Making a device node needs root (CI runs as root); without it, the
    // FIFO and the folder still cover the non-regular targets.
    let have_device = std::process::Command::new("mknod")
        .args([device.to_str().unwrap(), "c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    let mut targets = vec![
        (fifo.clone(), "not a regular file"),
        (dir.clone(), "a directory"),
    ];
    if have_device {
        targets.push((device.clone(), "not a regular file"));
    }
    for (target, what) in &targets {
        let o = export(target);
        assert_eq!(code(&o), 3, "{}: {}", target.display(), stderr(&o));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    if have_device {
        assert!(std::fs::symlink_metadata(&device)
            .unwrap()
            .file_type()
            .is_char_device());
    }

    // Its own input, by name, through another spelling, and by hard link.
    let link = dir.join("hardlink.pgq");
    std::fs::hard_link(&artifact, &link).unwrap();
    let dotted = dir.join(".").join(artifact.file_name().unwrap());
    for target in [&artifact, &dotted, &link] {
        let o = export(target);
        assert_eq!(code(&o), 3, "{}: {}", target.display(), stderr(&o));
        assert!(stderr(&o).contains("is the input"), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read(&artifact).unwrap(), artifact_bytes);
    let model_bytes = std::fs::read(&model).unwrap();
    let o = pgq(&[
        "quantize",
        model.to_str().unwrap(),
        "-o",
        model.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);

    // A regular target is written, and no temporary file is left behind.
    let out = dir.join("weights.safetensors");
    let o = export(&out);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Control characters in input quoted by an error (here a file name with
/// an escape sequence and a newline) reach the terminal escaped.
#[test]
fn errors_quote_input_with_control_characters_escaped() {
    let dir = scratch("control-errors");
    let name = dir.join("x\u{1b}[2J\n[pass] forged.pgq");
    std::fs::write(&name, b"not a pgq file").unwrap();
    for args in [
        vec!["inspect", name.to_str().unwrap()],
        vec![
            "import",
            name.to_str().unwrap(),
            "-o",
            dir.join("o.pgq").to_str().unwrap(),
        ],
    ] {
        let o = pgq(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(!err.contains('\u{1b}'), "{err:?}");
        assert!(
            err.contains("x\\u{1b}[2J\\u{a}[pass] forged.pgq"),
            "{err:?}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "{err:?}");
    }
}

/// Runs pgq with its address space limited to 4 GB (`ulimit -v 4000000`):
/// an allocation past it aborts the process, which the tests must not see.
#[cfg(unix)]
fn pgq_in_4_gb(args: &[&str]) -> std::process::Output {
    // The arguments go to bash as positional parameters, never through the
    // command line's text.
    std::process::Command::new("bash")
        .args([
            "-c",
            "ulimit -v 4000000; exec \"$@\"",
            "bash",
            env!("CARGO_BIN_EXE_pgq"),
        ])
        .args(args)
        .output()
        .unwrap()
}

/// A valid artifact of about 40 KB declaring a billion int8 weights (one
/// zstd section of zeros): every command that reads it exits 2 naming the
/// memory it would need, within a 4 GB address space, instead of aborting
/// on an allocation (issue 12).
#[cfg(unix)]
#[test]
fn a_tiny_file_declaring_a_billion_weights_is_refused_not_aborted_on() {
    use pgq_format::raw::{RawFile, RawSection, RawTensor};
    use pgq_format::types::{QuantFields, Region, SectionEntry};
    use std::io::Write;
    let (rows, cols) = (1_000_000u64, 1_000u64);
    let codes = rows * cols;
    let decoded = codes + rows * 2;
    let chunk = vec![0u8; 1 << 20];
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    let mut crc = crc32fast::Hasher::new();
    let mut left = decoded;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        encoder.write_all(&chunk[..n]).unwrap();
        crc.update(&chunk[..n]);
        left -= n as u64;
    }
    let stored = encoder.finish().unwrap();
    let mut file = RawFile {
        sections: vec![RawSection {
            entry: SectionEntry {
                codec: 1,
                reserved: [0; 3],
                crc32: crc.finalize(),
                offset: 0,
                stored_len: stored.len() as u64,
                decoded_len: decoded,
            },
            stored,
        }],
        tensors: vec![RawTensor {
            name: b"huge.weight".to_vec(),
            kind: 0,
            shape: vec![rows, cols],
            quant: Some(QuantFields {
                bits: 8,
                layout: 0,
                scale_dtype: 1,
                reserved: 0,
                group_size: 0,
            }),
            regions: vec![
                Region {
                    section: 0,
                    offset: 0,
                    len: codes,
                },
                Region {
                    section: 0,
                    offset: codes,
                    len: rows * 2,
                },
            ],
            correction: None,
        }],
        ..RawFile::default()
    };
    file.place_sections();
    let dir = scratch("billion");
    let path = dir.join("billion.pgq");
    std::fs::write(&path, file.to_bytes()).unwrap();
    let p = path.to_str().unwrap();
    let out = dir.join("out.safetensors");
    let commands: [Vec<&str>; 5] = [
        vec!["inspect", p],
        vec!["export", p, "-o", out.to_str().unwrap()],
        vec!["verify", p],
        vec!["compare", p, p],
        vec!["inspect", p, "--layers"],
    ];
    for args in commands {
        let o = pgq_in_4_gb(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("declares 1000000000 weights"),
            "{args:?}: {err}"
        );
        assert!(err.contains("--max-memory"), "{args:?}: {err}");
    }
    // With the budget raised, the same file is read (here only its
    // header, by a budget large enough for inspect).
    let o = pgq(&["inspect", p, "--max-memory", "4GiB"]);
    assert_ne!(code(&o), 101, "{}", stderr(&o));
}

/// `export` writes one tensor at a time, so its memory bound counts the
/// largest tensor's f32 values, not the model's: 16 int8 tensors of 1M
/// weights (64 MiB as f32) export under a 64 MiB budget, which the decoded
/// section, the codes (16 MiB each, counted twice) and one tensor's f32
/// values and bytes (8 MiB) fit, about 56 MiB; counting every f32 value
/// would need 112 MiB. The output is a safetensors file with every tensor,
/// in the artifact's order.
#[test]
fn export_streams_tensors_within_a_budget_the_whole_model_exceeds() {
    use pgq_format::half::f16;
    use pgq_format::{write, Compression, Tensor, TensorData, WriteOptions};
    let tensors: Vec<Tensor> = (0..16)
        .map(|i| Tensor {
            name: format!("blocks.{i:02}.w"),
            shape: vec![1024, 1024],
            data: TensorData::Quantized {
                bits: 8,
                group_size: 0,
                codes: (0..1 << 20).map(|j| ((i + j) % 7) as i8 - 3).collect(),
                scales: vec![f16::from_f32(0.5); 1024],
                correction: None,
            },
        })
        .collect();
    let options = WriteOptions {
        compression: Compression::Zstd(1),
        ..WriteOptions::default()
    };
    let dir = scratch("export-stream");
    let path = dir.join("many.pgq");
    std::fs::write(
        &path,
        write(&tensors, &Default::default(), &options).unwrap(),
    )
    .unwrap();
    let out = dir.join("many.safetensors");
    let o = pgq(&[
        "export",
        path.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--max-memory",
        "64MiB",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    let st = pgq_quantizer::checkpoint::parse(&bytes, false).unwrap();
    let names: Vec<_> = st.tensors.iter().map(|t| t.name.clone()).collect();
    let expected: Vec<_> = tensors.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, expected);
    assert_eq!(st.tensors[3].values[..3], [0.0, 0.5, 1.0]);
    // A budget under that is still refused, before decoding.
    let o = pgq(&[
        "export",
        path.to_str().unwrap(),
        "-o",
        dir.join("no.safetensors").to_str().unwrap(),
        "--max-memory",
        "48MiB",
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

/// A small .ptz that decompresses to a gigabyte stops at a quarter of the
/// memory budget, within a 4 GB address space, with exit 2 (issue 12).
#[cfg(unix)]
#[test]
fn import_bounds_the_decompressed_stream_by_the_memory_budget() {
    use std::io::Write;
    let chunk = vec![0u8; 1 << 20];
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    for _ in 0..1024 {
        encoder.write_all(&chunk).unwrap();
    }
    let dir = scratch("import-bomb");
    let bomb = dir.join("bomb.ptz");
    std::fs::write(&bomb, encoder.finish().unwrap()).unwrap();
    let out = dir.join("out.pgq");
    let o = pgq_in_4_gb(&[
        "import",
        bomb.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("decompresses to more than 536870912 bytes"),
        "{err}"
    );
}
