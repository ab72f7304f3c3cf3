//! Order-0 Shannon entropy of quantized codes: the floor that a coder which
//! sees each code alone (no context) cannot beat, and the yardstick the
//! artifact sizes are compared with.

use std::collections::BTreeMap;

use pgq_format::{Tensor, TensorData};
use serde::Serialize;

/// Counts of each code value (as its byte, so all 256 are possible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHistogram {
    counts: [u64; 256],
}

impl Default for CodeHistogram {
    fn default() -> Self {
        CodeHistogram { counts: [0; 256] }
    }
}

impl CodeHistogram {
    pub fn add(&mut self, codes: &[i8]) {
        for &code in codes {
            self.counts[usize::from(code as u8)] += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// How often `code` occurs.
    pub fn count(&self, code: i8) -> u64 {
        self.counts[usize::from(code as u8)]
    }

    /// `-sum p log2 p` over the observed values, in bits per code (0 when
    /// empty).
    pub fn bits_per_code(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let n = total as f64;
        self.counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / n;
                -p * p.log2()
            })
            .sum()
    }

    pub fn summary(&self) -> EntropySummary {
        let codes = self.total();
        let bits_per_code = self.bits_per_code();
        EntropySummary {
            codes,
            bits_per_code,
            bytes: bits_per_code * codes as f64 / 8.0,
        }
    }
}

/// The order-0 entropy of a set of codes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EntropySummary {
    pub codes: u64,
    pub bits_per_code: f64,
    /// `bits_per_code * codes / 8`: bytes an ideal order-0 coder needs.
    pub bytes: f64,
}

/// Entropy of all quantized tensors' codes together and per bit width.
///
/// Each width has its own histogram; `all` pools every code into one, so
/// it is at least the size-weighted mean of the widths' entropies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntropyReport {
    pub all: EntropySummary,
    pub by_bits: BTreeMap<u8, EntropySummary>,
}

/// Entropy of the codes of every quantized tensor in `tensors`
/// (passthrough tensors are skipped).
pub fn code_entropy(tensors: &[Tensor]) -> EntropyReport {
    let mut all = CodeHistogram::default();
    let mut by_bits: BTreeMap<u8, CodeHistogram> = BTreeMap::new();
    for tensor in tensors {
        if let TensorData::Quantized { bits, codes, .. } = &tensor.data {
            all.add(codes);
            by_bits.entry(*bits).or_default().add(codes);
        }
    }
    EntropyReport {
        all: all.summary(),
        by_bits: by_bits
            .into_iter()
            .map(|(bits, histogram)| (bits, histogram.summary()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    fn histogram(codes: &[i8]) -> CodeHistogram {
        let mut h = CodeHistogram::default();
        h.add(codes);
        h
    }

    fn quantized(name: &str, bits: u8, codes: Vec<i8>) -> Tensor {
        Tensor {
            name: name.into(),
            shape: vec![1, codes.len() as u64],
            data: TensorData::Quantized {
                bits,
                group_size: 0,
                codes,
                scales: vec![f16::ONE],
                correction: None,
            },
        }
    }

    #[test]
    fn known_distributions() {
        assert_eq!(histogram(&[]).bits_per_code(), 0.0);
        assert_eq!(histogram(&[5; 100]).bits_per_code(), 0.0);
        assert!((histogram(&[-1, 0, 1, 2]).bits_per_code() - 2.0).abs() < 1e-12);
        // p = 1/2, 1/4, 1/4: 1.5 bits.
        assert!((histogram(&[0, 0, -3, 3]).bits_per_code() - 1.5).abs() < 1e-12);
        // All 256 byte values equally often: 8 bits.
        let every: Vec<i8> = (0..=255u8).map(|b| b as i8).collect();
        assert!((histogram(&every).bits_per_code() - 8.0).abs() < 1e-12);
    }

    #[test]
    fn negative_codes_are_distinct_values() {
        let h = histogram(&[-1, 1, -1]);
        assert_eq!(h.count(-1), 2);
        assert_eq!(h.count(1), 1);
        assert_eq!(h.total(), 3);
    }

    #[test]
    fn bytes_are_bits_times_count_over_8() {
        let s = histogram(&[-1, 0, 1, 2, -1, 0, 1, 2]).summary();
        assert_eq!(s.codes, 8);
        assert!((s.bytes - 2.0).abs() < 1e-12);
    }

    #[test]
    fn report_pools_and_splits_by_width() {
        let tensors = vec![
            quantized("a", 6, vec![0, 1, 0, 1]),
            Tensor {
                name: "kept".into(),
                shape: vec![2],
                data: TensorData::F16(vec![f16::ONE, f16::ONE]),
            },
            quantized("b", 8, vec![7, 7, 7, 7]),
            quantized("c", 6, vec![2, 3, 2, 3]),
        ];
        let report = code_entropy(&tensors);
        assert_eq!(report.all.codes, 12);
        assert_eq!(report.by_bits.len(), 2);
        let int6 = report.by_bits[&6];
        assert_eq!(int6.codes, 8);
        assert!((int6.bits_per_code - 2.0).abs() < 1e-12);
        assert_eq!(report.by_bits[&8].bits_per_code, 0.0);
        // Pooled: 0,1,2,3 twice each and 7 four times: p = 1/6 x4, 1/3.
        let expected =
            -(4.0 * (1.0 / 6.0) * (1.0f64 / 6.0).log2() + (1.0 / 3.0) * (1.0f64 / 3.0).log2());
        assert!((report.all.bits_per_code - expected).abs() < 1e-12);
    }
}
