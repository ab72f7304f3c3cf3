//! The unpickled object mapped to pgq tensors, losslessly.
//!
//! Two layouts are known:
//!
//! - `w/m`: `{"w": tensors, "m": meta}`, today's records. For each entry of
//!   `m` (in order): a meta holding `passthrough` (`"passthrough"`,
//!   `"passthrough_ctrl"`, `"passthrough (float16)"`, `{"type":
//!   "passthrough"}`) takes `w[name]` as it is; `"gate_int8_row"` (the
//!   2026-04-22 and later records' attention gates) takes the int8 codes
//!   `w[name + ".gq"]` and one scale per row `w[name + ".gs"]`; a meta
//!   naming a bit width (`"int6"`, `"gptq (int6)"`, `{"type": "int8"}`)
//!   takes the int8 codes `w[name + ".q"]` and the scales
//!   `w[name + ".scale"]`; any other meta is read by which of the two is
//!   present, with the bit width inferred from the codes. Every tensor in
//!   `w` must be claimed by exactly one entry.
//!
//!   A meta with `+lqer` or `+lqer_asym` (records from 2026-04-27 on) adds
//!   a low-rank correction `A @ B` to the dequantized weight, from factors
//!   stored beside the codes (`.lqA`/`.lqAs`/`.lqB`/`.lqBs`, or their `_a`
//!   asymmetric forms: A int2 with one scale, B int4 in groups): the
//!   tensor becomes a pgq tensor with a low-rank correction (format 1.2;
//!   the `lqer` module).
//! - `int8_clean_per_row_v1`: the baseline's bundle of `quantized` (int8
//!   codes), `scales`, `dtypes`, `passthrough` and optional `qmeta` and
//!   `passthrough_orig_dtypes`; codes are int8 (bits 8).
//!
//! Codes and scales are kept as stored, so pgq's `f32(code) * f32(scale)`
//! is exactly the loaders' `q.float() * scale.float()`. Scales follow the
//! loaders' broadcasting: a 0-d scale covers the whole tensor; otherwise
//! there is one scale per index of the first dimension (`scale.view(
//! q.shape[0], 1, ...)`), repeated over pgq's rows (all dimensions but the
//! last) or, for a 1-d tensor, one per element (pgq group size 1). float32
//! or bfloat16 scales are taken when float16 holds them exactly.

use std::collections::{HashMap, HashSet};

use half::{bf16, f16};
use pgq_format::types::rows_cols;
use pgq_format::{Tensor, TensorData};

use super::dtype::Dtype;
use super::error::ImportError;
use super::lqer;
use super::pickle::{Node, NodeId, Pickle};
use super::storage::Checkpoint;

/// The layouts import understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    WeightsMeta,
    Int8CleanPerRowV1,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::WeightsMeta => "w/m",
            Layout::Int8CleanPerRowV1 => INT8_CLEAN,
        }
    }
}

