//! Running independent per-section work (compression, decompression) on
//! all cores, largest item first, with results in input order. Output never
//! depends on the thread count. On wasm32 (no threads) it runs in line.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this much work in all (in `size` units, bytes), starting threads
/// costs more than it saves.
const MIN_PARALLEL_WORK: usize = 1 << 20;

/// `f` applied to every item, on up to `available_parallelism` threads;
/// `size` orders the work (largest first) so the longest job starts first.
pub(crate) fn map_largest_first<T: Sync, R: Send>(
    items: &[T],
    size: impl Fn(&T) -> usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let work: usize = items.iter().map(&size).fold(0, usize::saturating_add);
    let workers = if cfg!(target_family = "wasm") || work < MIN_PARALLEL_WORK {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(items.len())
    };
    if workers < 2 {
        return items.iter().map(f).collect();
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((i, f(&items[i])));
        }
        done
    };
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
        for handle in handles {
            // A worker only panics if `f` does; re-raise it here.
            match handle.join() {
                Ok(done) => {
                    for (i, r) in done {
                        slots[i] = Some(r);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    // Every index was taken by exactly one worker, so every slot is full.
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_input_order() {
        let items: Vec<usize> = (0..100).collect();
        let out = super::map_largest_first(&items, |&x| x % 7, |&x| x * 2);
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        // Enough work to go parallel.
        let out = super::map_largest_first(&items, |&x| x << 16, |&x| x * 2);
        assert_eq!(out, (0..100).map(|x| x * 2).collect::<Vec<_>>());
        assert!(super::map_largest_first(&Vec::<u8>::new(), |_| 0, |&x| x).is_empty());
    }
}
