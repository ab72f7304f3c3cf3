//! The records' low-rank corrections (LQER, records from 2026-04-27 on)
//! mapped onto pgq's kind-4 tensors (spec/FORMAT.md §4.8, §6.8).
//!
//! A meta ending in `+lqer_asym` stores, beside the codes, `.lqA_a` (int8
//! codes of `A`, `rows x r`, int2 in `-2..=1`), `.lqAs_a` (one 0-d fp16
//! scale for all of `A`), `.lqB_a` (int8 codes of `B`, `r x cols`, int4
//! in `-8..=7`) and `.lqBs_a` (fp16 scales, one per `g` consecutive
//! elements of the flattened `B`: the record's `dequantize_mixed` takes
//! `g = numel(B) / numel(sB)`). `+lqer` stores `.lqA`, `.lqAs`, `.lqB`,
//! `.lqBs`: symmetric codes with one fp16 scale per row of each factor.
//! The loaders add `(qA * sA) @ (qB * sB)` to the dequantized codes.
//!
//! Both map onto pgq's factors without changing a code or a scale: the
//! asymmetric form as full-range factors (one group for `A`, groups of `g`
//! for `B`), the symmetric one as symmetric factors with groups of one row.
//! The widths are the fewest that hold the codes (the records' int2/int4,
//! or fewer when a factor happens not to use its whole range; the weights
//! do not depend on the width). What pgq decodes is `W = Q*s + A*B` in the
//! order of §6.8, an FMA chain over the rank: the order of torch's CPU
//! product in the record's loader, so the weights equal the record's bit
//! for bit (tests/record_artifacts.rs checks both forms).

use pgq_format::pack::{code_max, Bits};
use pgq_format::{CodeRange, Factor, LowRank};

use super::error::ImportError;

/// One stored factor: its codes' shape and bytes, and its scales already
/// checked to be exact fp16 values.
pub(super) struct StoredFactor<'a> {
    pub key: String,
    pub shape: Vec<u64>,
    pub codes: &'a [u8],
    pub scales: Vec<pgq_format::half::f16>,
    pub scales_shape: Vec<u64>,
}

/// The suffixes of the four stored tensors of a correction: `A`'s codes,
/// `A`'s scales, `B`'s codes, `B`'s scales.
pub(super) fn suffixes(asym: bool) -> [&'static str; 4] {
    if asym {
        [".lqA_a", ".lqAs_a", ".lqB_a", ".lqBs_a"]
    } else {
        [".lqA", ".lqAs", ".lqB", ".lqBs"]
    }
}

fn error(tensor: &str, detail: impl Into<String>) -> ImportError {
    ImportError::Tensor {
        tensor: tensor.to_owned(),
        detail: detail.into(),
    }
}

/// The correction of `name` (shape `shape`) from its stored factors.
pub(super) fn correction(
    name: &str,
    shape: &[u64],
    asym: bool,
    a: StoredFactor<'_>,
    b: StoredFactor<'_>,
) -> Result<LowRank, ImportError> {
    let [rows, cols] = shape else {
        return Err(error(
            name,
            format!(
                "a low-rank correction on a tensor of shape {shape:?}: the loaders' \
                 `W + A @ B` keeps the shape only for a matrix"
            ),
        ));
    };
    let (rows, cols) = (*rows, *cols);
    let rank = match (a.shape.as_slice(), b.shape.as_slice()) {
        ([ar, r], [br, bc]) if *ar == rows && r == br && *bc == cols => *r,
        _ => {
            return Err(error(
                name,
                format!(
                    "factors {} {:?} and {} {:?} do not multiply to its shape {shape:?}",
                    a.key, a.shape, b.key, b.shape
                ),
            ))
        }
    };
    let most = rows.min(cols).min(pgq_format::limits::MAX_LOW_RANK as u64);
    if rank == 0 || rank > most {
        return Err(error(
            name,
            format!("a correction of rank {rank}; pgq stores ranks 1 to {most} for this shape"),
        ));
    }
    let range = if asym {
        CodeRange::Full
    } else {
        CodeRange::Symmetric
    };
    let (a_group, b_group) = if asym {
        (
            group_of(name, &a, Scales::One)?,
            group_of(name, &b, Scales::Groups)?,
        )
    } else {
        (
            group_of(name, &a, Scales::PerRow(rank))?,
            group_of(name, &b, Scales::PerRow(cols))?,
        )
    };
    Ok(LowRank {
        rank: rank as u32,
        a: factor(name, a, range, a_group)?,
        b: factor(name, b, range, b_group)?,
    })
}

