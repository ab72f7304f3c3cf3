//! `codecs`: pgq's rANS beside brotli-11, zstd-19, the status quo and the
//! context-mixing compressors (`lrzip -z -L 9`, the challenge leader's ZPAQ
//! mode, and `zpaq -m5`) on the same codes, with encode and decode times;
//! the Python reference decoder's time; and the layouts (transposition,
//! row order, grouping) measured under rANS and brotli.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pgq_format::rans::{self, Part};
use pgq_format::{
    read, write, Compression, Grouping, LayoutChoice, ReadOptions, Tensor, TensorData, WriteOptions,
};
use pgq_quantizer::status_quo_bytes;

const BROTLI_11: Compression = Compression::Brotli {
    quality: 11,
    lgwin: 24,
};

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

struct Row {
    name: String,
    bytes: usize,
    encode: Option<Duration>,
    decode: Option<Duration>,
}

/// A scratch folder under the system's temporary one, emptied first.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgq-bench-codecs-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Runs `program args`, timed; None when the program is not installed or
/// fails (the table then says so).
fn run(program: &str, args: &[&str], cwd: &Path) -> Option<Duration> {
    let (status, time) = timed(|| {
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    });
    match status {
        Ok(s) if s.success() => Some(time),
        _ => None,
    }
}

/// `lrzip -z -L 9` and `zpaq -m5` of the raw `.pgq` (one code per byte,
/// scales and values as byte planes): the same bytes the codecs see.
fn external(raw: &[u8], tag: &str) -> Vec<Row> {
    let dir = scratch(tag);
    std::fs::write(dir.join("model.raw"), raw).expect("write raw");
    let mut rows = Vec::new();
    let size = |p: &str| std::fs::metadata(dir.join(p)).map_or(0, |m| m.len() as usize);
    let enc = run(
        "lrzip",
        &["-q", "-f", "-z", "-L", "9", "-o", "model.lrz", "model.raw"],
        &dir,
    );
    if let Some(enc) = enc {
        let dec = run(
            "lrzip",
            &["-q", "-f", "-d", "-o", "back.raw", "model.lrz"],
            &dir,
        );
        rows.push(Row {
            name: "lrzip -z -L 9 (ZPAQ) of the raw .pgq".into(),
            bytes: size("model.lrz"),
            encode: Some(enc),
            decode: dec,
        });
    } else {
        eprintln!("lrzip is not installed (apt-get install lrzip): its row is left out");
    }
    let enc = run("zpaq", &["a", "model.zpaq", "model.raw", "-m5"], &dir);
    if let Some(enc) = enc {
        let dec = run("zpaq", &["x", "model.zpaq", "-to", "back", "-force"], &dir);
        rows.push(Row {
            name: "zpaq -m5 of the raw .pgq".into(),
            bytes: size("model.zpaq"),
            encode: Some(enc),
            decode: dec,
        });
    } else {
        eprintln!("zpaq is not installed (apt-get install zpaq): its row is left out");
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

/// The Python reference decoder's time on `bytes`, if python3 with numpy
/// is there.
fn python_decode(bytes: &[u8], tag: &str) -> Option<Duration> {
    let dir = scratch(tag);
    let file = dir.join("model.pgq");
    std::fs::write(&file, bytes).expect("write artifact");
    let decoder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/reference");
    let script = "import sys, time; sys.path.insert(0, sys.argv[1]); import pgq_decode; \
                  t = time.perf_counter(); pgq_decode.load(sys.argv[2]); \
                  print(time.perf_counter() - t)";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&decoder)
        .arg(&file)
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse::<f64>().ok().map(Duration::from_secs_f64)
}

fn options(compression: Compression) -> WriteOptions {
    WriteOptions::with_compression(compression)
}

/// Every codec on `tensors`, one table.
pub fn compare(label: &str, tensors: &[Tensor]) {
    let mut rows = Vec::new();
    let mut auto_bytes = Vec::new();
    let codecs = [
        Compression::Auto { quality: 11 },
        Compression::Rans,
        BROTLI_11,
        Compression::Zstd(19),
    ];
    for compression in codecs {
        let (bytes, encode) =
            timed(|| write(tensors, &Default::default(), &options(compression)).expect("write"));
        let (_, decode) = timed(|| read(&bytes, &ReadOptions::default()).expect("read back"));
        rows.push(Row {
            name: format!("pgq {}", compression.describe()),
            bytes: bytes.len(),
            encode: Some(encode),
            decode: Some(decode),
        });
        if matches!(compression, Compression::Auto { .. }) {
            auto_bytes = bytes;
        }
    }
    let (sq, encode) = timed(|| status_quo_bytes(tensors, 11).expect("status quo"));
    rows.push(Row {
        name: "status quo: torch.save int8 + fp16, BSHF-2, brotli-11".into(),
        bytes: sq.len(),
        encode: Some(encode),
        decode: None,
    });
    let raw = write(
        tensors,
        &Default::default(),
        &WriteOptions {
            compression: Compression::Raw,
            layout: LayoutChoice::Bytes,
            ..WriteOptions::default()
        },
    )
    .expect("raw");
    rows.extend(external(&raw, label));
    let brotli = rows[2].bytes as f64;
    println!("### {label}\n");
    println!("| encoding | bytes | vs pgq brotli-11 | encode | decode |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {} | {:.4} | {} | {} |",
            r.name,
            r.bytes,
            r.bytes as f64 / brotli,
            r.encode.map_or("-".into(), secs),
            r.decode.map_or("-".into(), secs),
        );
    }
    match python_decode(&auto_bytes, label) {
        Some(t) => println!(
            "\nPython reference decoder (spec/reference/pgq_decode.py) on the auto artifact: {}",
            secs(t)
        ),
        None => println!("\nPython reference decoder: python3 with numpy not found"),
    }
    layouts(tensors);
    println!();
}

