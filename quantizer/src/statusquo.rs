//! A size model of the field's current artifact encoding, so that `.pgq`
//! sizes can be compared side by side on the very same codes.
//!
//! The records store `torch.save({"w": tensors, "m": meta})` with, per
//! quantized matrix, `name.q` (int8 storage of the codes) and `name.scale`
//! (fp16), and small tensors as fp16 passthrough; then the whole file is
//! byte-shuffled (`BSHF`, stride 2) and compressed with brotli-11.
//!
//! This module builds a byte stream with the same payload bytes in the same
//! order and alignment as torch's zip writer, then shuffles and compresses
//! it exactly as the records do. It is a size model, not a loadable file:
//!
//! - the pickle (`data.pkl`) is modelled by a text listing of keys, dtypes,
//!   shapes and the meta strings, which carries the same information;
//! - each record gets a zip local header (signature, sizes, name) padded so
//!   its data starts 64-byte aligned, as torch's writer does, but without
//!   CRC-32s; the small bookkeeping records (`version`, `byteorder`, ...)
//!   and the central directory (about 100 bytes per record) are omitted.
//!   Together these omissions amount to a few KB before compression, on the
//!   order of 1-3 KB after, for a model of ~200 records;
//! - groupwise scales are stored as a `[rows, groups]` fp16 tensor: the
//!   status-quo loader (`q.float() * scale[row]`) cannot decode them, so for
//!   groupwise tensors this is only the size such an encoding would have.

use half::f16;
use pgq_format::types::{groups_per_row, rows_cols};
use pgq_format::{encode_section, Compression, Tensor, TensorData, WriteError};

/// Magic of the records' byte shuffle.
pub const BSHF_MAGIC: &[u8; 4] = b"BSHF";
/// torch's zip writer starts every record's data on a 64-byte boundary.
pub const RECORD_ALIGNMENT: usize = 64;
/// Brotli window of the records' compressor.
pub const STATUS_QUO_LGWIN: u32 = 24;

/// The records' `_byte_shuffle`: `BSHF`, the stride byte, then bytes
/// `pos, pos + stride, ...` for each `pos` in `0..stride`.
///
/// Like the original, a stride below 2 or data shorter than the stride
/// returns the data unchanged, without the magic.
pub fn byte_shuffle(data: &[u8], stride: u8) -> Vec<u8> {
    let step = usize::from(stride);
    if step <= 1 || data.len() < step {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + BSHF_MAGIC.len() + 1);
    out.extend_from_slice(BSHF_MAGIC);
    out.push(stride);
    for pos in 0..step {
        out.extend(data.iter().skip(pos).step_by(step));
    }
    out
}

/// The uncompressed, unshuffled torch.save model of `tensors`.
pub fn status_quo_stream(tensors: &[Tensor]) -> Vec<u8> {
    let records: Vec<Record> = tensors.iter().flat_map(records_of).collect();
    let mut stream = Vec::with_capacity(
        records
            .iter()
            .map(|r| r.data.len() + 2 * RECORD_ALIGNMENT)
            .sum::<usize>()
            + 4096,
    );
    append_record(
        &mut stream,
        "archive/data.pkl",
        &pickle_model(tensors, &records),
    );
    for (index, record) in records.iter().enumerate() {
        append_record(&mut stream, &format!("archive/data/{index}"), &record.data);
    }
    stream
}

/// The compressed status-quo artifact of `tensors`: the stream of
/// [`status_quo_stream`], shuffled with stride 2 and compressed with brotli
/// at `quality` (the records use 11) and a 2^24-byte window.
pub fn status_quo_bytes(tensors: &[Tensor], quality: u32) -> Result<Vec<u8>, WriteError> {
    let shuffled = byte_shuffle(&status_quo_stream(tensors), 2);
    encode_section(
        &shuffled,
        Compression::Brotli {
            quality,
            lgwin: STATUS_QUO_LGWIN,
        },
    )
}

