//! The writer's choice of a rANS model for one section: which parts get a
//! table of their own, which share a pooled one, and which matrices split
//! their columns into classes. Every choice is made on the coded size (the
//! ideal size under the normalised frequencies, which the coder meets to
//! within its lane states, plus the bytes of tables and maps), so the
//! result is deterministic and never larger than one pooled table.

use crate::limits::MAX_RANS_TABLES;
use crate::parallel::map_largest_first;
use crate::rans::{Model, Part};
use crate::rans_columns::{runs as runs_of, Classes};

pub(crate) type Counts = [u64; 256];

/// Bytes a table costs in the stream: its bitmap and a u16 per symbol
/// (the symbols present in `counts`, over any alphabet).
pub(crate) fn table_bytes(counts: &[u64]) -> f64 {
    32.0 + 2.0 * counts.iter().filter(|&&c| c > 0).count() as f64
}

/// Bytes of symbols with these counts under their own (unnormalised)
/// frequencies: `log2(total / count)` bits each.
pub(crate) fn ideal_bytes(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let t = total as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64 * (t / c as f64).log2())
        .sum::<f64>()
        / 8.0
}

/// Bytes a segment costs besides its symbols: length, period and map.
pub(crate) fn segment_bytes(period: usize) -> f64 {
    12.0 + period as f64
}

fn add(into: &mut Counts, from: &Counts) {
    into.iter_mut().zip(from).for_each(|(a, b)| *a += b);
}

/// Frequencies out of `2^p` for `counts` (at least one non-zero): every
/// present symbol at least 1, the sum exactly `2^p`, rounded and then
/// corrected one step at a time where a step costs the fewest bits.
pub(crate) fn normalize(counts: &Counts, p: u32) -> [u32; 256] {
    let total: u64 = counts.iter().sum();
    let m = 1u64 << p;
    let mut q = [0u32; 256];
    let mut sum = 0u64;
    for s in 0..256 {
        if counts[s] > 0 {
            let scaled = (counts[s] as u128 * m as u128 + total as u128 / 2) / total as u128;
            q[s] = (scaled as u64).clamp(1, m) as u32;
            sum += q[s] as u64;
        }
    }
    // Bits gained by raising q[s] by one, or lost by lowering it.
    let gain = |s: usize, q: &[u32; 256]| counts[s] as f64 * (1.0 / q[s] as f64).ln_1p();
    let loss = |s: usize, q: &[u32; 256]| -(counts[s] as f64) * (-1.0 / q[s] as f64).ln_1p();
    while sum < m {
        let s = (0..256)
            .filter(|&s| counts[s] > 0)
            .max_by(|&a, &b| gain(a, &q).total_cmp(&gain(b, &q)).then(b.cmp(&a)))
            .expect("at least one symbol");
        q[s] += 1;
        sum += 1;
    }
    while sum > m {
        let s = (0..256)
            .filter(|&s| q[s] > 1)
            .min_by(|&a, &b| loss(a, &q).total_cmp(&loss(b, &q)).then(a.cmp(&b)))
            .expect("more symbols than slots cannot happen for p >= 8");
        q[s] -= 1;
        sum -= 1;
    }
    q
}

/// Bits that `counts` cost under `freqs` out of `2^p`.
fn coded_bits(counts: &Counts, freqs: &[u32; 256], p: u32) -> f64 {
    counts
        .iter()
        .zip(freqs)
        .filter(|(&c, _)| c > 0)
        .map(|(&c, &f)| c as f64 * (p as f64 - (f as f64).log2()))
        .sum()
}

/// Bytes of `counts` coded with a table of their own, that table included.
fn own_bytes(counts: &Counts, p: u32) -> f64 {
    coded_bits(counts, &normalize(counts, p), p) / 8.0 + table_bytes(counts)
}

/// How a run is coded.
enum Choice {
    /// Its own table.
    Own,
    /// The section's pooled table.
    Pooled,
    Classes(Classes),
}

