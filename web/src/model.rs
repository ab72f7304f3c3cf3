//! Pure functions from an artifact's bytes to what the viewer shows: plain
//! Rust, no browser, unit-tested natively (`cargo test -p pgq-web`).
//!
//! Every number comes from pgq-format (`read`, `summarize`), pgq-verifier
//! (`layer_budgets`, `natural_cmp`, `verify`) and pgq-quantizer (the code
//! histogram behind the entropy column); this module only arranges and
//! formats them. The components (`components/`) only lay them out.

use std::cmp::Ordering;

use pgq_format::{read, summarize, Archive, FormatError, ReadOptions, Summary, TensorData};
use pgq_metrics::CodeHistogram;
use pgq_verifier::layers::{layer_budgets, layer_of, natural_cmp, LayerBudget};
use pgq_verifier::verify::{verify, VerifyOptions};
use pgq_verifier::{Check, Report, Status, CAP_BYTES};

/// The parameter-golf cap: code bytes + artifact bytes.
pub const CAP: u64 = CAP_BYTES;

/// The largest file the reader accepts here (1 GiB in wasm32's address
/// space, 4 GiB natively): `ReadOptions::default()`, as in the CLI.
pub fn max_file_bytes() -> u64 {
    ReadOptions::default().max_file_bytes
}

/// The CLI's refusal of a file over the reader's limit (`pgq inspect` on a
/// huge file says the same), checked before a byte is read.
pub fn check_size(name: &str, size: u64) -> Result<(), String> {
    let max = max_file_bytes();
    if size > max {
        Err(format!("{name} is {size} bytes, over the limit of {max}"))
    } else {
        Ok(())
    }
}

/// The CLI's message for a file the reader rejects: the file name, then
/// the `FormatError` (class, field, byte offset, detail) verbatim.
pub fn invalid_file_message(name: &str, error: &FormatError) -> String {
    format!("{name} is not a valid .pgq file: {error}")
}

/// A decoded, validated artifact and everything derived from it once.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub name: String,
    /// The file, kept to re-run `verify` when the code bytes change.
    pub bytes: Vec<u8>,
    pub archive: Archive,
    pub summary: Summary,
    /// Natural order of layer names (`layer_budgets`).
    pub layers: Vec<LayerBudget>,
    /// One per tensor, in file order.
    pub rows: Vec<TensorRow>,
}

impl Artifact {
    /// Reads and validates the whole file (every CRC, code and scale), as
    /// `pgq inspect` does; a rejected file gives the CLI's message.
    pub fn open(name: &str, bytes: Vec<u8>) -> Result<Artifact, String> {
        check_size(name, bytes.len() as u64)?;
        let archive =
            read(&bytes, &ReadOptions::default()).map_err(|e| invalid_file_message(name, &e))?;
        let summary = summarize(&archive.header);
        let layers = layer_budgets(&summary, CAP);
        let rows = summary
            .tensors
            .iter()
            .zip(&archive.tensors)
            .enumerate()
            .map(|(index, (s, t))| TensorRow {
                index,
                name: s.name.clone(),
                layer: layer_of(&s.name).to_string(),
                shape: shape_text(&s.shape),
                kind: s.kind.name(),
                bits: s.bits,
                group_size: s.group_size,
                params: s.params,
                bytes: s.bytes,
                bits_per_weight: s.bits_per_weight,
                correction: correction_text(&t.data, s.correction_bytes, s.bytes),
                entropy: match &t.data {
                    TensorData::Quantized { codes, .. } => {
                        let mut h = CodeHistogram::default();
                        h.add(codes);
                        Some(h.bits_per_code())
                    }
                    _ => None,
                },
            })
            .collect();
        Ok(Artifact {
            name: name.to_string(),
            bytes,
            archive,
            summary,
            layers,
            rows,
        })
    }

    pub fn file_bytes(&self) -> u64 {
        self.summary.file_bytes
    }

    /// `pgq verify` on this artifact with the given code bytes (no
    /// reference checkpoint in the browser): the same checks, the same
    /// wording.
    pub fn verify(&self, code: &CodeBytes) -> Result<Report, String> {
        let options = VerifyOptions {
            code_files: code.files(),
            ..VerifyOptions::default()
        };
        verify(&self.bytes, &self.name, &options).map_err(|e| invalid_file_message(&self.name, &e))
    }

    /// The decoded tensor of a row, for the detail panel.
    pub fn detail(&self, index: usize) -> Option<TensorDetail> {
        let row = self.rows.get(index)?;
        let tensor = self.archive.tensors.get(index)?;
        Some(TensorDetail::new(row, &tensor.data))
    }

    /// Bits per weight of the whole file (header included).
    pub fn bits_per_weight(&self) -> f64 {
        self.summary.bits_per_weight
    }
}

/// The code counted against the cap: a number typed in, or the files
/// dropped or picked (their names and sizes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeBytes {
    /// `(name, bytes)`; a typed number is one entry named "code".
    pub files: Vec<(String, u64)>,
}

impl CodeBytes {
    /// A number typed in (0: no code bytes given).
    pub fn typed(bytes: u64) -> CodeBytes {
        CodeBytes {
            files: if bytes == 0 {
                Vec::new()
            } else {
                vec![("code".to_string(), bytes)]
            },
        }
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.1).sum()
    }

    /// The names of picked or dropped files (`None` for a typed number or
    /// nothing).
    pub fn file_names(&self) -> Option<String> {
        let names: Vec<&str> = self
            .files
            .iter()
            .map(|f| f.0.as_str())
            .filter(|&n| n != "code")
            .collect();
        (!names.is_empty()).then(|| names.join(", "))
    }

    /// `VerifyOptions::code_files`: empty when no code bytes are given, so
    /// that `verify` warns that the cap check is incomplete, as the CLI
    /// does without `--code`.
    pub fn files(&self) -> Vec<(String, u64)> {
        self.files.clone()
    }
}

/// Parses the code-bytes box: digits, optionally with `,`, `_` or spaces
/// between groups. Empty is 0.
pub fn parse_code_bytes(text: &str) -> Option<u64> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | ' ' | '\u{a0}'))
        .collect();
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The last path segment of a URL, without query or fragment.
pub fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or(path)
        .to_string()
}

// ---------------------------------------------------------------------------
// Formatting

pub use pgq_verifier::format::{shape_text, thousands};

