use super::*;
use crate::pipeline::{quantize, DEFAULT_RECIPE};
use crate::recipe::Recipe;
use crate::{DefaultPolicy, DemoConfig, DemoHessians};

const ALLOCATION: Allocation = Allocation::PerTensor;

fn demo() -> (Vec<SourceTensor>, DemoHessians) {
    let config = DemoConfig::tiny();
    (
        config.generate(0).unwrap(),
        DemoHessians::generate(&config, 0).unwrap(),
    )
}

fn input(h: &DemoHessians) -> HessianInput<'_> {
    HessianInput {
        source: h,
        names: Vec::new(),
        origin: "synthetic".into(),
        sha256: None,
    }
}

/// `quantize_to_budget` of the demo on the CPU.
fn fit(
    sources: &[SourceTensor],
    planning: &Planning,
    hessians: Option<&HessianInput>,
    threads: usize,
    bytes: u64,
    allocation: Allocation,
) -> Result<(Artifact, BudgetReport), PipelineError> {
    quantize_to_budget(
        &Backend::Cpu,
        sources,
        planning,
        hessians,
        &options(threads),
        Budget { bytes, allocation },
    )
}

/// The bytes of the demo quantized by the default recipe, without a budget.
fn gptq_size(sources: &[SourceTensor], h: &DemoHessians) -> u64 {
    let plain = quantize(
        &Backend::Cpu,
        sources,
        &gptq(),
        Some(&input(h)),
        &options(0),
    )
    .unwrap();
    plain.bytes.len() as u64
}

fn gptq() -> Planning {
    Planning::Recipe(Recipe::parse(DEFAULT_RECIPE).unwrap())
}

fn options(threads: usize) -> Options<'static> {
    Options {
        threads,
        ..Options::default()
    }
}

#[test]
fn gptq_lands_in_the_window_for_several_budgets() {
    let (sources, h) = demo();
    let size = gptq_size(&sources, &h);
    for budget in [
        size * 85 / 100,
        size * 95 / 100,
        size + 3_000,
        size * 108 / 100,
    ] {
        let (artifact, report) =
            fit(&sources, &gptq(), Some(&input(&h)), 0, budget, ALLOCATION).unwrap();
        let bytes = artifact.bytes.len() as u64;
        assert!(
            bytes <= budget && bytes >= budget - SLACK,
            "budget {budget}: {bytes} bytes, rounds {:?}",
            report.rounds
        );
        assert_eq!(report.file_bytes, bytes);
        assert!(report.binding);
        assert!(report.hessian_weighted);
        // The file reads back, and the codes are the reports' codes.
        let archive = pgq_format::read(&artifact.bytes, &Default::default()).unwrap();
        assert_eq!(archive.tensors, artifact.tensors);
        assert_eq!(
            artifact.metadata["pgq.budget"],
            MetaValue::Str(budget.to_string())
        );
        // Each tunable tensor's label names its chosen k.
        for t in &report.tensors {
            let k = t.k.unwrap();
            let r = artifact.reports.iter().find(|r| r.name == t.name).unwrap();
            assert!(r.method.contains(&format!("k={k}")), "{} {}", r.method, k);
        }
    }
}

#[test]
fn uniform_keeps_the_recipes_ratios_within_its_span() {
    let (sources, h) = demo();
    let budget = gptq_size(&sources, &h) * 9 / 10;
    let (_, report) = fit(
        &sources,
        &gptq(),
        Some(&input(&h)),
        0,
        budget,
        Allocation::Uniform,
    )
    .unwrap();
    // Every tensor's k over its rule's k: one common factor, give or take
    // UNIFORM_SPAN steps on each side.
    let ratios: Vec<f64> = report
        .tensors
        .iter()
        .map(|t| f64::from(t.k.unwrap()) / f64::from(t.rule_k.unwrap()))
        .collect();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(0.0, f64::max);
    let spread = 2f64.powf(f64::from(2 * UNIFORM_SPAN) / 32.0);
    assert!(hi / lo <= spread * 1.0001, "{lo} .. {hi}");
    assert!(lo > 1.0, "a smaller budget means a looser clip: {lo}");
}

#[test]
fn more_bytes_buy_less_error() {
    let (sources, h) = demo();
    let size = gptq_size(&sources, &h);
    let error = |budget: u64| {
        let (artifact, _) =
            fit(&sources, &gptq(), Some(&input(&h)), 0, budget, ALLOCATION).unwrap();
        artifact
            .reports
            .iter()
            .filter_map(|r| r.hessian_error)
            .sum::<f64>()
    };
    assert!(error(size * 9 / 10) > error(size * 11 / 10));
}

#[test]
fn the_same_inputs_give_the_same_bytes_on_any_thread_count() {
    let (sources, h) = demo();
    let budget = gptq_size(&sources, &h) * 9 / 10;
    let run = |threads: usize| {
        fit(
            &sources,
            &gptq(),
            Some(&input(&h)),
            threads,
            budget,
            ALLOCATION,
        )
        .unwrap()
        .0
        .bytes
    };
    assert_eq!(run(1), run(3));
}

#[test]
fn rtn_without_hessians_lands_too() {
    let (sources, _) = demo();
    let planning = Planning::Policy(DefaultPolicy::default());
    let plain = quantize(&Backend::Cpu, &sources, &planning, None, &options(0)).unwrap();
    let budget = plain.bytes.len() as u64 * 9 / 10;
    let (artifact, report) = fit(&sources, &planning, None, 0, budget, ALLOCATION).unwrap();
    let bytes = artifact.bytes.len() as u64;
    assert!(bytes <= budget && bytes >= budget - SLACK, "{bytes}");
    assert!(!report.hessian_weighted);
    assert!(report.tensors.iter().all(|t| t.rule_k.is_some()));
}

#[test]
fn a_budget_under_the_coarsest_choice_is_refused_with_the_smallest_size() {
    let (sources, h) = demo();
    let e = fit(&sources, &gptq(), Some(&input(&h)), 0, 50_000, ALLOCATION).unwrap_err();
    match e {
        PipelineError::Budget(BudgetError::TooSmall {
            budget,
            smallest,
            fixed,
        }) => {
            assert_eq!(budget, 50_000);
            assert!(smallest > budget && fixed < smallest, "{smallest} {fixed}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_loose_budget_does_not_bind() {
    let (sources, h) = demo();
    let (artifact, report) = fit(
        &sources,
        &gptq(),
        Some(&input(&h)),
        0,
        50_000_000,
        ALLOCATION,
    )
    .unwrap();
    assert!(!report.binding);
    assert!(artifact.bytes.len() < 50_000_000 - SLACK as usize);
}
