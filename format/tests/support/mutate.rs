//! Deterministic file mutations for robustness tests: single-bit flips,
//! truncations, and byte splices (insertions, deletions, copies, overwrites).

#![allow(dead_code)]

// Whoever includes this file declares `rng` beside it (support/mod.rs,
// cli/tests/cli.rs and import.rs, verifier/tests/import.rs).
use super::rng;

pub struct Mutator(rng::SplitMix64);

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Mutator(rng::SplitMix64(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next()
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// A position biased towards the header, where most structure lives.
    fn position(&mut self, len: usize) -> usize {
        if self.next() % 2 == 0 {
            self.below(len.min(512))
        } else {
            self.below(len)
        }
    }

    /// One mutation of `base` and a short description of it.
    pub fn mutate(&mut self, base: &[u8]) -> (Vec<u8>, String) {
        let mut b = base.to_vec();
        let len = b.len();
        match self.below(6) {
            0 | 1 if len > 0 => {
                let at = self.position(len);
                let bit = self.below(8);
                b[at] ^= 1 << bit;
                (b, format!("flip bit {bit} of byte {at}"))
            }
            2 => {
                let at = self.below(len);
                b.truncate(at);
                (b, format!("truncate to {at} bytes"))
            }
            3 => {
                let at = self.position(len + 1).min(len);
                let n = 1 + self.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| self.next() as u8).collect();
                b.splice(at..at, bytes);
                (b, format!("insert {n} random bytes at {at}"))
            }
            4 if len > 0 => {
                let at = self.position(len);
                let n = (1 + self.below(16)).min(len - at);
                b.drain(at..at + n);
                (b, format!("delete {n} bytes at {at}"))
            }
            _ if len > 1 => {
                let from = self.below(len);
                let to = self.position(len);
                let n = (1 + self.below(32)).min(len - from).min(len - to);
                let chunk = base[from..from + n].to_vec();
                b[to..to + n].copy_from_slice(&chunk);
                (b, format!("copy {n} bytes from {from} over {to}"))
            }
            _ => {
                b.push(self.next() as u8);
                (b, "append a byte".into())
            }
        }
    }
}
