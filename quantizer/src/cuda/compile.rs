//! The kernels' CUDA C, compiled by NVRTC at run time, once per process and
//! architecture (a `OnceLock` cache), so pgq needs no CUDA toolkit to build
//! and no nvcc anywhere.

use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use super::error::CudaError;

/// The sources, in the order they are concatenated into one program
/// (`common.cuh` first: the others use its types and helpers).
pub const SOURCES: [(&str, &str); 7] = [
    ("common.cuh", include_str!("kernels/common.cuh")),
    ("scales.cu", include_str!("kernels/scales.cu")),
    ("search.cu", include_str!("kernels/search.cu")),
    ("rtn.cu", include_str!("kernels/rtn.cu")),
    ("hessian.cu", include_str!("kernels/hessian.cu")),
    ("sweep.cu", include_str!("kernels/sweep.cu")),
    ("pack.cu", include_str!("kernels/pack.cu")),
];

/// Every kernel (`extern "C" __global__`) of [`SOURCES`].
pub const KERNELS: [&str; 9] = [
    "pgq_scales_fixed",
    "pgq_clip_candidates",
    "pgq_clip_pick",
    "pgq_rtn_codes",
    "pgq_hessian_check",
    "pgq_hessian_prepare",
    "pgq_u_from_inverse",
    "pgq_gptq_sweep",
    "pgq_pack_codes",
];

/// The architecture of CI's compile check and of `pgq doctor` without a
/// device: Hopper (H100, H200).
pub const DEFAULT_ARCH: &str = "sm_90";

/// The whole program: the sources concatenated, each after a `#line`
/// directive so that NVRTC's messages name the file and line.
pub fn program_source() -> String {
    let mut source = String::new();
    for (name, text) in SOURCES {
        source.push_str(&format!("#line 1 \"{name}\"\n"));
        source.push_str(text);
        source.push('\n');
    }
    source
}

/// Whether libnvrtc can be loaded (no CUDA driver or device needed).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// NVRTC's version, `(major, minor)`.
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is present; two out-parameters.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(CudaError::Compile {
            arch: String::new(),
            log: format!("nvrtcVersion returned {status:?}"),
        });
    }
    Ok((major, minor))
}

/// PTX of every kernel for `arch` (e.g. `sm_90`): compiled on the first
/// call for that architecture, then served from the cache.
pub fn ptx_for(arch: &str) -> Result<String, CudaError> {
    static CACHE: OnceLock<Mutex<Vec<(String, String)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut entries = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, ptx)) = entries.iter().find(|(a, _)| a == arch) {
        return Ok(ptx.clone());
    }
    let ptx = compile(arch)?;
    entries.push((arch.to_string(), ptx.clone()));
    Ok(ptx)
}

/// Compiles the program to PTX for `arch`, uncached.
pub fn compile(arch: &str) -> Result<String, CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    // NVRTC wants a 'static architecture name: keep the few ever asked for.
    let arch_static: &'static str = match arch {
        "sm_80" => "sm_80",
        "sm_86" => "sm_86",
        "sm_89" => "sm_89",
        "sm_90" => "sm_90",
        "sm_100" => "sm_100",
        "sm_120" => "sm_120",
        other => Box::leak(other.to_string().into_boxed_str()),
    };
    let options = CompileOptions {
        arch: Some(arch_static),
        // IEEE division and square root: scales and codes must match the
        // CPU's f32 arithmetic.
        prec_div: Some(true),
        prec_sqrt: Some(true),
        ftz: Some(false),
        name: Some("pgq_kernels.cu".into()),
        options: vec!["--std=c++17".into()],
        ..Default::default()
    };
    let ptx: Ptx =
        cudarc::nvrtc::compile_ptx_with_opts(program_source(), options).map_err(|error| {
            CudaError::Compile {
                arch: arch.to_string(),
                log: match error {
                    CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
                    other => other.to_string(),
                },
            }
        })?;
    let text = ptx.to_src();
    if let Some(missing) = missing_kernel(&text) {
        return Err(CudaError::MissingKernel(missing));
    }
    Ok(text)
}

/// The first of [`KERNELS`] that `ptx` does not define.
pub fn missing_kernel(ptx: &str) -> Option<&'static str> {
    KERNELS
        .into_iter()
        .find(|name| !ptx.contains(&format!(".entry {name}(")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_kernel_is_defined_once_in_the_sources() {
        let source = program_source();
        for name in KERNELS {
            let definitions = source.matches(&format!(" {name}(")).count();
            assert_eq!(definitions, 1, "{name}");
        }
        // And nothing else is a kernel.
        assert_eq!(source.matches("__global__").count(), KERNELS.len());
    }

    #[test]
    fn missing_kernels_are_named() {
        let all: String = KERNELS
            .iter()
            .map(|k| format!(".visible .entry {k}(\n"))
            .collect();
        assert_eq!(missing_kernel(&all), None);
        let without = all.replace(".entry pgq_clip_pick(", ".entry other(");
        assert_eq!(missing_kernel(&without), Some("pgq_clip_pick"));
    }
}
