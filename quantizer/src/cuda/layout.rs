//! The batch's layout on the device, computed on the host and unit-tested
//! here: one descriptor per matrix ([`MatDesc`], mirrored field by field
//! by `struct MatDesc` in kernels/common.cuh), offsets into one arena per
//! kind of data, and the sweep's task table (descriptor, first row).

use crate::scale::code_max;
use crate::search::{ClipChoice, Objective, Scope};

use super::error::CudaError;

/// An absent offset (`PGQ_NONE` in the kernels).
pub const NONE: u64 = u64::MAX;
/// Widest GPTQ block of the sweep kernel (`PGQ_MAX_BLOCK`).
pub const MAX_BLOCK: usize = 128;
/// Rows per sweep task (`PGQ_TILE_ROWS`).
pub const TILE_ROWS: usize = 32;
/// Threads of a sweep block (`PGQ_SWEEP_THREADS`).
pub const SWEEP_THREADS: u32 = 256;
/// Dynamic shared memory of the sweep: U's diagonal block and the errors.
pub const SWEEP_SHARED_BYTES: u32 = ((MAX_BLOCK + TILE_ROWS) * MAX_BLOCK * 4) as u32;
/// Longest group a clip search sorts in shared memory (32 KB of f32).
pub const MAX_SORT: usize = 8192;

/// One matrix of the batch, as the kernels read it. Every field is 8 bytes
/// (no padding), in the order of kernels/common.cuh.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MatDesc {
    pub id: u64,
    pub rows: u64,
    pub cols: u64,
    pub groups: u64,
    pub group_width: u64,
    pub qmax: u64,
    pub method: u64,
    pub clip_mode: u64,
    pub objective: u64,
    pub scope: u64,
    pub cands: u64,
    pub block_size: u64,
    pub w_off: u64,
    pub code_off: u64,
    pub scale_off: u64,
    pub h_off: u64,
    pub dead_off: u64,
    pub perm_off: u64,
    pub work_off: u64,
    pub f_off: u64,
    pub u_off: u64,
    pub pct_off: u64,
    pub score_off: u64,
    pub choice_off: u64,
    pub k: f64,
    pub damp_add: f64,
}

// SAFETY: plain old data of 8-byte fields, laid out as the C struct; all
// zero bits is a valid value.
unsafe impl cudarc::driver::DeviceRepr for MatDesc {}
unsafe impl cudarc::driver::ValidAsZeroBits for MatDesc {}

/// One tensor's codes to pack (`struct PackDesc` in kernels/pack.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PackDesc {
    pub code_off: u64,
    pub count: u64,
    pub bits: u64,
    pub out_off: u64,
}

// SAFETY: as MatDesc.
unsafe impl cudarc::driver::DeviceRepr for PackDesc {}
unsafe impl cudarc::driver::ValidAsZeroBits for PackDesc {}

/// GPTQ settings of a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GptqSpec {
    pub act_order: bool,
    pub damp: f64,
    pub block_size: usize,
}

/// What one matrix needs, before layout.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub rows: usize,
    pub cols: usize,
    pub bits: u8,
    /// 0 = one scale per row.
    pub group_size: u32,
    pub clip: ClipChoice,
    /// `None` = RTN.
    pub gptq: Option<GptqSpec>,
}

impl JobSpec {
    /// Columns per scale group.
    pub fn group_width(&self) -> usize {
        match self.group_size {
            0 => self.cols.max(1),
            g => g as usize,
        }
    }

    pub fn groups(&self) -> usize {
        self.cols.div_ceil(self.group_width()).max(1)
    }

    /// Whether the device needs this matrix's Hessian (GPTQ, or a
    /// Hessian-weighted search).
    pub fn needs_hessian(&self) -> bool {
        self.gptq.is_some() || self.clip.needs_hessian()
    }

