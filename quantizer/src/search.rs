//! How the scale of each row or group is chosen: SDClip, absmax, or a search
//! over `|w|` percentiles scored by plain or Hessian-weighted error.
//!
//! The search ("GPTQ-lite", seeds 000 and 002; Hessian-weighted in seed 001)
//! tries each candidate quantile `p` of a row's (group's) `|w|` as its clip,
//! rounds the scale to fp16 exactly as every other method does
//! ([`crate::scale::fp16_scale`]), quantizes the row with it and scores the
//! result:
//!
//! - `mse`: `sum_j (w_j - q_j s)^2`;
//! - `hessian`: `sum_j H_jj (w_j - q_j s)^2`, the diagonal part of the
//!   output-space error `(w - q s) H (w - q s)^T`: columns whose inputs are
//!   large matter more.
//!
//! With scope `row` every row (group) keeps its own best candidate; with
//! scope `tensor` one candidate, the best summed over the whole tensor, is
//! used everywhere (the original GPTQ-lite). Ties go to the earlier
//! candidate. The quantile is the linear interpolation of the sorted `|w|`
//! (NumPy's and torch's default): `t = p (n - 1)`,
//! `a[floor t] + (a[floor t + 1] - a[floor t]) frac(t)`, in f64; `p = 1` is
//! `max |w|`.

use half::f16;
use serde::Serialize;

use crate::error::ConfigError;
use crate::scale::{clip_value, fp16_scale, quantize_value, Clip};

/// At most this many candidates: the choice of each scale is kept as a byte.
pub const MAX_CANDIDATES: usize = 64;

/// What the clip-search candidates are scored by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// `sum (W - Q)^2`.
    Mse,
    /// `sum_ij H_jj (W - Q)_ij^2` (needs the tensor's Hessian).
    Hessian,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::Mse => "mse",
            Objective::Hessian => "hessian",
        }
    }
}

/// Where the search chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Each row (or group) takes its own best candidate (seed 001).
    #[default]
    Row,
    /// One candidate for the whole tensor, the best in total (PR #379).
    Tensor,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Row => "row",
            Scope::Tensor => "tensor",
        }
    }
}

/// How the clip value of each row (or group) is chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum ClipChoice {
    /// `c = k * std(row)`.
    #[serde(rename = "sdclip")]
    SdClip { k: f32 },
    /// `c = max |row|`.
    Absmax,
    /// Candidate `p` clips each row (group) at the p-quantile of its `|w|`
    /// (`1.0` = absmax); see the module documentation.
    Percentiles {
        list: Vec<f32>,
        objective: Objective,
        scope: Scope,
    },
}

impl From<Clip> for ClipChoice {
    fn from(clip: Clip) -> Self {
        match clip {
            Clip::SdClip { k } => ClipChoice::SdClip { k },
            Clip::Absmax => ClipChoice::Absmax,
        }
    }
}

impl ClipChoice {
    /// A short label: `sdclip k=12.85`, `absmax`, `pct[0.999,1]/mse` or
    /// `pct[0.999,1]/mse/tensor`.
    pub fn describe(&self) -> String {
        match self {
            ClipChoice::SdClip { k } => Clip::SdClip { k: *k }.describe(),
            ClipChoice::Absmax => Clip::Absmax.describe(),
            ClipChoice::Percentiles {
                list,
                objective,
                scope,
            } => {
                let list: Vec<String> = list.iter().map(|p| p.to_string()).collect();
                let mut label = format!("pct[{}]/{}", list.join(","), objective.name());
                if *scope == Scope::Tensor {
                    label.push_str("/tensor");
                }
                label
            }
        }
    }

    /// The fixed clip rule, for SDClip and absmax.
    pub fn as_clip(&self) -> Option<Clip> {
        match self {
            ClipChoice::SdClip { k } => Some(Clip::SdClip { k: *k }),
            ClipChoice::Absmax => Some(Clip::Absmax),
            ClipChoice::Percentiles { .. } => None,
        }
    }

    /// Whether choosing scales needs the Hessian's diagonal.
    pub fn needs_hessian(&self) -> bool {
        matches!(
            self,
            ClipChoice::Percentiles {
                objective: Objective::Hessian,
                ..
            }
        )
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            ClipChoice::SdClip { k } => Clip::SdClip { k: *k }.validate(),
            ClipChoice::Absmax => Ok(()),
            ClipChoice::Percentiles { list, .. } => {
                if list.is_empty() || list.len() > MAX_CANDIDATES {
                    return Err(ConfigError::CandidateCount(list.len()));
                }
                match list.iter().find(|&&p| !(p > 0.0 && p <= 1.0)) {
                    Some(&p) => Err(ConfigError::Percentile(p)),
                    None => Ok(()),
                }
            }
        }
    }
}

