//! Recipes: per-tensor quantization settings as ordered TOML rules.
//!
//! A recipe is a list of `[[rule]]` tables, optionally preceded by a
//! `[defaults]` table. Each tensor takes the **first** rule that matches it
//! (its name matches the rule's glob and it meets the rule's `max_elements`
//! and `min_rank` conditions). A rule either keeps the tensor as fp16
//! (`keep = true`) or quantizes it with a bit width, a method (RTN or GPTQ),
//! a clip choice and a group size.
//!
//! Globs follow [`globset`] with `literal_separator(false)`: `*` matches any
//! run of characters **including dots**, so `blocks.*.mlp.*` matches
//! `blocks.10.mlp.fc.weight`, and `*` alone matches every name. `?` matches
//! one character, `[0-9]` a class, `{4,5}` one of the alternatives, `\` escapes.
//! The whole name must match, case-sensitively. Regular expressions are not
//! supported (globset does not expose its regex engine, and no regex crate is
//! a dependency).
//!
//! [`Recipe::plan_all`] is strict: a tensor that no rule covers, or a rule
//! that matches no tensor (for instance because an earlier, broader rule takes
//! all of its tensors), is an error naming them, never a silent default.
//!
//! ```
//! use pgq_quantizer::recipe::{Recipe, RulePlan};
//! let recipe = Recipe::parse(r#"
//!     [[rule]]
//!     match = "*"
//!     max_elements = 65536
//!     keep = true
//!
//!     [[rule]]
//!     match = "blocks.*.mlp.*"
//!     bits = 6
//!     clip = { sdclip = 12.0 }
//! "#).unwrap();
//! let plans = recipe
//!     .plan_all(&[
//!         ("blocks.0.mlp_scale".to_string(), vec![512]),
//!         ("blocks.0.mlp.fc.weight".to_string(), vec![2048, 512]),
//!     ])
//!     .unwrap();
//! assert_eq!(plans[0].1, RulePlan::Keep { rule: 0 });
//! assert_eq!(plans[1].1.rule(), 1);
//! assert_eq!(plans[1].1.describe(), "rtn-sdclip k=12 int6");
//! assert!(plans[1].1.as_rtn().is_some());
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use crate::lqer::{LqerConfig, DEFAULT_LQER};
use crate::model::KEEP_METHOD;
pub use crate::policy::Method;
use crate::policy::{MatrixPlan, TensorPlan};
use crate::rtn::RtnConfig;
pub use crate::search::{ClipChoice, Objective, Scope};

/// GPTQ damping when neither the rule nor `[defaults]` sets `damp`: the
/// fraction of mean(diag H) added to the diagonal.
pub const DEFAULT_DAMP: f32 = 0.01;
/// GPTQ column block size when neither the rule nor `[defaults]` sets it.
pub const DEFAULT_BLOCK_SIZE: u32 = 128;
/// GPTQ act-order when neither the rule nor `[defaults]` sets it.
pub const DEFAULT_ACT_ORDER: bool = true;

/// Keys allowed at the top level.
const TOP_KEYS: &[&str] = &["defaults", "rule", "lqer"];
/// Keys of the `[lqer]` table (crate::lqer).
const LQER_KEYS: &[&str] = &["top_k", "rank", "a_bits", "b_bits", "b_group"];
/// Quantization settings: allowed in `[defaults]` and in rules.
const SETTING_KEYS: &[&str] = &[
    "bits",
    "method",
    "clip",
    "group_size",
    "act_order",
    "damp",
    "block_size",
    "rdo",
];
/// GPTQ-only settings.
const GPTQ_KEYS: &[&str] = &["act_order", "damp", "block_size", "rdo"];
/// Keys only rules have.
const RULE_ONLY_KEYS: &[&str] = &["match", "keep", "max_elements", "min_rank"];
/// Keys of an inline clip table.
const CLIP_KEYS: &[&str] = &["sdclip", "percentiles", "objective", "scope"];

// ---------------------------------------------------------------------------
// Plans

/// What a recipe decided for one tensor, with the index of the rule that
/// decided it (0 = the first `[[rule]]` of the file) for provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "plan", rename_all = "lowercase")]
pub enum RulePlan {
    /// fp16 passthrough.
    Keep { rule: usize },
    Quantize {
        rule: usize,
        method: Method,
        /// 2..=8.
        bits: u8,
        /// Columns per scale group; 0 = one scale per row.
        group_size: u32,
        clip: ClipChoice,
    },
}