/// Serialized as its name, as `pgq import --json` has always printed it.
impl serde::Serialize for Layout {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

const INT8_CLEAN: &str = "int8_clean_per_row_v1";
/// pgq's limits on tensors (spec/FORMAT.md).
const MAX_RANK: usize = pgq_format::limits::MAX_RANK as usize;
const MAX_NAME_LEN: usize = pgq_format::limits::MAX_NAME_LEN as usize;

/// Maps the pickle's root object to tensors.
pub(super) fn map(
    pickle: &Pickle,
    checkpoint: &Checkpoint<'_>,
) -> Result<(Layout, Vec<Tensor>), ImportError> {
    let reader = Reader { pickle, checkpoint };
    let root = reader.dict(pickle.root(), "root".into())?;
    if root.get("__quant_format__").is_some() {
        reader
            .int8_clean(&root)
            .map(|t| (Layout::Int8CleanPerRowV1, t))
    } else if root.keys().collect::<HashSet<_>>() == HashSet::from(["w", "m"]) {
        reader.weights_meta(&root).map(|t| (Layout::WeightsMeta, t))
    } else {
        let keys: Vec<&str> = root.keys().take(8).collect();
        Err(layout_error(
            "root",
            format!(
                "a dict with keys {keys:?}: neither {{\"w\", \"m\"}} nor an \
                 {INT8_CLEAN} bundle"
            ),
        ))
    }
}

fn layout_error(path: impl Into<String>, detail: impl Into<String>) -> ImportError {
    ImportError::Layout {
        path: path.into(),
        detail: detail.into(),
    }
}

fn tensor_error(tensor: &str, detail: impl Into<String>) -> ImportError {
    ImportError::Tensor {
        tensor: tensor.to_owned(),
        detail: detail.into(),
    }
}

/// A dict with string keys, in order, with a path for error messages.
struct Dict<'p> {
    path: String,
    entries: Vec<(&'p str, NodeId)>,
    index: HashMap<&'p str, NodeId>,
}

impl<'p> Dict<'p> {
    fn get(&self, key: &str) -> Option<NodeId> {
        self.index.get(key).copied()
    }

    /// The stored key (borrowed from the pickle) and value of `key`.
    fn entry(&self, key: &str) -> Option<(&'p str, NodeId)> {
        self.index.get_key_value(key).map(|(&k, &v)| (k, v))
    }

    fn keys(&self) -> impl Iterator<Item = &'p str> + '_ {
        self.entries.iter().map(|&(k, _)| k)
    }

    fn path_of(&self, key: &str) -> String {
        format!("{}[{key:?}]", self.path)
    }

    fn require(&self, key: &str) -> Result<NodeId, ImportError> {
        self.get(key)
            .ok_or_else(|| layout_error(&self.path, format!("no key {key:?}")))
    }
}

/// A tensor's dtype, shape and raw little-endian bytes.
struct Loaded<'a> {
    dtype: Dtype,
    shape: Vec<u64>,
    bytes: &'a [u8],
}

/// What a `w/m` meta entry says about a tensor.
#[derive(Debug)]
enum Meta {
    Passthrough,
    Quantized {
        bits: u8,
    },
    /// `gate_int8_row`: int8 codes `.gq`, one fp16 scale per row `.gs`.
    GateInt8Row,
    /// A quantized tensor with a low-rank correction (`+lqer`,
    /// `+lqer_asym`); the width when the meta names one.
    LowRank {
        bits: Option<u8>,
        asym: bool,
    },
    /// Neither: decided by which of `name` and `name.q` is present.
    Unknown,
}

struct Reader<'p, 'a> {
    pickle: &'p Pickle,
    checkpoint: &'p Checkpoint<'a>,
}

