//! Shared by the parity tests: `.npy` files written and read without
//! numpy on the Rust side, and the Python interpreter that runs the NumPy
//! references (`python3`, or `$PGQ_PYTHON`).

#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::process::Command;

use half::f16;

pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + dict + '\n', padded to 64.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

pub fn write_f32(path: &Path, values: &[f32], shape: &[usize]) {
    let mut bytes = npy_header("<f4", shape);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    fs::write(path, bytes).unwrap();
}

pub fn write_scalar_f64(path: &Path, value: f64) {
    let mut bytes = npy_header("<f8", &[]);
    bytes.extend_from_slice(&value.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

pub fn write_scalar_i64(path: &Path, value: i64) {
    let mut bytes = npy_header("<i8", &[]);
    bytes.extend_from_slice(&value.to_le_bytes());
    fs::write(path, bytes).unwrap();
}

/// Reads a little-endian, C-order `.npy`: `(descr, shape, data bytes)`.
pub fn read_npy(path: &Path) -> (String, Vec<usize>, Vec<u8>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let field = |key: &str, close: char| -> String {
        let at = header
            .find(key)
            .unwrap_or_else(|| panic!("{key} in {header}"))
            + key.len();
        let rest = &header[at..];
        rest[..rest.find(close).unwrap()].to_string()
    };
    let descr = field("'descr': '", '\'');
    let shape = field("'shape': (", ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (descr, shape, bytes[start + header_len..].to_vec())
}

pub fn read_codes(path: &Path) -> Vec<i8> {
    let (descr, _, data) = read_npy(path);
    assert_eq!(descr, "|i1");
    data.into_iter().map(|b| b as i8).collect()
}

pub fn read_scales(path: &Path) -> Vec<f16> {
    let (descr, _, data) = read_npy(path);
    assert_eq!(descr, "<f2");
    data.chunks_exact(2)
        .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
        .collect()
}

pub fn read_f64(path: &Path) -> f64 {
    let (descr, _, data) = read_npy(path);
    assert_eq!(descr, "<f8");
    f64::from_le_bytes(data[..8].try_into().unwrap())
}

pub fn read_i64(path: &Path) -> i64 {
    let (descr, _, data) = read_npy(path);
    assert_eq!(descr, "<i8");
    i64::from_le_bytes(data[..8].try_into().unwrap())
}

// ------------------------------------------------------------- python

pub fn python() -> String {
    std::env::var("PGQ_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Fails, never skips, when the reference cannot run.
pub fn require_numpy() {
    let py = python();
    let status = Command::new(&py)
        .args(["-c", "import numpy"])
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "a parity test needs `{py}` with numpy, but `{py}` could not be run ({e}); \
                 install python3 and numpy (pip install numpy), or point PGQ_PYTHON at an \
                 interpreter that has them"
            )
        });
    assert!(
        status.success(),
        "a parity test needs numpy: `{py} -c 'import numpy'` failed; \
         install it (pip install numpy) or point PGQ_PYTHON at an interpreter that has it"
    );
}