impl RulePlan {
    /// Index of the rule that chose this plan.
    pub fn rule(&self) -> usize {
        match self {
            RulePlan::Keep { rule } | RulePlan::Quantize { rule, .. } => *rule,
        }
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, RulePlan::Keep { .. })
    }

    /// The matrix plan, or `None` for keep.
    pub fn matrix_plan(&self) -> Option<MatrixPlan> {
        match self {
            RulePlan::Keep { .. } => None,
            RulePlan::Quantize {
                method,
                bits,
                group_size,
                clip,
                ..
            } => Some(MatrixPlan {
                method: *method,
                bits: *bits,
                group_size: *group_size,
                clip: clip.clone(),
            }),
        }
    }

    /// The RTN configuration when this plan is plain RTN with SDClip or
    /// absmax; `None` for keep, GPTQ and percentile search.
    pub fn as_rtn(&self) -> Option<RtnConfig> {
        self.matrix_plan()?.as_rtn()
    }

    /// The [`TensorPlan`] that [`crate::quantize_tensor`] runs.
    pub fn to_tensor_plan(&self) -> TensorPlan {
        match self.matrix_plan() {
            None => TensorPlan::Keep,
            Some(plan) => TensorPlan::Quantize(plan),
        }
    }

    /// Whether running the plan needs the tensor's Hessian (GPTQ, or a
    /// Hessian-weighted clip search).
    pub fn needs_hessian(&self) -> bool {
        self.matrix_plan().is_some_and(|plan| plan.needs_hessian())
    }

    /// The per-tensor method label: `keep-f16`, or
    /// `{rtn|gptq}-{clip} int{bits}[ g{group}]`, e.g.
    /// `gptq-sdclip k=12.85 int6` ([`MatrixPlan::describe`]). GPTQ options
    /// are left to [`Recipe::describe`].
    pub fn describe(&self) -> String {
        match self.matrix_plan() {
            None => KEEP_METHOD.to_string(),
            Some(plan) => plan.describe(),
        }
    }
}

// ---------------------------------------------------------------------------
// Errors

/// Where in a recipe a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    TopLevel,
    Defaults,
    /// 0-based index of the `[[rule]]` in file order.
    Rule(usize),
    /// The `[lqer]` table.
    Lqer,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::TopLevel => f.write_str("top level"),
            Location::Defaults => f.write_str("[defaults]"),
            Location::Rule(i) => write!(f, "rule {i}"),
            Location::Lqer => f.write_str("[lqer]"),
        }
    }
}

/// A rule that matched no tensor in [`Recipe::plan_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedRule {
    pub rule: usize,
    pub pattern: String,
    /// Earlier rules that took every tensor this rule matches; empty when
    /// the rule matches no tensor at all.
    pub shadowed_by: Vec<usize>,
}

impl fmt::Display for UnusedRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {} (`{}`) matches no tensor",
            self.rule, self.pattern
        )?;
        if !self.shadowed_by.is_empty() {
            let rules: Vec<String> = self.shadowed_by.iter().map(|r| r.to_string()).collect();
            write!(
                f,
                ": every tensor it matches is taken first by rule {}",
                rules.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Why a recipe could not be read or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecipeError {
    #[error("cannot read recipe `{}`: {message}", path.display())]
    Io { path: PathBuf, message: String },
    /// A parse error of a recipe file, with the file's path.
    #[error("recipe `{}`: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<RecipeError>,
    },
    #[error("recipe is not valid TOML: {0}")]
    Toml(String),
    #[error("{at}: unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        at: Location,
        key: String,
        expected: String,
    },
    #[error("{at}: missing `{key}`: {hint}")]
    MissingKey {
        at: Location,
        key: String,
        hint: &'static str,
    },
    #[error("{at}: bits = {bits} is outside 2..=8")]
    Bits { at: Location, bits: i64 },
    /// A value of the wrong type or out of its range.
    #[error("{at}: `{key}` {message}")]
    Value {
        at: Location,
        key: String,
        message: String,
    },
    /// Settings that contradict each other.
    #[error("{at}: {message}")]
    Conflict { at: Location, message: String },
    #[error("the recipe has no [[rule]] tables")]
    NoRules,
    #[error("rule {rule}: invalid glob `{pattern}`: {message}")]
    Glob {
        rule: usize,
        pattern: String,
        message: String,
    },
    /// The recipe does not fit the tensors: some are covered by no rule,
    /// or some rules match none. At least one list is non-empty.
    #[error("{}", coverage_message(uncovered, unused))]
    Coverage {
        uncovered: Vec<String>,
        unused: Vec<UnusedRule>,
    },
}