/// -1234 -> "−1,234", 1234 -> "+1,234", 0 -> "0".
pub fn signed_thousands(n: i64) -> String {
    match n.cmp(&0) {
        Ordering::Less => format!("\u{2212}{}", thousands(n.unsigned_abs())),
        Ordering::Equal => "0".into(),
        Ordering::Greater => format!("+{}", thousands(n as u64)),
    }
}

/// A share as a percentage with two decimals: 0.979685 -> "97.97%".
pub fn percent(share: f64) -> String {
    format!("{:.2}%", 100.0 * share)
}

/// A relative change with its sign: 0.128 -> "+12.80%", -0.0289 ->
/// "−2.89%".
pub fn signed_percent(change: f64) -> String {
    if change > 0.0 {
        format!("+{}", percent(change))
    } else if change < 0.0 {
        format!("\u{2212}{}", percent(-change))
    } else {
        percent(0.0)
    }
}

/// Bits per weight as the CLI prints them: three decimals.
pub fn fixed3(x: f64) -> String {
    format!("{x:.3}")
}

/// Decimal megabytes (the cap is 16,000,000 bytes = 16.00 MB).
pub fn megabytes(n: u64) -> String {
    format!("{:.2} MB", n as f64 / 1e6)
}

/// A compact figure for statistics: 4 significant digits, scientific
/// notation outside [1e-3, 1e5).
pub fn sig4(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

// ---------------------------------------------------------------------------
// The cap gauge

/// Artifact + code bytes against the cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauge {
    pub artifact: u64,
    pub code: u64,
    pub total: u64,
    pub cap: u64,
    /// cap − total (negative: over the cap).
    pub headroom: i64,
    /// total / cap.
    pub used: f64,
    /// Widths in [0, 1] of the gauge's parts, on a scale whose full width
    /// is max(total, cap): the cap mark sits at `cap_mark`.
    pub artifact_width: f64,
    pub code_width: f64,
    pub cap_mark: f64,
}

impl Gauge {
    pub fn new(artifact: u64, code: u64, cap: u64) -> Gauge {
        let total = artifact.saturating_add(code);
        let scale = total.max(cap).max(1) as f64;
        Gauge {
            artifact,
            code,
            total,
            cap,
            headroom: (cap as i128 - total as i128).clamp(i64::MIN as i128, i64::MAX as i128)
                as i64,
            used: if cap == 0 {
                0.0
            } else {
                total as f64 / cap as f64
            },
            artifact_width: artifact as f64 / scale,
            code_width: code as f64 / scale,
            cap_mark: cap as f64 / scale,
        }
    }

    pub fn over(&self) -> bool {
        self.headroom < 0
    }

    /// "325,034 bytes under" / "54,963 bytes OVER" (the CLI's phrase).
    pub fn headroom_phrase(&self) -> String {
        if self.headroom >= 0 {
            format!("{} bytes under", thousands(self.headroom as u64))
        } else {
            format!("{} bytes OVER", thousands(self.headroom.unsigned_abs()))
        }
    }

    /// ok (more than 1% of the cap left), tight (less), over.
    pub fn level(&self) -> &'static str {
        if self.over() {
            "over"
        } else if (self.headroom as f64) < 0.01 * self.cap as f64 {
            "tight"
        } else {
            "ok"
        }
    }
}

// ---------------------------------------------------------------------------
// The layer chart

/// The four parts of a layer's bytes, in the order they are stacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Codes,
    Scales,
    Passthrough,
    Entries,
}

impl Part {
    pub const ALL: [Part; 4] = [Part::Codes, Part::Scales, Part::Passthrough, Part::Entries];

    pub fn label(self) -> &'static str {
        match self {
            Part::Codes => "codes",
            Part::Scales => "scales",
            Part::Passthrough => "passthrough",
            Part::Entries => "table entries",
        }
    }

    /// The CSS class of its colour.
    pub fn class(self) -> &'static str {
        match self {
            Part::Codes => "seg-codes",
            Part::Scales => "seg-scales",
            Part::Passthrough => "seg-pass",
            Part::Entries => "seg-entries",
        }
    }

    pub fn of(self, l: &LayerBudget) -> u64 {
        match self {
            Part::Codes => l.code_bytes,
            Part::Scales => l.scale_bytes,
            Part::Passthrough => l.passthrough_bytes,
            Part::Entries => l.entry_bytes,
        }
    }
}

/// One stacked segment of a bar, in SVG user units.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub part: Part,
    pub x: f64,
    pub width: f64,
    pub bytes: u64,
}

/// One layer's row of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRow {
    pub layer: String,
    pub y: f64,
    pub segments: Vec<Segment>,
    /// x where the bar ends (for the figures after it).
    pub end: f64,
    pub bytes: u64,
    pub tensors: usize,
    pub params: u64,
    pub bits_per_weight: f64,
    pub share_of_cap: f64,
    /// 1, 2, 3 for the three largest layers by bytes.
    pub rank: Option<usize>,
    /// A tooltip with every figure.
    pub title: String,
}

/// The per-layer bar chart, laid out in SVG user units.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    /// Left edge of the bars (the layer names end before it).
    pub bar_x: f64,
    /// Width of the longest bar (the largest layer).
    pub bar_width: f64,
    pub row_height: f64,
    pub bar_height: f64,
    pub rows: Vec<ChartRow>,
}

pub const CHART_WIDTH: f64 = 960.0;
const CHART_ROW: f64 = 26.0;
const CHART_BAR: f64 = 18.0;
/// Room after the longest bar for "2,466,941 B · 4.705 b/w · 15.42%".
const CHART_FIGURES: f64 = 250.0;
/// Approximate advance of a character at the chart's font size.
const CHART_CHAR: f64 = 7.6;

