//! Robustness: mutated files are rejected with a named field and offset,
//! or decode to exactly the original values. The reader never panics.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use pgq_format::{read, ReadOptions};
use support::mutate::Mutator;
use support::vectors;

/// Decoded f32 bits of every tensor: what "the same values" means.
fn fingerprint(bytes: &[u8]) -> Option<Vec<(String, Vec<u32>)>> {
    let archive = read(bytes, &ReadOptions::default()).ok()?;
    Some(
        archive
            .tensors
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.dequantize().iter().map(|x| x.to_bits()).collect(),
                )
            })
            .collect(),
    )
}

#[test]
fn ten_thousand_mutations_never_panic_and_never_change_values_silently() {
    // The multi-MiB vectors would spend the run decompressing; the fuzz
    // target and the CLI tests cover large sections.
    let bases: Vec<(String, Vec<u8>)> = vectors::positives()
        .into_iter()
        .filter(|p| p.bytes.len() < 16 << 10)
        .map(|p| (p.name.to_string(), p.bytes))
        .collect();
    let per_base = 12_000 / bases.len() + 1;
    let (mut rejected, mut identical) = (0usize, 0usize);
    let mut m = Mutator::new(0x00C0_FFEE);
    for (name, base) in &bases {
        let original = fingerprint(base).expect("positive vectors decode");
        for _ in 0..per_base {
            let (mutated, what) = m.mutate(base);
            let outcome =
                catch_unwind(AssertUnwindSafe(|| read(&mutated, &ReadOptions::default())));
            match outcome {
                Err(_) => panic!("{name}: reader panicked on: {what}"),
                Ok(Err(e)) => {
                    assert!(
                        !e.field.is_empty(),
                        "{name}: {what}: error without a field: {e}"
                    );
                    assert!(
                        e.offset <= mutated.len() as u64 + 1,
                        "{name}: {what}: offset {} past the end",
                        e.offset
                    );
                    rejected += 1;
                }
                Ok(Ok(_)) => {
                    assert_eq!(
                        fingerprint(&mutated).as_ref(),
                        Some(&original),
                        "{name}: {what}: accepted with other values"
                    );
                    identical += 1;
                }
            }
        }
    }
    let total = rejected + identical;
    assert!(total >= 10_000, "only {total} mutations");
    eprintln!("{total} mutations: {rejected} rejected, {identical} decoded to the original values");
}
