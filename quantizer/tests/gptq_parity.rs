//! Parity of every method (GPTQ and RTN, with SDClip, absmax and the
//! percentile clip search under both objectives and both scopes) with the
//! independent NumPy reference (`tests/reference/gptq_ref.py`) on the demo
//! model's matrix shapes.
//!
//! The test writes each case as a folder of `.npy` files, runs the
//! reference with `python3` (or `$PGQ_PYTHON`) and compares: at least 99.9%
//! of the codes equal, identical scales and clip choices, Hessian-weighted
//! errors within 0.5% relative, and the same damping. Without python3 and numpy the test FAILS
//! (CI installs numpy): a skipped parity check would hide regressions.
//!
//! Run with `--nocapture` to see the table of figures.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use faer::{Accum, Mat, MatRef, Par};
use half::f16;
use pgq_format::dequantize_codes;
use pgq_quantizer::{
    hessian_error, quantize_gptq, quantize_rtn, quantize_rtn_with, Clip, ClipChoice, GptqConfig,
    Objective, RtnConfig, Scope,
};

// ---------------------------------------------------------------- inputs

/// SplitMix64 stream with Box–Muller normals: deterministic inputs.
struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: u64) -> Self {
        Rng {
            state: seed,
            spare: None,
        }
    }
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let r = (-2.0 * self.uniform().ln()).sqrt();
        let t = std::f64::consts::TAU * self.uniform();
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
    /// Student-t with 4 degrees of freedom: heavy tails like trained weights.
    fn student_t4(&mut self) -> f64 {
        let chi2: f64 = (0..4).map(|_| self.normal().powi(2)).sum();
        self.normal() / (chi2 / 4.0).sqrt()
    }
}

/// Weights: Student-t(4) values with per-row scales spread over 4x.
fn weights(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut w = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        let row_scale = 0.01 * (0.5 + 1.5 * rng.uniform());
        for _ in 0..cols {
            w.push((row_scale * rng.student_t4()) as f32);
        }
    }
    w
}

/// `H = X^T X / n` of `n = 2 cols + 64` correlated synthetic activations:
/// 32 shared latent factors mixed into every column, per-column noise,
/// per-column scales with a few 8x outlier channels (as in LLM activations),
/// and the `dead` columns always zero.
fn hessian(cols: usize, dead: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let n = 2 * cols + 64;
    let factors = 32;
    let z = Mat::<f64>::from_fn(n, factors, |_, _| rng.normal());
    let mix = Mat::<f64>::from_fn(factors, cols, |_, _| rng.normal() / (factors as f64).sqrt());
    let col_scale: Vec<f64> = (0..cols)
        .map(|j| {
            if dead.contains(&j) {
                0.0
            } else if rng.uniform() < 0.01 {
                8.0
            } else {
                0.5 + rng.uniform()
            }
        })
        .collect();
    let mut x = Mat::<f64>::zeros(n, cols);
    faer::linalg::matmul::matmul(
        x.as_mut(),
        Accum::Replace,
        z.as_ref(),
        mix.as_ref(),
        1.0,
        Par::rayon(0),
    );
    for j in 0..cols {
        for s in 0..n {
            x[(s, j)] = col_scale[j] * (x[(s, j)] + 0.3 * rng.normal());
        }
    }
    let mut h = Mat::<f64>::zeros(cols, cols);
    faer::linalg::matmul::matmul(
        h.as_mut(),
        Accum::Replace,
        x.transpose(),
        x.as_ref(),
        1.0 / n as f64,
        Par::rayon(0),
    );
    let mut out = vec![0.0f32; cols * cols];
    for i in 0..cols {
        for j in 0..cols {
            out[i * cols + j] = h[(i, j)] as f32;
        }
    }
    out
}

/// `H - 0.05 mean(diag H)` on the live diagonal: an indefinite Hessian (as
/// left by cancellation in a badly accumulated one) that the default damping
/// 0.01 cannot repair but 0.1 can.
fn indefinite(h: &[f32], cols: usize) -> Vec<f32> {
    let mean = (0..cols).map(|j| f64::from(h[j * cols + j])).sum::<f64>() / cols as f64;
    let mut out = h.to_vec();
    for j in 0..cols {
        if out[j * cols + j] != 0.0 {
            out[j * cols + j] = (f64::from(out[j * cols + j]) - 0.05 * mean) as f32;
            assert!(out[j * cols + j] > 0.0);
        }
    }
    out
}

// ------------------------------------------------------------- reference

mod support;
use support::*;

fn reference_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/reference/gptq_ref.py")
}

struct Reference {
    codes: Vec<i8>,
    scales: Vec<f16>,
    hess_err: f64,
    damp_used: f64,
    damp_attempts: i64,
    choices: Vec<i64>,
}

