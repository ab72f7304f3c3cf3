//! `cargo run --release -p pgq-bench -- [sizes|decode|quantize|all]`, or
//! `... -- codecs [ARTIFACT.pgq ...]` (the demo model, then each artifact's
//! tensors: rANS beside brotli, zstd, the status quo, lrzip and zpaq), or
//! `... -- budget` (`--budget` against the hand-tuned recipes, and its time).
//!
//! Benchmarks measure, tests assert: nothing here fails on a number. Every
//! figure is measured side by side in one run on the same data (the demo
//! model, 35.9M parameters, default recipe), and reported as ratios, so
//! that a noisy shared machine moves both sides alike.

mod budget;
mod codecs;

use std::hint::black_box;
use std::time::{Duration, Instant};

use pgq_format::{read, write, Compression, ReadOptions, Tensor, WriteOptions};
use pgq_quantizer::{
    code_entropy, quantize_model, quantize_planned, status_quo_bytes, DefaultPolicy, DemoConfig,
    DemoHessians, Recipe, SourceTensor, TensorPlan,
};

/// The encodings compared: auto (the default), rANS, brotli-11 (what
/// submissions use), brotli-10, zstd-19, raw. The decode benchmark skips
/// brotli-11, which decodes like brotli-10.
const CODECS: [Compression; 6] = [
    Compression::Auto { quality: 11 },
    Compression::Rans,
    Compression::Brotli {
        quality: 11,
        lgwin: 24,
    },
    Compression::Brotli {
        quality: 10,
        lgwin: 24,
    },
    Compression::Zstd(19),
    Compression::Raw,
];

fn model() -> Vec<Tensor> {
    let t = Instant::now();
    let sources = DemoConfig::default().generate(0).expect("demo model");
    let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None).expect("quantize");
    eprintln!(
        "demo model built and quantized in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    model.tensors
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| timed(&mut f).1).collect();
    times.sort();
    times[runs / 2]
}

fn sizes(tensors: &[Tensor]) {
    let entropy = code_entropy(tensors);
    let per_width: f64 = entropy.by_bits.values().map(|e| e.bytes).sum();
    let mut rows: Vec<(String, usize, Duration)> = Vec::new();
    for compression in CODECS {
        let options = WriteOptions {
            compression,
            ..WriteOptions::default()
        };
        let (bytes, time) = timed(|| write(tensors, &Default::default(), &options).expect("write"));
        rows.push((format!("pgq {}", compression.describe()), bytes.len(), time));
    }
    let (sq, time) = timed(|| status_quo_bytes(tensors, 11).expect("status quo"));
    let status_quo = sq.len();
    rows.push((
        "status quo: torch.save int8 + fp16, BSHF-2, brotli-11".into(),
        status_quo,
        time,
    ));
    println!(
        "artifact bytes for the same codes and scales (demo model, {} tensors)\n",
        tensors.len()
    );
    println!("| encoding | bytes | vs status quo | vs code entropy | compress time |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, bytes, time) in &rows {
        println!(
            "| {name} | {bytes} | {:.4} | {:.4} | {:.1} s |",
            *bytes as f64 / status_quo as f64,
            *bytes as f64 / per_width,
            time.as_secs_f64()
        );
    }
    println!("\norder-0 entropy of the codes, per bit width:");
    for (bits, e) in &entropy.by_bits {
        println!(
            "  int{bits}: {} codes, {:.4} bits/code, {:.0} bytes",
            e.codes, e.bits_per_code, e.bytes
        );
    }
    println!("  sum: {per_width:.0} bytes (a bound for coders that see each code alone; scales and passthrough excluded)");
}

/// Median time to copy `n` bytes into a buffer that is already allocated
/// and faulted in: the strictest baseline (decoding also allocates).
fn memcpy(runs: usize, n: usize) -> Duration {
    let src = vec![1u8; n];
    let mut dst = vec![0u8; n];
    median(runs, || {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    })
}

fn decode(tensors: &[Tensor]) {
    let runs = 9;
    println!(
        "decode throughput (median of {runs} runs, {} threads) vs memcpy of the same bytes into a ready buffer\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| artifact | file bytes | decoded section bytes | read+validate | read+dequantize to f32 | memcpy of decoded bytes | memcpy of f32 output | read / memcpy | full / memcpy f32 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let brotli_11 = Compression::Brotli {
        quality: 11,
        lgwin: 24,
    };
    for compression in CODECS.into_iter().filter(|&c| c != brotli_11) {
        let options = WriteOptions {
            compression,
            ..WriteOptions::default()
        };
        let bytes = write(tensors, &Default::default(), &options).expect("write");
        let opts = ReadOptions::default();
        let header = pgq_format::read_header(&bytes, &opts).expect("valid");
        let decoded: u64 = header.sections.iter().map(|s| s.decoded_len).sum();
        let f32_bytes: u64 = tensors.iter().map(|t| t.elements() * 4).sum();
        // Each run times its two phases separately, so that the read and
        // the dequantization figures come from the same runs.
        let mut reads = Vec::with_capacity(runs);
        let mut totals = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            let archive = read(black_box(&bytes), &opts).expect("valid");
            reads.push(start.elapsed());
            for t in &archive.tensors {
                black_box(t.dequantize());
            }
            totals.push(start.elapsed());
        }
        reads.sort();
        totals.sort();
        let (t_read, t_full) = (reads[runs / 2], totals[runs / 2]);
        let t_copy = memcpy(runs, decoded as usize);
        let t_copy32 = memcpy(runs, f32_bytes as usize);
        let mbps = |n: u64, t: Duration| format!("{:.0} MB/s", n as f64 / 1e6 / t.as_secs_f64());
        println!(
            "| {} | {} | {decoded} | {} ({}) | {} ({}) | {} | {} | {:.1}x | {:.1}x |",
            compression.describe(),
            bytes.len(),
            format_args!("{:.3} s", t_read.as_secs_f64()),
            mbps(decoded, t_read),
            format_args!("{:.3} s", t_full.as_secs_f64()),
            mbps(f32_bytes, t_full),
            mbps(decoded, t_copy),
            mbps(f32_bytes, t_copy32),
            t_read.as_secs_f64() / t_copy.as_secs_f64(),
            t_full.as_secs_f64() / t_copy32.as_secs_f64(),
        );
    }
}

