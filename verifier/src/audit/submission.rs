//! The figures a submission.json claims. It has no schema (field.md): the
//! score may be at the top level or nested, per-seed results keyed by seed
//! or listed, byte counts named half a dozen ways. Every figure is looked up
//! under the names seen in the public records and a few obvious variants,
//! and remembers where it was found so a report can name it.

use serde_json::{Map, Value};

use super::json_digits::JsonDigits;
use super::text::{parse_count, Printed};

/// Names of each claimed figure, most common first.
const VAL_BPB: &[&str] = &[
    "val_bpb",
    "mean_val_bpb",
    "val_bpb_mean",
    "avg_val_bpb",
    "final_val_bpb",
];
const VAL_LOSS: &[&str] = &[
    "val_loss",
    "mean_val_loss",
    "val_loss_mean",
    "avg_val_loss",
    "final_val_loss",
];
const VAL_BPB_STD: &[&str] = &["val_bpb_std", "std_val_bpb", "val_bpb_stddev", "bpb_std"];
const TOTAL_BYTES: &[&str] = &[
    "bytes_total",
    "total_bytes",
    "artifact_bytes",
    "submission_bytes",
    "total_size_bytes",
    "artifact_size_bytes",
    "size_bytes",
    "bytes",
];
const MODEL_BYTES: &[&str] = &[
    "bytes_model",
    "model_bytes",
    "compressed_model_bytes",
    "model_size_bytes",
];
const CODE_BYTES: &[&str] = &["bytes_code", "code_bytes", "code_size_bytes", "code_size"];
const STEPS: &[&str] = &["steps", "train_steps", "num_steps"];
/// Objects that may hold the aggregate figures one level down.
const AGGREGATE_HOLDERS: &[&str] = &[
    "results",
    "result",
    "metrics",
    "summary",
    "score",
    "final",
    "mean",
    "aggregate",
];
/// Fields that may hold per-seed results (an object keyed by seed, or a
/// list of objects with a `seed`), and the plain seed list.
const PER_SEED_HOLDERS: &[&str] = &[
    "seed_results",
    "per_seed",
    "results_per_seed",
    "seed_runs",
    "runs",
    "results",
    "seeds",
];
const SEED_LIST: &str = "seeds";

/// A claimed decimal and where it was found (`val_bpb`, `results.val_bpb`).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub key: String,
    pub value: Printed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedBytes {
    pub key: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeedClaim {
    pub seed: String,
    pub val_bpb: Option<Claimed>,
    pub val_loss: Option<Claimed>,
    pub bytes: Option<ClaimedBytes>,
    pub steps: Option<u64>,
}

/// Everything submission.json claims that a log can confirm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    pub val_bpb: Option<Claimed>,
    pub val_loss: Option<Claimed>,
    pub val_bpb_std: Option<Claimed>,
    /// The `seeds` list, when there is one.
    pub seed_list: Option<Vec<String>>,
    /// Per-seed results, and the field they were found in.
    pub per_seed: Vec<SeedClaim>,
    pub per_seed_key: Option<String>,
    pub bytes_total: Option<ClaimedBytes>,
    pub bytes_model: Option<ClaimedBytes>,
    pub bytes_code: Option<ClaimedBytes>,
}

impl Claims {
    /// The claims of the parsed document `root`, whose text is `source`
    /// (for the digits its numbers were written with).
    pub fn from_json(root: &Map<String, Value>, source: &[u8]) -> Claims {
        let digits = JsonDigits::lex(source);
        let decimal = |value: &Value, key: String| decimal(value, key, &digits);
        let (per_seed_key, per_seed) = match per_seed_results(root, &decimal) {
            Some((key, claims)) => (Some(key), claims),
            None => (None, Vec::new()),
        };
        Claims {
            val_bpb: aggregate(root, VAL_BPB, &decimal),
            val_loss: aggregate(root, VAL_LOSS, &decimal),
            val_bpb_std: aggregate(root, VAL_BPB_STD, &decimal),
            seed_list: root.get(SEED_LIST).and_then(seed_list),
            per_seed_key,
            per_seed,
            bytes_total: aggregate(root, TOTAL_BYTES, &byte_count),
            bytes_model: aggregate(root, MODEL_BYTES, &byte_count),
            bytes_code: aggregate(root, CODE_BYTES, &byte_count),
        }
    }