/// Lays out `layers` (already in natural order) as stacked horizontal
/// bars: one row per layer, bar length proportional to the layer's bytes,
/// the largest layer spanning the whole bar area.
pub fn layer_chart(layers: &[LayerBudget]) -> Chart {
    let longest = layers
        .iter()
        .map(|l| l.layer.chars().count())
        .max()
        .unwrap_or(0);
    let bar_x = (longest as f64 * CHART_CHAR + 40.0).clamp(90.0, 320.0);
    let bar_width = CHART_WIDTH - bar_x - CHART_FIGURES;
    let widest = layers.iter().map(|l| l.bytes).max().unwrap_or(0).max(1) as f64;
    let mut by_size: Vec<usize> = (0..layers.len()).collect();
    by_size.sort_by(|&a, &b| layers[b].bytes.cmp(&layers[a].bytes).then(a.cmp(&b)));
    let rows = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut x = bar_x;
            let segments = Part::ALL
                .iter()
                .map(|&part| {
                    let bytes = part.of(l);
                    let width = bar_width * bytes as f64 / widest;
                    let s = Segment {
                        part,
                        x,
                        width,
                        bytes,
                    };
                    x += width;
                    s
                })
                .filter(|s| s.bytes > 0)
                .collect();
            let rank = by_size
                .iter()
                .position(|&j| j == i)
                .filter(|&r| r < 3 && l.bytes > 0)
                .map(|r| r + 1);
            let title = format!(
                "{}: {} bytes ({} of the cap), {} tensors, {} parameters, {} bits/weight\n\
                 codes {} · scales {} · passthrough {} · table entries {}",
                l.layer,
                thousands(l.bytes),
                percent(l.share_of_cap),
                l.tensors,
                thousands(l.params),
                fixed3(l.bits_per_weight),
                thousands(l.code_bytes),
                thousands(l.scale_bytes),
                thousands(l.passthrough_bytes),
                thousands(l.entry_bytes),
            );
            ChartRow {
                layer: l.layer.clone(),
                y: i as f64 * CHART_ROW,
                segments,
                end: x,
                bytes: l.bytes,
                tensors: l.tensors,
                params: l.params,
                bits_per_weight: l.bits_per_weight,
                share_of_cap: l.share_of_cap,
                rank,
                title,
            }
        })
        .collect();
    Chart {
        width: CHART_WIDTH,
        height: (layers.len() as f64 * CHART_ROW).max(CHART_ROW),
        bar_x,
        bar_width,
        row_height: CHART_ROW,
        bar_height: CHART_BAR,
        rows,
    }
}

/// Bytes of each part over all layers (for the legend).
pub fn part_totals(layers: &[LayerBudget]) -> Vec<(Part, u64)> {
    Part::ALL
        .iter()
        .map(|&p| (p, layers.iter().map(|l| p.of(l)).sum()))
        .collect()
}

// ---------------------------------------------------------------------------
// The tensor table

/// One tensor's row: the figures of `pgq inspect`, plus its layer and the
/// order-0 entropy of its codes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRow {
    /// Position in the file's tensor table.
    pub index: usize,
    pub name: String,
    pub layer: String,
    pub shape: String,
    pub kind: &'static str,
    pub bits: Option<u8>,
    pub group_size: Option<u32>,
    pub params: u64,
    pub bytes: u64,
    pub bits_per_weight: f64,
    /// Bits per code (quantized tensors).
    pub entropy: Option<f64>,
    /// A low-rank correction (kind 4), described: its rank, its two
    /// factors and its share of the tensor's bytes.
    pub correction: Option<String>,
}

/// `rank 4: A int2 (full range, one scale), B int4 (full range, groups of
/// 64); 1,234 bytes, 3.10% of the tensor's`.
fn correction_text(data: &TensorData, bytes: u64, tensor_bytes: u64) -> Option<String> {
    let TensorData::Quantized {
        correction: Some(c),
        ..
    } = data
    else {
        return None;
    };
    let factor = |f: &pgq_format::Factor, row: usize| {
        let groups = if f.scales.len() == 1 {
            "one scale".to_owned()
        } else if f.group as usize == row {
            "a scale per row".to_owned()
        } else {
            format!("groups of {}", f.group)
        };
        format!("int{} ({} range, {groups})", f.bits, f.range.name())
    };
    let cols = c.b.codes.len() / (c.rank as usize).max(1);
    Some(format!(
        "rank {}: A {}, B {}; {} bytes, {} of the tensor's",
        c.rank,
        factor(&c.a, c.rank as usize),
        factor(&c.b, cols),
        thousands(bytes),
        percent(bytes as f64 / tensor_bytes.max(1) as f64)
    ))
}

/// The table's columns, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Col {
    Name,
    Shape,
    Kind,
    Bits,
    GroupSize,
    Params,
    Bytes,
    BitsPerWeight,
    Entropy,
}

impl Col {
    pub const ALL: [Col; 9] = [
        Col::Name,
        Col::Shape,
        Col::Kind,
        Col::Bits,
        Col::GroupSize,
        Col::Params,
        Col::Bytes,
        Col::BitsPerWeight,
        Col::Entropy,
    ];

    /// The `data-key` of its cells.
    pub fn key(self) -> &'static str {
        match self {
            Col::Name => "name",
            Col::Shape => "shape",
            Col::Kind => "kind",
            Col::Bits => "bits",
            Col::GroupSize => "group_size",
            Col::Params => "params",
            Col::Bytes => "bytes",
            Col::BitsPerWeight => "bits_per_weight",
            Col::Entropy => "entropy",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Col::Name => "tensor",
            Col::Shape => "shape",
            Col::Kind => "kind",
            Col::Bits => "bits",
            Col::GroupSize => "group",
            Col::Params => "params",
            Col::Bytes => "bytes",
            Col::BitsPerWeight => "bits/w",
            Col::Entropy => "entropy",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Col::Name => "tensor name",
            Col::Shape => "shape (rows x columns ...)",
            Col::Kind => "quantized codes, or a passthrough dtype",
            Col::Bits => "code bit width",
            Col::GroupSize => "columns per scale group; 0 = one scale per row",
            Col::Params => "parameters",
            Col::Bytes => {
                "bytes attributed to the tensor: table entry + its share of compressed sections"
            }
            Col::BitsPerWeight => "8 x bytes / parameters",
            Col::Entropy => "order-0 entropy of the codes, bits per code",
        }
    }

    /// Right-aligned numbers.
    pub fn numeric(self) -> bool {
        !matches!(self, Col::Name | Col::Shape | Col::Kind)
    }

    /// Numbers sort largest first on the first click, text A to Z.
    pub fn default_descending(self) -> bool {
        self.numeric()
    }
}

