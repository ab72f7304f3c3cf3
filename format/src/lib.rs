//! The `.pgq` container, format v1: a specified, validating reader and a
//! canonical writer for int2..int8 tensors with fp16 scales (per row or
//! groupwise), optionally with a low-rank correction of two quantized
//! factors (format 1.2), and f16/bf16/f32 passthrough tensors.
//!
//! spec/FORMAT.md is normative; this crate implements it. The reader
//! validates every length against the bytes present before it allocates,
//! bounds every decompression by the declared decoded length, checks every
//! CRC and every value, and reports failures as [`FormatError`]s naming the
//! class, the field and the byte offset. It never panics on any input.
//!
//! ```
//! use pgq_format::{read, write, ReadOptions, Tensor, TensorData, WriteOptions};
//! use half::f16;
//! let t = Tensor {
//!     name: "w".into(),
//!     shape: vec![2, 3],
//!     data: TensorData::Quantized {
//!         bits: 6,
//!         group_size: 0,
//!         codes: vec![1, -2, 3, 0, 31, -31],
//!         scales: vec![f16::from_f32(0.5), f16::from_f32(0.25)],
//!         correction: None,
//!     },
//! };
//! let bytes = write(&[t.clone()], &Default::default(), &WriteOptions::default()).unwrap();
//! let archive = read(&bytes, &ReadOptions::default()).unwrap();
//! assert_eq!(archive.tensors, vec![t]);
//! assert_eq!(archive.tensors[0].dequantize(), vec![0.5, -1.0, 1.5, 0.0, 7.75, -7.75]);
//! ```

#![forbid(unsafe_code)]

mod codec;
mod cursor;
mod digest;
pub mod error;
pub mod file;
mod header;
pub mod limits;
pub mod pack;
mod parallel;
pub mod rans;
mod rans_columns;
mod rans_model;
pub mod rate;
pub mod raw;
mod reader;
pub mod summary;
mod tensor;
pub mod types;
mod writer;
mod zstd_frame;

pub use codec::{
    decode as decode_section, encode as encode_section, encode_section_content, Compression,
    SectionContent, DEFAULT_COMPRESSION,
};
pub use digest::{decode_digest, DECODE_DIGEST_KEY};
pub use error::{ErrorKind, FormatError, WriteError};
pub use reader::{read, read_header, Archive, ReadOptions};
pub use summary::{summarize, SectionSummary, Summary, TensorSummary};
pub use tensor::{dequantize_codes, Factor, LowRank, Tensor, TensorData};
pub use types::{CodeRange, Codec, Header, Kind, Layout, MetaValue, Region, Section, TensorEntry};
pub use writer::{
    write, write_raw, Grouping, LayoutChoice, WriteOptions, DEFAULT_SPLIT_BYTES, RANS_SPLIT_BYTES,
};

pub use half;

/// The parameter-golf cap: code bytes + compressed model bytes, in decimal
/// bytes (the challenge's 16,000,000, not 16 MiB).
pub const CAP_BYTES: u64 = 16_000_000;
