//! What this machine offers the CUDA backend, found without creating a
//! context: the driver library and its devices, NVRTC, cuBLAS, cuSOLVER.
//! Every check loads a library only after `is_culib_present()` says it is
//! there (cudarc's loaders panic on a missing one).

use cudarc::driver::{result, sys};
use serde::Serialize;

use super::error::CudaError;

/// One CUDA device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    /// e.g. `sm_90`.
    pub arch: String,
    pub memory_bytes: u64,
}

/// The CUDA libraries and devices found.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Probe {
    /// libcuda (the driver) can be loaded.
    pub driver: bool,
    /// The driver's CUDA version, e.g. `(13, 0)`.
    pub driver_version: Option<(i32, i32)>,
    pub devices: Vec<DeviceInfo>,
    /// Why no device was found, when the driver is present.
    pub device_error: Option<String>,
    /// NVRTC's version, when it can be loaded.
    pub nvrtc: Option<(i32, i32)>,
    pub cublas: bool,
    pub cusolver: bool,
}

impl Probe {
    /// Why the CUDA backend cannot run here, or `None` when it can.
    pub fn unavailable(&self) -> Option<CudaError> {
        if !self.driver {
            return Some(CudaError::NoDriver);
        }
        if self.devices.is_empty() {
            return Some(CudaError::NoDevice(
                self.device_error
                    .clone()
                    .unwrap_or_else(|| "0 devices".into()),
            ));
        }
        if self.nvrtc.is_none() {
            return Some(CudaError::NoNvrtc);
        }
        if !self.cublas {
            return Some(CudaError::NoLibrary("cuBLAS (libcublas.so.13)"));
        }
        if !self.cusolver {
            return Some(CudaError::NoLibrary("cuSOLVER (libcusolver.so.12)"));
        }
        None
    }
}

/// Whether libcuda can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { sys::is_culib_present() }
}

/// Looks at the machine. Never fails: what is missing is recorded.
pub fn probe() -> Probe {
    let mut probe = Probe {
        driver: driver_present(),
        nvrtc: super::compile::nvrtc_version().ok(),
        // SAFETY: only try to dlopen the libraries.
        cublas: unsafe { cudarc::cublas::sys::is_culib_present() },
        cusolver: unsafe { cudarc::cusolver::sys::is_culib_present() },
        ..Probe::default()
    };
    if probe.driver {
        match devices() {
            Ok((version, devices)) => {
                probe.driver_version = Some(version);
                probe.devices = devices;
            }
            Err(message) => probe.device_error = Some(message),
        }
    }
    probe
}

fn devices() -> Result<((i32, i32), Vec<DeviceInfo>), String> {
    result::init().map_err(|e| format!("cuInit: {e}"))?;
    let mut version = 0;
    // SAFETY: the driver is present and initialized; one out-parameter.
    unsafe { sys::cuDriverGetVersion(&mut version) };
    let count = result::device::get_count().map_err(|e| format!("cuDeviceGetCount: {e}"))?;
    let mut devices = Vec::new();
    for ordinal in 0..count {
        let dev = result::device::get(ordinal).map_err(|e| e.to_string())?;
        let attribute = |a| {
            // SAFETY: a valid device handle and attribute.
            unsafe { result::device::get_attribute(dev, a) }.map_err(|e| e.to_string())
        };
        let major =
            attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor =
            attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        devices.push(DeviceInfo {
            ordinal: ordinal as usize,
            name: result::device::get_name(dev).map_err(|e| e.to_string())?,
            arch: format!("sm_{major}{minor}"),
            // SAFETY: a valid device handle.
            memory_bytes: unsafe { result::device::total_mem(dev) }.map_err(|e| e.to_string())?
                as u64,
        });
    }
    Ok(((version / 1000, (version % 1000) / 10), devices))
}

/// Fails with the first missing piece unless the driver, a device, NVRTC,
/// cuBLAS and cuSOLVER are all there.
pub fn require_runtime() -> Result<(), CudaError> {
    match probe().unavailable() {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A machine with everything, for tests.
#[cfg(test)]
pub(crate) fn complete() -> Probe {
    Probe {
        driver: true,
        driver_version: Some((13, 0)),
        devices: vec![DeviceInfo {
            ordinal: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            arch: "sm_90".into(),
            memory_bytes: 85_520_809_984,
        }],
        device_error: None,
        nvrtc: Some((13, 0)),
        cublas: true,
        cusolver: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_missing_piece_is_named() {
        assert_eq!(complete().unavailable(), None);
        assert_eq!(Probe::default().unavailable(), Some(CudaError::NoDriver));
        let no_device = Probe {
            devices: vec![],
            device_error: Some("cuInit: CUDA_ERROR_NO_DEVICE".into()),
            ..complete()
        };
        assert!(
            matches!(no_device.unavailable(), Some(CudaError::NoDevice(m)) if m.contains("NO_DEVICE"))
        );
        let no_nvrtc = Probe {
            nvrtc: None,
            ..complete()
        };
        assert_eq!(no_nvrtc.unavailable(), Some(CudaError::NoNvrtc));
        let no_solver = Probe {
            cusolver: false,
            ..complete()
        };
        assert!(no_solver
            .unavailable()
            .unwrap()
            .to_string()
            .contains("cuSOLVER"));
    }

    #[test]
    fn probing_never_panics() {
        // Whatever this machine has (CI: nothing), the probe answers.
        let p = probe();
        if !p.driver {
            assert!(p.devices.is_empty());
            assert_eq!(p.unavailable(), Some(CudaError::NoDriver));
        }
    }
}