impl TensorRow {
    /// The cell's text: integers without separators for params and bytes,
    /// the integer or `-` for bits and group size, three decimals for bits
    /// per weight and entropy.
    pub fn cell(&self, col: Col) -> String {
        match col {
            Col::Name => self.name.clone(),
            Col::Shape => self.shape.clone(),
            Col::Kind => self.kind.to_string(),
            Col::Bits => self.bits.map_or("-".into(), |b| b.to_string()),
            Col::GroupSize => self.group_size.map_or("-".into(), |g| g.to_string()),
            Col::Params => self.params.to_string(),
            Col::Bytes => self.bytes.to_string(),
            Col::BitsPerWeight => fixed3(self.bits_per_weight),
            Col::Entropy => self.entropy.map_or("-".into(), fixed3),
        }
    }

    /// Orders two rows by a column (ascending); ties by file order.
    pub fn compare(&self, other: &TensorRow, col: Col) -> Ordering {
        let by = match col {
            Col::Name => natural_cmp(&self.name, &other.name),
            Col::Shape => natural_cmp(&self.shape, &other.shape),
            Col::Kind => self.kind.cmp(other.kind),
            Col::Bits => self.bits.cmp(&other.bits),
            Col::GroupSize => self.group_size.cmp(&other.group_size),
            Col::Params => self.params.cmp(&other.params),
            Col::Bytes => self.bytes.cmp(&other.bytes),
            Col::BitsPerWeight => self.bits_per_weight.total_cmp(&other.bits_per_weight),
            Col::Entropy => match (self.entropy, other.entropy) {
                (Some(a), Some(b)) => a.total_cmp(&b),
                (a, b) => a.is_some().cmp(&b.is_some()),
            },
        };
        by.then(self.index.cmp(&other.index))
    }

    /// Whether every whitespace-separated term of `filter` occurs (case
    /// insensitively) in the name or the kind; a term `layer:L` matches the
    /// tensors of layer `L` exactly (what a click on a layer sets).
    pub fn matches(&self, filter: &str) -> bool {
        let haystack = format!("{} {}", self.name, self.kind).to_lowercase();
        filter
            .split_whitespace()
            .all(|term| match term.strip_prefix("layer:") {
                Some(layer) => self.layer.eq_ignore_ascii_case(layer),
                None => haystack.contains(&term.to_lowercase()),
            })
    }
}

/// The filter that lists the tensors of one layer.
pub fn layer_filter(layer: &str) -> String {
    format!("layer:{layer}")
}

/// A table sort: a column and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub col: Col,
    pub descending: bool,
}

impl Sort {
    /// The sort after a click on `col`'s header: the column's natural first
    /// direction, then the other, then back to file order.
    pub fn next(current: Option<Sort>, col: Col) -> Option<Sort> {
        match current {
            Some(s) if s.col == col && s.descending == col.default_descending() => Some(Sort {
                col,
                descending: !s.descending,
            }),
            Some(s) if s.col == col => None,
            _ => Some(Sort {
                col,
                descending: col.default_descending(),
            }),
        }
    }

    /// `aria-sort` for the header of `col`.
    pub fn aria(current: Option<Sort>, col: Col) -> &'static str {
        match current {
            Some(s) if s.col == col && s.descending => "descending",
            Some(s) if s.col == col => "ascending",
            _ => "none",
        }
    }
}

/// Indices of the rows to show: those matching `filter`, in file order or
/// sorted.
pub fn visible_rows(rows: &[TensorRow], filter: &str, sort: Option<Sort>) -> Vec<usize> {
    let mut shown: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].matches(filter))
        .collect();
    if let Some(s) = sort {
        shown.sort_by(|&a, &b| {
            let o = rows[a].compare(&rows[b], s.col);
            if s.descending {
                // Reverse the column, keep file order among ties.
                o.reverse().then(rows[a].index.cmp(&rows[b].index))
            } else {
                o
            }
        });
    }
    shown
}

// ---------------------------------------------------------------------------
// A tensor's detail: code histogram, scale statistics

/// Summary statistics of a set of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub zeros: usize,
}

impl Stats {
    pub fn of(values: impl Iterator<Item = f64>) -> Option<Stats> {
        let mut v: Vec<f64> = values.collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
        Some(Stats {
            count: n,
            min: v[0],
            max: v[n - 1],
            mean,
            median,
            std: var.sqrt(),
            zeros: v.iter().filter(|&&x| x == 0.0).count(),
        })
    }
}

/// A histogram with equal-width bins over [lo, hi].
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u64>,
}

impl Bins {
    pub fn of(values: &[f64], bins: usize) -> Option<Bins> {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values.is_empty() || bins == 0 || !lo.is_finite() || !hi.is_finite() {
            return None;
        }
        let mut counts = vec![0u64; bins];
        let width = (hi - lo) / bins as f64;
        for &x in values {
            let i = if width > 0.0 {
                (((x - lo) / width) as usize).min(bins - 1)
            } else {
                0
            };
            counts[i] += 1;
        }
        Some(Bins { lo, hi, counts })
    }
}

/// The counts of every code of a quantized tensor's range.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeHist {
    pub bits: u8,
    /// `(code, count)` for every code from −max to +max.
    pub counts: Vec<(i32, u64)>,
    pub total: u64,
    /// Order-0 entropy, bits per code.
    pub entropy: f64,
    /// Share of codes that are 0.
    pub zero_share: f64,
    /// Share of codes at ±max (clipped weights land there).
    pub edge_share: f64,
}

impl CodeHist {
    /// The counts from −m to +m, where m is the largest magnitude that
    /// occurs (at least 1): the part of the range worth drawing.
    pub fn used_range(&self) -> &[(i32, u64)] {
        let m = self
            .counts
            .iter()
            .filter(|c| c.1 > 0)
            .map(|c| c.0.abs())
            .max()
            .unwrap_or(0)
            .max(1);
        let full = self.counts.last().map_or(0, |c| c.0);
        let m = m.min(full);
        let skip = (full - m) as usize;
        &self.counts[skip.min(self.counts.len())..self.counts.len() - skip.min(self.counts.len())]
    }
}

/// What the detail panel shows for one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDetail {
    pub row: TensorRow,
    pub codes: Option<CodeHist>,
    /// fp16 scales of a quantized tensor.
    pub scales: Option<Stats>,
    pub scale_bins: Option<Bins>,
    /// Values of a passthrough tensor.
    pub values: Option<Stats>,
    pub value_bins: Option<Bins>,
}

const DETAIL_BINS: usize = 40;

