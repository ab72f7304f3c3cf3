//! Where the bytes of a file go: per tensor, per section, and overhead.
//!
//! Attribution rule (spec/FORMAT.md, "Byte attribution"): a tensor is
//! charged its tensor-table entry plus, for each of its regions, a share of
//! its section's *stored* bytes proportional to the region's decoded length.
//! Shares are rounded by largest remainder so that they sum exactly to each
//! section's stored length. Everything else (preamble, counts, section
//! table, metadata, header CRC) is overhead. So tensor bytes + overhead =
//! file bytes, exactly.

use serde::Serialize;

use crate::limits::{COUNTS_LEN, SECTION_ENTRY_LEN};
use crate::types::{Header, Kind, Region};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub shape: Vec<u64>,
    pub kind: Kind,
    /// Code bit width (quantized tensors).
    pub bits: Option<u8>,
    /// Columns per scale group; 0 = one scale per row (quantized tensors).
    pub group_size: Option<u32>,
    pub params: u64,
    /// Bytes of its tensor-table entry.
    pub entry_bytes: u64,
    /// Attributed stored bytes of its codes (quantized) or data (passthrough).
    pub payload_bytes: u64,
    /// Attributed stored bytes of its scales (quantized; 0 otherwise).
    pub scale_bytes: u64,
    /// The rank of its low-rank correction (kind 4).
    pub correction_rank: Option<u32>,
    /// Attributed stored bytes of its correction's factors, codes and
    /// scales (kind 4; 0 otherwise).
    pub correction_bytes: u64,
    /// entry + payload + scales + correction.
    pub bytes: u64,
    /// `8 * bytes / params`.
    pub bits_per_weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionSummary {
    pub index: usize,
    pub codec: &'static str,
    pub offset: u64,
    pub stored_bytes: u64,
    pub decoded_bytes: u64,
    /// stored / decoded.
    pub ratio: f64,
    pub regions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub file_bytes: u64,
    pub major: u16,
    pub minor: u16,
    /// Preamble, counts, section table, metadata and header CRC.
    pub overhead_bytes: u64,
    /// Bytes of the metadata entries (part of the overhead).
    pub metadata_bytes: u64,
    pub params: u64,
    /// `8 * file_bytes / params`.
    pub bits_per_weight: f64,
    pub tensors: Vec<TensorSummary>,
    pub sections: Vec<SectionSummary>,
}

fn bits_per(bytes: u64, params: u64) -> f64 {
    if params == 0 {
        0.0
    } else {
        8.0 * bytes as f64 / params as f64
    }
}

/// Splits `total` in proportion to `weights` (which sum to `sum`), rounding
/// by largest remainder; ties go to the earlier weight.
fn apportion(total: u64, weights: &[u64], sum: u64) -> Vec<u64> {
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let p = total as u128 * w as u128;
            ((p / sum as u128) as u64, p % sum as u128)
        })
        .collect();
    let mut shares: Vec<u64> = exact.iter().map(|e| e.0).collect();
    let mut left = total - shares.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// What a region holds, for attribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Codes, or a passthrough tensor's data.
    Payload,
    Scales,
    /// Any of a correction's four regions.
    Correction,
}

/// Summarises a validated header. Needs no section to be decoded.
pub fn summarize(header: &Header) -> Summary {
    // Every region, in tensor order (a tensor's own before its
    // correction's), with its tensor's index and role.
    let mut regions: Vec<(usize, Role, Region)> = Vec::new();
    for (i, t) in header.tensors.iter().enumerate() {
        match (&t.quant, &t.data) {
            (Some(q), _) => {
                regions.push((i, Role::Payload, q.codes));
                regions.push((i, Role::Scales, q.scales));
            }
            (None, Some(d)) => regions.push((i, Role::Payload, *d)),
            (None, None) => {}
        }
        if let Some(c) = &t.correction {
            for r in [c.a.codes, c.a.scales, c.b.codes, c.b.scales] {
                regions.push((i, Role::Correction, r));
            }
        }
    }
    let mut payload = vec![0u64; header.tensors.len()];
    let mut scales = vec![0u64; header.tensors.len()];
    let mut correction = vec![0u64; header.tensors.len()];
    let mut sections = Vec::with_capacity(header.sections.len());
    for (si, s) in header.sections.iter().enumerate() {
        let members: Vec<&(usize, Role, Region)> = regions
            .iter()
            .filter(|r| r.2.section as usize == si)
            .collect();
        let weights: Vec<u64> = members.iter().map(|r| r.2.len).collect();
        let shares = apportion(s.stored_len, &weights, s.decoded_len);
        for (r, share) in members.iter().zip(shares) {
            match r.1 {
                Role::Payload => payload[r.0] += share,
                Role::Scales => scales[r.0] += share,
                Role::Correction => correction[r.0] += share,
            }
        }
        sections.push(SectionSummary {
            index: si,
            codec: s.codec.name(),
            offset: s.offset,
            stored_bytes: s.stored_len,
            decoded_bytes: s.decoded_len,
            ratio: if s.decoded_len == 0 {
                0.0
            } else {
                s.stored_len as f64 / s.decoded_len as f64
            },
            regions: members.len(),
        });
    }
    let tensors: Vec<TensorSummary> = header
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let params = t.elements();
            let bytes = t.entry_len + payload[i] + scales[i] + correction[i];
            TensorSummary {
                name: t.name.clone(),
                shape: t.shape.clone(),
                kind: t.kind,
                bits: t.quant.map(|q| q.bits),
                group_size: t.quant.map(|q| q.group_size),
                params,
                entry_bytes: t.entry_len,
                payload_bytes: payload[i],
                scale_bytes: scales[i],
                correction_rank: t.correction.map(|c| c.rank),
                correction_bytes: correction[i],
                bytes,
                bits_per_weight: bits_per(bytes, params),
            }
        })
        .collect();
    let tensor_bytes: u64 = tensors.iter().map(|t| t.bytes).sum();
    let params: u64 = tensors.iter().map(|t| t.params).sum();
    let tensor_table: u64 = header.tensors.iter().map(|t| t.entry_len).sum();
    let metadata_bytes = (header.header_len as u64).saturating_sub(
        COUNTS_LEN + SECTION_ENTRY_LEN * header.sections.len() as u64 + tensor_table,
    );
    Summary {
        file_bytes: header.file_len,
        major: header.major,
        minor: header.minor,
        overhead_bytes: header.file_len - tensor_bytes,
        metadata_bytes,
        params,
        bits_per_weight: bits_per(header.file_len, params),
        tensors,
        sections,
    }
}

#[cfg(test)]
mod tests {
    use super::apportion;

    #[test]
    fn apportion_sums_exactly_and_follows_weights() {
        assert_eq!(apportion(10, &[1, 1, 1], 3), vec![4, 3, 3]);
        assert_eq!(apportion(7, &[2, 6], 8), vec![2, 5]);
        assert_eq!(apportion(0, &[5, 5], 10), vec![0, 0]);
        let shares = apportion(1_000_003, &[123, 456, 789, 1], 1369);
        assert_eq!(shares.iter().sum::<u64>(), 1_000_003);
    }
}
