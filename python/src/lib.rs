//! `pgq._pgq`: the native half of the Python package.
//!
//! It only converts: Python buffers to borrowed or widened f32 tensors,
//! options to the libraries' types, results to bytes and JSON, errors to
//! exceptions. Every job is one library call (`pgq_quantizer::pipeline`,
//! `pgq_format::read`, `pgq_verifier::inspect`, `pgq_verifier::verify::verify`),
//! the same the CLI makes, so both write the same bytes. The GIL is
//! released while the libraries work.

use half::{bf16, f16};
use pyo3::buffer::{PyBuffer, ReadOnlyCell};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use pgq_format::{read, read_header, Compression, FormatError, ReadOptions};
use pgq_quantizer::backend::{select, DeviceChoice};
use pgq_quantizer::budget::{quantize_to_budget, Allocation, Budget};
use pgq_quantizer::pipeline::{
    self, Hessians, Observer, Options, PipelineError, Planning, ProgressBar,
};
use pgq_quantizer::{DefaultPolicy, HessianSource, Recipe, SourceTensor};
use pgq_verifier::verify::{verify as verify_artifact, Thresholds, VerifyOptions};

create_exception!(
    _pgq,
    PgqError,
    PyException,
    "Base class of every error pgq raises."
);
create_exception!(
    _pgq,
    FormatError_,
    PgqError,
    "Bytes that are not a valid .pgq file; `error_class` (spec/FORMAT.md §9), `field` and `offset` say where."
);
create_exception!(
    _pgq,
    QuantizeError,
    PgqError,
    "Inputs that cannot be quantized: a recipe that does not fit, missing Hessians, a tensor GPTQ cannot factor."
);
create_exception!(
    _pgq,
    UsageError,
    PgqError,
    "Arguments that make no sense together (an unknown codec, an `only` glob that selects nothing)."
);

/// A tensor as it crosses from Python: name, dtype (`f32`, `f16`, `bf16`),
/// shape, and a C-contiguous buffer of its little-endian bytes.
type TensorArg<'py> = (String, String, Vec<u64>, Bound<'py, PyAny>);

/// `quantize`'s result: the artifact's bytes, the report as JSON, the
/// warnings, and the backend's note (why `auto` chose the CPU).
type Quantized<'py> = (Bound<'py, PyBytes>, String, Vec<String>, Option<String>);

/// A dequantized tensor: name, shape, little-endian f32 bytes.
type Loaded<'py> = (String, Vec<u64>, Bound<'py, PyBytes>);

fn bytes_of<'a>(
    py: Python<'a>,
    buffer: &'a PyBuffer<u8>,
    name: &str,
) -> PyResult<&'a [ReadOnlyCell<u8>]> {
    buffer.as_slice(py).ok_or_else(|| {
        PyValueError::new_err(format!("tensor {name:?}: the buffer is not C-contiguous"))
    })
}

/// Widens one tensor to f32 (exact for f16 and bf16): the one copy of the
/// weights a call makes.
fn source<'py>(
    py: Python<'py>,
    (name, dtype, shape, data): TensorArg<'py>,
) -> PyResult<SourceTensor> {
    let buffer = PyBuffer::<u8>::get(&data)?;
    let cells = bytes_of(py, &buffer, &name)?;
    let width: u64 = match dtype.as_str() {
        "f32" => 4,
        "f16" | "bf16" => 2,
        other => {
            return Err(PyValueError::new_err(format!(
                "tensor {name:?}: dtype {other:?}; pgq reads f32, f16 and bf16"
            )))
        }
    };
    let expected = shape
        .iter()
        .try_fold(width, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            PyValueError::new_err(format!("tensor {name:?}: shape {shape:?} overflows"))
        })?;
    if cells.len() as u64 != expected {
        return Err(PyValueError::new_err(format!(
            "tensor {name:?}: {} bytes for shape {shape:?} of {dtype}, which needs {expected}",
            cells.len()
        )));
    }
    let values: Vec<f32> = match dtype.as_str() {
        "f32" => cells
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0].get(), b[1].get(), b[2].get(), b[3].get()]))
            .collect(),
        "f16" => cells
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0].get(), b[1].get()]).to_f32())
            .collect(),
        _ => cells
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0].get(), b[1].get()]).to_f32())
            .collect(),
    };
    Ok(SourceTensor {
        name,
        shape,
        values,
    })
}

fn sources(py: Python<'_>, tensors: Vec<TensorArg<'_>>) -> PyResult<Vec<SourceTensor>> {
    tensors.into_iter().map(|t| source(py, t)).collect()
}

/// The exception for a reader error, with its class, field and offset as
/// attributes (the caller holds the GIL).
fn format_error(py: Python<'_>, error: FormatError) -> PyErr {
    let err = FormatError_::new_err(error.to_string());
    let value = err.value(py);
    let _ = value.setattr("error_class", error.kind.as_str());
    let _ = value.setattr("field", error.field);
    let _ = value.setattr("offset", error.offset);
    err
}