impl TensorDetail {
    pub fn new(row: &TensorRow, data: &TensorData) -> TensorDetail {
        let mut detail = TensorDetail {
            row: row.clone(),
            codes: None,
            scales: None,
            scale_bins: None,
            values: None,
            value_bins: None,
        };
        match data {
            TensorData::Quantized {
                bits,
                codes,
                scales,
                ..
            } => {
                let mut h = CodeHistogram::default();
                h.add(codes);
                let max = (1i32 << (bits.saturating_sub(1)).min(7)) - 1;
                let counts: Vec<(i32, u64)> = (-max..=max).map(|c| (c, h.count(c as i8))).collect();
                let total = h.total();
                let share = |n: u64| {
                    if total == 0 {
                        0.0
                    } else {
                        n as f64 / total as f64
                    }
                };
                detail.codes = Some(CodeHist {
                    bits: *bits,
                    total,
                    entropy: h.bits_per_code(),
                    zero_share: share(h.count(0)),
                    edge_share: share(h.count(max as i8) + h.count(-max as i8)),
                    counts,
                });
                let s: Vec<f64> = scales.iter().map(|x| f64::from(x.to_f32())).collect();
                detail.scales = Stats::of(s.iter().copied());
                detail.scale_bins = Bins::of(&s, DETAIL_BINS);
            }
            other => {
                let v: Vec<f64> = match other {
                    TensorData::F16(v) => v.iter().map(|x| f64::from(x.to_f32())).collect(),
                    TensorData::Bf16(v) => v.iter().map(|x| f64::from(x.to_f32())).collect(),
                    TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
                    TensorData::Quantized { .. } => Vec::new(),
                };
                detail.values = Stats::of(v.iter().copied());
                detail.value_bins = Bins::of(&v, DETAIL_BINS);
            }
        }
        detail
    }
}

// ---------------------------------------------------------------------------
// Verification

/// The report's checks, failures first, then warnings, unknowns, passes
/// (the order `pgq verify` prints them in), stable within each.
pub fn ordered_checks(report: &Report) -> Vec<&Check> {
    let mut checks: Vec<&Check> = report.checks.iter().collect();
    checks.sort_by_key(|c| std::cmp::Reverse(c.status));
    checks
}

/// The verdict line `pgq verify` prints under the subject, e.g.
/// "pgq verify: PASS (6 checks: 1 warn, 5 pass)".
pub fn verdict(report: &Report) -> String {
    report
        .to_text()
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The CSS class of a status.
pub fn status_class(status: Status) -> &'static str {
    match status {
        Status::Skip => "skip",
        Status::Pass => "pass",
        Status::Unknown => "unknown",
        Status::Warn => "warn",
        Status::Fail => "fail",
    }
}

/// A figure's value as `pgq verify` prints it: strings unquoted, null as
/// `unknown`.
pub fn figure_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "unknown".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Compare two artifacts

/// One layer's bytes in artifact A and B.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerDelta {
    pub layer: String,
    pub a: Option<u64>,
    pub b: Option<u64>,
    /// b − a (a missing layer counts as 0 bytes).
    pub delta: i64,
    /// delta / a, when a has the layer.
    pub relative: Option<f64>,
}

