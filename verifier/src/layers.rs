//! The bit budget per layer: an artifact's bytes grouped by layer and split
//! into codes, scales, passthrough values and table entries, against the
//! cap. What `pgq inspect --layers` prints, and what the browser viewer
//! draws.
//!
//! A tensor's layer is its name up to and including the first all-digit
//! component (`blocks.3.attn.c_q.weight` is in `blocks.3`,
//! `encoder.layer.11.output.dense.weight` in `encoder.layer.11`), or its
//! first component when no component is a number (`tok_emb.weight` is in
//! `tok_emb`). Layers are listed in natural order: digit runs compare as
//! numbers, so `blocks.2` comes before `blocks.10`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use pgq_format::Summary;
use serde::Serialize;

/// The bytes of one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerBudget {
    pub layer: String,
    pub tensors: usize,
    pub params: u64,
    /// Stored bytes of quantized codes.
    pub code_bytes: u64,
    /// Stored bytes of fp16 scales.
    pub scale_bytes: u64,
    /// Stored bytes of passthrough (f16, bf16, f32) values.
    pub passthrough_bytes: u64,
    /// Bytes of the layer's tensor-table entries in the header.
    pub entry_bytes: u64,
    /// The sum of the four.
    pub bytes: u64,
    pub bits_per_weight: f64,
    /// `bytes / cap`.
    pub share_of_cap: f64,
}

/// The layer a tensor name belongs to (see the module documentation).
pub fn layer_of(name: &str) -> &str {
    let mut end = 0;
    for (i, part) in name.split('.').enumerate() {
        end += part.len() + usize::from(i > 0);
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            return &name[..end];
        }
    }
    name.split('.').next().unwrap_or(name)
}

/// Compares names with digit runs as numbers (`blocks.2` < `blocks.10`);
/// equal numbers with different zero padding fall back to byte order, so
/// the order is total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        if p.is_ascii_digit() && q.is_ascii_digit() {
            let (dx, rx) = split_digits(x);
            let (dy, ry) = split_digits(y);
            let (tx, ty) = (trim_zeros(dx), trim_zeros(dy));
            let by_value = tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty));
            if by_value != Ordering::Equal {
                return by_value;
            }
            x = rx;
            y = ry;
        } else {
            if p != q {
                return p.cmp(&q);
            }
            x = &x[1..];
            y = &y[1..];
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    s.split_at(n)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b'0').count();
    &s[n.min(s.len().saturating_sub(1))..]
}

/// The budget of every layer of `summary`, in natural order of layer
/// names. The layers' bytes plus `summary.overhead_bytes` (the header
/// outside the tensor table) add up to the file, exactly.
pub fn layer_budgets(summary: &Summary, cap: u64) -> Vec<LayerBudget> {
    let mut by: BTreeMap<&str, LayerBudget> = BTreeMap::new();
    for t in &summary.tensors {
        let layer = layer_of(&t.name);
        let b = by.entry(layer).or_insert_with(|| LayerBudget {
            layer: layer.to_string(),
            tensors: 0,
            params: 0,
            code_bytes: 0,
            scale_bytes: 0,
            passthrough_bytes: 0,
            entry_bytes: 0,
            bytes: 0,
            bits_per_weight: 0.0,
            share_of_cap: 0.0,
        });
        b.tensors += 1;
        b.params += t.params;
        if t.kind.is_quantized() {
            // A correction's factors are codes too (with their scales).
            b.code_bytes += t.payload_bytes + t.correction_bytes;
        } else {
            b.passthrough_bytes += t.payload_bytes;
        }
        b.scale_bytes += t.scale_bytes;
        b.entry_bytes += t.entry_bytes;
    }
    let mut layers: Vec<LayerBudget> = by.into_values().collect();
    for b in &mut layers {
        b.bytes = b.code_bytes + b.scale_bytes + b.passthrough_bytes + b.entry_bytes;
        b.bits_per_weight = if b.params == 0 {
            0.0
        } else {
            8.0 * b.bytes as f64 / b.params as f64
        };
        b.share_of_cap = if cap == 0 {
            0.0
        } else {
            b.bytes as f64 / cap as f64
        };
    }
    layers.sort_by(|a, b| natural_cmp(&a.layer, &b.layer));
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgq_format::{read, summarize, write, Compression, WriteOptions};
    use pgq_quantizer::{quantize_model, DefaultPolicy, DemoConfig};

    #[test]
    fn layers_are_prefixes_up_to_the_first_number() {
        assert_eq!(layer_of("blocks.3.attn.c_q.weight"), "blocks.3");
        assert_eq!(layer_of("blocks.10.mlp.fc.weight"), "blocks.10");
        assert_eq!(
            layer_of("encoder.layer.11.output.dense.weight"),
            "encoder.layer.11"
        );
        assert_eq!(layer_of("tok_emb.weight"), "tok_emb");
        assert_eq!(layer_of("skip_weights"), "skip_weights");
        assert_eq!(layer_of("a.b2.c"), "a");
        assert_eq!(layer_of("7.x"), "7");
        assert_eq!(layer_of(""), "");
        assert_eq!(layer_of("a..1.b"), "a..1");
    }

    #[test]
    fn natural_order_compares_numbers_as_numbers() {
        let mut names = vec![
            "blocks.10",
            "blocks.2",
            "blocks.1",
            "tok_emb",
            "blocks.02",
            "a",
            "blocks.1x",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "a",
                "blocks.1",
                "blocks.1x",
                "blocks.02",
                "blocks.2",
                "blocks.10",
                "tok_emb"
            ]
        );
        assert_eq!(natural_cmp("x9", "x10"), Ordering::Less);
        assert_eq!(natural_cmp("x10", "x10"), Ordering::Equal);
        assert_eq!(natural_cmp("x0", "x00"), Ordering::Less);
    }

    #[test]
    fn budgets_add_up_to_the_file() {
        let sources = DemoConfig {
            layers: 12,
            ..DemoConfig::tiny()
        }
        .generate(0)
        .unwrap();
        let model = quantize_model(&sources, &DefaultPolicy::default(), 0, None).unwrap();
        let options = WriteOptions {
            compression: Compression::Zstd(3),
            ..WriteOptions::default()
        };
        let bytes = write(&model.tensors, &Default::default(), &options).unwrap();
        let summary = summarize(&read(&bytes, &Default::default()).unwrap().header);
        let layers = layer_budgets(&summary, 16_000_000);
        let names: Vec<&str> = layers.iter().map(|l| l.layer.as_str()).collect();
        let blocks: Vec<String> = (0..12).map(|i| format!("blocks.{i}")).collect();
        let expected: Vec<&str> = blocks
            .iter()
            .map(String::as_str)
            .chain(["skip_weights", "tok_emb"])
            .collect();
        assert_eq!(names, expected);
        let total: u64 = layers.iter().map(|l| l.bytes).sum();
        assert_eq!(
            total + summary.overhead_bytes,
            summary.file_bytes,
            "layers + header outside the table = file"
        );
        assert_eq!(
            layers.iter().map(|l| l.tensors).sum::<usize>(),
            summary.tensors.len()
        );
        let emb = layers.last().unwrap();
        assert!(emb.code_bytes > 0 && emb.scale_bytes > 0 && emb.passthrough_bytes == 0);
        assert!((emb.share_of_cap - emb.bytes as f64 / 16e6).abs() < 1e-12);
    }
}