fn pipeline_error(error: PipelineError) -> PyErr {
    match error {
        PipelineError::BadGlob { .. } | PipelineError::SelectsNothing { .. } => {
            UsageError::new_err(error.to_string())
        }
        other => QuantizeError::new_err(other.to_string()),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| PgqError::new_err(format!("cannot render JSON: {e}")))
}

/// The report, with the budget search's where one ran.
#[derive(serde::Serialize)]
struct WithBudget {
    #[serde(flatten)]
    report: pgq_quantizer::pipeline::Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<pgq_quantizer::budget::BudgetReport>,
}

/// Quantizes tensors into `.pgq` bytes: `(bytes, report JSON, warnings,
/// backend note)`. `recipe` is TOML text; `recipe_path` a file; neither
/// is the default policy (plain RTN), as `pgq quantize` without --recipe.
#[pyfunction]
#[pyo3(signature = (tensors, *, hessians=None, recipe=None, recipe_path=None, device="auto", threads=0, codec="auto", level=None, only=Vec::new(), progress=true, budget=None, allocation="uniform"))]
#[allow(clippy::too_many_arguments)]
fn quantize<'py>(
    py: Python<'py>,
    tensors: Vec<TensorArg<'py>>,
    hessians: Option<Vec<TensorArg<'py>>>,
    recipe: Option<String>,
    recipe_path: Option<String>,
    device: &str,
    threads: usize,
    codec: &str,
    level: Option<u32>,
    only: Vec<String>,
    progress: bool,
    budget: Option<u64>,
    allocation: &str,
) -> PyResult<Quantized<'py>> {
    let allocation = match allocation {
        "uniform" => Allocation::Uniform,
        "per-tensor" => Allocation::PerTensor,
        other => {
            return Err(UsageError::new_err(format!(
                "allocation {other:?}: \"uniform\" or \"per-tensor\""
            )))
        }
    };
    let compression = Compression::from_name(codec, level).map_err(UsageError::new_err)?;
    let choice = match device {
        "auto" => DeviceChoice::Auto,
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        other => {
            return Err(UsageError::new_err(format!(
                "device {other:?}: auto, cpu or cuda"
            )))
        }
    };
    let recipe = match (recipe, recipe_path) {
        (Some(_), Some(_)) => {
            return Err(UsageError::new_err("give recipe or recipe_path, not both"))
        }
        (Some(text), None) => Some(Recipe::parse(&text)),
        (None, Some(path)) => Some(Recipe::load(path)),
        (None, None) => None,
    };
    let planning = match recipe {
        Some(Ok(recipe)) => Planning::Recipe(recipe),
        Some(Err(e)) => return Err(QuantizeError::new_err(e.to_string())),
        None => Planning::Policy(DefaultPolicy::default()),
    };
    let sources = sources(py, tensors)?;
    let hessians = match hessians {
        Some(h) => Some(
            Hessians::new("the hessians mapping", self::sources(py, h)?).map_err(pipeline_error)?,
        ),
        None => None,
    };
    let (artifact, note) = py.detach(|| {
        let selection =
            select(choice).map_err(|e| UsageError::new_err(format!("device cuda: {e}")))?;
        let bar = progress.then(|| ProgressBar::new("pgq.quantize"));
        let options = Options {
            compression,
            threads,
            only,
            observer: bar.as_ref().map(|b| b as &dyn Observer),
            ..Options::default()
        };
        let input = hessians.as_ref().map(|h| h.input());
        let result = match budget {
            None => pipeline::quantize(
                &selection.backend,
                &sources,
                &planning,
                input.as_ref(),
                &options,
            )
            .map(|a| (a, None)),
            Some(bytes) => quantize_to_budget(
                &selection.backend,
                &sources,
                &planning,
                input.as_ref(),
                &options,
                Budget { bytes, allocation },
            )
            .map(|(a, report)| (a, Some(report))),
        };
        if let Some(bar) = bar {
            bar.bar.finish_and_clear();
        }
        result.map(|a| (a, selection.note)).map_err(pipeline_error)
    })?;
    let (artifact, fitted) = artifact;
    let report = to_json(&WithBudget {
        report: artifact.report(),
        budget: fitted,
    })?;
    Ok((
        PyBytes::new(py, &artifact.bytes),
        report,
        artifact.warnings,
        note,
    ))
}

/// Every tensor of a `.pgq` file as `(name, shape, f32 little-endian
/// bytes)`: exactly what `pgq export` writes.
#[pyfunction]
fn load<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Vec<Loaded<'py>>> {
    let archive = py
        .detach(|| read(data, &ReadOptions::default()))
        .map_err(|e| format_error(py, e))?;
    archive
        .tensors
        .iter()
        .map(|t| {
            let values = t.dequantize();
            let bytes = PyBytes::new_with(py, values.len() * 4, |out: &mut [u8]| {
                for (chunk, v) in out.chunks_exact_mut(4).zip(&values) {
                    chunk.copy_from_slice(&v.to_le_bytes());
                }
                Ok(())
            })?;
            Ok((t.name.clone(), t.shape.clone(), bytes))
        })
        .collect()
}

