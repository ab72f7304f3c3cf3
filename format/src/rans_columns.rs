//! Models for matrices of codes whose columns differ, and whose columns
//! differ differently along the rows.
//!
//! A trained embedding is the case in point: MiniLM's vocabulary starts
//! and ends with about a thousand tokens that were hardly trained, whose
//! rows share a per-dimension offset, so that in those rows each column has
//! a distribution of its own, while in the rest every column looks alike.
//! One table per matrix, or column classes fixed for the whole matrix,
//! leave that on the table (brotli on the transposed matrix found it). So a
//! matrix is cut into blocks of whole rows, each block gets its best model
//! (one table, or 2 to 16 column classes fitted by entropy), and
//! neighbouring blocks merge while merging codes smaller. Every comparison
//! is on bytes (ideal bits plus tables, maps and segment headers), so a
//! matrix whose rows are alike ends as one run, as before.

use crate::rans_model::{ideal_bytes, segment_bytes, table_bytes, Counts};

/// Matrices smaller than this keep one table: a map of a byte per column
/// and a table per class cannot pay for themselves.
pub(crate) const MIN_CLASSED_LEN: usize = 1 << 16;

/// Rows are first cut into blocks of about this many codes.
const BLOCK_CODES: usize = 1 << 17;

/// Refinement rounds of the column classes (they settle in 4 to 8 on real
/// weights).
const CLASS_ROUNDS: usize = 8;

/// A run of whole rows and how it is coded.
pub(crate) struct Run {
    /// Bytes (codes) in the run.
    pub len: usize,
    /// Counts of the whole run.
    pub counts: Counts,
    /// `None`: one table (its own or the pooled one, the caller decides).
    pub classes: Option<Classes>,
}

/// Column classes of a run: the class of each column and each class's
/// counts.
pub(crate) struct Classes {
    pub map: Vec<u8>,
    pub counts: Vec<Counts>,
}

