//! What `pgq inspect --json` and the Python package's `pgq.inspect` return:
//! where an artifact's bytes go, per tensor, section and layer, and its
//! metadata.

use pgq_format::{summarize, Header, MetaValue, Summary};
use serde::Serialize;

use crate::layers::{layer_budgets, LayerBudget};
use crate::CAP_BYTES;

/// An artifact's byte budget.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    #[serde(flatten)]
    pub summary: Summary,
    /// Per layer, against the 16,000,000-byte cap.
    pub layers: Vec<LayerBudget>,
    /// Every entry; byte strings as lowercase hex.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The inspection of a validated header.
pub fn inspect(header: &Header) -> Inspection {
    let summary = summarize(header);
    Inspection {
        layers: layer_budgets(&summary, CAP_BYTES),
        summary,
        metadata: metadata_json(&header.metadata),
    }
}

/// Metadata entries as JSON values, in file order; byte strings as
/// lowercase hex.
pub fn metadata_json(
    metadata: &[(String, MetaValue)],
) -> serde_json::Map<String, serde_json::Value> {
    metadata
        .iter()
        .map(|(k, v)| {
            let value = match v {
                MetaValue::U64(x) => serde_json::json!(x),
                MetaValue::I64(x) => serde_json::json!(x),
                MetaValue::F64(x) => serde_json::json!(x),
                MetaValue::Str(s) => serde_json::json!(s),
                MetaValue::Bytes(b) => {
                    serde_json::json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                }
            };
            (k.clone(), value)
        })
        .collect()
}