impl<'p, 'a> Reader<'p, 'a> {
    fn dict(&self, id: NodeId, path: String) -> Result<Dict<'p>, ImportError> {
        let Node::Dict(entries) = self.pickle.node(id) else {
            return Err(layout_error(
                path,
                format!("is {}, not a dict", self.pickle.node(id).kind()),
            ));
        };
        let mut dict = Dict {
            path,
            entries: Vec::with_capacity(entries.len()),
            index: HashMap::with_capacity(entries.len()),
        };
        for &(key, value) in entries {
            let Node::Str(key) = self.pickle.node(key) else {
                return Err(layout_error(
                    &dict.path,
                    format!(
                        "has a key that is {}, not a string",
                        self.pickle.node(key).kind()
                    ),
                ));
            };
            if dict.index.insert(key, value).is_some() {
                return Err(layout_error(
                    &dict.path,
                    format!("key {key:?} appears twice"),
                ));
            }
            dict.entries.push((key, value));
        }
        Ok(dict)
    }

    fn str(&self, id: NodeId, path: &str) -> Result<&'p str, ImportError> {
        match self.pickle.node(id) {
            Node::Str(s) => Ok(s),
            other => Err(layout_error(
                path,
                format!("is {}, not a string", other.kind()),
            )),
        }
    }

    fn tensor(&self, id: NodeId, path: &str) -> Result<Loaded<'a>, ImportError> {
        let Node::Tensor(t) = self.pickle.node(id) else {
            return Err(layout_error(
                path,
                format!("is {}, not a tensor", self.pickle.node(id).kind()),
            ));
        };
        Ok(Loaded {
            dtype: t.storage.dtype,
            shape: t.shape.clone(),
            bytes: self.checkpoint.tensor_bytes(t)?,
        })
    }

    // ---- w/m -----------------------------------------------------------

    fn weights_meta(&self, root: &Dict<'p>) -> Result<Vec<Tensor>, ImportError> {
        let w = self.dict(root.require("w")?, root.path_of("w"))?;
        let m = self.dict(root.require("m")?, root.path_of("m"))?;
        let mut claimed: HashSet<&str> = HashSet::with_capacity(w.entries.len());
        let mut claim = |key: &'p str| {
            if claimed.insert(key) {
                Ok(())
            } else {
                Err(layout_error(w.path_of(key), "claimed by two entries of m"))
            }
        };
        let mut tensors = Vec::with_capacity(m.entries.len());
        for &(name, info) in &m.entries {
            let meta = self.meta(info, &m.path_of(name))?;
            let (codes_suffix, scales_suffix, quantized) = match meta {
                Meta::Passthrough => (".q", ".scale", None),
                Meta::Quantized { bits } => (".q", ".scale", Some(Some(bits))),
                Meta::GateInt8Row => (".gq", ".gs", Some(Some(8))),
                Meta::LowRank { bits, .. } => (".q", ".scale", Some(bits)),
                Meta::Unknown if w.get(name).is_none() => (".q", ".scale", Some(None)),
                Meta::Unknown => (".q", ".scale", None),
            };
            let q_key = format!("{name}{codes_suffix}");
            let s_key = format!("{name}{scales_suffix}");
            let tensor = match quantized {
                Some(bits) => {
                    let (Some((q_name, q)), Some((s_name, s))) = (w.entry(&q_key), w.entry(&s_key))
                    else {
                        return Err(layout_error(
                            m.path_of(name),
                            format!(
                                "describes a quantized tensor, but w lacks {q_key:?} or {s_key:?}"
                            ),
                        ));
                    };
                    claim(q_name)?;
                    claim(s_name)?;
                    let q = self.tensor(q, &w.path_of(&q_key))?;
                    let s = self.tensor(s, &w.path_of(&s_key))?;
                    let mut tensor = quantized_tensor(name, q, s, bits)?;
                    if let Meta::LowRank { asym, .. } = meta {
                        let mut stored = Vec::with_capacity(4);
                        for suffix in lqer::suffixes(asym) {
                            let key = format!("{name}{suffix}");
                            let Some((stored_key, id)) = w.entry(&key) else {
                                return Err(layout_error(
                                    m.path_of(name),
                                    format!("describes a low-rank correction, but w lacks {key:?}"),
                                ));
                            };
                            claim(stored_key)?;
                            stored.push((key, self.tensor(id, &w.path_of(stored_key))?));
                        }
                        // Codes then scales, of A then B (lqer::suffixes).
                        let factor = |i: usize| {
                            let ((codes_key, codes), (scales_key, scales)) =
                                (&stored[i], &stored[i + 1]);
                            factor_of(codes_key, codes, scales_key, scales)
                        };
                        let (a, b) = (factor(0), factor(2));
                        let correction = lqer::correction(name, &tensor.shape, asym, a?, b?)?;
                        if let TensorData::Quantized { correction: c, .. } = &mut tensor.data {
                            *c = Some(correction);
                        }
                    }
                    tensor
                }
                None => {
                    let Some((key, id)) = w.entry(name) else {
                        return Err(layout_error(
                            m.path_of(name),
                            format!("describes a passthrough tensor, but w has no {name:?}"),
                        ));
                    };
                    claim(key)?;
                    passthrough_tensor(name, self.tensor(id, &w.path_of(name))?)?
                }
            };
            tensors.push(tensor);
        }
        if let Some(key) = w.keys().find(|k| !claimed.contains(k)) {
            return Err(layout_error(w.path_of(key), "no entry of m describes it"));
        }
        Ok(tensors)
    }

    /// A meta value: a string, or a dict whose `"type"` is one.
    fn meta(&self, id: NodeId, path: &str) -> Result<Meta, ImportError> {
        let text = match self.pickle.node(id) {
            Node::Str(s) => &**s,
            Node::Dict(_) => {
                let dict = self.dict(id, path.to_owned())?;
                self.str(dict.require("type")?, &dict.path_of("type"))?
            }
            other => {
                return Err(layout_error(
                    path,
                    format!(
                        "is {}, not a string or a dict with a \"type\"",
                        other.kind()
                    ),
                ))
            }
        };
        classify(text).map_err(|detail| layout_error(path, detail))
    }

    // ---- int8_clean_per_row_v1 ------------------------------------------

    fn int8_clean(&self, root: &Dict<'p>) -> Result<Vec<Tensor>, ImportError> {
        const KNOWN: [&str; 7] = [
            "__quant_format__",
            "quantized",
            "scales",
            "dtypes",
            "passthrough",
            "qmeta",
            "passthrough_orig_dtypes",
        ];
        let format = self.str(
            root.require("__quant_format__")?,
            &root.path_of("__quant_format__"),
        )?;
        if format != INT8_CLEAN {
            return Err(layout_error(
                root.path_of("__quant_format__"),
                format!("format {format:?} is not supported (only {INT8_CLEAN} and w/m are)"),
            ));
        }
        if let Some(key) = root.keys().find(|k| !KNOWN.contains(k)) {
            return Err(layout_error(root.path_of(key), "unknown key of the bundle"));
        }
        let quantized = self.dict(root.require("quantized")?, root.path_of("quantized"))?;
        let scales = self.dict(root.require("scales")?, root.path_of("scales"))?;
        let passthrough = self.dict(root.require("passthrough")?, root.path_of("passthrough"))?;
        // Informational: the dtypes the tensors had before export.
        self.dict(root.require("dtypes")?, root.path_of("dtypes"))?;
        for key in ["qmeta", "passthrough_orig_dtypes"] {
            if let Some(id) = root.get(key) {
                self.dict(id, root.path_of(key))?;
            }
        }
        if let Some(name) = scales.keys().find(|k| quantized.get(k).is_none()) {
            return Err(layout_error(scales.path_of(name), "a scale without codes"));
        }
        if let Some(name) = passthrough.keys().find(|k| quantized.get(k).is_some()) {
            return Err(layout_error(
                passthrough.path_of(name),
                "also a quantized tensor",
            ));
        }
        let mut tensors = Vec::with_capacity(quantized.entries.len() + passthrough.entries.len());
        for &(name, q) in &quantized.entries {
            let s = scales.get(name).ok_or_else(|| {
                layout_error(scales.path_of(name), "missing: codes without a scale")
            })?;
            let q = self.tensor(q, &quantized.path_of(name))?;
            let s = self.tensor(s, &scales.path_of(name))?;
            tensors.push(quantized_tensor(name, q, s, Some(8))?);
        }
        for &(name, t) in &passthrough.entries {
            tensors.push(passthrough_tensor(
                name,
                self.tensor(t, &passthrough.path_of(name))?,
            )?);
        }
        Ok(tensors)
    }
}