/// The scales of a matrix, `scales[row * groups + g]`, and for a search the
/// index of the candidate each one uses (empty otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenScales {
    pub scales: Vec<f16>,
    pub choices: Vec<u8>,
}

impl ChosenScales {
    /// How many scales use each candidate (empty when no search ran).
    pub fn histogram(&self, candidates: usize) -> Vec<u64> {
        let mut counts = vec![
            0u64;
            if self.choices.is_empty() {
                0
            } else {
                candidates
            }
        ];
        for &c in &self.choices {
            if let Some(slot) = counts.get_mut(usize::from(c)) {
                *slot += 1;
            }
        }
        counts
    }
}

/// Why scales could not be chosen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScaleError {
    /// The clip of this row and group gives a scale beyond fp16.
    Overflow {
        row: usize,
        group: usize,
        scale: f32,
    },
    /// A Hessian-weighted search was asked for without column weights.
    NeedsHessian,
}

/// Chooses the scale of every (row, group) of the finite `rows x cols`
/// row-major `values`, groups of `group_width` columns (the last may be
/// partial). `column_weights` (the Hessian's diagonal, by column) is
/// required by the Hessian objective and ignored otherwise. `choice` must
/// be valid ([`ClipChoice::validate`]).
pub(crate) fn choose_scales(
    values: &[f32],
    cols: usize,
    group_width: usize,
    qmax: i8,
    choice: &ClipChoice,
    column_weights: Option<&[f64]>,
) -> Result<ChosenScales, ScaleError> {
    let width = group_width.max(1);
    let scale_of = |clip: f32, row: usize, group: usize| {
        fp16_scale(clip, qmax).ok_or(ScaleError::Overflow {
            row,
            group,
            scale: clip / f32::from(qmax),
        })
    };
    let (list, objective, scope) = match choice {
        ClipChoice::Percentiles {
            list,
            objective,
            scope,
        } => (list, *objective, *scope),
        fixed => {
            let clip = fixed.as_clip().unwrap_or(Clip::Absmax);
            let mut scales = Vec::new();
            for (row, row_values) in values.chunks_exact(cols.max(1)).enumerate() {
                for (group, chunk) in row_values.chunks(width).enumerate() {
                    scales.push(scale_of(clip_value(chunk, clip), row, group)?);
                }
            }
            return Ok(ChosenScales {
                scales,
                choices: Vec::new(),
            });
        }
    };
    let weights = match objective {
        Objective::Mse => None,
        Objective::Hessian => Some(column_weights.ok_or(ScaleError::NeedsHessian)?),
    };

    let candidates = list.len();
    // Per (row, group): each candidate's scale, then its score.
    let mut scales_by_candidate: Vec<f16> = Vec::new();
    let mut scores: Vec<f64> = Vec::new();
    let mut sorted = Vec::with_capacity(width);
    let mut clips = vec![0.0f32; candidates];
    for (row, row_values) in values.chunks_exact(cols.max(1)).enumerate() {
        for (group, chunk) in row_values.chunks(width).enumerate() {
            percentile_clips(chunk, list, &mut sorted, &mut clips);
            let first_col = group * width;
            for &clip in &clips {
                let scale = scale_of(clip, row, group)?;
                let step = scale.to_f32();
                let score = match weights {
                    None => squared_error(chunk, step, qmax, |_| 1.0),
                    Some(w) => squared_error(chunk, step, qmax, |j| w[first_col + j]),
                };
                scales_by_candidate.push(scale);
                scores.push(score);
            }
        }
    }

    let units = scores.len() / candidates;
    let best = |scores: &[f64]| {
        // Strictly smaller wins: ties keep the earlier candidate.
        let mut best = 0;
        for (c, &s) in scores.iter().enumerate() {
            if s < scores[best] {
                best = c;
            }
        }
        best
    };
    let choices: Vec<u8> = match scope {
        Scope::Row => scores
            .chunks_exact(candidates)
            .map(|s| best(s) as u8)
            .collect(),
        Scope::Tensor => {
            let mut totals = vec![0.0f64; candidates];
            for unit in scores.chunks_exact(candidates) {
                for (t, &s) in totals.iter_mut().zip(unit) {
                    *t += s;
                }
            }
            vec![best(&totals) as u8; units]
        }
    };
    let scales = choices
        .iter()
        .enumerate()
        .map(|(unit, &c)| scales_by_candidate[unit * candidates + usize::from(c)])
        .collect();
    Ok(ChosenScales { scales, choices })
}