/// The shipped recipes, timed on the demo model with its synthetic
/// Hessians beside the default RTN policy, and GPTQ's output-space error
/// against plain RTN's for every matrix.
fn quantize(sources: &[SourceTensor]) {
    let config = DemoConfig::default();
    let (hessians, t_hessians) = timed(|| DemoHessians::generate(&config, 0).expect("hessians"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "quantization time, demo model ({} parameters, {} tensors), {threads} threads; \
         synthetic Hessians ({} distinct) generated in {:.1} s\n",
        sources.iter().map(|s| s.values.len()).sum::<usize>(),
        sources.len(),
        hessians.distinct(),
        t_hessians.as_secs_f64()
    );
    let (_, t_rtn) = timed(|| {
        quantize_model(sources, &DefaultPolicy::default(), 0, None).expect("rtn");
    });
    println!("| plan | time | vs default RTN | matrices | GPTQ/search proxy < plain RTN | proxy ratio to RTN: min / median / max |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    println!(
        "| default policy (RTN, no Hessians) | {:.2} s | 1.00x | | | |",
        t_rtn.as_secs_f64()
    );
    let layout: Vec<(String, Vec<u64>)> = sources
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    for name in [
        "default",
        "sdclip-gptq",
        "per-class-clip",
        "groupwise-hessian",
        "gptq-lite",
        "recurrence-int8",
    ] {
        let recipe = Recipe::load(dir.join(format!("{name}.toml"))).expect("recipe");
        let plans: Vec<TensorPlan> = recipe
            .plan_all(&layout)
            .expect("the recipe covers the demo model")
            .iter()
            .map(|(_, plan)| plan.to_tensor_plan())
            .collect();
        let (model, time) =
            timed(|| quantize_planned(sources, &plans, &hessians, 0, None).expect("quantize"));
        let mut ratios: Vec<f64> = model
            .reports
            .iter()
            .filter_map(|r| {
                let baseline = r.rtn.as_ref()?.hessian_error?;
                Some(r.hessian_error? / baseline)
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let below = ratios.iter().filter(|&&r| r < 1.0).count();
        let spread = match (ratios.first(), ratios.last()) {
            (Some(min), Some(max)) => {
                format!("{min:.3} / {:.3} / {max:.3}", ratios[ratios.len() / 2])
            }
            _ => "(plain RTN only)".into(),
        };
        println!(
            "| recipes/{name}.toml | {:.2} s | {:.2}x | {} | {below} of {} | {spread} |",
            time.as_secs_f64(),
            time.as_secs_f64() / t_rtn.as_secs_f64(),
            ratios.len(),
            ratios.len(),
        );
    }
    println!(
        "\nproxy = tr(E H E^T) / tr(W H W^T), E = W - Q; each recipe's time includes its \
         plain-RTN comparison and both proxies (one extra RTN pass and three H products per matrix)."
    );
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if !matches!(
        what.as_str(),
        "sizes" | "decode" | "quantize" | "all" | "codecs" | "budget"
    ) {
        eprintln!(
            "usage: cargo run --release -p pgq-bench -- [sizes|decode|quantize|all]\n       \
             cargo run --release -p pgq-bench -- codecs [ARTIFACT.pgq ...]\n       \
             cargo run --release -p pgq-bench -- budget"
        );
        std::process::exit(3);
    }
    if what == "budget" {
        budget::run();
        return;
    }
    if what == "codecs" {
        codecs::compare("demo model (default policy, RTN)", &model());
        for path in std::env::args().skip(2) {
            let path = std::path::PathBuf::from(path);
            codecs::compare(&path.display().to_string(), &codecs::load(&path));
        }
        return;
    }
    if what == "quantize" || what == "all" {
        let sources = DemoConfig::default().generate(0).expect("demo model");
        quantize(&sources);
        println!();
        if what == "quantize" {
            return;
        }
    }
    let tensors = model();
    if what == "sizes" || what == "all" {
        sizes(&tensors);
        println!();
    }
    if what == "decode" || what == "all" {
        decode(&tensors);
    }
}