/// The runs of a part of `cols` columns (0 for anything but a matrix).
pub(crate) fn runs(data: &[u8], cols: usize) -> Vec<Run> {
    let single = || {
        vec![Run {
            len: data.len(),
            counts: histogram(data),
            classes: None,
        }]
    };
    if cols < 2 || data.len() < MIN_CLASSED_LEN || data.len() % cols != 0 || data.len() / cols < 2 {
        return single();
    }
    let alphabet = Alphabet::of(data);
    if alphabet.symbols.len() < 2 {
        return single();
    }
    let rows = data.len() / cols;
    let block_rows = BLOCK_CODES.div_ceil(cols).max(2);
    let blocks = (rows / block_rows).max(1);
    let mut runs: Vec<Candidate> = (0..blocks)
        .map(|b| {
            let first = b * block_rows;
            let end = if b + 1 == blocks {
                rows
            } else {
                first + block_rows
            };
            Candidate::new(
                alphabet.column_counts(&data[first * cols..end * cols], cols),
                end - first,
                cols,
                alphabet.len(),
            )
        })
        .collect();
    // Greedy merging: the neighbours whose union saves the most bytes
    // merge first; a merge only changes the gains beside it.
    let mut merged: Vec<Option<Candidate>> = (0..runs.len().saturating_sub(1))
        .map(|i| Some(runs[i].merge(&runs[i + 1], cols, alphabet.len())))
        .collect();
    loop {
        let best = (0..merged.len())
            .filter_map(|i| {
                let m = merged[i].as_ref()?;
                let gain = runs[i].fit.bytes + runs[i + 1].fit.bytes - m.fit.bytes;
                (gain > 0.0).then_some((i, gain))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((i, _)) = best else { break };
        let union = merged[i].take().expect("chosen merge exists");
        runs[i] = union;
        runs.remove(i + 1);
        merged.remove(i);
        if i > 0 {
            merged[i - 1] = Some(runs[i - 1].merge(&runs[i], cols, alphabet.len()));
        }
        if i < merged.len() {
            merged[i] = Some(runs[i].merge(&runs[i + 1], cols, alphabet.len()));
        }
    }
    runs.into_iter()
        .map(|c| Run {
            len: c.rows * cols,
            counts: alphabet.expand(&column_totals(&c.hist, alphabet.len())),
            classes: c.fit.map.map(|map| {
                let k = map.iter().map(|&m| m as usize + 1).max().unwrap_or(1);
                let per = class_counts(&c.hist, map.iter().map(|&m| m as usize), alphabet.len(), k);
                Classes {
                    counts: per
                        .chunks_exact(alphabet.len())
                        .map(|h| alphabet.expand(h))
                        .collect(),
                    map,
                }
            }),
        })
        .collect()
}

pub(crate) fn histogram(data: &[u8]) -> Counts {
    let mut c = [0u64; 256];
    for &b in data {
        c[b as usize] += 1;
    }
    c
}

/// The symbols present in a matrix, numbered densely, so that column
/// counts take `cols x symbols` cells instead of `cols x 256`.
struct Alphabet {
    index: [u8; 256],
    symbols: Vec<u8>,
}

impl Alphabet {
    fn of(data: &[u8]) -> Alphabet {
        let counts = histogram(data);
        let symbols: Vec<u8> = (0..=255u8).filter(|&s| counts[s as usize] > 0).collect();
        let mut index = [0u8; 256];
        // At most 256 symbols, so the dense index of the last is 255.
        for (i, &s) in symbols.iter().enumerate() {
            index[s as usize] = i as u8;
        }
        Alphabet { index, symbols }
    }

    fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Counts per column, `cols` rows of `len()` cells.
    fn column_counts(&self, rows: &[u8], cols: usize) -> Vec<u32> {
        let n = self.len();
        let mut hist = vec![0u32; cols * n];
        for row in rows.chunks_exact(cols) {
            for (c, &b) in row.iter().enumerate() {
                hist[c * n + self.index[b as usize] as usize] += 1;
            }
        }
        hist
    }

    fn expand(&self, dense: &[u64]) -> Counts {
        let mut c = [0u64; 256];
        for (&s, &n) in self.symbols.iter().zip(dense) {
            c[s as usize] = n;
        }
        c
    }
}

/// Counts per class (`k` rows of `n` cells) of columns whose classes are
/// `classes`, in column order.
fn class_counts(
    hist: &[u32],
    classes: impl IntoIterator<Item = usize>,
    n: usize,
    k: usize,
) -> Vec<u64> {
    let mut per = vec![0u64; k * n];
    for (col, m) in classes.into_iter().enumerate() {
        let h = &hist[col * n..(col + 1) * n];
        per[m * n..(m + 1) * n]
            .iter_mut()
            .zip(h)
            .for_each(|(a, &b)| *a += b as u64);
    }
    per
}

/// A block (or a merged run of blocks) with its column counts and its
/// best fit.
struct Candidate {
    hist: Vec<u32>,
    rows: usize,
    fit: Fit,
}

/// The best model of a run: bytes, and the column map when classes win.
struct Fit {
    bytes: f64,
    map: Option<Vec<u8>>,
}

impl Candidate {
    fn new(hist: Vec<u32>, rows: usize, cols: usize, n: usize) -> Candidate {
        let fit = fit(&hist, cols, n);
        Candidate { hist, rows, fit }
    }

    fn merge(&self, next: &Candidate, cols: usize, n: usize) -> Candidate {
        let hist = self
            .hist
            .iter()
            .zip(&next.hist)
            .map(|(a, b)| a + b)
            .collect();
        Candidate::new(hist, self.rows + next.rows, cols, n)
    }
}

/// Counts over all columns.
fn column_totals(hist: &[u32], n: usize) -> Vec<u64> {
    let mut totals = vec![0u64; n];
    for col in hist.chunks_exact(n) {
        totals
            .iter_mut()
            .zip(col)
            .for_each(|(a, &b)| *a += b as u64);
    }
    totals
}

/// One table, or the best of 2, 4, 8 and 16 column classes (stopping at
/// the first count that does not improve on the one before).
fn fit(hist: &[u32], cols: usize, n: usize) -> Fit {
    let totals = column_totals(hist, n);
    let mut best = Fit {
        bytes: ideal_bytes(&totals) + table_bytes(&totals) + segment_bytes(1),
        map: None,
    };
    let rows: u64 = totals.iter().sum::<u64>() / cols as u64;
    if rows < 2 || (rows as usize) * cols < MIN_CLASSED_LEN {
        return best;
    }
    for k in [2usize, 4, 8, 16].into_iter().filter(|&k| k <= cols) {
        let (map, bytes) = classes(hist, cols, n, k);
        if bytes >= best.bytes {
            break;
        }
        best = Fit {
            bytes,
            map: Some(map),
        };
    }
    best
}

/// `k` column classes: columns sorted by their mean symbol rank (the dense
/// index, in unsigned byte order, so negative codes rank above positive
/// ones: a coarse start by sign and spread) and cut into equal
/// counts, then moved, a round at a time, to the class whose frequencies
/// code them in the fewest bits (Lloyd's algorithm with cross-entropy as
/// the distance). Returns the map (classes renumbered in order, empty ones
/// dropped) and its bytes.
fn classes(hist: &[u32], cols: usize, n: usize, k: usize) -> (Vec<u8>, f64) {
    let mean: Vec<f64> = hist
        .chunks_exact(n)
        .map(|col| {
            let (mut sum, mut count) = (0.0, 0.0);
            for (i, &c) in col.iter().enumerate() {
                sum += c as f64 * i as f64;
                count += c as f64;
            }
            sum / count.max(1.0)
        })
        .collect();
    let mut order: Vec<usize> = (0..cols).collect();
    order.sort_by(|&a, &b| mean[a].total_cmp(&mean[b]).then(a.cmp(&b)));
    let mut map = vec![0usize; cols];
    for (rank, &c) in order.iter().enumerate() {
        map[c] = rank * k / cols;
    }
    // The columns' present symbols, for costs that skip the zeros.
    let sparse: Vec<Vec<(usize, f64)>> = hist
        .chunks_exact(n)
        .map(|col| {
            col.iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(s, &c)| (s, c as f64))
                .collect()
        })
        .collect();
    for _ in 0..CLASS_ROUNDS {
        let per = class_counts(hist, map.iter().copied(), n, k);
        // -log2 p per class and symbol; infinite where the class lacks it.
        let cost: Vec<f64> = per
            .chunks_exact(n)
            .flat_map(|class| {
                let total = class.iter().sum::<u64>() as f64;
                class.iter().map(move |&c| {
                    if c == 0 {
                        f64::INFINITY
                    } else {
                        (total / c as f64).log2()
                    }
                })
            })
            .collect();
        let mut moved = false;
        for (col, entries) in sparse.iter().enumerate() {
            let bits = |m: usize| -> f64 {
                let row = &cost[m * n..(m + 1) * n];
                entries.iter().map(|&(s, c)| c * row[s]).sum()
            };
            let mut best = (map[col], bits(map[col]));
            for m in 0..k {
                let b = bits(m);
                if b < best.1 {
                    best = (m, b);
                }
            }
            if best.0 != map[col] {
                map[col] = best.0;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let per = class_counts(hist, map.iter().copied(), n, k);
    let mut renumber = vec![u8::MAX; k];
    let mut next = 0u8;
    let mut bytes = segment_bytes(cols);
    for (m, class) in per.chunks_exact(n).enumerate() {
        if class.iter().any(|&c| c > 0) {
            renumber[m] = next;
            next += 1;
            bytes += ideal_bytes(class) + table_bytes(class);
        }
    }
    (map.iter().map(|&m| renumber[m]).collect(), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        }
    }

    #[test]
    fn rows_that_differ_become_runs_and_alike_rows_stay_one() {
        // 1024 rows x 256 columns. The first 512 rows: each column centred
        // on an offset of its own; the rest: every column alike.
        let mut r = lcg(11);
        let cols = 256;
        let data: Vec<u8> = (0..1024 * cols)
            .map(|i| {
                let (row, col) = (i / cols, i % cols);
                let noise = (r() % 5) as i32 - 2;
                let offset = if row < 512 {
                    (col % 8) as i32 * 6 - 21
                } else {
                    0
                };
                (offset + noise) as i8 as u8
            })
            .collect();
        let runs = runs(&data, cols);
        assert_eq!(
            runs.len(),
            2,
            "{:?}",
            runs.iter().map(|r| r.len).collect::<Vec<_>>()
        );
        assert_eq!(runs[0].len, 512 * cols);
        assert!(runs[0]
            .classes
            .as_ref()
            .is_some_and(|c| c.counts.len() >= 8));
        assert!(runs[1].classes.is_none());
        assert_eq!(runs.iter().map(|r| r.len).sum::<usize>(), data.len());

        let alike: Vec<u8> = (0..1024 * cols).map(|_| (r() % 7) as u8).collect();
        let one = super::runs(&alike, cols);
        assert_eq!(one.len(), 1);
        assert!(one[0].classes.is_none());
        assert_eq!(one[0].counts, histogram(&alike));
    }

    #[test]
    fn edge_shapes_round_trip_through_the_coder() {
        let mut r = lcg(9);
        let cases: Vec<(usize, Vec<u8>)> = vec![
            // Two columns, many rows; a row longer than a block; every
            // byte value; one symbol; rows of two values per column.
            (
                2,
                (0..1 << 17)
                    .map(|i| (i % 2 * 40 + (r() % 3) as usize) as u8)
                    .collect(),
            ),
            (70_000, (0..140_000).map(|_| (r() % 5) as u8).collect()),
            (
                256,
                (0..1 << 18).map(|i| (i as u64 ^ (r() % 7)) as u8).collect(),
            ),
            (512, vec![7u8; 1 << 17]),
            (
                300,
                (0..300 * 400)
                    .map(|i| if i % 300 < 150 { 1 } else { 2 })
                    .collect(),
            ),
        ];
        for (cols, data) in cases {
            let runs = runs(&data, cols);
            assert_eq!(runs.iter().map(|r| r.len).sum::<usize>(), data.len());
            assert!(
                runs.iter().all(|r| r.len % cols == 0),
                "{cols}: runs of whole rows"
            );
            let part = crate::rans::Part {
                len: data.len(),
                cols,
            };
            let stored = crate::rans::encode(&data, &[part], crate::rans::lanes_for(data.len()));
            assert_eq!(
                crate::rans::decode(&stored, data.len()).unwrap(),
                data,
                "{cols}"
            );
        }
    }

    #[test]
    fn classes_count_every_column_once() {
        let mut r = lcg(5);
        let cols = 64;
        let data: Vec<u8> = (0..4096 * cols)
            .map(|i| (r() % (1 + (i % cols) as u64 / 8)) as u8)
            .collect();
        let runs = runs(&data, cols);
        let total: u64 = runs.iter().map(|r| r.counts.iter().sum::<u64>()).sum();
        assert_eq!(total, data.len() as u64);
        for run in &runs {
            if let Some(c) = &run.classes {
                assert_eq!(c.map.len(), cols);
                let per: u64 = c.counts.iter().map(|h| h.iter().sum::<u64>()).sum();
                assert_eq!(per, run.len as u64);
                assert!(c.map.iter().all(|&m| (m as usize) < c.counts.len()));
            }
        }
    }
}