/// The codes of each bit width as one stream, per tensor row-major or
/// transposed, or with rows sorted by their scale: the layouts the
/// challenge's leader uses before ZPAQ, measured under rANS (per-tensor
/// parts) and brotli-11.
fn layouts(tensors: &[Tensor]) {
    /// The codes in a layout, and the length of the layout's rows (a
    /// transposed matrix's rows are its columns).
    type Arrange = fn(&[i8], usize, usize, &[pgq_format::half::f16], usize) -> (Vec<u8>, usize);
    let row_major: Arrange =
        |codes, _, cols, _, _| (codes.iter().map(|&c| c as u8).collect(), cols);
    let transposed: Arrange = |codes, rows, cols, _, _| {
        let mut out = Vec::with_capacity(codes.len());
        for c in 0..cols {
            out.extend((0..rows).map(|r| codes[r * cols + c] as u8));
        }
        (out, rows)
    };
    let rows_by_scale: Arrange = |codes, rows, cols, scales, groups| {
        let mut order: Vec<usize> = (0..rows).collect();
        order.sort_by(|&a, &b| {
            scales[a * groups]
                .to_f32()
                .total_cmp(&scales[b * groups].to_f32())
                .then(a.cmp(&b))
        });
        let out = order
            .iter()
            .flat_map(|&r| codes[r * cols..(r + 1) * cols].iter().map(|&c| c as u8))
            .collect();
        (out, cols)
    };
    println!("\nlayouts of the codes (all widths, scales and passthrough left out):\n");
    println!("| layout | rANS (a part per tensor) | brotli-11 (a stream per width) |");
    println!("| --- | ---: | ---: |");
    for (name, arrange) in [
        ("row-major (pgq)", row_major),
        ("transposed (column-major)", transposed),
        ("rows sorted by scale", rows_by_scale),
    ] {
        let mut by_width: std::collections::BTreeMap<u8, (Vec<u8>, Vec<Part>)> = Default::default();
        for t in tensors {
            if let TensorData::Quantized {
                bits,
                group_size,
                codes,
                scales,
                ..
            } = &t.data
            {
                let (rows, cols) = pgq_format::types::rows_cols(&t.shape);
                let groups = pgq_format::types::groups_per_row(cols, *group_size) as usize;
                let (rows, cols) = (rows as usize, cols as usize);
                let (bytes, part_cols) = arrange(codes, rows, cols, scales, groups);
                let entry = by_width.entry(*bits).or_default();
                entry.1.push(Part {
                    len: bytes.len(),
                    cols: part_cols,
                });
                entry.0.extend(bytes);
            }
        }
        let mut rans_bytes = 0;
        let mut brotli_bytes = 0;
        for (data, parts) in by_width.values() {
            rans_bytes += rans::encode(data, parts, rans::lanes_for(data.len())).len();
            brotli_bytes += pgq_format::encode_section(data, BROTLI_11)
                .expect("brotli")
                .len();
        }
        println!("| {name} | {rans_bytes} | {brotli_bytes} |");
    }
    for (name, grouping) in [
        ("sections by stream (pgq's default)", Grouping::ByStream),
        ("a section per tensor", Grouping::PerTensor),
        ("one section", Grouping::Single),
    ] {
        let size = |compression| {
            let o = WriteOptions {
                grouping,
                ..options(compression)
            };
            write(tensors, &Default::default(), &o)
                .expect("write")
                .len()
        };
        println!(
            "| whole file, {name} | {} | {} |",
            size(Compression::Rans),
            size(BROTLI_11)
        );
    }
}

/// The tensors of a `.pgq` file.
pub fn load(path: &Path) -> Vec<Tensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read(&bytes, &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .tensors
}
