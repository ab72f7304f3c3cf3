//! A small work-sharing map over scoped threads: workers take items from an
//! atomic index, largest first, and the results come back in input order.
//!
//! Why not rayon: the work units are whole tensors (tens to ~140 per model),
//! so a shared counter balances them as well as work stealing would, without
//! another dependency in a crate that must also build for small targets.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// The number of workers for a request of `threads` (0 = one per core).
pub fn worker_count(threads: usize) -> usize {
    if threads > 0 {
        threads
    } else {
        thread::available_parallelism().map_or(1, NonZeroUsize::get)
    }
}

/// Applies `work` to every item on up to `threads` workers (0 = one per
/// core) and returns the results in the order of `items`.
///
/// Items are started in decreasing `cost` (ties in input order) so that the
/// largest tensor does not start last and leave the other cores idle. After
/// each item, `on_done(done, item_index)` runs on the worker that did it,
/// with `done` counting finished items (1-based, each value once).
pub fn map_largest_first<T, R, W, C, D>(
    items: &[T],
    threads: usize,
    cost: C,
    work: W,
    on_done: D,
) -> Vec<R>
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> R + Sync,
    C: Fn(&T) -> u64,
    D: Fn(usize, usize) + Sync,
{
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Stable sort: equal costs keep input order.
    order.sort_by_key(|&i| std::cmp::Reverse(items.get(i).map_or(0, &cost)));

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let workers = worker_count(threads).min(items.len()).max(1);
    let worker = || {
        let mut finished = Vec::new();
        loop {
            let slot = next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = order.get(slot) else { break };
            let Some(item) = items.get(index) else { break };
            let result = work(item);
            on_done(done.fetch_add(1, Ordering::Relaxed) + 1, index);
            finished.push((index, result));
        }
        finished
    };

    let mut indexed: Vec<(usize, R)> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(finished) => finished,
                // A panicking worker is a bug; re-raise it on the caller.
                Err(payload) => std::panic::resume_unwind(payload),
            })
            .collect()
    });
    // Every index was taken exactly once, so sorting restores input order.
    indexed.sort_by_key(|&(index, _)| index);
    indexed.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn results_come_back_in_input_order() {
        let items: Vec<u64> = (0..100).map(|i| (i * 37) % 11).collect();
        for threads in [1, 2, 3, 8] {
            let out = map_largest_first(&items, threads, |&x| x, |&x| x * 10, |_, _| {});
            let expected: Vec<u64> = items.iter().map(|x| x * 10).collect();
            assert_eq!(out, expected, "threads {threads}");
        }
    }

    #[test]
    fn largest_items_start_first_and_progress_counts_each_once() {
        let items = [1u64, 5, 3, 5];
        let seen = Mutex::new(Vec::new());
        map_largest_first(
            &items,
            1,
            |&x| x,
            |&x| x,
            |done, index| {
                if let Ok(mut seen) = seen.lock() {
                    seen.push((done, index));
                }
            },
        );
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen, vec![(1, 1), (2, 3), (3, 2), (4, 0)]);
    }

    #[test]
    fn empty_input() {
        let out: Vec<u8> = map_largest_first(&[] as &[u8], 0, |_| 0, |&x| x, |_, _| {});
        assert!(out.is_empty());
    }
}