/// Every layer of either artifact, in natural order, with its bytes in
/// each and the difference.
pub fn compare_layers(a: &[LayerBudget], b: &[LayerBudget]) -> Vec<LayerDelta> {
    let mut names: Vec<&str> = a
        .iter()
        .chain(b)
        .map(|l| l.layer.as_str())
        .collect::<Vec<_>>();
    names.sort_by(|x, y| natural_cmp(x, y));
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let find = |v: &[LayerBudget]| v.iter().find(|l| l.layer == name).map(|l| l.bytes);
            let (x, y) = (find(a), find(b));
            let delta = y.unwrap_or(0) as i64 - x.unwrap_or(0) as i64;
            LayerDelta {
                layer: name.to_string(),
                a: x,
                b: y,
                delta,
                relative: x.filter(|&n| n > 0).map(|n| delta as f64 / n as f64),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgq_format::half::f16;
    use pgq_format::{write, Compression, Tensor, WriteOptions};
    use serde_json::Value;

    /// A record-like correction (spec vector lowrank_records_asym_rans):
    /// described on its row, counted in its bytes, decoded as the vector's
    /// expected values say.
    #[test]
    fn a_low_rank_correction_is_described_and_counted_in_its_tensor() {
        let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/vectors/positive/");
        let bytes = std::fs::read(format!("{vectors}lowrank_records_asym_rans.pgq")).unwrap();
        let a = Artifact::open("lqer.pgq", bytes).unwrap();
        let row = &a.rows[0];
        assert_eq!(row.kind, "lowrank");
        let text = row.correction.as_deref().unwrap();
        assert!(
            text.starts_with(
                "rank 4: A int2 (full range, one scale), B int4 (full range, groups of 64); "
            ),
            "{text}"
        );
        let s = &a.summary.tensors[0];
        assert!(s.correction_bytes > 0 && text.contains(&thousands(s.correction_bytes)));
        assert_eq!(
            s.bytes,
            s.entry_bytes + s.payload_bytes + s.scale_bytes + s.correction_bytes
        );
        assert!(a.rows[1].correction.is_none());
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{vectors}lowrank_records_asym_rans.json")).unwrap(),
        )
        .unwrap();
        let hex: String = a.archive.tensors[0]
            .dequantize()
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            expected["tensors"][&a.rows[0].name]["f32_le_hex"]
                .as_str()
                .unwrap()
        );
    }

    fn quantized(name: &str, shape: Vec<u64>, bits: u8, group_size: u32, seed: i32) -> Tensor {
        let (rows, cols) = (shape[0], shape[1..].iter().product::<u64>());
        let max = (1i32 << (bits - 1)) - 1;
        let codes: Vec<i8> = (0..rows * cols)
            .map(|i| {
                let x = (i as i32 * 7 + seed * 13) % (2 * max + 1) - max;
                // Concentrate mass near 0, as real codes do.
                (x / 2) as i8
            })
            .collect();
        let groups = if group_size == 0 {
            1
        } else {
            cols.div_ceil(group_size as u64)
        };
        let scales = (0..rows * groups)
            .map(|i| f16::from_f32(0.01 + 0.001 * i as f32))
            .collect();
        Tensor {
            name: name.into(),
            shape,
            data: TensorData::Quantized {
                bits,
                group_size,
                codes,
                scales,
                correction: None,
            },
        }
    }

    /// A small model: layers out of order, grouped and per-row scales,
    /// int4/int6/int8, f16 and f32 passthrough.
    fn tensors() -> Vec<Tensor> {
        vec![
            quantized("tok_emb.weight", vec![64, 32], 8, 0, 1),
            quantized("blocks.10.attn.c_q.weight", vec![32, 32], 6, 0, 2),
            quantized("blocks.2.attn.c_q.weight", vec![32, 32], 6, 16, 3),
            quantized("blocks.2.mlp.fc.weight", vec![128, 32], 4, 0, 4),
            Tensor {
                name: "blocks.2.attn_scale".into(),
                shape: vec![32],
                data: TensorData::F16((0..32).map(|i| f16::from_f32(i as f32 / 8.0)).collect()),
            },
            Tensor {
                name: "skip_weights".into(),
                shape: vec![4, 2],
                data: TensorData::F32(vec![0.5, -0.5, 1.0, 0.0, 2.0, 3.0, -1.0, 0.25]),
            },
        ]
    }

    fn artifact_bytes() -> Vec<u8> {
        let options = WriteOptions {
            compression: Compression::Zstd(3),
            ..WriteOptions::default()
        };
        write(&tensors(), &Default::default(), &options).unwrap()
    }

    fn open() -> Artifact {
        Artifact::open("small.pgq", artifact_bytes()).unwrap()
    }

    /// What `pgq inspect --json` prints: the Summary flattened, plus the
    /// layers (cli/src/cmd/inspect.rs serialises exactly these).
    fn inspect_json(bytes: &[u8]) -> Value {
        let archive = read(bytes, &ReadOptions::default()).unwrap();
        let summary = summarize(&archive.header);
        let mut doc = serde_json::to_value(&summary).unwrap();
        doc["layers"] = serde_json::to_value(layer_budgets(&summary, CAP)).unwrap();
        doc
    }

    #[test]
    fn table_cells_equal_inspect_json() {
        let bytes = artifact_bytes();
        let json = inspect_json(&bytes);
        let a = Artifact::open("small.pgq", bytes).unwrap();
        let tensors = json["tensors"].as_array().unwrap();
        assert_eq!(a.rows.len(), tensors.len());
        for (row, t) in a.rows.iter().zip(tensors) {
            assert_eq!(row.cell(Col::Name), t["name"].as_str().unwrap());
            assert_eq!(
                row.cell(Col::Params),
                t["params"].as_u64().unwrap().to_string()
            );
            assert_eq!(
                row.cell(Col::Bytes),
                t["bytes"].as_u64().unwrap().to_string()
            );
            assert_eq!(row.cell(Col::Kind), t["kind"].as_str().unwrap());
            let int_or_dash = |v: &Value| v.as_u64().map_or("-".to_string(), |n| n.to_string());
            assert_eq!(row.cell(Col::Bits), int_or_dash(&t["bits"]));
            assert_eq!(row.cell(Col::GroupSize), int_or_dash(&t["group_size"]));
            let bpw = t["bits_per_weight"].as_f64().unwrap();
            assert_eq!(row.cell(Col::BitsPerWeight), format!("{bpw:.3}"));
            let shape: Vec<String> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.to_string())
                .collect();
            assert_eq!(row.cell(Col::Shape), shape.join("x"));
        }
        assert_eq!(a.file_bytes(), json["file_bytes"].as_u64().unwrap());
        assert_eq!(a.file_bytes(), a.bytes.len() as u64);
        // Layers: the same budgets, same order.
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(a.layers.len(), layers.len());
        for (l, j) in a.layers.iter().zip(layers) {
            assert_eq!(l.layer, j["layer"].as_str().unwrap());
            assert_eq!(l.bytes, j["bytes"].as_u64().unwrap());
            assert_eq!(l.code_bytes, j["code_bytes"].as_u64().unwrap());
        }
        // Per-tensor bytes + header overhead = the file.
        let tensor_bytes: u64 = a.rows.iter().map(|r| r.bytes).sum();
        assert_eq!(tensor_bytes + a.summary.overhead_bytes, a.file_bytes());
    }

    #[test]
    fn layers_are_in_natural_order() {
        let a = open();
        let names: Vec<&str> = a.layers.iter().map(|l| l.layer.as_str()).collect();
        assert_eq!(names, ["blocks.2", "blocks.10", "skip_weights", "tok_emb"]);
        let chart = layer_chart(&a.layers);
        let chart_names: Vec<&str> = chart.rows.iter().map(|r| r.layer.as_str()).collect();
        assert_eq!(chart_names, names);
    }

    #[test]
    fn entropy_matches_the_quantizers_histogram() {
        let a = open();
        let t = &a.archive.tensors[1];
        let report = pgq_metrics::code_entropy(std::slice::from_ref(t));
        let e = a.rows[1].entropy.unwrap();
        assert!((e - report.all.bits_per_code).abs() < 1e-12);
        assert_eq!(a.rows[4].entropy, None, "f16 has no codes");
        assert_eq!(a.rows[4].cell(Col::Entropy), "-");
        assert_eq!(a.rows[4].cell(Col::Bits), "-");
        assert_eq!(a.rows[4].cell(Col::GroupSize), "-");
        assert_eq!(a.rows[2].cell(Col::GroupSize), "16");
        assert_eq!(a.rows[1].cell(Col::GroupSize), "0");
    }

    #[test]
    fn malformed_and_oversized_files_give_the_clis_message() {
        let mut bytes = artifact_bytes();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x55;
        let expected = read(&bytes, &ReadOptions::default()).unwrap_err();
        let message = Artifact::open("bad.pgq", bytes).unwrap_err();
        assert_eq!(
            message,
            format!("bad.pgq is not a valid .pgq file: {expected}")
        );
        assert!(message.contains(" at byte "), "{message}");

        let message = Artifact::open("empty.pgq", Vec::new()).unwrap_err();
        assert!(
            message.starts_with("empty.pgq is not a valid .pgq file: truncated: "),
            "{message}"
        );
        let message = Artifact::open("x.bin", b"not a pgq file at all".to_vec()).unwrap_err();
        assert!(message.contains("bad_magic"), "{message}");

        let max = max_file_bytes();
        assert_eq!(check_size("big.pgq", max), Ok(()));
        assert_eq!(
            check_size("big.pgq", max + 1),
            Err(format!(
                "big.pgq is {} bytes, over the limit of {max}",
                max + 1
            ))
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(15_674_966), "15,674,966");
        assert_eq!(signed_thousands(-54_963), "\u{2212}54,963");
        assert_eq!(signed_thousands(1234), "+1,234");
        assert_eq!(signed_thousands(0), "0");
        assert_eq!(percent(15_674_966.0 / 16e6), "97.97%");
        assert_eq!(fixed3(3.48912), "3.489");
        assert_eq!(signed_percent(0.128), "+12.80%");
        assert_eq!(signed_percent(-0.0289), "\u{2212}2.89%");
        assert_eq!(signed_percent(0.0), "0.00%");
        assert_eq!(megabytes(16_000_000), "16.00 MB");
        assert_eq!(shape_text(&[2048, 512]), "2048x512");
        assert_eq!(shape_text(&[]), "scalar");
        assert_eq!(sig4(0.012345), "0.01235");
        assert_eq!(sig4(123.456), "123.5");
        assert_eq!(sig4(0.0), "0");
        assert_eq!(sig4(1.5e-5), "1.500e-5");
        assert_eq!(parse_code_bytes(""), Some(0));
        assert_eq!(parse_code_bytes("47,642"), Some(47_642));
        assert_eq!(parse_code_bytes("47 642"), Some(47_642));
        assert_eq!(parse_code_bytes("12ab"), None);
        assert_eq!(parse_code_bytes("-5"), None);
        assert_eq!(file_name_of("/artifact.pgq?x=1"), "artifact.pgq");
        assert_eq!(file_name_of("http://h/a/b/demo.pgq#f"), "demo.pgq");
        assert_eq!(file_name_of("demo.pgq"), "demo.pgq");
    }

    #[test]
    fn gauge_counts_code_bytes_against_the_cap() {
        let g = Gauge::new(15_674_966, 0, CAP);
        assert_eq!(g.total, 15_674_966);
        assert_eq!(g.headroom, 325_034);
        assert_eq!(g.headroom_phrase(), "325,034 bytes under");
        assert_eq!(g.level(), "ok");
        assert!((g.cap_mark - 1.0).abs() < 1e-12);

        let g = Gauge::new(15_674_966, 325_034, CAP);
        assert_eq!((g.total, g.headroom, g.over()), (CAP, 0, false));
        assert_eq!(g.level(), "tight");

        let g = Gauge::new(15_988_983, 65_980, CAP);
        assert!(g.over());
        assert_eq!(g.headroom_phrase(), "54,963 bytes OVER");
        assert!(g.cap_mark < 1.0);
        assert!((g.artifact_width + g.code_width - 1.0).abs() < 1e-12);
    }

    #[test]
    fn verification_uses_the_verifiers_wording() {
        let a = open();
        let report = a.verify(&CodeBytes::default()).unwrap();
        let cap = report.checks.iter().find(|c| c.id == "cap").unwrap();
        assert_eq!(cap.status, Status::Warn);
        assert!(cap.detail.contains("no code files given"), "{}", cap.detail);
        assert_eq!(report.subject, "small.pgq");

        let code = CodeBytes {
            files: vec![("train_gpt.py".into(), 47_642)],
        };
        assert_eq!(code.file_names().as_deref(), Some("train_gpt.py"));
        let report = a.verify(&code).unwrap();
        let cap = report.checks.iter().find(|c| c.id == "cap").unwrap();
        assert_eq!(cap.status, Status::Pass);
        let total = a.file_bytes() + 47_642;
        assert!(
            cap.detail.starts_with(&format!(
                "{} artifact bytes + 47642 code bytes in 1 file(s) = {total} bytes",
                a.file_bytes()
            )),
            "{}",
            cap.detail
        );
        assert!(
            verdict(&report).starts_with("pgq verify: PASS ("),
            "{}",
            verdict(&report)
        );

        let over = CodeBytes::typed(CAP);
        assert_eq!((over.bytes(), over.file_names()), (CAP, None));
        assert!(CodeBytes::typed(0).files().is_empty());
        let report = a.verify(&over).unwrap();
        let ordered = ordered_checks(&report);
        assert_eq!(ordered[0].id, "cap");
        assert_eq!(ordered[0].status, Status::Fail);
        assert!(verdict(&report).starts_with("pgq verify: FAIL"));
        // The structure and CRC checks are there, as in the CLI.
        assert!(report.checks.iter().any(|c| c.id == "structure"));
        assert!(report.checks.iter().any(|c| c.id == "crc.header"));
        assert!(report.checks.iter().any(|c| c.id == "digest"));
        assert_eq!(figure_text(&Value::Null), "unknown");
        assert_eq!(figure_text(&Value::from("x")), "x");
        assert_eq!(figure_text(&Value::from(3)), "3");
    }

    #[test]
    fn sort_and_filter() {
        let a = open();
        assert_eq!(visible_rows(&a.rows, "", None), vec![0, 1, 2, 3, 4, 5]);
        let by_name = visible_rows(
            &a.rows,
            "",
            Some(Sort {
                col: Col::Name,
                descending: false,
            }),
        );
        let names: Vec<&str> = by_name.iter().map(|&i| a.rows[i].name.as_str()).collect();
        assert_eq!(
            names,
            [
                "blocks.2.attn.c_q.weight",
                "blocks.2.attn_scale",
                "blocks.2.mlp.fc.weight",
                "blocks.10.attn.c_q.weight",
                "skip_weights",
                "tok_emb.weight"
            ]
        );
        let by_bytes = visible_rows(
            &a.rows,
            "",
            Some(Sort {
                col: Col::Bytes,
                descending: true,
            }),
        );
        for w in by_bytes.windows(2) {
            assert!(a.rows[w[0]].bytes >= a.rows[w[1]].bytes);
        }
        // Entropy: passthrough (none) last when descending.
        let by_entropy = visible_rows(
            &a.rows,
            "",
            Some(Sort {
                col: Col::Entropy,
                descending: true,
            }),
        );
        assert!(a.rows[*by_entropy.last().unwrap()].entropy.is_none());
        assert_eq!(visible_rows(&a.rows, "BLOCKS.2 attn", None), vec![2, 4]);
        assert_eq!(visible_rows(&a.rows, "f32", None), vec![5]);
        assert!(visible_rows(&a.rows, "nothing-matches", None).is_empty());
        assert_eq!(
            visible_rows(&a.rows, &layer_filter("blocks.2"), None),
            vec![2, 3, 4]
        );
        assert_eq!(
            visible_rows(&a.rows, &layer_filter("skip_weights"), None),
            vec![5]
        );
        assert!(visible_rows(&a.rows, &layer_filter("blocks.1"), None).is_empty());
        assert_eq!(visible_rows(&a.rows, "layer:blocks.2 mlp", None), vec![3]);

        // Header clicks: numbers largest first, then smallest, then file order.
        let s = Sort::next(None, Col::Bytes);
        assert_eq!(
            s,
            Some(Sort {
                col: Col::Bytes,
                descending: true
            })
        );
        assert_eq!(Sort::aria(s, Col::Bytes), "descending");
        assert_eq!(Sort::aria(s, Col::Name), "none");
        let s = Sort::next(s, Col::Bytes);
        assert_eq!(Sort::aria(s, Col::Bytes), "ascending");
        assert_eq!(Sort::next(s, Col::Bytes), None);
        let s = Sort::next(None, Col::Name);
        assert_eq!(Sort::aria(s, Col::Name), "ascending");
    }

    #[test]
    fn detail_histograms_and_scale_statistics() {
        let a = open();
        let d = a.detail(2).unwrap();
        let codes = d.codes.as_ref().unwrap();
        assert_eq!(codes.bits, 6);
        assert_eq!(codes.counts.first().unwrap().0, -31);
        assert_eq!(codes.counts.last().unwrap().0, 31);
        assert_eq!(codes.total, 32 * 32);
        assert_eq!(codes.counts.iter().map(|c| c.1).sum::<u64>(), codes.total);
        assert!((codes.entropy - a.rows[2].entropy.unwrap()).abs() < 1e-12);
        let scales = d.scales.as_ref().unwrap();
        assert_eq!(scales.count, 32 * 2, "grouped by 16: two scales per row");
        assert!(scales.min > 0.0 && scales.max > scales.min);
        assert_eq!(
            d.scale_bins.as_ref().unwrap().counts.iter().sum::<u64>(),
            64
        );
        assert!(d.values.is_none());

        let d = a.detail(5).unwrap();
        let v = d.values.unwrap();
        assert_eq!((v.count, v.min, v.max, v.zeros), (8, -1.0, 3.0, 1));
        assert!((v.mean - 5.25 / 8.0).abs() < 1e-12);
        assert!((v.median - 0.375).abs() < 1e-12);
        assert!(d.codes.is_none());
        assert!(a.detail(99).is_none());

        // int8: 255 codes; the codes used span a narrower range.
        let d = a.detail(0).unwrap();
        let h = d.codes.unwrap();
        assert_eq!(h.counts.len(), 255);
        let used = h.used_range();
        let m = used.last().unwrap().0;
        assert_eq!(used.first().unwrap().0, -m);
        assert!(m < 127 && m > 0, "{m}");
        assert_eq!(used.iter().map(|c| c.1).sum::<u64>(), h.total);
        let hist = |codes: Vec<(i32, u64)>| CodeHist {
            bits: 2,
            total: codes.iter().map(|c| c.1).sum(),
            counts: codes,
            entropy: 0.0,
            zero_share: 0.0,
            edge_share: 0.0,
        };
        let zeros = hist(vec![(-1, 0), (0, 5), (1, 0)]);
        assert_eq!(zeros.used_range().len(), 3, "at least ±1");
        let edges = hist(vec![(-1, 1), (0, 5), (1, 0)]);
        assert_eq!(edges.used_range().len(), 3);
    }

    #[test]
    fn chart_bars_are_proportional_and_the_largest_ranked() {
        let a = open();
        let chart = layer_chart(&a.layers);
        let widest = a.layers.iter().map(|l| l.bytes).max().unwrap();
        for (row, l) in chart.rows.iter().zip(&a.layers) {
            let width: f64 = row.segments.iter().map(|s| s.width).sum();
            let expected = chart.bar_width * l.bytes as f64 / widest as f64;
            assert!((width - expected).abs() < 1e-9);
            assert!((row.end - chart.bar_x - width).abs() < 1e-9);
            assert_eq!(row.segments.iter().map(|s| s.bytes).sum::<u64>(), l.bytes);
        }
        let ranked: Vec<(usize, &str)> = chart
            .rows
            .iter()
            .filter_map(|r| r.rank.map(|k| (k, r.layer.as_str())))
            .collect();
        assert_eq!(ranked.len(), 3);
        let first = chart.rows.iter().find(|r| r.rank == Some(1)).unwrap();
        assert_eq!(first.bytes, widest);
        assert!(chart.bar_x + chart.bar_width < chart.width);
        let totals = part_totals(&a.layers);
        let sum: u64 = totals.iter().map(|t| t.1).sum();
        assert_eq!(sum + a.summary.overhead_bytes, a.file_bytes());
    }

    #[test]
    fn compare_lists_every_layer_with_its_delta() {
        let a = open();
        let mut fewer = tensors();
        fewer.retain(|t| !t.name.starts_with("blocks.10"));
        fewer.push(quantized("blocks.11.x", vec![8, 8], 4, 0, 5));
        let bytes = write(&fewer, &Default::default(), &WriteOptions::default()).unwrap();
        let b = Artifact::open("b.pgq", bytes).unwrap();
        let d = compare_layers(&a.layers, &b.layers);
        let names: Vec<&str> = d.iter().map(|x| x.layer.as_str()).collect();
        assert_eq!(
            names,
            [
                "blocks.2",
                "blocks.10",
                "blocks.11",
                "skip_weights",
                "tok_emb"
            ]
        );
        let gone = &d[1];
        assert!(gone.a.is_some() && gone.b.is_none());
        assert_eq!(gone.delta, -(gone.a.unwrap() as i64));
        assert_eq!(gone.relative, Some(-1.0));
        let new = &d[2];
        assert_eq!((new.a, new.relative), (None, None));
        assert_eq!(new.delta, new.b.unwrap() as i64);
        let total: i64 = d.iter().map(|x| x.delta).sum();
        let layer_total = |v: &[LayerBudget]| v.iter().map(|l| l.bytes).sum::<u64>() as i64;
        assert_eq!(total, layer_total(&b.layers) - layer_total(&a.layers));
    }
}
