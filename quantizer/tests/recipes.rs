//! The shipped recipes (`recipes/*.toml`) against the demo model, and the
//! recipe rules that protect against ordering mistakes.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pgq_quantizer::recipe::{ClipChoice, Method, Objective, Recipe, RecipeError, RulePlan, Scope};
use pgq_quantizer::{DefaultPolicy, DemoConfig, Planner, TensorPlan};

const SHIPPED: [&str; 6] = [
    "default",
    "gptq-lite",
    "groupwise-hessian",
    "per-class-clip",
    "recurrence-int8",
    "sdclip-gptq",
];

fn recipes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../recipes")
}

fn load(name: &str) -> Recipe {
    let path = recipes_dir().join(format!("{name}.toml"));
    Recipe::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn demo_layout() -> Vec<(String, Vec<u64>)> {
    DemoConfig::default().layout().unwrap()
}

/// The plan of one tensor of a planned layout.
fn plan_of<'a>(plans: &'a [(String, RulePlan)], name: &str) -> &'a RulePlan {
    &plans
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no plan for {name}"))
        .1
}

/// (bits, group_size, clip) of a quantize plan.
fn quantized(plan: &RulePlan) -> (u8, u32, &ClipChoice, &Method) {
    match plan {
        RulePlan::Quantize {
            bits,
            group_size,
            clip,
            method,
            ..
        } => (*bits, *group_size, clip, method),
        RulePlan::Keep { .. } => panic!("expected a quantize plan"),
    }
}

fn is_control(name: &str) -> bool {
    !name.ends_with(".weight")
}

const RECORDS_GPTQ: Method = Method::Gptq {
    act_order: true,
    damp: 0.01,
    block_size: 128,
    rdo: 0.0,
};

fn search_list() -> Vec<f32> {
    vec![0.999, 0.9995, 0.9999, 0.99999, 1.0]
}

#[test]
fn the_shipped_set_is_complete() {
    let found: BTreeSet<String> = std::fs::read_dir(recipes_dir())
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "toml").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    let expected: BTreeSet<String> = SHIPPED.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn every_shipped_recipe_covers_the_demo_model() {
    let layout = demo_layout();
    for name in SHIPPED {
        let recipe = load(name);
        let plans = recipe
            .plan_all(&layout)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plans.len(), layout.len(), "{name}");
        for ((tensor, shape), (planned, plan)) in layout.iter().zip(&plans) {
            assert_eq!(tensor, planned, "{name}: order");
            let elements: u64 = shape.iter().product();
            // Control tensors are kept, every weight matrix is quantized.
            assert_eq!(
                plan.is_keep(),
                is_control(tensor),
                "{name}: {tensor} ({elements} elements) got {plan:?}"
            );
            // Provenance points at a rule that does match the tensor.
            assert!(recipe.rules()[plan.rule()].matches(tensor, shape));
        }
        // Every shipped recipe starts with a header comment.
        let text = std::fs::read_to_string(recipes_dir().join(format!("{name}.toml"))).unwrap();
        assert!(
            text.starts_with(&format!("# {name}.toml: ")),
            "{name}: header"
        );
        assert!(recipe
            .describe()
            .starts_with("recipe v1: 0 \"*\" n<=65536 keep; "));
    }
}

#[test]
fn default_recipe_has_the_default_policys_numbers() {
    let policy = DefaultPolicy::default();
    let recipe = load("default");
    for config in [DemoConfig::default(), DemoConfig::tiny()] {
        let layout = config.layout().unwrap();
        let plans = recipe.plan_all(&layout).unwrap();
        for ((name, shape), (_, plan)) in layout.iter().zip(&plans) {
            match (policy.plan(name, shape), plan) {
                (TensorPlan::Keep, RulePlan::Keep { .. }) => {}
                (TensorPlan::Quantize(rtn), plan) => {
                    let (bits, group_size, clip, method) = quantized(plan);
                    assert_eq!(bits, rtn.bits, "{name}");
                    assert_eq!(group_size, rtn.group_size, "{name}");
                    assert_eq!(clip.as_clip(), rtn.clip.as_clip(), "{name}");
                    assert_eq!(*method, RECORDS_GPTQ, "{name}");
                }
                (policy_plan, plan) => panic!("{name}: {policy_plan:?} vs {plan:?}"),
            }
        }
    }
}