/// Reads a meta string: `passthrough...`, `gate_int8_row`, something with
/// a low-rank correction, something naming `int<N>`, or neither. Packed
/// codes (`"... packed"`) are refused.
fn classify(text: &str) -> Result<Meta, String> {
    // The records' loaders test `"passthrough" in info`.
    if text.contains("passthrough") {
        return Ok(Meta::Passthrough);
    }
    if text == "gate_int8_row" {
        return Ok(Meta::GateInt8Row);
    }
    if let Some(at) = text.find("+lqer") {
        let bits = match classify(&text[..at])? {
            Meta::Quantized { bits } => Some(bits),
            _ => None,
        };
        return Ok(Meta::LowRank {
            bits,
            asym: text[at..].starts_with("+lqer_asym"),
        });
    }
    if text.contains("packed") {
        return Err(format!(
            "{text:?}: bit-packed codes are not supported (only one int8 code per element)"
        ));
    }
    let bits = text.match_indices("int").find_map(|(at, _)| {
        let digits: String = text
            .get(at + 3..)?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        // Too many digits to parse is simply too many bits.
        (!digits.is_empty()).then(|| digits.parse::<u32>().unwrap_or(u32::MAX))
    });
    match bits {
        None => Ok(Meta::Unknown),
        Some(b) => u8::try_from(b)
            .ok()
            .filter(|b| (pgq_format::limits::MIN_BITS..=pgq_format::limits::MAX_BITS).contains(b))
            .map(|bits| Meta::Quantized { bits })
            .ok_or_else(|| format!("{text:?}: int{b} codes are not supported (2 to 8 bits are)")),
    }
}

