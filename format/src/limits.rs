//! Constants and hard limits of format v1 (spec/FORMAT.md, "Limits").

/// `\x89 P G Q \r \n \x1a \n`: a high-bit byte catches 7-bit transfers, CR LF
/// and LF catch newline conversion, ^Z stops `type` on DOS. It is not a
/// prefix of pickle (`\x80`), zip (`PK`), zstd (`\x28\xb5\x2f\xfd`), xz
/// (`\xfd7zXZ`) or gzip (`\x1f\x8b`).
pub const MAGIC: [u8; 8] = [0x89, b'P', b'G', b'Q', 0x0D, 0x0A, 0x1A, 0x0A];
/// The major version this crate reads and writes.
pub const MAJOR_VERSION: u16 = 1;
/// The minor version this crate writes when no section uses a codec of a
/// later minor version.
pub const MINOR_VERSION: u16 = 0;
/// The minor version that added the rANS codec (3): the writer writes it
/// when a section uses rANS, so a v1.0 reader knows why it cannot decode.
pub const MINOR_VERSION_RANS: u16 = 1;
/// The minor version of a file with a tensor of kind 4 (low-rank
/// correction, format 1.2).
pub const MINOR_VERSION_LOW_RANK: u16 = 2;
/// The largest rank of a low-rank correction (spec §8).
pub const MAX_LOW_RANK: u32 = 256;

/// Bytes before the header body: magic, major, minor, header_len.
pub const PREAMBLE_LEN: u64 = 16;
/// Bytes of the CRC-32 that follows the header body.
pub const HEADER_CRC_LEN: u64 = 4;
/// Bytes of the three counts that open the header body.
pub const COUNTS_LEN: u64 = 12;
/// Bytes of one section table entry.
pub const SECTION_ENTRY_LEN: u64 = 32;
/// Bytes of one region reference (section, offset, length).
pub const REGION_LEN: u64 = 20;

pub const MAX_HEADER_LEN: u32 = 16 * 1024 * 1024;
pub const MAX_SECTIONS: u32 = 4096;
pub const MAX_TENSORS: u32 = 65_536;
pub const MAX_METADATA: u32 = 4096;
pub const MAX_NAME_LEN: u16 = 1024;
pub const MAX_KEY_LEN: u16 = 256;
pub const MAX_METADATA_VALUE_LEN: u32 = 1024 * 1024;
pub const MAX_RANK: u8 = 8;
pub const MIN_BITS: u8 = 2;
pub const MAX_BITS: u8 = 8;
/// The spec's ceiling on the sum of all decoded section lengths (64 GiB).
/// Readers may set a lower one ([`crate::ReadOptions::max_decoded_bytes`]).
pub const MAX_DECODED_TOTAL: u64 = 1 << 36;
/// The most frequency tables one rANS stream may hold (its table indices
/// are bytes). It also bounds a decoder's slot maps to 256 x 2^16 bytes.
pub const MAX_RANS_TABLES: usize = 256;
