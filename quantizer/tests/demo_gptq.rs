//! GPTQ on the demo model's real shapes with its synthetic, correlated
//! Hessians: it must beat plain RTN in output space on every matrix, and
//! give the same bytes for any thread count.

use pgq_quantizer::{
    quantize_planned, DemoConfig, DemoHessians, NoHessians, QuantizeError, Recipe, SourceTensor,
    TensorPlan,
};

fn recipe(name: &str) -> Recipe {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recipes")
        .join(format!("{name}.toml"));
    Recipe::load(path).expect("shipped recipe")
}

fn plans(recipe: &Recipe, sources: &[SourceTensor]) -> Vec<TensorPlan> {
    let layout: Vec<(String, Vec<u64>)> = sources
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    recipe
        .plan_all(&layout)
        .expect("the recipe covers the demo model")
        .iter()
        .map(|(_, plan)| plan.to_tensor_plan())
        .collect()
}

/// Two blocks of the default model: every matrix shape of the demo (512x512,
/// 256x512, 2048x512, 512x2048, the 8192x512 embedding).
fn two_blocks() -> DemoConfig {
    DemoConfig {
        layers: 2,
        ..DemoConfig::default()
    }
}

#[test]
fn gptq_beats_rtn_in_output_space_on_every_matrix() {
    let config = two_blocks();
    let sources = config.generate(0).unwrap();
    let hessians = DemoHessians::generate(&config, 0).unwrap();
    for name in ["default", "groupwise-hessian"] {
        let plans = plans(&recipe(name), &sources);
        let model = quantize_planned(&sources, &plans, &hessians, 0, None).unwrap();
        let mut matrices = 0;
        for report in &model.reports {
            if report.method == "keep-f16" {
                assert!(report.hessian_error.is_none() && report.rtn.is_none());
                continue;
            }
            matrices += 1;
            assert!(report.method.starts_with("gptq-"), "{report:?}");
            let rtn = report.rtn.as_ref().expect("plain RTN beside GPTQ");
            let (ours, theirs) = (report.hessian_error.unwrap(), rtn.hessian_error.unwrap());
            assert!(
                ours < theirs,
                "{name}: {}: GPTQ {ours:e} vs RTN {theirs:e}",
                report.name
            );
            // The synthetic Hessians are positive definite: no damping retry.
            assert!(report.damp_attempts == Some(1), "{report:?}");
        }
        assert_eq!(matrices, 1 + 6 * 2, "{name}");
    }
}

#[test]
fn gptq_output_does_not_depend_on_threads() {
    let config = DemoConfig::tiny();
    let sources = config.generate(0).unwrap();
    let hessians = DemoHessians::generate(&config, 0).unwrap();
    let plans = plans(&recipe("groupwise-hessian"), &sources);
    let one = quantize_planned(&sources, &plans, &hessians, 1, None).unwrap();
    let two = quantize_planned(&sources, &plans, &hessians, 2, None).unwrap();
    let three = quantize_planned(&sources, &plans, &hessians, 3, None).unwrap();
    assert_eq!(one, two);
    assert_eq!(one, three);
}

#[test]
fn a_plan_that_needs_a_hessian_without_one_is_an_error() {
    let config = DemoConfig::tiny();
    let sources = config.generate(0).unwrap();
    let plans = plans(&recipe("default"), &sources);
    let err = quantize_planned(&sources, &plans, &NoHessians, 0, None).unwrap_err();
    assert!(
        matches!(&err, QuantizeError::MissingHessian { tensor, .. } if tensor == "tok_emb.weight"),
        "{err}"
    );
    assert!(
        err.to_string().contains("needs the tensor's Hessian"),
        "{err}"
    );
}

#[test]
fn a_hessian_of_the_wrong_size_is_an_error() {
    let config = DemoConfig::tiny();
    let sources = config.generate(0).unwrap();
    let plans = plans(&recipe("default"), &sources);
    let mut wrong = std::collections::BTreeMap::new();
    for s in &sources {
        wrong.insert(s.name.clone(), vec![1.0f32; 9]);
    }
    let err = quantize_planned(&sources, &plans, &wrong, 0, None).unwrap_err();
    assert!(
        matches!(
            &err,
            QuantizeError::HessianShape {
                len: 9,
                cols: 192,
                ..
            }
        ),
        "{err}"
    );
}