    /// Why the CUDA backend leaves this matrix to the CPU, if it does. The
    /// CPU path also reports every invalid setting as its typed error.
    pub fn unsupported(&self) -> Option<String> {
        if self.rows == 0 || self.cols == 0 {
            return Some("empty matrix".into());
        }
        if code_max(self.bits).is_err() || self.clip.validate().is_err() {
            return Some("invalid settings (the CPU path reports them)".into());
        }
        if let Some(g) = self.gptq {
            if g.block_size == 0 || g.block_size > MAX_BLOCK {
                return Some(format!(
                    "GPTQ block size {} is outside 1..={MAX_BLOCK} (the CUDA sweep's widest block)",
                    g.block_size
                ));
            }
            if !(g.damp.is_finite() && g.damp >= 0.0) {
                return Some("invalid damping (the CPU path reports it)".into());
            }
        }
        if matches!(self.clip, ClipChoice::Percentiles { .. })
            && self.group_width().min(self.cols) > MAX_SORT
        {
            return Some(format!(
                "clip search over groups of {} values (the CUDA sort holds at most {MAX_SORT})",
                self.group_width().min(self.cols)
            ));
        }
        if u32::try_from(self.cols).is_err() {
            return Some("more than 2^32 columns".into());
        }
        None
    }
}

/// Elements of each arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaSizes {
    pub weights: u64,
    pub codes: u64,
    pub scales: u64,
    pub hessians: u64,
    pub dead: u64,
    pub perm: u64,
    pub work: u64,
    pub factors: u64,
    pub ufac: u64,
    pub percentiles: u64,
    pub scores: u64,
    pub choices: u64,
}

/// The whole batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// One per job, in job order (`id` = job index).
    pub descs: Vec<MatDesc>,
    pub sizes: ArenaSizes,
    /// Every job's candidate percentiles, at its `pct_off`.
    pub percentiles: Vec<f32>,
    /// The sweep's tasks: pairs (descriptor, first row), widest matrices
    /// first (they have the longest chains of dependent columns).
    pub tasks: Vec<u32>,
    /// A power of two at least every searched group's width (0 = no search).
    pub sort_len: u32,
    /// Largest GPTQ matrix width (for cuSOLVER's workspace).
    pub max_gptq_cols: usize,
}

struct Bump(u64);

impl Bump {
    fn take(&mut self, n: u64) -> Result<u64, CudaError> {
        let at = self.0;
        self.0 = self
            .0
            .checked_add(n)
            .ok_or(CudaError::TooLarge { what: "the batch" })?;
        Ok(at)
    }
}

fn mul(a: usize, b: usize) -> Result<u64, CudaError> {
    a.checked_mul(b)
        .map(|v| v as u64)
        .ok_or(CudaError::TooLarge { what: "a matrix" })
}