/// The loaders' layouts of a factor's scales.
#[derive(Debug, Clone, Copy)]
enum Scales {
    /// One 0-d scale for the whole factor (asymmetric `A`).
    One,
    /// One per group of the flattened factor (asymmetric `B`).
    Groups,
    /// One per row of this many codes (symmetric factors).
    PerRow(u64),
}

/// The codes per scale of a factor whose scales follow `layout`.
fn group_of(name: &str, f: &StoredFactor<'_>, layout: Scales) -> Result<u32, ImportError> {
    let n = f.codes.len() as u64;
    let scales = f.scales.len() as u64;
    let fits = match layout {
        Scales::One => f.scales_shape.is_empty(),
        Scales::Groups => f.scales_shape.len() == 1 && scales > 0 && n % scales == 0,
        Scales::PerRow(row) => f.scales_shape.len() == 1 && scales.checked_mul(row) == Some(n),
    };
    if !fits {
        let want = match layout {
            Scales::One => "one 0-d scale".to_owned(),
            Scales::Groups => {
                "a 1-d run of scales, one per group of the flattened factor".to_owned()
            }
            Scales::PerRow(row) => format!("one scale per row of {row}"),
        };
        return Err(error(
            name,
            format!(
                "{}: {scales} scales (shape {:?}) for {n} codes; the record's loader needs {want}",
                f.key, f.scales_shape
            ),
        ));
    }
    u32::try_from(n / scales.max(1))
        .map_err(|_| error(name, format!("{}: a group of more than 2^32 codes", f.key)))
}

fn factor(
    name: &str,
    f: StoredFactor<'_>,
    range: CodeRange,
    group: u32,
) -> Result<Factor, ImportError> {
    let codes: Vec<i8> = f.codes.iter().map(|&b| b as i8).collect();
    let bits = fewest_bits(&codes, range).ok_or_else(|| {
        error(
            name,
            format!(
                "{}: a code outside the {} range of 8 bits",
                f.key,
                range.name()
            ),
        )
    })?;
    Ok(Factor {
        bits,
        range,
        group,
        codes,
        scales: f.scales,
    })
}

/// The fewest bits (2 to 8) whose range holds every code.
fn fewest_bits(codes: &[i8], range: CodeRange) -> Option<u8> {
    let (lo, hi) = codes
        .iter()
        .fold((0i8, 0i8), |(lo, hi), &c| (lo.min(c), hi.max(c)));
    (2..=8).find(|&b| {
        let max = Bits::new(b).map_or(0, code_max);
        let min = match range {
            CodeRange::Symmetric => -max,
            CodeRange::Full => -max - 1,
        };
        lo >= min && hi <= max
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_bits_follow_the_range() {
        assert_eq!(fewest_bits(&[-2, 1], CodeRange::Full), Some(2));
        assert_eq!(fewest_bits(&[-2, 1], CodeRange::Symmetric), Some(3));
        assert_eq!(fewest_bits(&[-8, 7], CodeRange::Full), Some(4));
        assert_eq!(fewest_bits(&[-7, 7], CodeRange::Symmetric), Some(4));
        assert_eq!(fewest_bits(&[-128], CodeRange::Full), Some(8));
        assert_eq!(fewest_bits(&[-128], CodeRange::Symmetric), None);
        assert_eq!(fewest_bits(&[], CodeRange::Symmetric), Some(2));
    }
}