/// One torch storage: a dict key, its dtype, shape and raw bytes.
struct Record {
    key: String,
    dtype: &'static str,
    shape: Vec<u64>,
    data: Vec<u8>,
}

fn records_of(tensor: &Tensor) -> Vec<Record> {
    let record = |key: String, dtype, shape, data| Record {
        key,
        dtype,
        shape,
        data,
    };
    match &tensor.data {
        TensorData::Quantized {
            group_size,
            codes,
            scales,
            ..
        } => {
            let (rows, cols) = rows_cols(&tensor.shape);
            let scale_shape = match group_size {
                0 => vec![rows],
                _ => vec![rows, groups_per_row(cols, *group_size)],
            };
            vec![
                record(
                    format!("{}.q", tensor.name),
                    "int8",
                    tensor.shape.clone(),
                    codes.iter().map(|&c| c as u8).collect(),
                ),
                record(
                    format!("{}.scale", tensor.name),
                    "float16",
                    scale_shape,
                    f16_bytes(scales),
                ),
            ]
        }
        TensorData::F16(values) => vec![record(
            tensor.name.clone(),
            "float16",
            tensor.shape.clone(),
            f16_bytes(values),
        )],
        TensorData::Bf16(values) => vec![record(
            tensor.name.clone(),
            "bfloat16",
            tensor.shape.clone(),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )],
        TensorData::F32(values) => vec![record(
            tensor.name.clone(),
            "float32",
            tensor.shape.clone(),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )],
    }
}

