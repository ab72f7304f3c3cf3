//! A file as its raw fields, serialised without validation.
//!
//! The writer fills a [`RawFile`] from validated content; the conformance
//! vector generator also builds deliberately invalid ones (wrong counts,
//! lying lengths, truncated structures) and serialises them with correct
//! CRCs so that each negative vector trips exactly the check it targets.

use binrw::BinWrite;

use crate::limits::{HEADER_CRC_LEN, MAGIC, MAJOR_VERSION, MINOR_VERSION, PREAMBLE_LEN};
use crate::types::{Counts, FactorFields, Preamble, QuantFields, Region, SectionEntry};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    pub entry: SectionEntry,
    /// The bytes stored in the file for this section.
    pub stored: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMeta {
    pub key: Vec<u8>,
    pub ty: u8,
    /// The value exactly as stored (with its u32 length for strings/bytes).
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTensor {
    pub name: Vec<u8>,
    pub kind: u8,
    /// Written as `rank` (its length, as u8) then each dimension.
    pub shape: Vec<u64>,
    pub quant: Option<QuantFields>,
    /// Codes then scales for quantized tensors; data for passthrough.
    pub regions: Vec<Region>,
    /// A kind-4 tensor's correction, written after `regions`.
    pub correction: Option<RawCorrection>,
}

/// The 100 bytes of a correction (spec §4.8): its rank, then each factor's
/// fields with its codes and scales regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCorrection {
    pub rank: u32,
    pub a: (FactorFields, [Region; 2]),
    pub b: (FactorFields, [Region; 2]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    pub magic: [u8; 8],
    pub major: u16,
    pub minor: u16,
    pub sections: Vec<RawSection>,
    pub metadata: Vec<RawMeta>,
    pub tensors: Vec<RawTensor>,
    /// Overrides the counts written (for vectors whose counts lie).
    pub counts_override: Option<Counts>,
    /// Keeps only this many bytes of the header body (header_len and the
    /// CRC follow the cut), to make truncation inside a structure.
    pub truncate_body: Option<usize>,
    /// Stored instead of the computed header CRC.
    pub header_crc_override: Option<u32>,
    /// Bytes appended after the last section.
    pub trailing: Vec<u8>,
}

impl Default for RawFile {
    fn default() -> Self {
        RawFile {
            magic: MAGIC,
            major: MAJOR_VERSION,
            minor: MINOR_VERSION,
            sections: Vec::new(),
            metadata: Vec::new(),
            tensors: Vec::new(),
            counts_override: None,
            truncate_body: None,
            header_crc_override: None,
            trailing: Vec::new(),
        }
    }
}

fn put<T: for<'a> BinWrite<Args<'a> = ()>>(out: &mut Vec<u8>, value: &T) {
    let mut c = std::io::Cursor::new(Vec::new());
    // Writing fixed-size records into a Vec cannot fail.
    if value.write_le(&mut c).is_ok() {
        out.extend_from_slice(&c.into_inner());
    }
}

impl RawFile {
    /// The header body: counts, section table, metadata, tensor table.
    pub fn header_body(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let counts = self.counts_override.unwrap_or(Counts {
            sections: self.sections.len() as u32,
            tensors: self.tensors.len() as u32,
            metadata: self.metadata.len() as u32,
        });
        put(&mut b, &counts);
        for s in &self.sections {
            put(&mut b, &s.entry);
        }
        for m in &self.metadata {
            b.extend_from_slice(&(m.key.len() as u16).to_le_bytes());
            b.extend_from_slice(&m.key);
            b.push(m.ty);
            b.extend_from_slice(&m.value);
        }
        for t in &self.tensors {
            b.extend_from_slice(&(t.name.len() as u16).to_le_bytes());
            b.extend_from_slice(&t.name);
            b.push(t.kind);
            b.push(t.shape.len() as u8);
            for d in &t.shape {
                b.extend_from_slice(&d.to_le_bytes());
            }
            if let Some(q) = &t.quant {
                put(&mut b, q);
            }
            for r in &t.regions {
                put(&mut b, r);
            }
            if let Some(c) = &t.correction {
                b.extend_from_slice(&c.rank.to_le_bytes());
                for (fields, regions) in [&c.a, &c.b] {
                    put(&mut b, fields);
                    for r in regions {
                        put(&mut b, r);
                    }
                }
            }
        }
        if let Some(n) = self.truncate_body {
            b.truncate(n);
        }
        b
    }

    /// Offset of the first section for the current header.
    pub fn data_start(&self) -> u64 {
        PREAMBLE_LEN + self.header_body().len() as u64 + HEADER_CRC_LEN
    }

    /// Sets every section's offset so that sections follow the header
    /// contiguously, in table order.
    pub fn place_sections(&mut self) {
        let mut at = self.data_start();
        for s in &mut self.sections {
            s.entry.offset = at;
            at += s.stored.len() as u64;
        }
    }

    /// The file: preamble, header body, header CRC, every section's stored
    /// bytes in table order, then `trailing`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = self.header_body();
        let mut out = Vec::with_capacity(
            body.len() + 32 + self.sections.iter().map(|s| s.stored.len()).sum::<usize>(),
        );
        put(
            &mut out,
            &Preamble {
                magic: self.magic,
                major: self.major,
                minor: self.minor,
                header_len: body.len() as u32,
            },
        );
        out.extend_from_slice(&body);
        let crc = self
            .header_crc_override
            .unwrap_or_else(|| crc32fast::hash(&out));
        out.extend_from_slice(&crc.to_le_bytes());
        for s in &self.sections {
            out.extend_from_slice(&s.stored);
        }
        out.extend_from_slice(&self.trailing);
        out
    }
}