    /// Every seed claimed, by the list or by the per-seed results, in order
    /// of first mention.
    pub fn claimed_seeds(&self) -> Vec<String> {
        let mut seeds: Vec<String> = self.seed_list.clone().unwrap_or_default();
        for claim in &self.per_seed {
            if !seeds.contains(&claim.seed) {
                seeds.push(claim.seed.clone());
            }
        }
        seeds
    }

    /// What was found, for the report: `val_bpb 1.08563, seeds [1, 42], ...`.
    pub fn summary(&self) -> String {
        let mut found = Vec::new();
        let decimals = [
            ("val_bpb", &self.val_bpb),
            ("val_loss", &self.val_loss),
            ("val_bpb_std", &self.val_bpb_std),
        ];
        for (name, claim) in decimals {
            if let Some(c) = claim {
                found.push(format!("{name} {} ({})", c.value, c.key));
            }
        }
        if let Some(seeds) = &self.seed_list {
            found.push(format!("seeds [{}]", seeds.join(", ")));
        }
        if let Some(key) = &self.per_seed_key {
            found.push(format!(
                "per-seed results for {} seed(s) ({key})",
                self.per_seed.len()
            ));
        }
        let bytes = [
            ("total bytes", &self.bytes_total),
            ("model bytes", &self.bytes_model),
            ("code bytes", &self.bytes_code),
        ];
        for (name, claim) in bytes {
            if let Some(c) = claim {
                found.push(format!("{name} {} ({})", c.bytes, c.key));
            }
        }
        if found.is_empty() {
            "no figure a log can confirm".into()
        } else {
            found.join(", ")
        }
    }
}

/// The first of `names` at the top level, else inside one of the
/// aggregate holders.
/// Reads a figure found under a key, given the key's path for the report.
type Read<'a, T> = &'a dyn Fn(&Value, String) -> Option<T>;

fn aggregate<T>(root: &Map<String, Value>, names: &[&str], read: Read<T>) -> Option<T> {
    first_of(root, names, "", read).or_else(|| {
        AGGREGATE_HOLDERS.iter().find_map(|holder| {
            let nested = root.get(*holder)?.as_object()?;
            first_of(nested, names, &format!("{holder}."), read)
        })
    })
}

fn first_of<T>(
    object: &Map<String, Value>,
    names: &[&str],
    prefix: &str,
    read: Read<T>,
) -> Option<T> {
    names
        .iter()
        .find_map(|name| read(object.get(*name)?, format!("{prefix}{name}")))
}

/// A number, or a string holding one (`"1.0856"`).
fn decimal(value: &Value, key: String, digits: &JsonDigits) -> Option<Claimed> {
    let printed = match value {
        Value::Number(n) => digits.printed(n.as_f64()?),
        Value::String(s) => Printed::parse(s.trim()),
        _ => None,
    }?;
    Some(Claimed {
        key,
        value: printed,
    })
}

/// A whole number of bytes: `15988983`, `15988983.0`, `"15,988,983"`.
fn byte_count(value: &Value, key: String) -> Option<ClaimedBytes> {
    let bytes = whole_number(value)?;
    Some(ClaimedBytes { key, bytes })
}

fn whole_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            // Integral floats up to 2^53 are exact; beyond that a byte count
            // cannot be told from its neighbours.
            let f = n.as_f64()?;
            (f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0).then_some(f as u64)
        }),
        Value::String(s) => parse_count(s.trim()),
        _ => None,
    }
}

/// A seed as a check id would name it: a whole number, written as in the
/// logs.
fn seed_name(value: &Value) -> Option<String> {
    whole_number(value).map(|n| n.to_string())
}

fn seed_list(value: &Value) -> Option<Vec<String>> {
    let seeds: Vec<String> = value.as_array()?.iter().filter_map(seed_name).collect();
    (!seeds.is_empty()).then_some(seeds)
}