/// Lays out `jobs` (each supported: see [`JobSpec::unsupported`]).
pub fn plan_layout(jobs: &[JobSpec]) -> Result<Layout, CudaError> {
    let (mut weights, mut codes, mut scales, mut hessians) = (Bump(0), Bump(0), Bump(0), Bump(0));
    let (mut dead, mut perm, mut work, mut factors) = (Bump(0), Bump(0), Bump(0), Bump(0));
    let (mut ufac, mut pct, mut scores, mut choices) = (Bump(0), Bump(0), Bump(0), Bump(0));
    let mut percentiles = Vec::new();
    let mut descs = Vec::with_capacity(jobs.len());
    let mut sort_len = 0u32;
    let mut max_gptq_cols = 0;
    for (id, job) in jobs.iter().enumerate() {
        let qmax = code_max(job.bits).map_err(|_| CudaError::TooLarge { what: "bits" })?;
        let elements = mul(job.rows, job.cols)?;
        let units = mul(job.rows, job.groups())?;
        let square = mul(job.cols, job.cols)?;
        let mut d = MatDesc {
            id: id as u64,
            rows: job.rows as u64,
            cols: job.cols as u64,
            groups: job.groups() as u64,
            group_width: job.group_width() as u64,
            qmax: qmax as u64,
            w_off: weights.take(elements)?,
            code_off: codes.take(elements)?,
            scale_off: scales.take(units)?,
            h_off: NONE,
            dead_off: NONE,
            perm_off: NONE,
            work_off: NONE,
            f_off: NONE,
            u_off: NONE,
            pct_off: NONE,
            score_off: NONE,
            choice_off: NONE,
            ..MatDesc::default()
        };
        match &job.clip {
            ClipChoice::SdClip { k } => d.k = f64::from(*k),
            ClipChoice::Absmax => d.clip_mode = 1,
            ClipChoice::Percentiles {
                list,
                objective,
                scope,
            } => {
                d.clip_mode = 2;
                d.objective = u64::from(*objective == Objective::Hessian);
                d.scope = u64::from(*scope == Scope::Tensor);
                d.cands = list.len() as u64;
                d.pct_off = pct.take(list.len() as u64)?;
                percentiles.extend_from_slice(list);
                let cand_units = units
                    .checked_mul(d.cands)
                    .ok_or(CudaError::TooLarge { what: "a search" })?;
                d.score_off = scores.take(cand_units)?;
                d.choice_off = choices.take(units)?;
                let width = job.group_width().min(job.cols).max(1);
                sort_len = sort_len.max(width.next_power_of_two() as u32);
            }
        }
        if job.needs_hessian() {
            d.h_off = hessians.take(square)?;
        }
        if let Some(g) = job.gptq {
            d.method = 1;
            d.block_size = g.block_size as u64;
            d.dead_off = dead.take(job.cols as u64)?;
            d.perm_off = perm.take(job.cols as u64)?;
            d.work_off = work.take(elements)?;
            d.f_off = factors.take(
                square
                    .checked_mul(2)
                    .ok_or(CudaError::TooLarge { what: "a Hessian" })?,
            )?;
            d.u_off = ufac.take(square)?;
            max_gptq_cols = max_gptq_cols.max(job.cols);
        }
        descs.push(d);
    }
    let tasks = sweep_tasks(&descs)?;
    Ok(Layout {
        descs,
        sizes: ArenaSizes {
            weights: weights.0,
            codes: codes.0,
            scales: scales.0,
            hessians: hessians.0,
            dead: dead.0,
            perm: perm.0,
            work: work.0,
            factors: factors.0,
            ufac: ufac.0,
            percentiles: pct.0,
            scores: scores.0,
            choices: choices.0,
        },
        percentiles,
        tasks,
        sort_len,
        max_gptq_cols,
    })
}

/// The sweep's tasks for the GPTQ descriptors of `descs`: one per tile of
/// [`TILE_ROWS`] rows, as pairs (descriptor index, first row), widest
/// matrices first, then in descriptor and row order.
pub fn sweep_tasks(descs: &[MatDesc]) -> Result<Vec<u32>, CudaError> {
    let mut order: Vec<usize> = (0..descs.len()).filter(|&i| descs[i].method == 1).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(descs[i].cols));
    let mut tasks = Vec::new();
    for i in order {
        let index = u32::try_from(i).map_err(|_| CudaError::TooLarge { what: "the batch" })?;
        for r0 in (0..descs[i].rows).step_by(TILE_ROWS) {
            let r0 = u32::try_from(r0).map_err(|_| CudaError::TooLarge { what: "a matrix" })?;
            tasks.extend([index, r0]);
        }
    }
    Ok(tasks)
}

/// Act-order and dead columns of one GPTQ matrix, from its Hessian's
/// diagonal (as gptq.rs `prepare`): the dead-column mask (`H_jj == 0`), the
/// sweep order (decreasing `H_jj`, dead ones counting as 1, stable), and
/// `mean(diag)` with dead ones as 1, which the damping multiplies.
pub fn column_order(diag: &[f32], act_order: bool) -> (Vec<u8>, Vec<u32>, f64) {
    let dead: Vec<u8> = diag.iter().map(|&d| u8::from(d == 0.0)).collect();
    let fixed: Vec<f64> = diag
        .iter()
        .map(|&d| if d == 0.0 { 1.0 } else { f64::from(d) })
        .collect();
    let mut perm: Vec<u32> = (0..diag.len() as u32).collect();
    if act_order {
        perm.sort_by(|&a, &b| fixed[b as usize].total_cmp(&fixed[a as usize]));
    }
    let mean = if fixed.is_empty() {
        0.0
    } else {
        fixed.iter().sum::<f64>() / fixed.len() as f64
    };
    (dead, perm, mean)
}

/// The launch grid of a kernel that strides over `work` items per
/// descriptor, `per_block` at a time: `(x, y)` with y = descriptors.
pub fn grid(work: u64, per_block: u64, descs: usize) -> (u32, u32, u32) {
    let blocks = work.div_ceil(per_block.max(1)).clamp(1, 65_535);
    (blocks as u32, descs.max(1) as u32, 1)
}

