//! Timing check, not a test: generates the default demo model, RTN-quantizes
//! it with the default policy and prints times and the codes' order-0
//! entropy. Run in release mode:
//!
//! ```text
//! cargo run --release -p pgq-quantizer --example rtn_timing [-- --gaussian] [-- --sizes]
//! ```
//!
//! `--gaussian` draws Gaussian entries instead of Student-t (field.md's
//! 3.33 bits per int6 code is for Gaussian weights); `--sizes` also
//! compresses the status-quo stream with brotli-11 (slow: tens of seconds).

use std::time::Instant;

use pgq_quantizer::{
    code_entropy, quantize_model, status_quo_bytes, worker_count, DefaultPolicy, DemoConfig,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let gaussian = args.iter().any(|a| a == "--gaussian");
    let sizes = args.iter().any(|a| a == "--sizes");
    let config = DemoConfig {
        tail_dof: if gaussian { 0 } else { 5 },
        ..DemoConfig::default()
    };
    println!(
        "demo model: {} parameters, tails {}, {} worker threads",
        config.parameter_count().unwrap_or(0),
        if gaussian {
            "gaussian".to_string()
        } else {
            format!("student-t nu={}", config.tail_dof)
        },
        worker_count(0)
    );

    let start = Instant::now();
    let sources = config.generate(0)?;
    let generate_s = start.elapsed().as_secs_f64();
    println!("generate: {generate_s:.3} s");

    let start = Instant::now();
    let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None)?;
    let quantize_s = start.elapsed().as_secs_f64();
    println!("rtn quantize + fidelity reports: {quantize_s:.3} s");

    let entropy = code_entropy(&model.tensors);
    for (bits, summary) in &entropy.by_bits {
        println!(
            "int{bits}: {} codes, {:.4} bits/code, {:.0} bytes at order-0 entropy",
            summary.codes, summary.bits_per_code, summary.bytes
        );
    }
    println!(
        "all codes: {:.4} bits/code, {:.0} bytes",
        entropy.all.bits_per_code, entropy.all.bytes
    );
    for name in [
        "tok_emb.weight",
        "blocks.0.attn.c_q.weight",
        "blocks.0.mlp.proj.weight",
    ] {
        if let Some(r) = model.reports.iter().find(|r| r.name == name) {
            println!(
                "{name}: {} rel_rmse {:.4} snr {:.2} dB max_abs_err {:.3e}",
                r.method, r.rel_rmse, r.snr_db, r.max_abs_err
            );
        }
    }

    if sizes {
        let start = Instant::now();
        let status_quo = status_quo_bytes(&model.tensors, 11)?;
        println!(
            "status quo (torch-style stream, BSHF 2, brotli-11): {} bytes in {:.1} s",
            status_quo.len(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