/// The first holder with per-seed results: an object whose keys are seeds
/// (`{"42": {...}}`) or a list of objects that name their seed.
fn per_seed_results(
    root: &Map<String, Value>,
    decimal: Read<Claimed>,
) -> Option<(String, Vec<SeedClaim>)> {
    PER_SEED_HOLDERS.iter().find_map(|holder| {
        let mut claims: Vec<SeedClaim> = match root.get(*holder)? {
            Value::Object(by_seed) => by_seed
                .iter()
                .filter_map(|(seed, result)| {
                    seed_claim(
                        seed_name(&Value::String(seed.clone()))?,
                        result.as_object()?,
                        decimal,
                    )
                })
                .collect(),
            Value::Array(list) => list
                .iter()
                .filter_map(|item| {
                    let result = item.as_object()?;
                    seed_claim(seed_name(result.get("seed")?)?, result, decimal)
                })
                .collect(),
            _ => return None,
        };
        // Seeds in numeric order, whatever order the JSON map keeps.
        claims.sort_by_key(|c| c.seed.parse::<u64>().unwrap_or(u64::MAX));
        (!claims.is_empty()).then(|| (holder.to_string(), claims))
    })
}

fn seed_claim(
    seed: String,
    result: &Map<String, Value>,
    decimal: Read<Claimed>,
) -> Option<SeedClaim> {
    Some(SeedClaim {
        val_bpb: first_of(result, VAL_BPB, "", decimal),
        val_loss: first_of(result, VAL_LOSS, "", decimal),
        bytes: first_of(result, TOTAL_BYTES, "", &byte_count),
        steps: STEPS
            .iter()
            .find_map(|name| whole_number(result.get(*name)?)),
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Claims {
        let value: Value = serde_json::from_str(json).unwrap();
        Claims::from_json(value.as_object().unwrap(), json.as_bytes())
    }

    #[test]
    fn reads_the_seed_results_object() {
        let c = claims(
            r#"{"val_bpb": 1.07193, "seeds": [42, 0],
                "seed_results": {"42": {"val_bpb": 1.07280, "val_loss": 2.77116, "artifact_bytes": 15932897},
                                 "0": {"val_bpb": 1.07134, "steps": 4967}}}"#,
        );
        assert_eq!(c.val_bpb.as_ref().unwrap().value.value, 1.07193);
        assert_eq!(c.seed_list, Some(vec!["42".into(), "0".into()]));
        assert_eq!(c.per_seed_key.as_deref(), Some("seed_results"));
        let by_seed: Vec<&str> = c.per_seed.iter().map(|s| s.seed.as_str()).collect();
        assert_eq!(by_seed, ["0", "42"]);
        assert_eq!(c.per_seed[1].bytes.as_ref().unwrap().bytes, 15_932_897);
        // Written 1.07280: five decimals, though the f64 prints as 1.0728.
        assert_eq!(c.per_seed[1].val_bpb.as_ref().unwrap().value.decimals, 5);
        assert_eq!(c.per_seed[0].steps, Some(4967));
        assert_eq!(c.claimed_seeds(), ["42", "0"]);
    }

    #[test]
    fn reads_nested_figures_and_listed_results() {
        let c = claims(
            r#"{"results": {"val_bpb": "1.0856", "total_bytes": "15,988,983"},
                "runs": [{"seed": 7, "val_loss": 2.8, "bytes": 15000000.0}, {"seed": "x"}, 3]}"#,
        );
        assert_eq!(c.val_bpb.as_ref().unwrap().key, "results.val_bpb");
        assert_eq!(c.val_bpb.as_ref().unwrap().value.decimals, 4);
        assert_eq!(c.bytes_total.as_ref().unwrap().bytes, 15_988_983);
        assert_eq!(c.per_seed.len(), 1);
        assert_eq!(c.per_seed[0].bytes.as_ref().unwrap().bytes, 15_000_000);
        assert_eq!(c.claimed_seeds(), ["7"]);
    }

    #[test]
    fn a_seeds_object_is_per_seed_results() {
        let c = claims(r#"{"seeds": {"1": {"val_bpb": 1.1}, "2": {"val_bpb": 1.2}}}"#);
        assert_eq!(c.seed_list, None);
        assert_eq!(c.per_seed_key.as_deref(), Some("seeds"));
        assert_eq!(c.claimed_seeds(), ["1", "2"]);
    }

    #[test]
    fn odd_values_are_ignored_not_guessed() {
        let c = claims(
            r#"{"val_bpb": true, "bytes_total": -5, "val_loss": [1], "bytes_code": 1.5, "seeds": "42"}"#,
        );
        assert_eq!(c, Claims::default());
        assert_eq!(c.summary(), "no figure a log can confirm");
    }
}
