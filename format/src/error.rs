//! Typed errors of the reader and writer.
//!
//! Every rejection of a file carries an [`ErrorKind`] (the stable class that
//! spec/FORMAT.md and the negative conformance vectors name), the field it
//! concerns and the absolute byte offset in the file where that field lives.

use std::fmt;

/// The class of a format error. The string form ([`ErrorKind::as_str`]) is
/// stable: spec/FORMAT.md and spec/vectors/ use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The first 8 bytes are not the pgq magic.
    BadMagic,
    /// The major version is not one this reader implements.
    UnsupportedVersion,
    /// The bytes end inside a structure.
    Truncated,
    /// A count or length is beyond a hard limit of the spec or the reader.
    LimitExceeded,
    /// A field holds a value the spec does not allow (unknown enum value,
    /// non-zero reserved bits, bits or group size out of range, ...).
    InvalidField,
    /// A tensor name or metadata key is empty, too long, not UTF-8 or holds
    /// a control character.
    InvalidName,
    /// Two tensors share a name, or two metadata entries share a key.
    DuplicateName,
    /// The element count or byte size of a shape overflows 64 bits.
    ShapeOverflow,
    /// The CRC-32 of the header does not match.
    HeaderCrc,
    /// Sections overlap, leave a hole, or leave trailing bytes in the file.
    SectionLayout,
    /// A tensor region lies outside its section, overlaps another, leaves a
    /// hole, or does not have the length its shape implies.
    RegionLayout,
    /// A section's decoded length differs from the declared one (lying
    /// sizes, decompression bombs, raw sections whose lengths differ).
    SizeMismatch,
    /// A compressed stream is corrupt or does not fill its section exactly.
    CodecError,
    /// The CRC-32 of a section's decoded bytes does not match.
    SectionCrc,
    /// A code lies outside the symmetric range of its bit width, or the
    /// padding bits of a packed stream are not zero.
    InvalidCode,
    /// A scale is negative, NaN or infinite, or a passthrough value is NaN or
    /// infinite.
    InvalidValue,
}

impl ErrorKind {
    /// Every class, in the order of spec/FORMAT.md.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::BadMagic,
        ErrorKind::UnsupportedVersion,
        ErrorKind::Truncated,
        ErrorKind::LimitExceeded,
        ErrorKind::InvalidField,
        ErrorKind::InvalidName,
        ErrorKind::DuplicateName,
        ErrorKind::ShapeOverflow,
        ErrorKind::HeaderCrc,
        ErrorKind::SectionLayout,
        ErrorKind::RegionLayout,
        ErrorKind::SizeMismatch,
        ErrorKind::CodecError,
        ErrorKind::SectionCrc,
        ErrorKind::InvalidCode,
        ErrorKind::InvalidValue,
    ];

    /// The stable snake_case name of the class.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadMagic => "bad_magic",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::Truncated => "truncated",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::InvalidField => "invalid_field",
            ErrorKind::InvalidName => "invalid_name",
            ErrorKind::DuplicateName => "duplicate_name",
            ErrorKind::ShapeOverflow => "shape_overflow",
            ErrorKind::HeaderCrc => "header_crc",
            ErrorKind::SectionLayout => "section_layout",
            ErrorKind::RegionLayout => "region_layout",
            ErrorKind::SizeMismatch => "size_mismatch",
            ErrorKind::CodecError => "codec_error",
            ErrorKind::SectionCrc => "section_crc",
            ErrorKind::InvalidCode => "invalid_code",
            ErrorKind::InvalidValue => "invalid_value",
        }
    }

    /// Parses the name written by [`ErrorKind::as_str`].
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file was rejected: the class, the field, its byte offset in the
/// file, and a sentence for a human.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{kind}: {field} at byte {offset}: {detail}")]
pub struct FormatError {
    pub kind: ErrorKind,
    /// The field, in the spec's naming, e.g. `tensors[3].group_size`.
    pub field: String,
    /// Absolute offset in the file of the field (for errors in decoded
    /// section content: of the section's first stored byte).
    pub offset: u64,
    pub detail: String,
}

impl FormatError {
    pub fn new(
        kind: ErrorKind,
        field: impl Into<String>,
        offset: u64,
        detail: impl Into<String>,
    ) -> Self {
        FormatError {
            kind,
            field: field.into(),
            offset,
            detail: detail.into(),
        }
    }
}

/// Errors of the writer: the content handed to it cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("tensor {name:?}: {reason}")]
    InvalidTensor { name: String, reason: String },
    #[error("metadata key {key:?}: {reason}")]
    InvalidMetadata { key: String, reason: String },
    #[error("{0}")]
    Limit(String),
    #[error("compression failed: {0}")]
    Codec(String),
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