/// pgq's rules for a tensor name.
fn check_name(name: &str) -> Result<(), ImportError> {
    let problem = if name.is_empty() {
        Some("the name is empty".to_owned())
    } else if name.len() > MAX_NAME_LEN {
        Some(format!("the name is longer than {MAX_NAME_LEN} bytes"))
    } else {
        name.chars()
            .find(|c| c.is_control())
            .map(|c| format!("the name holds the control character U+{:04X}", c as u32))
    };
    problem.map_or(Ok(()), |p| Err(tensor_error(name, p)))
}

/// pgq's rules for a shape: at most 8 dimensions, none of them zero.
fn check_shape(name: &str, shape: &[u64]) -> Result<(), ImportError> {
    if shape.len() > MAX_RANK {
        return Err(tensor_error(
            name,
            format!("rank {} exceeds pgq's {MAX_RANK}", shape.len()),
        ));
    }
    if shape.contains(&0) {
        return Err(tensor_error(
            name,
            format!("shape {shape:?} has no elements; pgq stores no empty tensors"),
        ));
    }
    Ok(())
}

fn passthrough_tensor(name: &str, t: Loaded<'_>) -> Result<Tensor, ImportError> {
    check_name(name)?;
    check_shape(name, &t.shape)?;
    let data = match t.dtype {
        Dtype::F16 => TensorData::F16(t.bytes.chunks_exact(2).map(f16_le).collect()),
        Dtype::Bf16 => TensorData::Bf16(t.bytes.chunks_exact(2).map(bf16_le).collect()),
        Dtype::F32 => TensorData::F32(t.bytes.chunks_exact(4).map(f32_le).collect()),
        other => {
            return Err(ImportError::UnsupportedDtype {
                tensor: name.to_owned(),
                dtype: other.name(),
                detail: "pgq keeps passthrough tensors as float16, bfloat16 or float32".into(),
            })
        }
    };
    let finite = match &data {
        TensorData::F16(v) => v.iter().position(|x| !x.is_finite()),
        TensorData::Bf16(v) => v.iter().position(|x| !x.is_finite()),
        TensorData::F32(v) => v.iter().position(|x| !x.is_finite()),
        TensorData::Quantized { .. } => None,
    };
    if let Some(i) = finite {
        return Err(tensor_error(
            name,
            format!("value {i} is NaN or infinite, which pgq does not store"),
        ));
    }
    Ok(Tensor {
        name: name.to_owned(),
        shape: t.shape,
        data,
    })
}