/// The byte that `pgq_pack_codes` writes at `b` (its arithmetic, in Rust,
/// so the index math is tested against `pgq_format::pack_codes`).
pub fn packed_byte(codes: &[i8], bits: u32, b: u64) -> u8 {
    let Some(last_code) = (codes.len() as u64).checked_sub(1) else {
        return 0;
    };
    let mask = (1u32 << bits) - 1;
    let bit0 = b * 8;
    let first = bit0 / u64::from(bits);
    let last = ((bit0 + 7) / u64::from(bits)).min(last_code);
    let mut byte = 0u32;
    for i in first..=last {
        let field = u32::from(codes[i as usize] as u8) & mask;
        let shift = (i * u64::from(bits)) as i64 - bit0 as i64;
        byte |= if shift >= 0 {
            field << shift
        } else {
            field >> (-shift)
        };
    }
    (byte & 0xFF) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(rows: usize, cols: usize, group: u32, clip: ClipChoice, gptq: bool) -> JobSpec {
        JobSpec {
            rows,
            cols,
            bits: 6,
            group_size: group,
            clip,
            gptq: gptq.then_some(GptqSpec {
                act_order: true,
                damp: 0.01,
                block_size: 128,
            }),
        }
    }

    fn search(objective: Objective) -> ClipChoice {
        ClipChoice::Percentiles {
            list: vec![0.999, 1.0],
            objective,
            scope: Scope::Row,
        }
    }

    #[test]
    fn the_descriptor_is_the_c_struct() {
        // 24 u64 fields and 2 f64, no padding.
        assert_eq!(std::mem::size_of::<MatDesc>(), 26 * 8);
        let source = include_str!("kernels/common.cuh");
        let start = source.find("struct MatDesc {").unwrap();
        let body = &source[start..start + source[start..].find("};").unwrap()];
        let fields: Vec<&str> = body
            .lines()
            .skip(1)
            .filter_map(|l| l.split(';').next())
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(
            fields,
            [
                "id",
                "rows",
                "cols",
                "groups",
                "group_width",
                "qmax",
                "method",
                "clip_mode",
                "objective",
                "scope",
                "cands",
                "block_size",
                "w_off",
                "code_off",
                "scale_off",
                "h_off",
                "dead_off",
                "perm_off",
                "work_off",
                "f_off",
                "u_off",
                "pct_off",
                "score_off",
                "choice_off",
                "k",
                "damp_add"
            ]
        );
        assert_eq!(std::mem::size_of::<PackDesc>(), 32);
    }

    #[test]
    fn arenas_are_contiguous_and_only_what_each_job_needs() {
        let jobs = [
            job(3, 5, 0, ClipChoice::SdClip { k: 12.85 }, true),
            job(4, 10, 4, search(Objective::Hessian), false),
            job(2, 6, 0, ClipChoice::Absmax, false),
            job(70, 6, 0, search(Objective::Mse), true),
        ];
        let layout = plan_layout(&jobs).unwrap();
        let d = &layout.descs;
        assert_eq!(
            d.iter().map(|d| d.w_off).collect::<Vec<_>>(),
            [0, 15, 55, 67]
        );
        assert_eq!(d[0].code_off, d[0].w_off);
        assert_eq!(layout.sizes.weights, 15 + 40 + 12 + 420);
        // Scales: 3 rows, 4 rows x 3 groups, 2 rows, 70 rows.
        assert_eq!(
            d.iter().map(|d| d.scale_off).collect::<Vec<_>>(),
            [0, 3, 15, 17]
        );
        assert_eq!((d[1].groups, d[1].group_width), (3, 4));
        // Hessians for GPTQ and the Hessian-weighted search only.
        assert_eq!(
            d.iter().map(|d| d.h_off).collect::<Vec<_>>(),
            [0, 25, NONE, 125]
        );
        assert_eq!(layout.sizes.hessians, 25 + 100 + 36);
        // GPTQ buffers for GPTQ jobs only.
        assert_eq!(
            d.iter().map(|d| d.f_off).collect::<Vec<_>>(),
            [0, NONE, NONE, 50]
        );
        assert_eq!(layout.sizes.factors, 2 * 25 + 2 * 36);
        assert_eq!((d[3].dead_off, d[3].perm_off, d[3].u_off), (5, 5, 25));
        assert_eq!(layout.max_gptq_cols, 6);
        // Search: scores per unit and candidate, choices per unit.
        assert_eq!((d[1].score_off, d[3].score_off), (0, 24));
        assert_eq!((d[1].choice_off, d[3].choice_off), (0, 12));
        assert_eq!(layout.sizes.scores, 24 + 140);
        assert_eq!(layout.percentiles, [0.999, 1.0, 0.999, 1.0]);
        assert_eq!((d[1].pct_off, d[3].pct_off), (0, 2));
        // Sort length: groups of 4 and rows of 6.
        assert_eq!(layout.sort_len, 8);
        assert_eq!(
            (d[0].method, d[1].clip_mode, d[2].clip_mode, d[1].objective),
            (1, 2, 1, 1)
        );
        assert_eq!((d[0].k, d[0].qmax), (f64::from(12.85f32), 31));
    }

    #[test]
    fn sweep_tasks_cover_every_row_tile_widest_first() {
        let jobs = [
            job(70, 6, 0, ClipChoice::Absmax, true),
            job(5, 5, 0, ClipChoice::Absmax, false),
            job(33, 9, 0, ClipChoice::Absmax, true),
        ];
        let layout = plan_layout(&jobs).unwrap();
        assert_eq!(layout.tasks, [2, 0, 2, 32, 0, 0, 0, 32, 0, 64]);
    }

    #[test]
    fn unsupported_plans_say_why() {
        let mut j = job(4, 4, 0, ClipChoice::Absmax, true);
        assert_eq!(j.unsupported(), None);
        j.gptq = Some(GptqSpec {
            block_size: 256,
            ..j.gptq.unwrap()
        });
        assert!(j.unsupported().unwrap().contains("block size 256"));
        assert_eq!(
            job(0, 4, 0, ClipChoice::Absmax, false).unsupported(),
            Some("empty matrix".into())
        );
        let wide = job(2, 10_000, 0, search(Objective::Mse), false);
        assert!(wide.unsupported().unwrap().contains("10000"));
        let grouped = job(2, 10_000, 128, search(Objective::Mse), false);
        assert_eq!(grouped.unsupported(), None);
        let mut bad = job(2, 2, 0, ClipChoice::Absmax, false);
        bad.bits = 9;
        assert!(bad.unsupported().is_some());
    }

    #[test]
    fn column_order_matches_act_order_with_dead_columns() {
        let (dead, perm, mean) = column_order(&[0.5, 0.0, 2.0, 0.5, 3.0], true);
        assert_eq!(dead, [0, 1, 0, 0, 0]);
        // Dead column 1 counts as 1.0; ties (0.5, 0.5) keep their order.
        assert_eq!(perm, [4, 2, 1, 0, 3]);
        assert!((mean - 7.0 / 5.0).abs() < 1e-15);
        let (_, perm, _) = column_order(&[0.5, 0.0, 2.0], false);
        assert_eq!(perm, [0, 1, 2]);
    }

    #[test]
    fn packed_bytes_match_the_format() {
        let mut seed = 7u64;
        for bits in 2..=8u8 {
            let q = i16::from(code_max(bits).unwrap());
            for count in [0usize, 1, 3, 7, 8, 9, 64, 101] {
                let codes: Vec<i8> = (0..count)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        ((seed >> 33) as i16 % (2 * q + 1) - q) as i8
                    })
                    .collect();
                let width = pgq_format::pack::Bits::new(bits).unwrap();
                let expected = pgq_format::pack::pack_codes(&codes, width);
                let ours: Vec<u8> = (0..expected.len() as u64)
                    .map(|b| packed_byte(&codes, u32::from(bits), b))
                    .collect();
                assert_eq!(ours, expected, "bits {bits} count {count}");
            }
        }
    }

    #[test]
    fn grids_stay_within_limits() {
        assert_eq!(grid(0, 8, 3), (1, 3, 1));
        assert_eq!(grid(17, 8, 2), (3, 2, 1));
        assert_eq!(grid(u64::MAX, 1, 1).0, 65_535);
    }
}
