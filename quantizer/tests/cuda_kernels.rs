#![cfg(feature = "cuda")]
//! Every kernel of the CUDA backend compiles to PTX for sm_90 through NVRTC.
//! No GPU or driver is needed, only libnvrtc.so.13 (scripts/fetch-nvrtc.sh
//! fetches it; put its folder on LD_LIBRARY_PATH). Without it the test is
//! skipped with a note, unless PGQ_REQUIRE_NVRTC=1 (CI) makes that a failure.
#![cfg(not(target_arch = "wasm32"))]

use pgq_quantizer::cuda::compile::{self, KERNELS};

fn nvrtc_or_skip() -> bool {
    if compile::nvrtc_present() {
        return true;
    }
    let required = std::env::var("PGQ_REQUIRE_NVRTC").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "PGQ_REQUIRE_NVRTC=1 but libnvrtc.so.13 cannot be loaded: run scripts/fetch-nvrtc.sh and \
         put the folder it prints on LD_LIBRARY_PATH"
    );
    eprintln!("skipped: libnvrtc.so.13 not found (PGQ_REQUIRE_NVRTC=1 makes this a failure)");
    false
}

#[test]
fn every_kernel_compiles_to_ptx_for_sm_90() {
    if !nvrtc_or_skip() {
        return;
    }
    let (major, minor) = compile::nvrtc_version().unwrap();
    assert!(major >= 12, "NVRTC {major}.{minor}");
    let ptx = compile::compile("sm_90").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ptx.contains(".target sm_90"),
        "PTX targets another architecture"
    );
    for name in KERNELS {
        assert!(ptx.contains(&format!(".entry {name}(")), "{name} missing");
    }
    // The cache returns the same text without compiling again.
    let cached = compile::ptx_for("sm_90").unwrap();
    assert_eq!(cached, ptx);
}

#[test]
fn a_broken_kernel_is_a_typed_error_with_the_log() {
    if !nvrtc_or_skip() {
        return;
    }
    let err = compile::compile("sm_bogus").unwrap_err();
    assert!(
        matches!(&err, pgq_quantizer::cuda::CudaError::Compile { arch, .. } if arch == "sm_bogus"),
        "{err}"
    );
}

#[test]
fn the_sweep_keeps_its_registers_out_of_local_memory() {
    if !nvrtc_or_skip() {
        return;
    }
    let ptx = compile::ptx_for("sm_90").unwrap();
    if let Ok(path) = std::env::var("PGQ_DUMP_PTX") {
        std::fs::write(path, &ptx).unwrap();
    }
    // A run-time index into the per-row register arrays would move them to
    // local memory (`.local` in PTX), many times slower.
    let start = ptx.find(".entry pgq_gptq_sweep(").unwrap();
    let body = &ptx[start..];
    let end = body[1..].find(".entry ").map_or(body.len(), |e| e + 1);
    assert!(
        !body[..end].contains(".local"),
        "pgq_gptq_sweep uses local memory"
    );
}