/// Codes `q` (int8) with scales `s`, `bits` from the meta or, if `None`,
/// the fewest that hold every code.
fn quantized_tensor(
    name: &str,
    q: Loaded<'_>,
    s: Loaded<'_>,
    bits: Option<u8>,
) -> Result<Tensor, ImportError> {
    check_name(name)?;
    if q.dtype != Dtype::I8 {
        return Err(ImportError::UnsupportedDtype {
            tensor: format!("{name}.q"),
            dtype: q.dtype.name(),
            detail: "codes must be int8, one per element (packed codes are not supported)".into(),
        });
    }
    check_shape(name, &q.shape)?;
    let Some((&first_dim, _)) = q.shape.split_first() else {
        return Err(tensor_error(
            name,
            "0-d codes: a quantized tensor needs a dimension",
        ));
    };
    let codes: Vec<i8> = q.bytes.iter().map(|&b| b as i8).collect();
    let bits = match bits {
        Some(bits) => bits,
        None => fewest_bits(&codes),
    };
    if let Some((index, &code)) = codes
        .iter()
        .enumerate()
        .find(|(_, c)| i32::from(c.unsigned_abs()) > code_max(bits))
    {
        return Err(ImportError::CodeOutOfRange {
            tensor: name.to_owned(),
            index,
            code,
            bits,
            max: code_max(bits) as i8,
        });
    }
    let given = scale_values(name, &s)?;
    let (rows, _) = rows_cols(&q.shape);
    // The loaders broadcast a 0-d scale over everything and otherwise view
    // the scales as (q.shape[0], 1, ...).
    let (group_size, scales) = if s.shape.is_empty() {
        let scale = given.first().copied().unwrap_or(f16::ZERO);
        (0, vec![scale; usize::try_from(rows).unwrap_or(0)])
    } else if given.len() as u64 != first_dim {
        return Err(tensor_error(
            name,
            format!(
                "{} scales (shape {:?}) for codes of shape {:?}: the loaders need one \
                 per index of the first dimension ({first_dim}) or a 0-d scale",
                given.len(),
                s.shape,
                q.shape
            ),
        ));
    } else if q.shape.len() == 1 {
        // One scale per element: pgq groups of one column.
        (u32::from(first_dim > 1), given)
    } else {
        let per = usize::try_from(rows / first_dim).unwrap_or(0);
        let repeated = given
            .iter()
            .flat_map(|&scale| std::iter::repeat_n(scale, per))
            .collect();
        (0, repeated)
    };
    Ok(Tensor {
        name: name.to_owned(),
        shape: q.shape,
        data: TensorData::Quantized {
            bits,
            group_size,
            codes,
            scales,
            correction: None,
        },
    })
}

/// A correction factor's codes (int8, one per element) and its scales
/// (exact fp16 values).
fn factor_of<'a>(
    codes_key: &str,
    codes: &Loaded<'a>,
    scales_key: &str,
    scales: &Loaded<'_>,
) -> Result<lqer::StoredFactor<'a>, ImportError> {
    if codes.dtype != Dtype::I8 {
        return Err(ImportError::UnsupportedDtype {
            tensor: codes_key.to_owned(),
            dtype: codes.dtype.name(),
            detail: "correction codes must be int8, one per element".into(),
        });
    }
    Ok(lqer::StoredFactor {
        key: codes_key.to_owned(),
        shape: codes.shape.clone(),
        codes: codes.bytes,
        scales: scale_values(scales_key, scales)?,
        scales_shape: scales.shape.clone(),
    })
}

/// The largest code magnitude `bits` allows, pgq-format's symmetric range
/// (`bits` comes checked to 2..=8; any other width allows no code).
fn code_max(bits: u8) -> i32 {
    pgq_format::pack::Bits::new(bits).map_or(0, |b| i32::from(pgq_format::pack::code_max(b)))
}

