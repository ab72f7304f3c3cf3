//! Fuzz target for the input path of `pgq quantize`: a safetensors
//! checkpoint, a TOML recipe and `--only` globs, read, planned and (when
//! small) quantized and written as the CLI does.
//!
//! An input is `[recipe_len: u16 LE][recipe: recipe_len bytes][flags: u8]
//! [checkpoint: the rest]`; flags bit 0 is `--drop-non-float`. The seeds in
//! `fuzz/seeds/quantize_input/` are made by `fuzz/make_seeds.py`.
//!
//! Nothing may panic, and:
//! * an accepted checkpoint holds, per tensor, as many f32 values as its
//!   shape says;
//! * every line of the recipe, used as an `--only` glob, compiles or is
//!   refused with a message (deep or long globs included);
//! * a recipe that plans every tensor of a small checkpoint quantizes it
//!   through the library's pipeline, as `pgq quantize` does (without
//!   Hessians: a GPTQ rule is a clean error), into a valid `.pgq` with its
//!   content digest that reads back to the same tensors, unless a source
//!   value is NaN or infinite (then the writer refuses it).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pgq_format::{read, Compression, MetaValue, ReadOptions};
use pgq_quantizer::backend::Backend;
use pgq_quantizer::checkpoint;
use pgq_quantizer::pipeline::{quantize, Options, PipelineError, Planning};
use pgq_quantizer::recipe::name_glob;
use pgq_quantizer::{tensor_digest, Recipe};

/// Checkpoints up to this many values are quantized (keeps runs fast).
const MAX_QUANTIZED_VALUES: usize = 1 << 14;

fn split(data: &[u8]) -> Option<(&[u8], u8, &[u8])> {
    let len = usize::from(u16::from_le_bytes([*data.first()?, *data.get(1)?]));
    let recipe = data.get(2..2 + len)?;
    let flags = *data.get(2 + len)?;
    Some((recipe, flags, &data[3 + len..]))
}

fuzz_target!(|data: &[u8]| {
    let Some((recipe, flags, checkpoint_bytes)) = split(data) else {
        return;
    };
    let text = String::from_utf8_lossy(recipe);
    for line in text.lines().take(8) {
        if let Ok(glob) = name_glob(line) {
            glob.is_match("blocks.0.attn.c_q.weight");
        }
    }
    let recipe = Recipe::parse(&text);
    if let Ok(r) = &recipe {
        assert!(r.describe().starts_with("recipe v1: "));
    }
    let Ok(checkpoint) = checkpoint::parse(checkpoint_bytes, flags & 1 != 0) else {
        return;
    };
    for t in &checkpoint.tensors {
        let n = t.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
        assert_eq!(n, Some(t.values.len() as u64), "{}", t.name);
    }
    let Ok(recipe) = recipe else {
        return;
    };
    let layout: Vec<(String, Vec<u64>)> = checkpoint
        .tensors
        .iter()
        .map(|t| (t.name.clone(), t.shape.clone()))
        .collect();
    let Ok(plans) = recipe.plan_all(&layout) else {
        return;
    };
    let values: usize = checkpoint.tensors.iter().map(|t| t.values.len()).sum();
    if values > MAX_QUANTIZED_VALUES {
        return;
    }
    drop(plans);
    let options = Options {
        compression: Compression::Raw,
        threads: 1,
        ..Options::default()
    };
    let planning = Planning::Recipe(recipe);
    match quantize(
        &Backend::Cpu,
        &checkpoint.tensors,
        &planning,
        None,
        &options,
    ) {
        Ok(artifact) => {
            let back =
                read(&artifact.bytes, &ReadOptions::default()).expect("what pgq writes, it reads");
            assert_eq!(back.tensors, artifact.tensors);
            assert_eq!(back.tensors.len(), checkpoint.tensors.len());
            let digest = tensor_digest(
                checkpoint
                    .tensors
                    .iter()
                    .map(|t| (t.name.as_str(), t.shape.as_slice(), t.values.as_slice())),
            );
            assert_eq!(
                artifact.metadata.get("pgq.source.sha256"),
                Some(&MetaValue::Str(digest))
            );
        }
        Err(PipelineError::Write(e)) => assert!(
            checkpoint
                .tensors
                .iter()
                .any(|t| t.values.iter().any(|v| !v.is_finite())),
            "a finite checkpoint's model does not write: {e}"
        ),
        Err(_) => {}
    }
});
