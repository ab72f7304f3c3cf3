//! Parity of LQER (`pgq_quantizer::lqer`) with the independent NumPy
//! reference (`tests/reference/lqer_ref.py`): the same tensors chosen, the
//! factors' codes and scales, and the error after the correction.
//!
//! Each case is a set of int6 tensors (codes and per-row fp16 scales) whose
//! weights are `Q·s + E`, with `E` of decaying singular values plus noise,
//! so that the top singular vectors are well defined (an SVD of pure noise
//! has near-equal singular values, whose vectors two correct libraries may
//! return rotated). The test writes `.npy` files, runs the reference with
//! `python3` (or `$PGQ_PYTHON`) and FAILS, never skips, without numpy.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use half::f16;
use pgq_format::{Tensor, TensorData};
use pgq_metrics::SourceTensor;
use pgq_quantizer::lqer::{apply, LqerConfig, DEFAULT_LQER};

mod support;
use support::*;

/// SplitMix64 with Box–Muller normals.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// An int6 tensor and its weights `Q·s + E`: `E` has `terms` rank-one
/// terms of singular values `strength · 0.6^k` and noise of `noise`.
fn case(
    rng: &mut Rng,
    name: &str,
    (rows, cols): (usize, usize),
    strength: f64,
    terms: usize,
    noise: f64,
) -> (SourceTensor, Tensor) {
    let scales: Vec<f16> = (0..rows)
        .map(|_| f16::from_f64(0.002 + 0.01 * rng.uniform()))
        .collect();
    let codes: Vec<i8> = (0..rows * cols)
        .map(|_| (rng.normal() * 8.0).round().clamp(-31.0, 31.0) as i8)
        .collect();
    let mut e = vec![0f64; rows * cols];
    for k in 0..terms {
        let sigma = strength * 0.6f64.powi(k as i32);
        let u: Vec<f64> = (0..rows)
            .map(|_| rng.normal() / (rows as f64).sqrt())
            .collect();
        let v: Vec<f64> = (0..cols)
            .map(|_| rng.normal() / (cols as f64).sqrt())
            .collect();
        for i in 0..rows {
            for j in 0..cols {
                e[i * cols + j] += sigma * u[i] * v[j];
            }
        }
    }
    let values = (0..rows * cols)
        .map(|x| {
            let q = f32::from(codes[x]) * scales[x / cols].to_f32();
            (f64::from(q) + e[x] + noise * rng.normal()) as f32
        })
        .collect();
    let shape = vec![rows as u64, cols as u64];
    (
        SourceTensor {
            name: name.into(),
            shape: shape.clone(),
            values,
        },
        Tensor {
            name: name.into(),
            shape,
            data: TensorData::Quantized {
                bits: 6,
                group_size: 0,
                codes,
                scales,
                correction: None,
            },
        },
    )
}

fn write_i8(path: &Path, values: &[i8], shape: &[usize]) {
    let mut bytes = npy_header("|i1", shape);
    bytes.extend(values.iter().map(|&c| c as u8));
    fs::write(path, bytes).unwrap();
}

fn write_f16(path: &Path, values: &[f16], shape: &[usize]) {
    let mut bytes = npy_header("<f2", shape);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    fs::write(path, bytes).unwrap();
}

fn read_i64s(path: &Path) -> Vec<i64> {
    let (descr, _, data) = read_npy(path);
    assert_eq!(descr, "<i8");
    data.chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgq-lqer-parity-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("in")).unwrap();
    dir
}