#[test]
fn sdclip_gptq_names_every_class() {
    let plans = load("sdclip-gptq").plan_all(&demo_layout()).unwrap();
    let (bits, _, clip, method) = quantized(plan_of(&plans, "tok_emb.weight"));
    assert_eq!(
        (bits, clip, *method),
        (8, &ClipChoice::SdClip { k: 20.0 }, RECORDS_GPTQ)
    );
    for name in ["blocks.0.attn.c_k.weight", "blocks.10.mlp.proj.weight"] {
        let (bits, group, clip, method) = quantized(plan_of(&plans, name));
        assert_eq!(
            (bits, group, clip, *method),
            (6, 0, &ClipChoice::SdClip { k: 12.85 }, RECORDS_GPTQ)
        );
    }
    // A tensor outside the named classes is reported, not defaulted.
    let mut layout = demo_layout();
    layout.push(("lm_head.weight".into(), vec![8192, 512]));
    let err = load("sdclip-gptq").plan_all(&layout).unwrap_err();
    assert!(
        matches!(&err, RecipeError::Coverage { uncovered, unused } if uncovered == &["lm_head.weight"] && unused.is_empty()),
        "{err:?}"
    );
}

#[test]
fn per_class_clip_is_seed_003() {
    let plans = load("per-class-clip").plan_all(&demo_layout()).unwrap();
    let expect = |name: &str, bits: u8, k: f32| {
        let (b, group, clip, method) = quantized(plan_of(&plans, name));
        assert_eq!(
            (b, group, clip, *method),
            (bits, 0, &ClipChoice::SdClip { k }, RECORDS_GPTQ),
            "{name}"
        );
    };
    expect("tok_emb.weight", 7, 15.0);
    for i in [0, 5, 10] {
        expect(&format!("blocks.{i}.mlp.fc.weight"), 6, 12.0);
        expect(&format!("blocks.{i}.mlp.proj.weight"), 6, 12.0);
        for m in ["c_q", "c_k", "c_v", "proj"] {
            expect(&format!("blocks.{i}.attn.{m}.weight"), 6, 13.0);
        }
    }
}

#[test]
fn gptq_lite_is_seed_002() {
    let plans = load("gptq-lite").plan_all(&demo_layout()).unwrap();
    // PR #379 keeps the candidate with the least error over the tensor.
    let search = ClipChoice::Percentiles {
        list: search_list(),
        objective: Objective::Mse,
        scope: Scope::Tensor,
    };
    for (name, plan) in &plans {
        if plan.is_keep() {
            continue;
        }
        let (bits, group, clip, method) = quantized(plan);
        assert_eq!((*method, group), (Method::Rtn, 0), "{name}");
        assert!(plan.as_rtn().is_none() && !plan.needs_hessian(), "{name}");
        let expected_bits = if name == "tok_emb.weight"
            || name.starts_with("blocks.0.")
            || name.starts_with("blocks.10.")
        {
            8
        } else {
            6
        };
        assert_eq!(bits, expected_bits, "{name}");
        if name == "tok_emb.weight" {
            assert_eq!(
                clip,
                &ClipChoice::Percentiles {
                    list: vec![0.9999984],
                    objective: Objective::Mse,
                    scope: Scope::Row,
                }
            );
        } else {
            assert_eq!(clip, &search, "{name}");
        }
    }
    // blocks.1 is not blocks.10's prefix match: int6.
    assert_eq!(quantized(plan_of(&plans, "blocks.1.mlp.fc.weight")).0, 6);
}

