//! Typed errors of the CUDA backend. Missing libraries are errors, never
//! panics: cudarc's loaders panic when a library is absent, so every entry
//! point checks `is_culib_present()` first.

/// Why the CUDA backend cannot run, or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CudaError {
    #[error(
        "the NVIDIA driver library (libcuda.so.1) was not found: no NVIDIA driver is installed \
         on this machine"
    )]
    NoDriver,
    #[error("the NVIDIA driver found no CUDA device ({0})")]
    NoDevice(String),
    #[error(
        "NVRTC (libnvrtc.so.13) was not found: install the CUDA 13 toolkit or put the folder \
         that scripts/fetch-nvrtc.sh prints on LD_LIBRARY_PATH"
    )]
    NoNvrtc,
    #[error(
        "{0} was not found (it ships with the CUDA 13 toolkit; put its folder on LD_LIBRARY_PATH)"
    )]
    NoLibrary(&'static str),
    #[error("NVRTC could not compile the pgq kernels for {arch}: {log}")]
    Compile { arch: String, log: String },
    #[error("the compiled module lacks kernel `{0}` (a pgq bug)")]
    MissingKernel(&'static str),
    #[error("CUDA driver call failed while {during}: {message}")]
    Driver {
        during: &'static str,
        message: String,
    },
    #[error("{library} failed while {during}: status {status}")]
    Library {
        library: &'static str,
        during: &'static str,
        status: String,
    },
    #[error("{what} does not fit the CUDA backend's 64-bit offsets")]
    TooLarge { what: &'static str },
}

impl CudaError {
    /// A driver error with what was being done.
    pub(crate) fn driver(during: &'static str) -> impl FnOnce(cudarc::driver::DriverError) -> Self {
        move |e| CudaError::Driver {
            during,
            message: e.to_string(),
        }
    }
}