fn read_choices(path: &Path) -> Vec<i64> {
    let (descr, _, data) = read_npy(path);
    assert_eq!(descr, "<i8");
    data.chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn write_f64_list(path: &Path, values: &[f64]) {
    let mut bytes = npy_header("<f8", &[values.len()]);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    fs::write(path, bytes).unwrap();
}

/// One parity case: a method and its settings, as a recipe rule would give.
#[derive(Clone)]
struct Case {
    label: &'static str,
    /// `None` = RTN.
    gptq: Option<GptqConfig>,
    bits: u8,
    group_size: u32,
    clip: ClipChoice,
}

fn run_reference(
    dir: &Path,
    w: &[f32],
    rows: usize,
    cols: usize,
    h: &[f32],
    case: &Case,
) -> Reference {
    let input = dir.join("in");
    let output = dir.join("out");
    fs::create_dir_all(&input).unwrap();
    write_f32(&input.join("W.npy"), w, &[rows, cols]);
    write_f32(&input.join("H.npy"), h, &[cols, cols]);
    write_scalar_i64(&input.join("bits.npy"), i64::from(case.bits));
    write_scalar_i64(&input.join("group_size.npy"), i64::from(case.group_size));
    let k = match &case.clip {
        ClipChoice::SdClip { k } => f64::from(*k),
        _ => 0.0,
    };
    write_scalar_f64(&input.join("k.npy"), k);
    if let ClipChoice::Percentiles {
        list,
        objective,
        scope,
    } = &case.clip
    {
        let list: Vec<f64> = list.iter().map(|&p| f64::from(p)).collect();
        write_f64_list(&input.join("percentiles.npy"), &list);
        write_scalar_i64(
            &input.join("objective.npy"),
            i64::from(*objective == Objective::Hessian),
        );
        write_scalar_i64(&input.join("scope.npy"), i64::from(*scope == Scope::Tensor));
    }
    match &case.gptq {
        None => write_scalar_i64(&input.join("method.npy"), 1),
        Some(config) => {
            write_scalar_i64(&input.join("method.npy"), 0);
            write_scalar_f64(&input.join("damp.npy"), config.damp);
            write_scalar_i64(&input.join("act_order.npy"), i64::from(config.act_order));
            write_scalar_i64(&input.join("block_size.npy"), config.block_size as i64);
            write_scalar_f64(&input.join("rdo.npy"), config.rdo);
        }
    }

    let out = Command::new(python())
        .arg(reference_script())
        .arg(&input)
        .arg(&output)
        .output()
        .expect("running the NumPy reference");
    assert!(
        out.status.success(),
        "gptq_ref.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Reference {
        codes: read_codes(&output.join("codes.npy")),
        scales: read_scales(&output.join("scales.npy")),
        hess_err: read_f64(&output.join("hess_err.npy")),
        damp_used: read_f64(&output.join("damp_used.npy")),
        damp_attempts: read_i64(&output.join("damp_attempts.npy")),
        choices: read_choices(&output.join("choices.npy")),
    }
}

/// pgq's result for a case, in the reference's terms.
struct Ours {
    codes: Vec<i8>,
    scales: Vec<f16>,
    hess_err: f64,
    damp_used: f64,
    damp_attempts: u32,
    choices: Vec<u8>,
}

fn run_ours(w: &[f32], rows: usize, cols: usize, h: &[f32], case: &Case) -> Ours {
    match &case.gptq {
        Some(config) => {
            let config = GptqConfig {
                bits: case.bits,
                group_size: case.group_size,
                clip: case.clip.clone(),
                ..config.clone()
            };
            let r = quantize_gptq(w, rows, cols, h, &config).expect("Rust GPTQ");
            Ours {
                codes: r.codes,
                scales: r.scales,
                hess_err: r.hessian_error,
                damp_used: r.damp_used,
                damp_attempts: r.damp_attempts,
                choices: r.clip_choices,
            }
        }
        None => {
            let diagonal: Vec<f64> = (0..cols).map(|j| f64::from(h[j * cols + j])).collect();
            let (m, chosen) = quantize_rtn_with(
                w,
                rows,
                cols,
                case.bits,
                case.group_size,
                &case.clip,
                Some(&diagonal),
            )
            .expect("Rust RTN");
            let deq = dequantize_codes(&m.codes, &m.scales, cols, case.group_size);
            Ours {
                hess_err: hessian_error(w, &deq, rows, cols, h).expect("RTN error"),
                codes: m.codes,
                scales: m.scales,
                damp_used: 0.0,
                damp_attempts: 0,
                choices: chosen.choices,
            }
        }
    }
}

// ------------------------------------------------------------------ test

/// The field's candidate list (GPTQ-lite, seed 001).
fn candidates() -> Vec<f32> {
    vec![0.999, 0.9995, 0.9999, 0.99999, 1.0]
}

fn search(objective: Objective, scope: Scope) -> ClipChoice {
    ClipChoice::Percentiles {
        list: candidates(),
        objective,
        scope,
    }
}

/// GPTQ cases first (they also run on the retry Hessian), then RTN.
fn cases() -> Vec<Case> {
    let gptq = |act_order: bool| {
        Some(GptqConfig {
            act_order,
            ..GptqConfig::default()
        })
    };
    let sdclip = ClipChoice::SdClip { k: 12.85 };
    vec![
        Case {
            label: "gptq sdclip12.85 int6 act",
            gptq: gptq(true),
            bits: 6,
            group_size: 0,
            clip: sdclip.clone(),
        },
        Case {
            label: "gptq sdclip12.85 int6 g128 act",
            gptq: gptq(true),
            bits: 6,
            group_size: 128,
            clip: sdclip.clone(),
        },
        Case {
            label: "gptq absmax int8",
            gptq: gptq(false),
            bits: 8,
            group_size: 0,
            clip: ClipChoice::Absmax,
        },
        Case {
            label: "gptq pct/hessian int6 g128 act",
            gptq: gptq(true),
            bits: 6,
            group_size: 128,
            clip: search(Objective::Hessian, Scope::Row),
        },
        Case {
            label: "gptq sdclip12.85 int6 act rdo=0.5",
            gptq: Some(GptqConfig {
                rdo: 0.5,
                ..GptqConfig::default()
            }),
            bits: 6,
            group_size: 0,
            clip: sdclip.clone(),
        },
        Case {
            label: "gptq absmax int4 g128 rdo=0.2",
            gptq: Some(GptqConfig {
                rdo: 0.2,
                act_order: false,
                ..GptqConfig::default()
            }),
            bits: 4,
            group_size: 128,
            clip: ClipChoice::Absmax,
        },
        Case {
            label: "gptq pct/mse int6 act",
            gptq: gptq(true),
            bits: 6,
            group_size: 0,
            clip: search(Objective::Mse, Scope::Row),
        },
        Case {
            label: "rtn sdclip12.85 int6",
            gptq: None,
            bits: 6,
            group_size: 0,
            clip: sdclip,
        },
        Case {
            label: "rtn absmax int7 g64",
            gptq: None,
            bits: 7,
            group_size: 64,
            clip: ClipChoice::Absmax,
        },
        Case {
            label: "rtn pct/mse int6 (per row)",
            gptq: None,
            bits: 6,
            group_size: 0,
            clip: search(Objective::Mse, Scope::Row),
        },
        Case {
            label: "rtn pct/mse/tensor int6",
            gptq: None,
            bits: 6,
            group_size: 0,
            clip: search(Objective::Mse, Scope::Tensor),
        },
        Case {
            label: "rtn pct/hessian int6 g128",
            gptq: None,
            bits: 6,
            group_size: 128,
            clip: search(Objective::Hessian, Scope::Row),
        },
    ]
}

fn check(
    name: &str,
    dir: &Path,
    (w, rows, cols): (&[f32], usize, usize),
    h: &[f32],
    case: &Case,
) -> Ours {
    let label = format!("{name} {}", case.label);
    let start = std::time::Instant::now();
    let ours = run_ours(w, rows, cols, h, case);
    let rust_s = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let reference = run_reference(dir, w, rows, cols, h, case);
    let ref_s = start.elapsed().as_secs_f64();

    assert_eq!(reference.codes.len(), ours.codes.len(), "{label}");
    let equal = ours
        .codes
        .iter()
        .zip(&reference.codes)
        .filter(|(a, b)| a == b)
        .count();
    let max_diff = ours
        .codes
        .iter()
        .zip(&reference.codes)
        .map(|(&a, &b)| (i16::from(a) - i16::from(b)).abs())
        .max()
        .unwrap_or(0);
    let share = equal as f64 / ours.codes.len() as f64;
    let err_delta = (ours.hess_err - reference.hess_err) / reference.hess_err;
    let rtn_config = RtnConfig {
        bits: case.bits,
        group_size: case.group_size,
        clip: case.clip.as_clip().unwrap_or(Clip::Absmax),
    };
    let rtn = quantize_rtn(w, rows, cols, &rtn_config).expect("RTN");
    let rtn_deq = dequantize_codes(&rtn.codes, &rtn.scales, cols, case.group_size);
    let rtn_err = hessian_error(w, &rtn_deq, rows, cols, h).expect("RTN error");
    let expected_choices: Vec<i64> = if ours.choices.is_empty() {
        vec![-1; ours.scales.len()]
    } else {
        ours.choices.iter().map(|&c| i64::from(c)).collect()
    };
    let choices_equal = expected_choices
        .iter()
        .zip(&reference.choices)
        .filter(|(a, b)| a == b)
        .count();
    println!(
        "{label:<52} codes equal {:>9.5}% (max |diff| {max_diff})  hess_err rust {:.6e} ref {:.6e} \
         (rel delta {:+.2e}; plain RTN {:.6e})  choices equal {choices_equal}/{}  damp {} x{}  \
         rust {rust_s:.2}s ref {ref_s:.2}s",
        100.0 * share,
        ours.hess_err,
        reference.hess_err,
        err_delta,
        rtn_err,
        reference.choices.len(),
        ours.damp_used,
        ours.damp_attempts,
    );
    assert!(
        share >= 0.999,
        "{label}: only {:.4}% of codes equal",
        100.0 * share
    );
    assert!(
        ours.scales == reference.scales,
        "{label}: scales differ at {} positions",
        ours.scales
            .iter()
            .zip(&reference.scales)
            .filter(|(a, b)| a != b)
            .count()
    );
    assert_eq!(expected_choices, reference.choices, "{label}: clip choices");
    assert!(
        err_delta.abs() <= 0.005,
        "{label}: hessian error delta {err_delta}"
    );
    if case.gptq.is_some() {
        assert!(ours.hess_err < rtn_err, "{label}: GPTQ must beat plain RTN");
    }
    if case.gptq.is_none() {
        // RTN codes are a function of the scales, which are identical.
        assert!(share == 1.0, "{label}: RTN codes differ");
    }
    assert_eq!(
        i64::from(ours.damp_attempts),
        reference.damp_attempts,
        "{label}"
    );
    assert!(
        (ours.damp_used - reference.damp_used).abs() <= 1e-12 * reference.damp_used,
        "{label}: damping {} vs {}",
        ours.damp_used,
        reference.damp_used
    );
    ours
}

#[test]
fn every_method_matches_the_numpy_reference() {
    require_numpy();
    let root = std::env::temp_dir().join(format!("pgq-gptq-parity-{}", std::process::id()));
    fs::create_dir_all(&root).unwrap();

    let h512 = hessian(512, &[3, 200, 511], 0x5120);
    let h2048 = hessian(2048, &[0, 77, 1024, 1500, 2047], 0x2048);
    let shapes: [(&str, usize, usize); 4] = [
        ("attn 512x512", 512, 512),
        ("c_k 256x512", 256, 512),
        ("fc 2048x512", 2048, 512),
        ("proj 512x2048", 512, 2048),
    ];
    let mut n = 0;
    for (name, rows, cols) in shapes {
        let w = weights(rows, cols, 0xC0FFEE + rows as u64 * 7 + cols as u64);
        let h = if cols == 512 { &h512 } else { &h2048 };
        let dead: &[usize] = if cols == 512 {
            &[3, 200, 511]
        } else {
            &[0, 77, 1024, 1500, 2047]
        };
        for case in cases() {
            n += 1;
            let result = check(
                name,
                &root.join(format!("case{n}")),
                (&w, rows, cols),
                h,
                &case,
            );
            if case.gptq.is_some() {
                assert_eq!(result.damp_attempts, 1);
                // Dead columns are zero in every row.
                for r in 0..rows {
                    for &j in dead {
                        assert_eq!(result.codes[r * cols + j], 0);
                    }
                }
            }
        }
    }

    // The indefinite Hessian needs the damping retry, in both.
    let h_bad = indefinite(&h512, 512);
    let w = weights(256, 512, 0xBAD);
    let case = cases().swap_remove(0);
    let result = check(
        "c_k 256x512 indefinite H (retry)",
        &root.join("retry"),
        (&w, 256, 512),
        &h_bad,
        &case,
    );
    assert_eq!(result.damp_attempts, 2);
    assert!((result.damp_used - 0.1).abs() < 1e-12);

    let _ = fs::remove_dir_all(&root);
}

/// The matrix view used by the Hessian generator must agree with the
/// row-major layout the quantizer reads.
#[test]
fn generated_hessian_is_symmetric_with_dead_columns() {
    let h = hessian(64, &[5], 1);
    let m = MatRef::from_row_major_slice(&h, 64, 64);
    for i in 0..64 {
        for j in 0..64 {
            let (a, b) = (m[(i, j)], m[(j, i)]);
            assert!((a - b).abs() <= 1e-5 * (m[(i, i)] * m[(j, j)]).sqrt().max(1e-30));
        }
        assert_eq!(m[(5, i)], 0.0);
    }
    assert!(m[(0, 0)] > 0.0);
}