/// The model of a section made of `parts`.
pub(crate) fn choose(data: &[u8], parts: &[Part], p: u32) -> Model {
    let mut runs: Vec<(usize, Counts, Choice)> = Vec::with_capacity(parts.len());
    // Each part on its own, in case the table budget is exceeded.
    let mut whole: Vec<(usize, Counts)> = Vec::with_capacity(parts.len());
    let mut at = 0usize;
    let slices: Vec<(&[u8], usize)> = parts
        .iter()
        .filter(|part| part.len > 0)
        .map(|part| {
            at += part.len;
            (&data[at - part.len..at], part.cols)
        })
        .collect();
    // Fitting a large matrix's runs is the encoder's main cost: parts in
    // parallel (the result does not depend on the thread count).
    let fitted = map_largest_first(
        &slices,
        |s| s.0.len(),
        |&(bytes, cols)| runs_of(bytes, cols),
    );
    for (&(bytes, _), part_runs) in slices.iter().zip(fitted) {
        let mut counts = [0u64; 256];
        part_runs
            .iter()
            .for_each(|run| add(&mut counts, &run.counts));
        whole.push((bytes.len(), counts));
        for run in part_runs {
            let choice = run.classes.map_or(Choice::Own, Choice::Classes);
            runs.push((run.len, run.counts, choice));
        }
    }
    pool(&mut runs, p);
    let tables_needed = |runs: &[(usize, Counts, Choice)]| {
        let pooled = runs.iter().any(|r| matches!(r.2, Choice::Pooled)) as usize;
        pooled
            + runs
                .iter()
                .map(|r| match &r.2 {
                    Choice::Own => 1,
                    Choice::Pooled => 0,
                    Choice::Classes(k) => k.counts.len(),
                })
                .sum::<usize>()
    };
    // Too many tables for one stream: first a table per part, then one
    // pooled table for everything.
    if tables_needed(&runs) > MAX_RANS_TABLES {
        runs = whole
            .into_iter()
            .map(|(len, c)| (len, c, Choice::Own))
            .collect();
        pool(&mut runs, p);
    }
    if tables_needed(&runs) > MAX_RANS_TABLES {
        runs.iter_mut().for_each(|r| r.2 = Choice::Pooled);
    }
    build(runs, p)
}

/// Twice: runs on one table move to the pooled table when it codes them
/// for less than their own table costs, then the pool is rebuilt from its
/// members.
fn pool(runs: &mut [(usize, Counts, Choice)], p: u32) {
    let own: Vec<f64> = runs.iter().map(|r| own_bytes(&r.1, p)).collect();
    for _ in 0..2 {
        let members: Vec<usize> = (0..runs.len())
            .filter(|&i| !matches!(runs[i].2, Choice::Classes(_)))
            .collect();
        if members.is_empty() {
            return;
        }
        let mut pooled = [0u64; 256];
        members.iter().for_each(|&i| add(&mut pooled, &runs[i].1));
        let freqs = normalize(&pooled, p);
        for &i in &members {
            let shared = coded_bits(&runs[i].1, &freqs, p) / 8.0;
            runs[i].2 = if shared < own[i] {
                Choice::Pooled
            } else {
                Choice::Own
            };
        }
    }
}

