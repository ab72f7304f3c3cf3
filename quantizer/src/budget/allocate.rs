//! Choosing one option per tensor under a byte budget: the Lagrangian
//! solve, then greedy moves that fill (or free) the last bytes.
//!
//! Each tensor has a list of options, each with a rate (bytes) and a
//! distortion (error). The solve minimises the total distortion subject to
//! the total rate staying at or under a target. The Lagrangian
//! `min sum(d + lambda r)` gives the best choices on the lower convex hull
//! of every tensor's curve; a budget between two hull points leaves bytes
//! over, which [`fill`] spends one move at a time, best error saved per
//! byte first. [`adjust`] starts from the current choices instead of from
//! scratch, so that a correction round changes few tensors (each change
//! means running GPTQ on that tensor again).

/// One tensor's options: `rate[o]` bytes and `dist[o]` error for option `o`.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub rate: Vec<f64>,
    pub dist: Vec<f64>,
}

impl Curve {
    /// The option of least rate (ties: least distortion).
    fn cheapest(&self) -> usize {
        (0..self.rate.len())
            .min_by(|&a, &b| {
                self.rate[a]
                    .total_cmp(&self.rate[b])
                    .then(self.dist[a].total_cmp(&self.dist[b]))
            })
            .unwrap_or(0)
    }

    /// The option of least distortion (ties: least rate).
    pub fn least_error(&self) -> usize {
        self.best_at(0.0)
    }

    /// The option minimising `dist + lambda * rate` (ties: least rate, then
    /// the first).
    fn best_at(&self, lambda: f64) -> usize {
        let cost = |o: usize| self.dist[o] + lambda * self.rate[o];
        (0..self.rate.len())
            .min_by(|&a, &b| {
                cost(a)
                    .total_cmp(&cost(b))
                    .then(self.rate[a].total_cmp(&self.rate[b]))
            })
            .unwrap_or(0)
    }
}

/// The total rate of `choice`.
pub fn total_rate(curves: &[Curve], choice: &[usize]) -> f64 {
    curves.iter().zip(choice).map(|(c, &o)| c.rate[o]).sum()
}

/// The total distortion of `choice`.
pub fn total_dist(curves: &[Curve], choice: &[usize]) -> f64 {
    curves.iter().zip(choice).map(|(c, &o)| c.dist[o]).sum()
}

/// The least total rate any choice reaches.
pub fn least_rate(curves: &[Curve]) -> f64 {
    curves.iter().map(|c| c.rate[c.cheapest()]).sum()
}