fn f16_bytes(values: &[f16]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Stands in for `data.pkl`: every key with dtype, shape and storage index,
/// then the `m` dict of per-tensor method strings.
fn pickle_model(tensors: &[Tensor], records: &[Record]) -> Vec<u8> {
    let mut text = String::from("w\n");
    for (index, record) in records.iter().enumerate() {
        let dims: Vec<String> = record.shape.iter().map(u64::to_string).collect();
        text.push_str(&format!(
            "{}\t{}\t({})\t{index}\t{}\n",
            record.key,
            record.dtype,
            dims.join(","),
            record.data.len()
        ));
    }
    text.push_str("m\n");
    for tensor in tensors {
        let info = match &tensor.data {
            TensorData::Quantized { bits, .. } => format!("int{bits}"),
            _ => "passthrough".into(),
        };
        text.push_str(&format!("{}\t{info}\n", tensor.name));
    }
    text.into_bytes()
}

/// A zip local header (signature, sizes, name, zero padding so the data
/// starts 64-byte aligned), then the data.
fn append_record(stream: &mut Vec<u8>, name: &str, data: &[u8]) {
    const FIXED_HEADER: usize = 30;
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let unpadded = stream.len() + FIXED_HEADER + name.len();
    let padding = unpadded.next_multiple_of(RECORD_ALIGNMENT) - unpadded;
    stream.extend_from_slice(b"PK\x03\x04");
    stream.extend_from_slice(&20u16.to_le_bytes()); // version needed
    stream.extend_from_slice(&[0; 2 + 2 + 2 + 2]); // flags, method (stored), time, date
    stream.extend_from_slice(&[0; 4]); // CRC-32, not modelled
    stream.extend_from_slice(&size.to_le_bytes()); // compressed size
    stream.extend_from_slice(&size.to_le_bytes()); // uncompressed size
    stream.extend_from_slice(&name_len.to_le_bytes());
    stream.extend_from_slice(&(padding as u16).to_le_bytes());
    stream.extend_from_slice(name.as_bytes());
    stream.resize(stream.len() + padding, 0);
    stream.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_matches_a_hand_computed_example() {
        let data = [10u8, 11, 12, 13, 14, 15, 16];
        assert_eq!(
            byte_shuffle(&data, 2),
            [b'B', b'S', b'H', b'F', 2, 10, 12, 14, 16, 11, 13, 15]
        );
        assert_eq!(
            byte_shuffle(&data, 3),
            [b'B', b'S', b'H', b'F', 3, 10, 13, 16, 11, 14, 12, 15]
        );
    }

    #[test]
    fn shuffle_of_fp16_groups_high_and_low_bytes() {
        let values = [f16::from_bits(0x3C01), f16::from_bits(0x3C02)];
        let shuffled = byte_shuffle(&f16_bytes(&values), 2);
        assert_eq!(&shuffled[5..], [0x01, 0x02, 0x3C, 0x3C]);
    }

    #[test]
    fn shuffle_passes_through_like_the_original() {
        assert_eq!(byte_shuffle(&[1, 2, 3], 1), [1, 2, 3]);
        assert_eq!(byte_shuffle(&[1, 2, 3], 0), [1, 2, 3]);
        assert_eq!(byte_shuffle(&[1], 2), [1]);
        assert_eq!(byte_shuffle(&[], 2), [0u8; 0]);
    }

    fn model() -> Vec<Tensor> {
        vec![
            Tensor {
                name: "w".into(),
                shape: vec![2, 3],
                data: TensorData::Quantized {
                    bits: 6,
                    group_size: 0,
                    codes: vec![1, -1, 2, -2, 31, -31],
                    scales: vec![f16::ONE, f16::from_f32(0.5)],
                    correction: None,
                },
            },
            Tensor {
                name: "g".into(),
                shape: vec![2],
                data: TensorData::F16(vec![f16::ONE, f16::NEG_ONE]),
            },
        ]
    }

    #[test]
    fn records_are_64_byte_aligned_and_in_order() {
        let stream = status_quo_stream(&model());
        let find = |needle: &[u8]| stream.windows(needle.len()).position(|w| w == needle);
        let codes = find(&[1, 0xFF, 2, 0xFE, 31, 0xE1]).unwrap();
        let scales = find(&[0x00, 0x3C, 0x00, 0x38]).unwrap();
        let kept = find(&[0x00, 0x3C, 0x00, 0xBC]).unwrap();
        assert_eq!(codes % RECORD_ALIGNMENT, 0);
        assert_eq!(scales % RECORD_ALIGNMENT, 0);
        assert_eq!(kept % RECORD_ALIGNMENT, 0);
        assert!(codes < scales && scales < kept);
        let text = String::from_utf8_lossy(&stream);
        assert!(text.contains("w.q\tint8\t(2,3)"));
        assert!(text.contains("w.scale\tfloat16\t(2)"));
        assert!(text.contains("w\tint6\n"));
        assert!(text.contains("g\tpassthrough\n"));
    }

    #[test]
    fn groupwise_scales_are_a_matrix() {
        let tensor = Tensor {
            name: "w".into(),
            shape: vec![2, 5],
            data: TensorData::Quantized {
                bits: 8,
                group_size: 2,
                codes: vec![0; 10],
                scales: vec![f16::ONE; 6],
                correction: None,
            },
        };
        let text = String::from_utf8_lossy(&status_quo_stream(&[tensor])).into_owned();
        assert!(text.contains("w.scale\tfloat16\t(2,3)\t1\t12"), "{text}");
    }

    #[test]
    fn compressed_artifact_decodes_to_the_shuffled_stream() {
        let tensors = model();
        let stored = status_quo_bytes(&tensors, 5).unwrap();
        let expected = byte_shuffle(&status_quo_stream(&tensors), 2);
        let section = pgq_format::Section {
            codec: pgq_format::Codec::Brotli,
            crc32: crc(&expected),
            offset: 0,
            stored_len: stored.len() as u64,
            decoded_len: expected.len() as u64,
        };
        let decoded = pgq_format::decode_section(&stored, &section, 0).unwrap();
        assert_eq!(decoded.as_ref(), expected.as_slice());
    }

    /// CRC-32 (zlib), bitwise: only for this test's section descriptor.
    fn crc(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