fn coverage_message(uncovered: &[String], unused: &[UnusedRule]) -> String {
    const SHOWN: usize = 10;
    let mut parts = Vec::new();
    if !uncovered.is_empty() {
        let mut names: Vec<String> = uncovered
            .iter()
            .take(SHOWN)
            .map(|n| format!("`{n}`"))
            .collect();
        if uncovered.len() > SHOWN {
            names.push(format!("and {} more", uncovered.len() - SHOWN));
        }
        parts.push(format!(
            "{} tensor(s) covered by no rule: {}",
            uncovered.len(),
            names.join(", ")
        ));
    }
    parts.extend(unused.iter().map(|u| u.to_string()));
    format!("recipe does not fit the tensors: {}", parts.join("; "))
}

// ---------------------------------------------------------------------------
// Parsing helpers

/// Typed access to one TOML table, with errors naming the location.
struct Fields<'a> {
    at: Location,
    table: &'a toml::Table,
}

fn type_name(value: &toml::Value) -> &'static str {
    value.type_str()
}

impl<'a> Fields<'a> {
    fn check_keys(&self, allowed: &[&[&str]]) -> Result<(), RecipeError> {
        for key in self.table.keys() {
            if !allowed.iter().any(|set| set.contains(&key.as_str())) {
                let expected: Vec<&str> = allowed.iter().flat_map(|s| s.iter().copied()).collect();
                return Err(RecipeError::UnknownKey {
                    at: self.at,
                    key: key.clone(),
                    expected: expected.join(", "),
                });
            }
        }
        Ok(())
    }

    fn value_error(&self, key: &str, message: impl Into<String>) -> RecipeError {
        RecipeError::Value {
            at: self.at,
            key: key.into(),
            message: message.into(),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, RecipeError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => Ok(Some(*n)),
            Some(v) => {
                Err(self.value_error(key, format!("must be an integer, not a {}", type_name(v))))
            }
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, RecipeError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.value_error(
                key,
                format!("must be true or false, not a {}", type_name(v)),
            )),
        }
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>, RecipeError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => {
                Err(self.value_error(key, format!("must be a string, not a {}", type_name(v))))
            }
        }
    }

    /// A finite number (integer or float) above `min`, or at least `min`
    /// when `or_equal`, as f32.
    fn f32_above(&self, key: &str, min: f32, or_equal: bool) -> Result<Option<f32>, RecipeError> {
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let x = number(value).ok_or_else(|| {
            self.value_error(key, format!("must be a number, not a {}", type_name(value)))
        })? as f32;
        let fits = x.is_finite() && if or_equal { x >= min } else { x > min };
        if !fits {
            let bound = if or_equal { "at least" } else { "greater than" };
            return Err(self.value_error(key, format!("= {x} must be finite and {bound} {min}")));
        }
        Ok(Some(x))
    }

    /// A non-negative integer that fits u32 (`min` is the least allowed).
    fn u32(&self, key: &str, min: u32) -> Result<Option<u32>, RecipeError> {
        match self.int(key)? {
            None => Ok(None),
            Some(n) => match u32::try_from(n) {
                Ok(n) if n >= min => Ok(Some(n)),
                _ => Err(self.value_error(key, format!("= {n} is outside {min}..={}", u32::MAX))),
            },
        }
    }
}