/// The clip of each candidate quantile of `|values|`, into `clips`. Only
/// the order statistics the candidates need are sorted: a selection puts
/// the lowest needed rank in place, then the part above it is sorted.
fn percentile_clips(values: &[f32], list: &[f32], sorted: &mut Vec<f32>, clips: &mut [f32]) {
    let n = values.len();
    if n == 0 {
        clips.fill(0.0);
        return;
    }
    sorted.clear();
    sorted.extend(values.iter().map(|x| x.abs()));
    let rank = |p: f32| f64::from(p) * (n - 1) as f64;
    let lowest = list
        .iter()
        .map(|&p| rank(p).floor() as usize)
        .min()
        .unwrap_or(n - 1)
        .min(n - 1);
    sorted.select_nth_unstable_by(lowest, f32::total_cmp);
    sorted[lowest..].sort_unstable_by(f32::total_cmp);
    for (clip, &p) in clips.iter_mut().zip(list) {
        *clip = if p >= 1.0 {
            sorted[n - 1]
        } else {
            let t = rank(p);
            let lo = (t.floor() as usize).min(n - 1);
            let hi = (lo + 1).min(n - 1);
            let a = f64::from(sorted[lo]);
            let b = f64::from(sorted[hi]);
            (a + (b - a) * (t - lo as f64)) as f32
        };
    }
}