/// The choice of least total distortion whose total rate is at most
/// `target`, or `None` when even the cheapest options exceed it. Curves
/// must be non-empty.
pub fn allocate(curves: &[Curve], target: f64) -> Option<Vec<usize>> {
    if least_rate(curves) > target {
        return None;
    }
    let at = |lambda: f64| -> Vec<usize> { curves.iter().map(|c| c.best_at(lambda)).collect() };
    let free = at(0.0);
    if total_rate(curves, &free) <= target {
        // The budget does not bind: every tensor takes its least error.
        return Some(free);
    }
    // Bracket lambda: `hi` fits, `lo` does not. Rates and errors may be
    // of any magnitude, so search on a log scale from 1.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    let mut steps = 0;
    while total_rate(curves, &at(hi)) > target {
        lo = hi;
        hi *= 2.0;
        steps += 1;
        if steps > 2_000 || !hi.is_finite() {
            // Only the cheapest options fit.
            let cheapest: Vec<usize> = curves.iter().map(Curve::cheapest).collect();
            return Some(fill(curves, cheapest, target));
        }
    }
    if lo == 0.0 {
        // Halve down until it no longer fits (or lambda is negligible).
        let mut probe = hi;
        for _ in 0..2_000 {
            probe /= 2.0;
            if probe == 0.0 {
                break;
            }
            if total_rate(curves, &at(probe)) > target {
                lo = probe;
                break;
            }
            hi = probe;
        }
    }
    for _ in 0..100 {
        let mid = if lo > 0.0 { (lo * hi).sqrt() } else { hi / 2.0 };
        if !(mid > lo && mid < hi) {
            break;
        }
        if total_rate(curves, &at(mid)) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(fill(curves, at(hi), target))
}

/// Starting from `choice`, the fewest greedy moves that bring the total
/// rate to at most `target` (each freeing bytes at the least error added
/// per byte freed), then [`fill`]. `None` when the cheapest options exceed
/// `target`.
pub fn adjust(curves: &[Curve], mut choice: Vec<usize>, target: f64) -> Option<Vec<usize>> {
    if least_rate(curves) > target {
        return None;
    }
    let mut total = total_rate(curves, &choice);
    let limit = curves.iter().map(|c| c.rate.len()).sum::<usize>() + 1;
    for _ in 0..limit {
        if total <= target {
            break;
        }
        // The move of least added error per freed byte.
        let mut best: Option<(f64, usize, usize)> = None;
        for (t, curve) in curves.iter().enumerate() {
            let now = choice[t];
            for o in 0..curve.rate.len() {
                let freed = curve.rate[now] - curve.rate[o];
                if freed <= 0.0 {
                    continue;
                }
                // Freeing more than needed is fine, but a move that frees
                // just enough is preferred among equals by the ratio.
                let cost = (curve.dist[o] - curve.dist[now]) / freed.min(total - target);
                if best.is_none_or(|(c, _, _)| cost < c) {
                    best = Some((cost, t, o));
                }
            }
        }
        let Some((_, t, o)) = best else { break };
        total += curves[t].rate[o] - curves[t].rate[choice[t]];
        choice[t] = o;
    }
    if total > target {
        return allocate(curves, target);
    }
    Some(fill(curves, choice, target))
}

/// Spends what `choice` leaves under `target`: repeatedly the move that
/// saves the most error per added byte among those that fit.
pub fn fill(curves: &[Curve], mut choice: Vec<usize>, target: f64) -> Vec<usize> {
    let mut left = target - total_rate(curves, &choice);
    let limit = curves.iter().map(|c| c.rate.len()).sum::<usize>() + 1;
    for _ in 0..limit {
        let mut best: Option<(f64, usize, usize)> = None;
        for (t, curve) in curves.iter().enumerate() {
            let now = choice[t];
            for o in 0..curve.rate.len() {
                let added = curve.rate[o] - curve.rate[now];
                let saved = curve.dist[now] - curve.dist[o];
                if saved <= 0.0 || added > left {
                    continue;
                }
                // A move that saves error and bytes at once is best of all.
                let gain = if added <= 0.0 {
                    f64::INFINITY
                } else {
                    saved / added
                };
                if best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, t, o));
                }
            }
        }
        let Some((_, t, o)) = best else { break };
        left -= curves[t].rate[o] - curves[t].rate[choice[t]];
        choice[t] = o;
    }
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A convex curve: rate falls as the index grows, distortion rises.
    fn curve(scale: f64, n: usize) -> Curve {
        Curve {
            rate: (0..n).map(|i| scale * (100.0 - 7.0 * i as f64)).collect(),
            dist: (0..n).map(|i| scale * (1.0 + (i * i) as f64)).collect(),
        }
    }

    /// Every combination, for small cases: the true optimum.
    fn brute(curves: &[Curve], target: f64) -> Option<f64> {
        let mut best: Option<f64> = None;
        let n = curves.len();
        let sizes: Vec<usize> = curves.iter().map(|c| c.rate.len()).collect();
        let mut idx = vec![0usize; n];
        loop {
            if total_rate(curves, &idx) <= target {
                let d = total_dist(curves, &idx);
                if best.is_none_or(|b| d < b) {
                    best = Some(d);
                }
            }
            let mut k = 0;
            loop {
                if k == n {
                    return best;
                }
                idx[k] += 1;
                if idx[k] < sizes[k] {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
        }
    }

    #[test]
    fn the_choice_fits_and_is_near_the_true_optimum() {
        let curves = vec![curve(1.0, 10), curve(2.5, 10), curve(0.3, 10)];
        for target in [200.0, 250.0, 300.0, 333.0, 360.0, 380.0] {
            let choice = allocate(&curves, target).unwrap();
            assert!(total_rate(&curves, &choice) <= target);
            let ours = total_dist(&curves, &choice);
            let optimum = brute(&curves, target).unwrap();
            // Greedy filling of a Lagrangian point: within a step of the
            // optimum on convex curves.
            assert!(
                ours <= optimum * 1.25 + 1e-9,
                "{target}: {ours} vs {optimum}"
            );
        }
    }

    #[test]
    fn a_budget_under_the_cheapest_options_is_refused() {
        let curves = vec![curve(1.0, 5), curve(1.0, 5)];
        let least = least_rate(&curves);
        assert_eq!(least, 2.0 * (100.0 - 28.0));
        assert!(allocate(&curves, least - 1.0).is_none());
        assert!(adjust(&curves, vec![0, 0], least - 1.0).is_none());
        assert_eq!(allocate(&curves, least), Some(vec![4, 4]));
    }

    #[test]
    fn a_loose_budget_takes_the_least_error_everywhere() {
        let curves = vec![curve(1.0, 5), curve(3.0, 5)];
        assert_eq!(allocate(&curves, 1e9), Some(vec![0, 0]));
    }

    #[test]
    fn adjust_changes_few_tensors_for_a_small_correction() {
        let curves: Vec<Curve> = (0..20).map(|i| curve(1.0 + i as f64 / 10.0, 12)).collect();
        let target = 0.8 * curves.iter().map(|c| c.rate[0]).sum::<f64>();
        let start = allocate(&curves, target).unwrap();
        let tighter = target - 10.0;
        let moved = adjust(&curves, start.clone(), tighter).unwrap();
        assert!(total_rate(&curves, &moved) <= tighter);
        let changed = start.iter().zip(&moved).filter(|(a, b)| a != b).count();
        assert!(changed <= 3, "{changed} tensors changed");
    }

    #[test]
    fn fill_spends_only_what_fits() {
        let curves = vec![curve(1.0, 10)];
        let choice = fill(&curves, vec![9], 100.0 - 7.0 * 6.5);
        assert_eq!(choice, vec![7]);
    }
}
