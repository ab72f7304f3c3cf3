//! torch's storage dtypes, as `data.pkl` names them (`torch.HalfStorage`
//! and friends) and as their records lay them out (little-endian).

/// The dtype of a torch storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    F16,
    Bf16,
    F32,
    F64,
    I8,
    U8,
    I16,
    I32,
    I64,
    Bool,
}

impl Dtype {
    /// The dtype of a `torch.<name>` storage class.
    pub fn from_storage_class(name: &str) -> Option<Dtype> {
        Some(match name {
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "ShortStorage" => Dtype::I16,
            "IntStorage" => Dtype::I32,
            "LongStorage" => Dtype::I64,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// torch's name, as in `str(t.dtype)` without `torch.`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F16 => "float16",
            Dtype::Bf16 => "bfloat16",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::I8 => "int8",
            Dtype::U8 => "uint8",
            Dtype::I16 => "int16",
            Dtype::I32 => "int32",
            Dtype::I64 => "int64",
            Dtype::Bool => "bool",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
            Dtype::F16 | Dtype::Bf16 | Dtype::I16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }
}