/// `sum_j weight(j) (x_j - q_j s)^2` in f64 for the codes RTN gives `values`
/// at scale `step`.
fn squared_error(values: &[f32], step: f32, qmax: i8, weight: impl Fn(usize) -> f64) -> f64 {
    let s = f64::from(step);
    values
        .iter()
        .enumerate()
        .map(|(j, &x)| {
            let e = f64::from(x) - f64::from(quantize_value(x, step, qmax)) * s;
            weight(j) * e * e
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(list: &[f32], objective: Objective, scope: Scope) -> ClipChoice {
        ClipChoice::Percentiles {
            list: list.to_vec(),
            objective,
            scope,
        }
    }

    fn clips_of(values: &[f32], list: &[f32]) -> Vec<f32> {
        let mut clips = vec![0.0; list.len()];
        percentile_clips(values, list, &mut Vec::new(), &mut clips);
        clips
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // |values| sorted: 0, 1, 2, 3, 4. np.quantile(a, 0.9) = 3.6.
        let values = [3.0, -1.0, 0.0, 4.0, -2.0];
        let clips = clips_of(&values, &[0.9, 0.5, 1.0, 0.25]);
        assert!((clips[0] - 3.6).abs() < 1e-6, "{clips:?}");
        assert_eq!(&clips[1..], &[2.0, 4.0, 1.0]);
        assert_eq!(clips_of(&[-7.0], &[0.5, 1.0]), vec![7.0, 7.0]);
        assert_eq!(clips_of(&[], &[0.5]), vec![0.0]);
    }

    #[test]
    fn partial_selection_equals_a_full_sort() {
        let values: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f32 - 500.0)
            .collect();
        let list = [0.999, 0.9995, 0.9, 0.5, 1.0];
        let mut sorted: Vec<f64> = values.iter().map(|x| f64::from(x.abs())).collect();
        sorted.sort_by(f64::total_cmp);
        let expected: Vec<f32> = list
            .iter()
            .map(|&p| {
                let t = f64::from(p) * 999.0;
                let lo = t.floor() as usize;
                let hi = (lo + 1).min(999);
                (sorted[lo] + (sorted[hi] - sorted[lo]) * (t - lo as f64)) as f32
            })
            .collect();
        assert_eq!(clips_of(&values, &list), expected);
    }

    #[test]
    fn one_percentile_of_one_is_absmax() {
        let values = [0.1, -0.5, 0.25, 0.3, 0.05, -0.2];
        let searched = choose_scales(
            &values,
            3,
            3,
            31,
            &search(&[1.0], Objective::Mse, Scope::Row),
            None,
        )
        .unwrap();
        let absmax = choose_scales(&values, 3, 3, 31, &ClipChoice::Absmax, None).unwrap();
        assert_eq!(searched.scales, absmax.scales);
        assert_eq!(searched.choices, vec![0, 0]);
    }

    /// A row of small values with one 2x outlier: clipping the outlier wins
    /// under MSE (a finer step for the other 199); a Hessian that weighs the
    /// outlier's column heavily makes absmax win instead.
    #[test]
    fn the_objective_decides_between_clipping_and_absmax() {
        let mut row: Vec<f32> = (0..200).map(|i| ((i as f32) * 0.37).sin() * 0.01).collect();
        row[17] = 0.02;
        let list = [0.99, 1.0];
        let mse = choose_scales(
            &row,
            200,
            200,
            7,
            &search(&list, Objective::Mse, Scope::Row),
            None,
        )
        .unwrap();
        assert_eq!(mse.choices, vec![0]);
        let mut weights = vec![1.0; 200];
        weights[17] = 1e6;
        let hessian = choose_scales(
            &row,
            200,
            200,
            7,
            &search(&list, Objective::Hessian, Scope::Row),
            Some(&weights),
        )
        .unwrap();
        assert_eq!(hessian.choices, vec![1]);
        assert_eq!(
            choose_scales(
                &row,
                200,
                200,
                7,
                &search(&list, Objective::Hessian, Scope::Row),
                None
            ),
            Err(ScaleError::NeedsHessian)
        );
    }

    #[test]
    fn each_row_keeps_its_best_candidate_and_tensor_scope_one_for_all() {
        // Row 0's outlier is 40x the rest: clipping it costs more than
        // absmax's coarse step. Row 1 is uniform: clipping the top 5% buys a
        // finer step for the rest.
        let mut values: Vec<f32> = (0..100).map(|i| ((i as f32) * 0.61).cos() * 0.01).collect();
        values[3] = 0.4;
        values.extend((0..100).map(|i| (i as f32 - 49.5) / 49.5));
        let list = [0.95, 1.0];
        let rows = choose_scales(
            &values,
            100,
            100,
            7,
            &search(&list, Objective::Mse, Scope::Row),
            None,
        )
        .unwrap();
        assert_eq!(rows.choices, vec![1, 0]);
        assert_eq!(rows.histogram(2), vec![1, 1]);
        let tensor = choose_scales(
            &values,
            100,
            100,
            7,
            &search(&list, Objective::Mse, Scope::Tensor),
            None,
        )
        .unwrap();
        assert!(tensor.choices[0] == tensor.choices[1]);
        // Per-row choice can only lower the total error.
        let total = |chosen: &ChosenScales| -> f64 {
            values
                .chunks(100)
                .zip(&chosen.scales)
                .map(|(r, s)| squared_error(r, s.to_f32(), 7, |_| 1.0))
                .sum()
        };
        assert!(total(&rows) <= total(&tensor));
    }

    #[test]
    fn ties_keep_the_earlier_candidate() {
        // Every candidate gives the same clip: all scores tie.
        let values = [1.0f32; 8];
        let chosen = choose_scales(
            &values,
            8,
            8,
            31,
            &search(&[0.5, 0.9, 1.0], Objective::Mse, Scope::Row),
            None,
        )
        .unwrap();
        assert_eq!(chosen.choices, vec![0]);
    }

    #[test]
    fn groups_choose_separately_and_see_their_own_columns() {
        let values = [0.01f32, 0.02, 5.0, -0.01, 1.0, 0.9, -0.95, 0.8];
        let chosen = choose_scales(
            &values,
            8,
            4,
            7,
            &search(&[0.5, 1.0], Objective::Mse, Scope::Row),
            None,
        )
        .unwrap();
        assert_eq!(chosen.scales.len(), 2);
        assert_eq!(chosen.choices.len(), 2);
    }

    #[test]
    fn overflow_names_the_row_and_group() {
        let values = [1.0f32, 1.0, 1.0, 1.0e9];
        let err = choose_scales(
            &values,
            2,
            1,
            31,
            &search(&[1.0], Objective::Mse, Scope::Row),
            None,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ScaleError::Overflow {
                row: 1,
                group: 1,
                ..
            }
        ));
    }

    #[test]
    fn validation_rejects_bad_lists() {
        let bad = |list: Vec<f32>| {
            ClipChoice::Percentiles {
                list,
                objective: Objective::Mse,
                scope: Scope::Row,
            }
            .validate()
        };
        assert_eq!(bad(vec![]), Err(ConfigError::CandidateCount(0)));
        assert_eq!(bad(vec![0.0]), Err(ConfigError::Percentile(0.0)));
        assert_eq!(bad(vec![1.5]), Err(ConfigError::Percentile(1.5)));
        assert!(bad(vec![f32::NAN]).is_err());
        assert_eq!(bad(vec![0.5; 65]), Err(ConfigError::CandidateCount(65)));
        assert!(bad(vec![0.999, 1.0]).is_ok());
    }

    #[test]
    fn labels() {
        assert_eq!(
            search(&[0.999, 1.0], Objective::Hessian, Scope::Row).describe(),
            "pct[0.999,1]/hessian"
        );
        assert_eq!(
            search(&[1.0], Objective::Mse, Scope::Tensor).describe(),
            "pct[1]/mse/tensor"
        );
        assert_eq!(ClipChoice::from(Clip::Absmax).describe(), "absmax");
    }
}