/// A number (integer or float) as f64.
fn number(value: &toml::Value) -> Option<f64> {
    match value {
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MethodName {
    Rtn,
    Gptq,
}

/// Quantization settings as written in one table, before defaults.
#[derive(Debug, Clone, Default)]
struct Settings {
    bits: Option<u8>,
    method: Option<MethodName>,
    clip: Option<ClipChoice>,
    group_size: Option<u32>,
    act_order: Option<bool>,
    damp: Option<f32>,
    block_size: Option<u32>,
    rdo: Option<f32>,
}

impl Settings {
    fn parse(fields: &Fields<'_>) -> Result<Settings, RecipeError> {
        let at = fields.at;
        let bits = match fields.int("bits")? {
            None => None,
            Some(b) if (2..=8).contains(&b) => Some(b as u8),
            Some(bits) => return Err(RecipeError::Bits { at, bits }),
        };
        let method = match fields.str("method")? {
            None => None,
            Some("rtn") => Some(MethodName::Rtn),
            Some("gptq") => Some(MethodName::Gptq),
            Some(other) => {
                return Err(fields.value_error(
                    "method",
                    format!("= \"{other}\" is not \"rtn\" or \"gptq\""),
                ))
            }
        };
        let clip = match fields.table.get("clip") {
            None => None,
            Some(value) => Some(parse_clip(at, value)?),
        };
        let damp = fields.f32_above("damp", 0.0, false)?;
        let rdo = fields.f32_above("rdo", 0.0, true)?;
        Ok(Settings {
            bits,
            method,
            clip,
            group_size: fields.u32("group_size", 0)?,
            act_order: fields.bool("act_order")?,
            damp,
            block_size: fields.u32("block_size", 1)?,
            rdo,
        })
    }

    /// The setting keys present, in [`SETTING_KEYS`] order.
    fn present(&self) -> Vec<&'static str> {
        let flags = [
            self.bits.is_some(),
            self.method.is_some(),
            self.clip.is_some(),
            self.group_size.is_some(),
            self.act_order.is_some(),
            self.damp.is_some(),
            self.block_size.is_some(),
            self.rdo.is_some(),
        ];
        SETTING_KEYS
            .iter()
            .zip(flags)
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect()
    }

    fn gptq_options(&self) -> Vec<&'static str> {
        self.present()
            .into_iter()
            .filter(|k| GPTQ_KEYS.contains(k))
            .collect()
    }
}

fn backticked(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

const CLIP_FORMS: &str = "must be \"absmax\", { sdclip = K } or { percentiles = [...], \
     objective = \"mse\" | \"hessian\", scope = \"row\" | \"tensor\" }";

fn parse_clip(at: Location, value: &toml::Value) -> Result<ClipChoice, RecipeError> {
    let error = |key: &str, message: String| RecipeError::Value {
        at,
        key: key.into(),
        message,
    };
    let table = match value {
        toml::Value::String(s) if s == "absmax" => return Ok(ClipChoice::Absmax),
        toml::Value::String(s) => return Err(error("clip", format!("= \"{s}\": {CLIP_FORMS}"))),
        toml::Value::Table(t) => t,
        other => {
            return Err(error(
                "clip",
                format!("is a {}: {CLIP_FORMS}", type_name(other)),
            ))
        }
    };
    if let Some(key) = table.keys().find(|k| !CLIP_KEYS.contains(&k.as_str())) {
        return Err(RecipeError::UnknownKey {
            at,
            key: format!("clip.{key}"),
            expected: CLIP_KEYS.join(", "),
        });
    }
    match (table.get("sdclip"), table.get("percentiles")) {
        (Some(_), Some(_)) => Err(RecipeError::Conflict {
            at,
            message: "clip sets both `sdclip` and `percentiles`".into(),
        }),
        (Some(k), None) => {
            if let Some(key) = ["objective", "scope"]
                .into_iter()
                .find(|key| table.contains_key(*key))
            {
                return Err(RecipeError::Conflict {
                    at,
                    message: format!("clip.{key} applies to `percentiles`, not `sdclip`"),
                });
            }
            let k = number(k).ok_or_else(|| {
                error(
                    "clip.sdclip",
                    format!("must be a number, not a {}", type_name(k)),
                )
            })? as f32;
            if !(k.is_finite() && k > 0.0) {
                return Err(error(
                    "clip.sdclip",
                    format!("= {k}: k must be finite and greater than 0"),
                ));
            }
            Ok(ClipChoice::SdClip { k })
        }
        (None, Some(list)) => {
            let items = list.as_array().ok_or_else(|| {
                error(
                    "clip.percentiles",
                    format!("must be an array of numbers, not a {}", type_name(list)),
                )
            })?;
            if items.is_empty() {
                return Err(error("clip.percentiles", "must not be empty".into()));
            }
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                let p = number(item).ok_or_else(|| {
                    error(
                        "clip.percentiles",
                        format!("must hold numbers, not a {}", type_name(item)),
                    )
                })? as f32;
                if !(p > 0.0 && p <= 1.0) {
                    return Err(error(
                        "clip.percentiles",
                        format!("holds {p}: each value must lie in (0, 1]"),
                    ));
                }
                values.push(p);
            }
            let objective = match table.get("objective") {
                None => Objective::Mse,
                Some(toml::Value::String(s)) if s == "mse" => Objective::Mse,
                Some(toml::Value::String(s)) if s == "hessian" => Objective::Hessian,
                Some(other) => {
                    return Err(error(
                        "clip.objective",
                        format!("= {other} is not \"mse\" or \"hessian\""),
                    ))
                }
            };
            let scope = match table.get("scope") {
                None => Scope::Row,
                Some(toml::Value::String(s)) if s == "row" => Scope::Row,
                Some(toml::Value::String(s)) if s == "tensor" => Scope::Tensor,
                Some(other) => {
                    return Err(error(
                        "clip.scope",
                        format!("= {other} is not \"row\" or \"tensor\""),
                    ))
                }
            };
            let choice = ClipChoice::Percentiles {
                list: values,
                objective,
                scope,
            };
            choice
                .validate()
                .map_err(|e| error("clip.percentiles", e.to_string()))?;
            Ok(choice)
        }
        (None, None) => Err(error(
            "clip",
            format!("has neither `sdclip` nor `percentiles`: {CLIP_FORMS}"),
        )),
    }
}