/// One factor of a correction: bits, range (`"symmetric"` or `"full"`),
/// elements per scale, codes (`i8`, row-major), scales (little-endian fp16).
type FactorCodes<'py> = (
    u8,
    &'static str,
    u32,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
);

/// A quantized tensor's stored form: name, shape, bits, group size (0 = one
/// scale per row), the codes (one `i8` per element, row-major), the scales
/// (little-endian fp16, `scales[row * groups + group]`), and a low-rank
/// correction's rank and factors `A`, `B` (format 1.2), if any.
type Codes<'py> = (
    String,
    Vec<u64>,
    u8,
    u32,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Option<(u32, FactorCodes<'py>, FactorCodes<'py>)>,
);

/// Codes as bytes, one copy, straight into Python.
fn code_bytes<'py>(py: Python<'py>, codes: &[i8]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, codes.len(), |out: &mut [u8]| {
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = c as u8;
        }
        Ok(())
    })
}

/// fp16 scales as little-endian bytes.
fn scale_bytes<'py>(
    py: Python<'py>,
    scales: &[pgq_format::half::f16],
) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, scales.len() * 2, |out: &mut [u8]| {
        for (o, s) in out.chunks_exact_mut(2).zip(scales) {
            o.copy_from_slice(&s.to_le_bytes());
        }
        Ok(())
    })
}

fn factor_codes<'py>(py: Python<'py>, f: &pgq_format::Factor) -> PyResult<FactorCodes<'py>> {
    Ok((
        f.bits,
        f.range.name(),
        f.group,
        code_bytes(py, &f.codes)?,
        scale_bytes(py, &f.scales)?,
    ))
}

/// The codes and scales of every quantized tensor of a `.pgq` file, in file
/// order (kept tensors are left out), with their corrections: what a
/// serializer of the same codes needs, without dequantizing.
#[pyfunction]
fn codes<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Vec<Codes<'py>>> {
    let archive = py
        .detach(|| read(data, &ReadOptions::default()))
        .map_err(|e| format_error(py, e))?;
    let mut out = Vec::new();
    for t in &archive.tensors {
        if let pgq_format::TensorData::Quantized {
            bits,
            group_size,
            codes,
            scales,
            correction,
        } = &t.data
        {
            let correction = match correction {
                Some(c) => Some((c.rank, factor_codes(py, &c.a)?, factor_codes(py, &c.b)?)),
                None => None,
            };
            out.push((
                t.name.clone(),
                t.shape.clone(),
                *bits,
                *group_size,
                code_bytes(py, codes)?,
                scale_bytes(py, scales)?,
                correction,
            ));
        }
    }
    Ok(out)
}

/// `pgq inspect --json` of a `.pgq` file (without `file`), as JSON.
#[pyfunction]
fn inspect(py: Python<'_>, data: &[u8]) -> PyResult<String> {
    let header = py
        .detach(|| read_header(data, &ReadOptions::default()))
        .map_err(|e| format_error(py, e))?;
    to_json(&pgq_verifier::inspect::inspect(&header))
}

/// `pgq verify --json` of a `.pgq` file, as JSON.
#[pyfunction]
#[pyo3(signature = (data, subject, *, reference=None, hessians=None, cap=pgq_format::CAP_BYTES, code_files=Vec::new()))]
fn verify<'py>(
    py: Python<'py>,
    data: &[u8],
    subject: &str,
    reference: Option<Vec<TensorArg<'py>>>,
    hessians: Option<Vec<TensorArg<'py>>>,
    cap: u64,
    code_files: Vec<(String, u64)>,
) -> PyResult<String> {
    let reference = reference.map(|r| sources(py, r)).transpose()?;
    let hessians = match hessians {
        Some(h) => {
            Some(Hessians::new("the hessians mapping", sources(py, h)?).map_err(pipeline_error)?)
        }
        None => None,
    };
    let report = py
        .detach(|| {
            let options = VerifyOptions {
                cap,
                code_files,
                reference: reference.as_deref(),
                hessians: hessians.as_ref().map(|h| h as &dyn HessianSource),
                thresholds: Thresholds::default(),
                read: ReadOptions::default(),
            };
            verify_artifact(data, subject, &options)
        })
        .map_err(|e| format_error(py, e))?;
    to_json(&report)
}

/// The content digest `pgq.source.sha256` records for these tensors.
#[pyfunction]
fn tensor_digest(py: Python<'_>, tensors: Vec<TensorArg<'_>>) -> PyResult<String> {
    let sources = sources(py, tensors)?;
    Ok(pgq_quantizer::tensor_digest(sources.iter().map(|s| {
        (s.name.as_str(), s.shape.as_slice(), s.values.as_slice())
    })))
}

#[pymodule]
fn _pgq(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("CAP_BYTES", pgq_format::CAP_BYTES)?;
    m.add("PgqError", py.get_type::<PgqError>())?;
    m.add("FormatError", py.get_type::<FormatError_>())?;
    m.add("QuantizeError", py.get_type::<QuantizeError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add_function(wrap_pyfunction!(quantize, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(codes, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(tensor_digest, m)?)?;
    Ok(())
}