/// The fewest bits (at least 2) whose symmetric range holds every code;
/// 8 when a code is -128, which the range check then refuses.
fn fewest_bits(codes: &[i8]) -> u8 {
    let max = codes
        .iter()
        .map(|c| i32::from(c.unsigned_abs()))
        .max()
        .unwrap_or(0);
    (2..=8).find(|&b| code_max(b) >= max).unwrap_or(8)
}

/// The scales as fp16, which pgq stores: fp16 as they are; fp32 and bf16
/// when fp16 holds them exactly. Each must be finite and non-negative.
fn scale_values(name: &str, s: &Loaded<'_>) -> Result<Vec<f16>, ImportError> {
    let widened: Vec<f32> = match s.dtype {
        Dtype::F16 => s
            .bytes
            .chunks_exact(2)
            .map(|b| f16_le(b).to_f32())
            .collect(),
        Dtype::Bf16 => s
            .bytes
            .chunks_exact(2)
            .map(|b| bf16_le(b).to_f32())
            .collect(),
        Dtype::F32 => s.bytes.chunks_exact(4).map(f32_le).collect(),
        other => {
            return Err(ImportError::UnsupportedDtype {
                tensor: format!("{name}.scale"),
                dtype: other.name(),
                detail: "scales must be float16 (or float32/bfloat16 values float16 holds exactly)"
                    .into(),
            })
        }
    };
    widened
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let h = f16::from_f32(x);
            if !x.is_finite() || x.is_sign_negative() {
                Err(tensor_error(
                    name,
                    format!("scale {i} is {x}; pgq scales are finite and non-negative"),
                ))
            } else if h.to_f32() != x {
                Err(tensor_error(
                    name,
                    format!(
                        "scale {i} ({x}, {}) has no exact float16 value; converting it \
                         would change the weights",
                        s.dtype.name()
                    ),
                ))
            } else {
                Ok(h)
            }
        })
        .collect()
}

fn f16_le(b: &[u8]) -> f16 {
    f16::from_le_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ])
}

fn bf16_le(b: &[u8]) -> bf16 {
    bf16::from_le_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ])
}