// ---------------------------------------------------------------------------
// The recipe

/// One parsed rule, with its defaults applied.
#[derive(Debug, Clone)]
pub struct Rule {
    pattern: String,
    matcher: GlobMatcher,
    max_elements: Option<u64>,
    min_rank: Option<u32>,
    plan: RulePlan,
}

impl Rule {
    /// The glob, as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn max_elements(&self) -> Option<u64> {
        self.max_elements
    }

    pub fn min_rank(&self) -> Option<u32> {
        self.min_rank
    }

    /// What the rule does to the tensors it takes (its own index included).
    pub fn plan(&self) -> &RulePlan {
        &self.plan
    }

    /// Whether the rule matches a tensor (glob and conditions), regardless
    /// of earlier rules.
    pub fn matches(&self, name: &str, shape: &[u64]) -> bool {
        self.matches_counted(name, shape, element_count(shape))
    }

    fn matches_counted(&self, name: &str, shape: &[u64], elements: u64) -> bool {
        self.max_elements.is_none_or(|max| elements <= max)
            && self
                .min_rank
                .is_none_or(|min| shape.len() as u64 >= u64::from(min))
            && self.matcher.is_match(name)
    }

    /// `"pattern"[ n<=N][ rank>=R] action`: the rule's part of
    /// [`Recipe::describe`].
    fn describe(&self) -> String {
        let mut out = quote(&self.pattern);
        if let Some(max) = self.max_elements {
            out.push_str(&format!(" n<={max}"));
        }
        if let Some(min) = self.min_rank {
            out.push_str(&format!(" rank>={min}"));
        }
        out.push(' ');
        match &self.plan {
            RulePlan::Keep { .. } => out.push_str("keep"),
            RulePlan::Quantize {
                method,
                bits,
                group_size,
                clip,
                ..
            } => {
                let method = match method {
                    Method::Rtn => "rtn".to_string(),
                    Method::Gptq {
                        act_order,
                        damp,
                        block_size,
                        rdo,
                    } => {
                        let ao = if *act_order { "ao," } else { "" };
                        // Only when set, so that older recipes describe
                        // themselves as they always have.
                        let rdo = if *rdo > 0.0 {
                            format!(",rdo={rdo}")
                        } else {
                            String::new()
                        };
                        format!("gptq({ao}d={damp},b={block_size}{rdo})")
                    }
                };
                out.push_str(&crate::policy::label(&method, *bits, *group_size, clip));
            }
        }
        out
    }
}

/// A double-quoted string with `\` and `"` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Elements of a shape; `u64::MAX` when the count overflows (certainly not
/// small).
fn element_count(shape: &[u64]) -> u64 {
    shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .unwrap_or(u64::MAX)
}

/// An ordered list of first-match rules. See the module docs and
/// `recipes/README.md` for the schema.
#[derive(Debug, Clone)]
pub struct Recipe {
    rules: Vec<Rule>,
    /// A low-rank correction of the worst tensors (`[lqer]`).
    lqer: Option<LqerConfig>,
}