/// Numbers the tables in order of first use and merges neighbouring
/// segments that use the pooled table.
fn build(runs: Vec<(usize, Counts, Choice)>, p: u32) -> Model {
    let mut freqs: Vec<[u32; 256]> = Vec::new();
    let mut segments: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut pooled_index: Option<u8> = None;
    let mut pooled = [0u64; 256];
    for r in runs.iter().filter(|r| matches!(r.2, Choice::Pooled)) {
        add(&mut pooled, &r.1);
    }
    for (len, counts, choice) in runs {
        let len = len as u64;
        let map = match choice {
            Choice::Own => {
                freqs.push(normalize(&counts, p));
                vec![(freqs.len() - 1) as u8]
            }
            Choice::Pooled => {
                let t = *pooled_index.get_or_insert_with(|| {
                    freqs.push(normalize(&pooled, p));
                    (freqs.len() - 1) as u8
                });
                match segments.last_mut() {
                    Some((l, m)) if *m == [t] => {
                        *l += len;
                        continue;
                    }
                    _ => vec![t],
                }
            }
            Choice::Classes(classes) => {
                let first = freqs.len() as u8;
                freqs.extend(classes.counts.iter().map(|h| normalize(h, p)));
                classes.map.iter().map(|&c| first + c).collect()
            }
        };
        segments.push((len, map));
    }
    Model {
        prob_bits: p,
        freqs,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coded size the model chooser expects for `data` split into
    /// `parts`, in bytes (tables and maps included, lane states excluded).
    fn expected_bytes(data: &[u8], parts: &[Part], p: u32) -> f64 {
        let model = choose(data, parts, p);
        let mut bytes = crate::rans::FIXED_LEN as f64;
        let mut at = 0usize;
        let mut counts = vec![[0u64; 256]; model.freqs.len()];
        for (len, map) in &model.segments {
            bytes += segment_bytes(map.len());
            for (j, &b) in data[at..at + *len as usize].iter().enumerate() {
                counts[map[j % map.len()] as usize][b as usize] += 1;
            }
            at += *len as usize;
        }
        // Each table was normalised from exactly these counts, so its symbols
        // are theirs.
        for (h, f) in counts.iter().zip(&model.freqs) {
            bytes += coded_bits(h, f, p) / 8.0 + table_bytes(h);
        }
        bytes
    }

    #[test]
    fn normalized_tables_sum_exactly_and_keep_every_symbol() {
        let mut counts = [1u64; 256];
        counts[0] = 1_000_000_000;
        for p in [8, 12, 16] {
            let q = normalize(&counts, p);
            assert_eq!(q.iter().map(|&x| x as u64).sum::<u64>(), 1 << p);
            assert!(q.iter().all(|&x| x >= 1));
        }
        let mut one = [0u64; 256];
        one[9] = 5;
        assert_eq!(normalize(&one, 16)[9], 1 << 16);
    }

    #[test]
    fn columns_of_different_spread_get_classes() {
        // 512 rows x 256 columns: half the columns are narrow, half wide.
        let mut x = 7u64;
        let data: Vec<u8> = (0..512 * 256)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = ((x >> 33) % 1000) as i32;
                let wide = i % 256 >= 128;
                let v = if wide { r % 31 - 15 } else { r % 3 - 1 };
                v as i8 as u8
            })
            .collect();
        let part = Part {
            len: data.len(),
            cols: 256,
        };
        let model = choose(&data, &[part], 16);
        assert!(model.freqs.len() >= 2, "{}", model.freqs.len());
        let flat = expected_bytes(
            &data,
            &[Part {
                len: data.len(),
                cols: 0,
            }],
            16,
        );
        assert!(expected_bytes(&data, &[part], 16) < flat * 0.9);
        let stored = crate::rans::encode(&data, &[part], 64);
        assert_eq!(crate::rans::decode(&stored, data.len()).unwrap(), data);
    }

    #[test]
    fn a_matrix_whose_rows_drift_gets_a_segment_per_run() {
        // 2048 x 128: the first half centres each column on its own
        // offset, the second half is alike; a small part follows.
        let mut x = 3u64;
        let cols = 128;
        let mut data: Vec<u8> = (0..2048 * cols)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = ((x >> 33) % 7) as i32 - 3;
                let offset = if i / cols < 1024 {
                    (i % cols % 8) as i32 * 6 - 21
                } else {
                    0
                };
                (offset + noise) as i8 as u8
            })
            .collect();
        data.extend([1u8, 2, 3]);
        let parts = [
            Part {
                len: 2048 * cols,
                cols,
            },
            Part { len: 3, cols: 0 },
        ];
        let model = choose(&data, &parts, 16);
        let shape: Vec<(u64, usize)> = model.segments.iter().map(|(l, m)| (*l, m.len())).collect();
        // The small part shares the second run's table (pooled), so their
        // segments merge.
        assert_eq!(
            shape,
            [(1024 * cols as u64, cols), (1024 * cols as u64 + 3, 1)]
        );
        let stored = crate::rans::encode(&data, &parts, 64);
        assert_eq!(crate::rans::decode(&stored, data.len()).unwrap(), data);
    }
}