fn f32_le(b: &[u8]) -> f32 {
    let mut le = [0u8; 4];
    for (dst, &src) in le.iter_mut().zip(b) {
        *dst = src;
    }
    f32::from_le_bytes(le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_records_meta_strings() {
        for (text, want) in [
            ("passthrough", None),
            ("passthrough_ctrl", None),
            ("passthrough (float16)", None),
            ("int6", Some(6)),
            ("gptq (int6)", Some(6)),
            ("rowwise (int7)", Some(7)),
            ("gptq+qres (int8+r4)", Some(8)),
        ] {
            match (classify(text).unwrap(), want) {
                (Meta::Passthrough, None) => {}
                (Meta::Quantized { bits }, Some(b)) => assert_eq!(bits, b, "{text}"),
                _ => panic!("{text}"),
            }
        }
        assert!(matches!(classify("gptq"), Ok(Meta::Unknown)));
        assert!(matches!(classify("gate_int8_row"), Ok(Meta::GateInt8Row)));
        for low_rank in ["gptq (int6)+lqer_asym", "gptq (int7)+lqer"] {
            assert!(
                matches!(classify(low_rank), Ok(Meta::LowRank { .. })),
                "{low_rank}"
            );
        }
        assert!(classify("gptq (int6 packed)")
            .unwrap_err()
            .contains("packed"));
        assert!(classify("int16").is_err());
        assert!(classify("int99999999999").is_err());
    }

    #[test]
    fn fewest_bits_fit_the_codes() {
        assert_eq!(fewest_bits(&[]), 2);
        assert_eq!(fewest_bits(&[1, -1]), 2);
        assert_eq!(fewest_bits(&[0, 31, -31]), 6);
        assert_eq!(fewest_bits(&[32]), 7);
        assert_eq!(fewest_bits(&[-127]), 8);
        assert_eq!(fewest_bits(&[-128]), 8);
    }

    fn loaded(dtype: Dtype, shape: &[u64], bytes: &'static [u8]) -> Loaded<'static> {
        Loaded {
            dtype,
            shape: shape.to_vec(),
            bytes,
        }
    }

    #[test]
    fn scales_broadcast_as_the_loaders_do() {
        // 0x3C00 = 1.0, 0x4000 = 2.0
        let codes: &[u8] = &[1, 2, 3, 4, 5, 6, 7, 8];
        let per_first = loaded(Dtype::F16, &[2], &[0x00, 0x3C, 0x00, 0x40]);
        let t =
            quantized_tensor("x", loaded(Dtype::I8, &[2, 2, 2], codes), per_first, None).unwrap();
        let TensorData::Quantized {
            scales,
            group_size,
            bits,
            ..
        } = &t.data
        else {
            panic!()
        };
        assert_eq!((*group_size, *bits), (0, 5));
        assert_eq!(
            scales.iter().map(|s| s.to_f32()).collect::<Vec<_>>(),
            [1.0, 1.0, 2.0, 2.0]
        );

        let scalar = loaded(Dtype::F32, &[], &[0, 0, 0, 0x40]);
        let t = quantized_tensor("x", loaded(Dtype::I8, &[8], codes), scalar, Some(8)).unwrap();
        assert_eq!(t.dequantize(), [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0]);

        let per_element = loaded(Dtype::F16, &[2], &[0x00, 0x3C, 0x00, 0x40]);
        let t = quantized_tensor("x", loaded(Dtype::I8, &[2], &[3, 3]), per_element, None).unwrap();
        assert_eq!(t.dequantize(), [3.0, 6.0]);
    }

    #[test]
    fn inexact_or_negative_scales_and_wide_codes_are_refused() {
        // 0.1f32 has no exact fp16 value.
        let tenth = loaded(Dtype::F32, &[], &[0xCD, 0xCC, 0xCC, 0x3D]);
        let err = quantized_tensor("x", loaded(Dtype::I8, &[1], &[1]), tenth, None).unwrap_err();
        assert!(err.to_string().contains("no exact float16"), "{err}");
        let negative = loaded(Dtype::F16, &[], &[0x00, 0xBC]);
        assert!(quantized_tensor("x", loaded(Dtype::I8, &[1], &[1]), negative, None).is_err());
        let one = loaded(Dtype::F16, &[], &[0x00, 0x3C]);
        let err =
            quantized_tensor("x", loaded(Dtype::I8, &[2], &[31, 32]), one, Some(6)).unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::CodeOutOfRange {
                    index: 1,
                    code: 32,
                    bits: 6,
                    max: 31,
                    ..
                }
            ),
            "{err}"
        );
        let one = loaded(Dtype::F16, &[], &[0x00, 0x3C]);
        let err = quantized_tensor("x", loaded(Dtype::U8, &[1], &[1]), one, None).unwrap_err();
        assert!(matches!(
            err,
            ImportError::UnsupportedDtype { dtype: "uint8", .. }
        ));
    }

    #[test]
    fn passthrough_keeps_dtypes_and_refuses_the_rest() {
        let t = passthrough_tensor("b", loaded(Dtype::Bf16, &[1], &[0x80, 0x3F])).unwrap();
        assert_eq!(t.data, TensorData::Bf16(vec![bf16::ONE]));
        let err = passthrough_tensor("i", loaded(Dtype::I64, &[1], &[0; 8])).unwrap_err();
        assert!(matches!(
            err,
            ImportError::UnsupportedDtype { dtype: "int64", .. }
        ));
        let nan = passthrough_tensor("n", loaded(Dtype::F16, &[1], &[0x00, 0x7E]));
        assert!(nan.is_err());
        let empty = passthrough_tensor("e", loaded(Dtype::F32, &[0], &[]));
        assert!(empty.unwrap_err().to_string().contains("no elements"));
        assert!(passthrough_tensor("bad\nname", loaded(Dtype::F16, &[1], &[0, 0])).is_err());
    }
}