impl Recipe {
    /// Parses and validates a recipe from TOML text.
    pub fn parse(text: &str) -> Result<Recipe, RecipeError> {
        let top: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| RecipeError::Toml(e.to_string().trim_end().into()))?;
        Fields {
            at: Location::TopLevel,
            table: &top,
        }
        .check_keys(&[TOP_KEYS])?;

        let defaults = match top.get("defaults") {
            None => Settings::default(),
            Some(toml::Value::Table(table)) => {
                let fields = Fields {
                    at: Location::Defaults,
                    table,
                };
                fields.check_keys(&[SETTING_KEYS])?;
                let defaults = Settings::parse(&fields)?;
                let gptq = defaults.gptq_options();
                if defaults.method == Some(MethodName::Rtn) && !gptq.is_empty() {
                    return Err(RecipeError::Conflict {
                        at: Location::Defaults,
                        message: format!(
                            "method = \"rtn\" with GPTQ option(s) {}",
                            backticked(&gptq)
                        ),
                    });
                }
                defaults
            }
            Some(other) => {
                return Err(RecipeError::Value {
                    at: Location::TopLevel,
                    key: "defaults".into(),
                    message: format!("must be a table, not a {}", type_name(other)),
                })
            }
        };

        let rules = match top.get("rule") {
            None => return Err(RecipeError::NoRules),
            Some(toml::Value::Array(rules)) => rules,
            Some(other) => {
                return Err(RecipeError::Value {
                    at: Location::TopLevel,
                    key: "rule".into(),
                    message: format!(
                        "must be an array of tables ([[rule]]), not a {}",
                        type_name(other)
                    ),
                })
            }
        };
        if rules.is_empty() {
            return Err(RecipeError::NoRules);
        }
        let rules = rules
            .iter()
            .enumerate()
            .map(|(index, value)| parse_rule(index, value, &defaults))
            .collect::<Result<Vec<_>, _>>()?;
        let lqer = top.get("lqer").map(parse_lqer).transpose()?;
        Ok(Recipe { rules, lqer })
    }

    /// The `[lqer]` table, if any: which tensors get a low-rank correction
    /// and how it is stored.
    pub fn lqer(&self) -> Option<&LqerConfig> {
        self.lqer.as_ref()
    }

    /// Reads and parses a recipe file (a regular file of at most
    /// [`MAX_RECIPE_BYTES`], opened without blocking: a FIFO or
    /// `/dev/zero` is refused); parse errors carry the path.
    pub fn load(path: impl AsRef<Path>) -> Result<Recipe, RecipeError> {
        let path = path.as_ref();
        let io = |message: String| RecipeError::Io {
            path: path.to_path_buf(),
            message,
        };
        let bytes = pgq_format::file::read_regular(path, MAX_RECIPE_BYTES)
            .map_err(|e| io(e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|e| io(format!("not UTF-8 text: {e}")))?;
        Recipe::parse(&text).map_err(|error| RecipeError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// The rules in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The plan of the first rule matching one tensor, or `None`. This does
    /// not check the whole-recipe invariants: use [`Recipe::plan_all`] to
    /// plan a checkpoint.
    pub fn plan(&self, name: &str, shape: &[u64]) -> Option<RulePlan> {
        let elements = element_count(shape);
        self.rules
            .iter()
            .find(|rule| rule.matches_counted(name, shape, elements))
            .map(|rule| rule.plan.clone())
    }

    /// Plans every tensor, in input order. Fails with
    /// [`RecipeError::Coverage`] when a tensor is covered by no rule or a
    /// rule matches no tensor (listing all of them).
    pub fn plan_all(
        &self,
        tensors: &[(String, Vec<u64>)],
    ) -> Result<Vec<(String, RulePlan)>, RecipeError> {
        let counts: Vec<u64> = tensors.iter().map(|(_, s)| element_count(s)).collect();
        let chosen: Vec<Option<usize>> = tensors
            .iter()
            .zip(&counts)
            .map(|((name, shape), &n)| {
                self.rules
                    .iter()
                    .position(|rule| rule.matches_counted(name, shape, n))
            })
            .collect();

        let mut used = vec![false; self.rules.len()];
        for &index in chosen.iter().flatten() {
            used[index] = true;
        }
        let uncovered: Vec<String> = tensors
            .iter()
            .zip(&chosen)
            .filter(|(_, c)| c.is_none())
            .map(|((name, _), _)| name.clone())
            .collect();
        let unused: Vec<UnusedRule> = self
            .rules
            .iter()
            .enumerate()
            .filter(|&(index, _)| !used[index])
            .map(|(index, rule)| {
                // Every tensor this rule matches went to an earlier rule.
                let mut shadowed_by: Vec<usize> = tensors
                    .iter()
                    .zip(&counts)
                    .zip(&chosen)
                    .filter(|(((name, shape), &n), _)| rule.matches_counted(name, shape, n))
                    .filter_map(|(_, c)| *c)
                    .collect();
                shadowed_by.sort_unstable();
                shadowed_by.dedup();
                UnusedRule {
                    rule: index,
                    pattern: rule.pattern.clone(),
                    shadowed_by,
                }
            })
            .collect();
        if !uncovered.is_empty() || !unused.is_empty() {
            return Err(RecipeError::Coverage { uncovered, unused });
        }

        Ok(tensors
            .iter()
            .zip(chosen)
            .map(|((name, _), index)| {
                // Every entry is Some: uncovered is empty.
                let rule = &self.rules[index.unwrap_or_default()];
                (name.clone(), rule.plan.clone())
            })
            .collect())
    }

    /// A compact canonical description for artifact metadata:
    /// `recipe v1: 0 "*" n<=65536 keep; 1 "tok_emb.weight" gptq(ao,d=0.01,b=128)-sdclip k=20 int8; ...`.
    /// It describes the rules after `[defaults]` are applied, so comments,
    /// key order, number spelling and moving settings into `[defaults]` do
    /// not change it.
    pub fn describe(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| format!("{index} {}", rule.describe()))
            .chain(self.lqer.map(|l| l.describe()))
            .collect();
        format!("recipe v1: {}", rules.join("; "))
    }
}

/// The `[lqer]` table: every key optional, defaults of [`DEFAULT_LQER`].
fn parse_lqer(value: &toml::Value) -> Result<LqerConfig, RecipeError> {
    let toml::Value::Table(table) = value else {
        return Err(RecipeError::Value {
            at: Location::TopLevel,
            key: "lqer".into(),
            message: format!("must be a table ([lqer]), not a {}", type_name(value)),
        });
    };
    let fields = Fields {
        at: Location::Lqer,
        table,
    };
    fields.check_keys(&[LQER_KEYS])?;
    let bits = |key: &str, default: u8| match fields.int(key)? {
        None => Ok(default),
        Some(b) if (2..=8).contains(&b) => Ok(b as u8),
        Some(b) => Err(fields.value_error(key, format!("= {b} is outside 2..=8"))),
    };
    let rank = fields.u32("rank", 1)?.unwrap_or(DEFAULT_LQER.rank);
    let most = pgq_format::limits::MAX_LOW_RANK;
    if rank > most {
        return Err(fields.value_error("rank", format!("= {rank} is outside 1..={most}")));
    }
    Ok(LqerConfig {
        top_k: fields.u32("top_k", 1)?.unwrap_or(DEFAULT_LQER.top_k),
        rank,
        a_bits: bits("a_bits", DEFAULT_LQER.a_bits)?,
        b_bits: bits("b_bits", DEFAULT_LQER.b_bits)?,
        b_group: fields.u32("b_group", 1)?.unwrap_or(DEFAULT_LQER.b_group),
    })
}

/// Recipes are a few kilobytes; a file past this is not one.
pub const MAX_RECIPE_BYTES: u64 = 1 << 20;

/// A glob longer than this is refused: tensor names are under 256 bytes.
pub const MAX_GLOB_BYTES: usize = 1024;

/// Brace alternations nested deeper than this are refused: globset's regex
/// compilation panics past about a hundred, and real patterns nest one or
/// two.
pub const MAX_GLOB_NESTING: usize = 8;

/// Compiles a tensor-name glob with the recipe semantics (`*` crosses
/// dots, `\` escapes, whole-name, case-sensitive), as `pgq quantize --only`
/// uses too. The error is globset's description of the problem, or the
/// bound a pattern exceeds ([`MAX_GLOB_BYTES`], [`MAX_GLOB_NESTING`]).
pub fn name_glob(pattern: &str) -> Result<GlobMatcher, String> {
    if pattern.len() > MAX_GLOB_BYTES {
        return Err(format!(
            "{} bytes, over the {MAX_GLOB_BYTES}-byte limit for a glob",
            pattern.len()
        ));
    }
    let nesting = brace_nesting(pattern);
    if nesting > MAX_GLOB_NESTING {
        return Err(format!(
            "braces nested {nesting} deep, over the limit of {MAX_GLOB_NESTING}"
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| e.kind().to_string())
}

/// The deepest `{` nesting of a glob (escaped braces do not count).
fn brace_nesting(pattern: &str) -> usize {
    let (mut depth, mut deepest, mut escaped) = (0usize, 0usize, false);
    for c in pattern.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn parse_rule(index: usize, value: &toml::Value, defaults: &Settings) -> Result<Rule, RecipeError> {
    let at = Location::Rule(index);
    let table = match value {
        toml::Value::Table(table) => table,
        other => {
            return Err(RecipeError::Value {
                at,
                key: "rule".into(),
                message: format!("must be a table, not a {}", type_name(other)),
            })
        }
    };
    let fields = Fields { at, table };
    fields.check_keys(&[RULE_ONLY_KEYS, SETTING_KEYS])?;

    let pattern = fields.str("match")?.ok_or(RecipeError::MissingKey {
        at,
        key: "match".into(),
        hint: "every rule needs a glob over tensor names",
    })?;
    let matcher = name_glob(pattern).map_err(|message| RecipeError::Glob {
        rule: index,
        pattern: pattern.into(),
        message,
    })?;
    let max_elements = match fields.int("max_elements")? {
        None => None,
        Some(n) => Some(u64::try_from(n).map_err(|_| {
            fields.value_error("max_elements", format!("= {n} must not be negative"))
        })?),
    };
    let min_rank = fields.u32("min_rank", 0)?;
    let keep = fields.bool("keep")?.unwrap_or(false);
    let own = Settings::parse(&fields)?;

    let plan = if keep {
        let present = own.present();
        if !present.is_empty() {
            return Err(RecipeError::Conflict {
                at,
                message: format!(
                    "keep = true cannot be combined with {}",
                    backticked(&present)
                ),
            });
        }
        RulePlan::Keep { rule: index }
    } else {
        resolve(index, &own, defaults)?
    };
    Ok(Rule {
        pattern: pattern.into(),
        matcher,
        max_elements,
        min_rank,
        plan,
    })
}

/// A quantize rule's plan: its own settings, then `[defaults]`, then the
/// built-in defaults.
fn resolve(index: usize, own: &Settings, defaults: &Settings) -> Result<RulePlan, RecipeError> {
    let at = Location::Rule(index);
    const HINT: &str = "a rule either sets `keep = true` or quantizes, which needs `bits` and \
                        `clip` (in the rule or in [defaults])";
    let bits = own.bits.or(defaults.bits).ok_or(RecipeError::MissingKey {
        at,
        key: "bits".into(),
        hint: HINT,
    })?;
    let clip =
        own.clip
            .clone()
            .or_else(|| defaults.clip.clone())
            .ok_or(RecipeError::MissingKey {
                at,
                key: "clip".into(),
                hint: HINT,
            })?;
    let group_size = own.group_size.or(defaults.group_size).unwrap_or(0);
    let method = match own.method.or(defaults.method).unwrap_or(MethodName::Rtn) {
        MethodName::Rtn => {
            // GPTQ options of [defaults] are for GPTQ rules; a rule's own
            // are a contradiction.
            let gptq = own.gptq_options();
            if !gptq.is_empty() {
                return Err(RecipeError::Conflict {
                    at,
                    message: format!(
                        "GPTQ option(s) {} on an RTN rule (set method = \"gptq\")",
                        backticked(&gptq)
                    ),
                });
            }
            Method::Rtn
        }
        MethodName::Gptq => Method::Gptq {
            act_order: own
                .act_order
                .or(defaults.act_order)
                .unwrap_or(DEFAULT_ACT_ORDER),
            damp: own.damp.or(defaults.damp).unwrap_or(DEFAULT_DAMP),
            block_size: own
                .block_size
                .or(defaults.block_size)
                .unwrap_or(DEFAULT_BLOCK_SIZE),
            rdo: own.rdo.or(defaults.rdo).unwrap_or(0.0),
        },
    };
    Ok(RulePlan::Quantize {
        rule: index,
        method,
        bits,
        group_size,
        clip,
    })
}

#[cfg(test)]
mod tests;