#[test]
fn recurrence_int8_forces_the_shared_blocks() {
    let plans = load("recurrence-int8").plan_all(&demo_layout()).unwrap();
    for (name, plan) in plans.iter().filter(|(n, _)| n.starts_with("blocks.")) {
        if plan.is_keep() {
            continue;
        }
        let shared = name.starts_with("blocks.4.") || name.starts_with("blocks.5.");
        let (bits, _, _, method) = quantized(plan);
        assert_eq!(bits, if shared { 8 } else { 6 }, "{name}");
        assert_eq!(*method, Method::Rtn);
    }
    // Its own comment warns about the order: swapping the two block rules
    // must be an error, not int6 shared layers.
    let text = std::fs::read_to_string(recipes_dir().join("recurrence-int8.toml")).unwrap();
    let shared = "[[rule]]\nmatch = \"blocks.{4,5}.*.weight\"\nbits = 8\n";
    let general = "[[rule]]\nmatch = \"blocks.*.weight\"\nbits = 6\n";
    assert!(text.contains(shared) && text.contains(general));
    let swapped = text
        .replace(shared, "@@SHARED@@")
        .replace(general, shared)
        .replace("@@SHARED@@", general);
    let err = Recipe::parse(&swapped)
        .unwrap()
        .plan_all(&demo_layout())
        .unwrap_err();
    match err {
        RecipeError::Coverage { uncovered, unused } => {
            assert!(uncovered.is_empty());
            assert_eq!(unused.len(), 1);
            assert_eq!(unused[0].pattern, "blocks.{4,5}.*.weight");
            assert_eq!(unused[0].shadowed_by.len(), 1);
            assert!(unused[0].shadowed_by[0] < unused[0].rule);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn groupwise_hessian_is_seed_001() {
    let plans = load("groupwise-hessian").plan_all(&demo_layout()).unwrap();
    let (bits, group, clip, method) = quantized(plan_of(&plans, "blocks.3.attn.c_v.weight"));
    assert_eq!(
        (bits, group, clip, *method),
        (
            6,
            128,
            &ClipChoice::Percentiles {
                list: search_list(),
                objective: Objective::Hessian,
                scope: Scope::Row,
            },
            RECORDS_GPTQ
        )
    );
    let embedding = plan_of(&plans, "tok_emb.weight");
    assert_eq!(quantized(embedding).0, 8);
    assert!(plans.iter().all(|(_, p)| p.is_keep() || p.needs_hessian()));
}

#[test]
fn a_broad_rule_first_makes_the_specific_rule_an_error() {
    let text = |first: &str, second: &str| {
        format!(
            "[[rule]]\nmatch = \"*\"\nmax_elements = 65536\nkeep = true\n\
             [[rule]]\nmatch = \"tok_emb.weight\"\nbits = 8\nclip = {{ sdclip = 20.0 }}\n\
             {first}{second}"
        )
    };
    let mlp = "[[rule]]\nmatch = \"blocks.*.mlp.*\"\nbits = 8\nclip = { sdclip = 12.0 }\n";
    let blocks = "[[rule]]\nmatch = \"blocks.*\"\nbits = 6\nclip = { sdclip = 13.0 }\n";
    let layout = demo_layout();

    let right = Recipe::parse(&text(mlp, blocks)).unwrap();
    let plans = right.plan_all(&layout).unwrap();
    assert_eq!(quantized(plan_of(&plans, "blocks.2.mlp.fc.weight")).0, 8);
    assert_eq!(quantized(plan_of(&plans, "blocks.2.attn.c_q.weight")).0, 6);

    let wrong = Recipe::parse(&text(blocks, mlp)).unwrap();
    let err = wrong.plan_all(&layout).unwrap_err();
    assert_eq!(
        err.to_string(),
        "recipe does not fit the tensors: rule 3 (`blocks.*.mlp.*`) matches no tensor: \
         every tensor it matches is taken first by rule 2"
    );
}

#[test]
fn a_catch_all_keep_with_max_elements_never_keeps_a_matrix() {
    // Only the small-tensor keep and the embedding: the matrices fall through
    // the keep rule (too large) and are reported.
    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"*\"\nmax_elements = 65536\nkeep = true\n\
         [[rule]]\nmatch = \"tok_emb.weight\"\nbits = 8\nclip = { sdclip = 20.0 }\n",
    )
    .unwrap();
    match recipe.plan_all(&demo_layout()).unwrap_err() {
        RecipeError::Coverage { uncovered, unused } => {
            assert!(unused.is_empty());
            assert_eq!(uncovered.len(), 11 * 6);
            assert!(uncovered.iter().all(|n| n.ends_with(".weight")));
            assert!(uncovered.contains(&"blocks.0.attn.c_q.weight".to_string()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_keys_and_bad_bits_name_the_rule() {
    let recipe = "[[rule]]\nmatch = \"*\"\nkeep = true\n\
                  [[rule]]\nmatch = \"x\"\nbits = 6\nclip = \"absmax\"\ngroupsize = 128\n";
    let err = Recipe::parse(recipe).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("rule 1: unknown key `groupsize`"),
        "{message}"
    );
    let err = Recipe::parse("[[rule]]\nmatch = \"*\"\nbits = 12\nclip = \"absmax\"\n").unwrap_err();
    assert_eq!(err.to_string(), "rule 0: bits = 12 is outside 2..=8");
}

#[test]
fn load_errors_carry_the_path() {
    let missing = recipes_dir().join("no-such-recipe.toml");
    let err = Recipe::load(&missing).unwrap_err();
    assert!(matches!(err, RecipeError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-recipe.toml"));

    let dir = std::env::temp_dir().join(format!("pgq-recipe-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[rule]]\nmatch = \"*\"\nkep = true\n").unwrap();
    let err = Recipe::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    match &err {
        RecipeError::InFile { path: p, error } => {
            assert_eq!(p, &path);
            assert!(matches!(**error, RecipeError::UnknownKey { ref key, .. } if key == "kep"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn describe_is_deterministic_and_distinguishes_recipes() {
    let descriptions: Vec<String> = SHIPPED.iter().map(|n| load(n).describe()).collect();
    for (name, description) in SHIPPED.iter().zip(&descriptions) {
        assert_eq!(&load(name).describe(), description, "{name}");
        assert!(
            description.len() < 600,
            "{name}: {} bytes",
            description.len()
        );
    }
    let distinct: BTreeSet<&String> = descriptions.iter().collect();
    assert_eq!(distinct.len(), SHIPPED.len());
    assert_eq!(
        load("default").describe(),
        "recipe v1: 0 \"*\" n<=65536 keep; \
         1 \"*emb*\" rank>=2 gptq(ao,d=0.01,b=128)-sdclip k=20 int8; \
         2 \"*\" rank>=2 gptq(ao,d=0.01,b=128)-sdclip k=12.85 int6"
    );
}

#[test]
fn rtn_plans_run_through_quantize_tensor() {
    // An all-RTN recipe can be run today through TensorPlan.
    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"*\"\nmax_elements = 65536\nkeep = true\n\
         [[rule]]\nmatch = \"tok_emb.weight\"\nbits = 8\nclip = { sdclip = 20.0 }\n\
         [[rule]]\nmatch = \"blocks.*.mlp.*\"\nbits = 6\nclip = { sdclip = 12.85 }\n",
    )
    .unwrap();
    let sources = DemoConfig::tiny().generate(1).unwrap();
    let layout: Vec<(String, Vec<u64>)> = sources
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    let plans = recipe.plan_all(&layout).unwrap();
    let policy = DefaultPolicy::default();
    for (source, (_, plan)) in sources.iter().zip(&plans) {
        let tensor_plan = plan.to_tensor_plan();
        // Same as the default policy on the tiny model.
        assert_eq!(tensor_plan, policy.plan(&source.name, &source.shape));
        let (_, report) = pgq_quantizer::quantize_tensor(source, &tensor_plan).unwrap();
        assert_eq!(report.method, plan.describe());
    }
}