/// Runs one case through both implementations and compares them; returns
/// (codes equal, codes compared) over all factors.
fn compare(name: &str, config: LqerConfig, cases: Vec<(SourceTensor, Tensor)>) -> (usize, usize) {
    let dir = scratch(name);
    let input = dir.join("in");
    let (sources, mut tensors): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
    for (i, (s, t)) in sources.iter().zip(&tensors).enumerate() {
        let (rows, cols) = (s.shape[0] as usize, s.shape[1] as usize);
        let TensorData::Quantized { codes, scales, .. } = &t.data else {
            unreachable!()
        };
        write_f32(&input.join(format!("W{i}.npy")), &s.values, &[rows, cols]);
        write_i8(&input.join(format!("Q{i}.npy")), codes, &[rows, cols]);
        write_f16(&input.join(format!("S{i}.npy")), scales, &[rows]);
    }
    write_scalar_i64(&input.join("count.npy"), sources.len() as i64);
    write_scalar_i64(&input.join("top_k.npy"), i64::from(config.top_k));
    write_scalar_i64(&input.join("rank.npy"), i64::from(config.rank));
    write_scalar_i64(&input.join("a_bits.npy"), i64::from(config.a_bits));
    write_scalar_i64(&input.join("b_bits.npy"), i64::from(config.b_bits));
    write_scalar_i64(&input.join("b_group.npy"), i64::from(config.b_group));

    let reports = apply(&config, &sources, &mut tensors).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/reference/lqer_ref.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(&input)
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: the reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dir.join("out");
    let chosen: Vec<usize> = read_i64s(&out.join("chosen.npy"))
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let corrected: Vec<usize> = tensors
        .iter()
        .enumerate()
        .filter(|(_, t)| t.data.kind() == pgq_format::Kind::LowRank)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(corrected, chosen, "{name}: the tensors chosen");
    let (mut equal, mut total) = (0, 0);
    for (&i, report) in chosen.iter().zip(&reports) {
        let TensorData::Quantized {
            correction: Some(c),
            ..
        } = &tensors[i].data
        else {
            unreachable!()
        };
        for (which, factor) in [("A", &c.a), ("B", &c.b)] {
            let codes = read_codes(&out.join(format!("{which}{i}_codes.npy")));
            let scales = read_scales(&out.join(format!("{which}{i}_scales.npy")));
            assert_eq!(codes.len(), factor.codes.len(), "{name} {i} {which}");
            equal += codes
                .iter()
                .zip(&factor.codes)
                .filter(|(a, b)| a == b)
                .count();
            total += codes.len();
            let same_scales = scales
                .iter()
                .zip(&factor.scales)
                .filter(|(a, b)| a == b)
                .count();
            // A scale is fp16(max|group| / 7.5): two SVDs that agree to
            // 1e-12 round it alike, barring a value on an fp16 midpoint.
            assert!(
                same_scales + 1 >= scales.len() && scales.len() == factor.scales.len(),
                "{name} {i} {which}: {same_scales} of {} scales equal",
                scales.len()
            );
        }
        let want = read_f64(&out.join(format!("err{i}.npy")));
        let relative = (report.error_after - want).abs() / want;
        eprintln!(
            "{name} {}: error {:.5} -> {:.5} (reference {want:.5}, {relative:.1e} apart)",
            report.tensor, report.error_before, report.error_after
        );
        assert!(relative < 1e-3, "{name} {}: {relative}", report.tensor);
        assert!(report.error_after < report.error_before, "{report:?}");
    }
    let _ = fs::remove_dir_all(&dir);
    (equal, total)
}

#[test]
fn lqer_matches_the_numpy_reference() {
    require_numpy();
    let mut rng = Rng(0x1797);
    // The records' configuration on shapes of the demo and golf models'
    // kinds (wide, tall, square; 48 columns, where groups of 64 run across
    // rows of B), and a thin tensor that takes rank 3 (its room) and the
    // symmetric form (64 does not divide 3 x 500).
    let cases = vec![
        case(&mut rng, "mlp.fc", (256, 96), 0.5, 8, 2e-4),
        case(&mut rng, "mlp.proj", (96, 256), 0.4, 8, 2e-4),
        case(&mut rng, "attn.q", (128, 128), 0.3, 8, 2e-4),
        case(&mut rng, "attn.k", (48, 48), 0.6, 8, 2e-4),
        case(&mut rng, "tok_emb", (300, 64), 0.2, 8, 2e-4),
        case(&mut rng, "thin", (3, 500), 5.0, 3, 2e-4),
    ];
    let (equal, total) = compare("records", DEFAULT_LQER, cases);
    // Rank 6 in int3/int5, top 2: groups of 64 do not divide 6 x 70 nor
    // 6 x 200, so both factors take the symmetric int5 form, one scale
    // per row.
    let cases = vec![
        case(&mut rng, "a", (200, 70), 0.5, 10, 1e-4),
        case(&mut rng, "b", (70, 200), 0.5, 10, 1e-4),
        case(&mut rng, "c", (64, 64), 0.1, 10, 1e-4),
    ];
    let config = LqerConfig {
        top_k: 2,
        rank: 6,
        a_bits: 3,
        b_bits: 5,
        b_group: 64,
    };
    let (equal2, total2) = compare("rank6", config, cases);
    let share = (equal + equal2) as f64 / (total + total2) as f64;
    eprintln!(
        "factor codes equal: {} of {} ({:.4}%)",
        equal + equal2,
        total + total2,
        100.0 * share
    );
    assert!(share >= 0.999, "{share}");
}
