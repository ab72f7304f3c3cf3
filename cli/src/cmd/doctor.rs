//! `pgq doctor`: the compute backends this machine offers.

use std::time::Instant;

use clap::Args;
use pgq_quantizer::backend::DeviceChoice;
use pgq_quantizer::cuda::compile::{self, DEFAULT_ARCH, KERNELS};
use pgq_quantizer::cuda::selftest::{self_test, SelfTest};
use pgq_quantizer::cuda::{decide, probe, Decision, Device, Probe};
use pgq_quantizer::worker_count;
use serde::Serialize;

use crate::exit::{CliResult, Malformed, CHECK_FAILED, OK};

/// Report the compute backends found, and compile the CUDA kernels.
///
/// Lists the CPU path (worker threads), the NVIDIA driver (libcuda.so.1)
/// and its devices, NVRTC (libnvrtc.so.13) and its version, cuBLAS and
/// cuSOLVER, and what `pgq quantize --device auto` would use. When NVRTC
/// is found, compiles every kernel of the CUDA backend to PTX, for the
/// first device's architecture or --arch (default sm_90), and prints e.g.
/// `9 kernels compiled for sm_90`. That step needs no GPU or driver: CI
/// runs it with the NVRTC of the PyPI wheel nvidia-cuda-nvrtc
/// (scripts/fetch-nvrtc.sh prints the folder to put on LD_LIBRARY_PATH).
///
/// --self-test (needs a GPU) also quantizes a small model on the GPU with
/// five plans that run every kernel, compares the codes with the CPU
/// path's (at least 99.9% equal per tensor) and checks the packing kernel
/// against the format's packer.
///
/// Exits 1 when the kernels do not compile, the self-test fails, or a
/// --require-* is not met; 0 otherwise (a machine without CUDA is fine).
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Compile for this architecture (default: the first device's, else
    /// sm_90).
    #[arg(long)]
    pub arch: Option<String>,
    /// Fail (exit 1) unless NVRTC is found and compiles every kernel.
    #[arg(long)]
    pub require_nvrtc: bool,
    /// Fail (exit 1) unless the CUDA backend can run here.
    #[arg(long)]
    pub require_cuda: bool,
    /// Also run the GPU self-test (CUDA vs CPU codes, packing).
    #[arg(long)]
    pub self_test: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Kernels {
    arch: String,
    count: usize,
    compiled: bool,
    ptx_bytes: usize,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct DoctorJson {
    cpu_threads: usize,
    cuda: Probe,
    /// What `--device auto` would use, and why when it is the CPU.
    auto: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernels: Option<Kernels>,
    #[serde(skip_serializing_if = "Option::is_none")]
    self_test: Option<SelfTest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    self_test_error: Option<String>,
    passed: bool,
}

fn found(yes: bool) -> &'static str {
    if yes {
        "found"
    } else {
        "not found"
    }
}

pub fn run(args: &DoctorArgs) -> CliResult<u8> {
    let machine = probe();
    let auto = match (decide(DeviceChoice::Auto, &machine), machine.unavailable()) {
        (Ok(Decision::Cuda), _) => "cuda".to_string(),
        (_, Some(why)) => format!("cpu (CUDA is not available: {why})"),
        (_, None) => "cpu".to_string(),
    };
    let arch = args
        .arch
        .clone()
        .or_else(|| machine.devices.first().map(|d| d.arch.clone()))
        .unwrap_or_else(|| DEFAULT_ARCH.to_string());
    let kernels = machine.nvrtc.map(|_| {
        let t = Instant::now();
        let result = compile::compile(&arch);
        Kernels {
            arch: arch.clone(),
            count: KERNELS.len(),
            compiled: result.is_ok(),
            ptx_bytes: result.as_ref().map_or(0, String::len),
            seconds: t.elapsed().as_secs_f64(),
            error: result.err().map(|e| e.to_string()),
        }
    });
    let (self_test, self_test_error) = if args.self_test {
        match Device::open(0).and_then(self_test) {
            Ok(report) => (Some(report), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let mut passed = kernels.as_ref().is_none_or(|k| k.compiled);
    if args.require_nvrtc && kernels.is_none() {
        passed = false;
    }
    if args.require_cuda && machine.unavailable().is_some() {
        passed = false;
    }
    if args.self_test && !self_test.as_ref().is_some_and(SelfTest::passed) {
        passed = false;
    }

    if args.json {
        let doc = DoctorJson {
            cpu_threads: worker_count(0),
            cuda: machine,
            auto,
            kernels,
            self_test,
            self_test_error,
            passed,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).malformed("cannot render JSON")?
        );
        return Ok(if passed { OK } else { CHECK_FAILED });
    }
    println!("cpu: {} worker threads (faer)", worker_count(0));
    let driver = match (machine.driver, machine.driver_version) {
        (true, Some((major, minor))) => format!("found (CUDA {major}.{minor})"),
        (yes, _) => found(yes).to_string(),
    };
    println!("NVIDIA driver (libcuda.so.1): {driver}");
    for d in &machine.devices {
        println!(
            "  device {}: {}, {}, {:.1} GiB",
            d.ordinal,
            d.name,
            d.arch,
            d.memory_bytes as f64 / f64::from(1u32 << 30)
        );
    }
    if let Some(e) = &machine.device_error {
        println!("  no device: {e}");
    }
    let nvrtc = machine
        .nvrtc
        .map_or("not found".to_string(), |(major, minor)| {
            format!("found (version {major}.{minor})")
        });
    println!("NVRTC (libnvrtc.so.13): {nvrtc}");
    println!("cuBLAS: {}", found(machine.cublas));
    println!("cuSOLVER: {}", found(machine.cusolver));
    println!("--device auto uses: {auto}");
    match &kernels {
        Some(k) if k.compiled => println!(
            "{} kernels compiled for {} ({} bytes of PTX in {:.2} s)",
            k.count, k.arch, k.ptx_bytes, k.seconds
        ),
        Some(k) => println!(
            "kernels: compilation for {} FAILED: {}",
            k.arch,
            k.error.clone().unwrap_or_default()
        ),
        None => println!(
            "kernels: not compiled (no NVRTC; scripts/fetch-nvrtc.sh fetches one, then put its \
             folder on LD_LIBRARY_PATH)"
        ),
    }
    if let Some(report) = &self_test {
        for p in &report.plans {
            println!(
                "self-test: {} on {} tensors: worst codes equal {:.4}%, scales equal {:.4}%, {} on the CPU",
                p.plan,
                p.tensors,
                100.0 * p.worst_code_agreement,
                100.0 * p.worst_scale_agreement,
                p.fallbacks
            );
        }
        println!(
            "self-test: packing kernel {}",
            if report.pack_identical {
                "identical to the format's packer"
            } else {
                "DIFFERS from the format's packer"
            }
        );
    }
    if let Some(e) = &self_test_error {
        println!("self-test: FAILED to run: {e}");
    }
    if !passed {
        println!("doctor: FAILED");
    }
    Ok(if passed { OK } else { CHECK_FAILED })
}
