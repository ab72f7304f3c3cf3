use super::*;
use crate::scale::Clip;

fn layout(names: &[(&str, &[u64])]) -> Vec<(String, Vec<u64>)> {
    names
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect()
}

fn parse_err(text: &str) -> RecipeError {
    Recipe::parse(text).expect_err("the recipe should be refused")
}

fn one_rule(body: &str) -> String {
    format!("[[rule]]\nmatch = \"*\"\n{body}\n")
}

#[test]
fn settings_resolve_with_defaults_and_builtins() {
    let recipe = Recipe::parse(
        r#"
        [defaults]
        method = "gptq"
        damp = 0.02
        clip = { sdclip = 12.85 }

        [[rule]]
        match = "a"
        bits = 6

        [[rule]]
        match = "b"
        bits = 8
        method = "rtn"
        clip = "absmax"
        group_size = 64

        [[rule]]
        match = "c"
        bits = 4
        act_order = false
        block_size = 64
        clip = { percentiles = [0.999, 1], objective = "hessian" }
        "#,
    )
    .unwrap();
    let plans: Vec<RulePlan> = recipe.rules().iter().map(|r| r.plan().clone()).collect();
    assert_eq!(
        plans[0],
        RulePlan::Quantize {
            rule: 0,
            method: Method::Gptq {
                act_order: true,
                damp: 0.02,
                block_size: 128,
                rdo: 0.0
            },
            bits: 6,
            group_size: 0,
            clip: ClipChoice::SdClip { k: 12.85 },
        }
    );
    // The defaults' damp is a GPTQ option: an RTN rule ignores it.
    assert_eq!(
        plans[1].as_rtn(),
        Some(RtnConfig {
            bits: 8,
            group_size: 64,
            clip: Clip::Absmax
        })
    );
    assert_eq!(
        plans[2],
        RulePlan::Quantize {
            rule: 2,
            method: Method::Gptq {
                act_order: false,
                damp: 0.02,
                block_size: 64,
                rdo: 0.0
            },
            bits: 4,
            group_size: 0,
            clip: ClipChoice::Percentiles {
                list: vec![0.999, 1.0],
                objective: Objective::Hessian,
                scope: Scope::Row,
            },
        }
    );
    assert!(plans[0].needs_hessian() && plans[2].needs_hessian());
    assert!(!plans[1].needs_hessian());
}

#[test]
fn method_defaults_to_rtn_and_objective_to_mse() {
    let recipe = Recipe::parse(&one_rule("bits = 6\nclip = { percentiles = [0.9999] }")).unwrap();
    match recipe.rules()[0].plan() {
        RulePlan::Quantize { method, clip, .. } => {
            assert_eq!(*method, Method::Rtn);
            assert_eq!(
                *clip,
                ClipChoice::Percentiles {
                    list: vec![0.9999],
                    objective: Objective::Mse,
                    scope: Scope::Row,
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // Percentile search is not an RTN kernel configuration (yet).
    assert_eq!(recipe.rules()[0].plan().as_rtn(), None);
    assert!(!recipe.rules()[0].plan().needs_hessian());
}

#[test]
fn integers_are_accepted_where_numbers_are_expected() {
    let recipe = Recipe::parse(&one_rule("bits = 6\nclip = { sdclip = 12 }")).unwrap();
    assert_eq!(
        recipe.rules()[0].plan().as_rtn().unwrap().clip,
        Clip::SdClip { k: 12.0 }
    );
}

#[test]
fn unknown_keys_are_named_with_their_table() {
    match parse_err(&format!(
        "{}[[rule]]\nmatch = \"x\"\nbitz = 6\n",
        one_rule("keep = true")
    )) {
        RecipeError::UnknownKey { at, key, .. } => {
            assert_eq!(at, Location::Rule(1));
            assert_eq!(key, "bitz");
        }
        other => panic!("{other:?}"),
    }
    let err = parse_err("[defaults]\nmatch = \"*\"\n[[rule]]\nmatch = \"*\"\nkeep = true\n");
    assert!(
        matches!(&err, RecipeError::UnknownKey { at: Location::Defaults, key, .. } if key == "match"),
        "{err:?}"
    );
    let err = parse_err(&format!("version = 1\n{}", one_rule("keep = true")));
    assert!(
        matches!(&err, RecipeError::UnknownKey { at: Location::TopLevel, key, .. } if key == "version"),
        "{err:?}"
    );
    let err = parse_err(&one_rule("bits = 6\nclip = { sdclip = 12.0, k = 3 }"));
    assert!(
        matches!(&err, RecipeError::UnknownKey { at: Location::Rule(0), key, .. } if key == "clip.k"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "rule 0: unknown key `clip.k` (expected one of: sdclip, percentiles, objective, scope)"
    );
}

#[test]
fn bits_outside_2_to_8_are_refused() {
    for bits in [0, 1, 9, 16, -1, 300] {
        let err = parse_err(&one_rule(&format!("bits = {bits}\nclip = \"absmax\"")));
        assert_eq!(
            err,
            RecipeError::Bits {
                at: Location::Rule(0),
                bits
            }
        );
    }
    let err = parse_err(&format!(
        "[defaults]\nbits = 9\n{}",
        one_rule("keep = true")
    ));
    assert_eq!(
        err,
        RecipeError::Bits {
            at: Location::Defaults,
            bits: 9
        }
    );
    assert!(Recipe::parse(&one_rule("bits = 2\nclip = \"absmax\"")).is_ok());
    let err = parse_err(&one_rule("bits = \"6\"\nclip = \"absmax\""));
    assert!(
        matches!(err, RecipeError::Value { ref key, .. } if key == "bits"),
        "{err:?}"
    );
}

#[test]
fn contradictions_are_refused() {
    // keep with any setting.
    for setting in [
        "bits = 6",
        "clip = \"absmax\"",
        "method = \"gptq\"",
        "group_size = 128",
    ] {
        let err = parse_err(&one_rule(&format!("keep = true\n{setting}")));
        assert!(
            matches!(
                err,
                RecipeError::Conflict {
                    at: Location::Rule(0),
                    ..
                }
            ),
            "{setting}: {err:?}"
        );
    }
    // GPTQ options on RTN, explicit or by default method.
    for text in [
        "bits = 6\nclip = \"absmax\"\nmethod = \"rtn\"\nact_order = true",
        "bits = 6\nclip = \"absmax\"\ndamp = 0.01",
        "bits = 6\nclip = \"absmax\"\nblock_size = 64",
    ] {
        let err = parse_err(&one_rule(text));
        assert!(
            matches!(err, RecipeError::Conflict { .. }),
            "{text}: {err:?}"
        );
    }
    let err = parse_err(&format!(
        "[defaults]\nmethod = \"rtn\"\ndamp = 0.01\n{}",
        one_rule("keep = true")
    ));
    assert!(
        matches!(
            err,
            RecipeError::Conflict {
                at: Location::Defaults,
                ..
            }
        ),
        "{err:?}"
    );
    // Two clip modes at once.
    let err = parse_err(&one_rule(
        "bits = 6\nclip = { sdclip = 12.0, percentiles = [1.0] }",
    ));
    assert!(matches!(err, RecipeError::Conflict { .. }), "{err:?}");
    let err = parse_err(&one_rule(
        "bits = 6\nclip = { sdclip = 12.0, objective = \"mse\" }",
    ));
    assert!(matches!(err, RecipeError::Conflict { .. }), "{err:?}");
}

#[test]
fn bad_values_are_refused() {
    let cases = [
        ("clip = { sdclip = -1.0 }", "clip.sdclip"),
        ("clip = { sdclip = 0.0 }", "clip.sdclip"),
        ("clip = { sdclip = nan }", "clip.sdclip"),
        ("clip = { sdclip = inf }", "clip.sdclip"),
        ("clip = { sdclip = 1e300 }", "clip.sdclip"),
        ("clip = { percentiles = [] }", "clip.percentiles"),
        ("clip = { percentiles = [0.0] }", "clip.percentiles"),
        ("clip = { percentiles = [0.5, 1.5] }", "clip.percentiles"),
        ("clip = { percentiles = [nan] }", "clip.percentiles"),
        ("clip = { percentiles = [\"a\"] }", "clip.percentiles"),
        ("clip = { percentiles = 0.9 }", "clip.percentiles"),
        (
            "clip = { percentiles = [1.0], objective = \"l1\" }",
            "clip.objective",
        ),
        ("clip = { objective = \"mse\" }", "clip"),
        ("clip = \"sdclip\"", "clip"),
        ("clip = 12.85", "clip"),
        ("clip = \"absmax\"\ngroup_size = -1", "group_size"),
        ("clip = \"absmax\"\nmethod = \"awq\"", "method"),
        ("clip = \"absmax\"\nmethod = \"gptq\"\ndamp = 0", "damp"),
        ("clip = \"absmax\"\nmethod = \"gptq\"\ndamp = nan", "damp"),
        (
            "clip = \"absmax\"\nmethod = \"gptq\"\nblock_size = 0",
            "block_size",
        ),
        (
            "clip = \"absmax\"\nmethod = \"gptq\"\nact_order = 1",
            "act_order",
        ),
        ("clip = \"absmax\"\nmax_elements = -5", "max_elements"),
        ("clip = \"absmax\"\nmin_rank = -1", "min_rank"),
    ];
    for (body, key) in cases {
        let err = parse_err(&one_rule(&format!("bits = 6\n{body}")));
        assert!(
            matches!(&err, RecipeError::Value { at: Location::Rule(0), key: k, .. } if k == key),
            "{body}: {err:?}"
        );
    }
}

#[test]
fn structural_errors() {
    assert_eq!(parse_err(""), RecipeError::NoRules);
    assert_eq!(parse_err("rule = []"), RecipeError::NoRules);
    assert!(matches!(parse_err("[[rule]\n"), RecipeError::Toml(_)));
    assert!(matches!(
        parse_err("[[rule]]\nkeep = true\n"),
        RecipeError::MissingKey { at: Location::Rule(0), ref key, .. } if key == "match"
    ));
    assert!(matches!(
        parse_err(&one_rule("clip = \"absmax\"")),
        RecipeError::MissingKey { ref key, .. } if key == "bits"
    ));
    assert!(matches!(
        parse_err(&one_rule("bits = 6")),
        RecipeError::MissingKey { ref key, .. } if key == "clip"
    ));
    // keep = false is a quantize rule, which needs bits.
    assert!(matches!(
        parse_err(&one_rule("keep = false")),
        RecipeError::MissingKey { ref key, .. } if key == "bits"
    ));
    assert!(matches!(
        parse_err("[[rule]]\nmatch = \"blocks.{a\"\nkeep = true\n"),
        RecipeError::Glob { rule: 0, .. }
    ));
    assert!(matches!(
        parse_err("defaults = 3\n[[rule]]\nmatch = \"*\"\nkeep = true\n"),
        RecipeError::Value {
            at: Location::TopLevel,
            ..
        }
    ));
}

#[test]
fn glob_star_crosses_dots() {
    let recipe = Recipe::parse(&one_rule("keep = true")).unwrap();
    let rule = &recipe.rules()[0];
    assert!(rule.matches("blocks.0.attn.c_q.weight", &[4, 4]));
    assert!(rule.matches("", &[]));

    let recipe = Recipe::parse("[[rule]]\nmatch = \"blocks.*.mlp.*\"\nkeep = true\n").unwrap();
    let rule = &recipe.rules()[0];
    assert!(rule.matches("blocks.10.mlp.fc.weight", &[1]));
    assert!(rule.matches("blocks.3.sub.7.mlp.proj.weight", &[1]));
    assert!(!rule.matches("blocks.0.mlp_scale", &[1]));
    assert!(
        !rule.matches("xblocks.0.mlp.fc.weight", &[1]),
        "anchored at the start"
    );
    assert!(
        !rule.matches("Blocks.0.mlp.fc.weight", &[1]),
        "case-sensitive"
    );

    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"blocks.{4,5}.*\"\nkeep = true\n\
         [[rule]]\nmatch = \"blocks.?.attn.c_[qk].weight\"\nkeep = true\n\
         [[rule]]\nmatch = \"a\\\\*b\"\nkeep = true\n\
         [[rule]]\nmatch = \"blocks.**.weight\"\nkeep = true\n",
    )
    .unwrap();
    let rules = recipe.rules();
    assert!(rules[0].matches("blocks.4.mlp.fc.weight", &[1]));
    assert!(rules[0].matches("blocks.5.attn_scale", &[1]));
    assert!(!rules[0].matches("blocks.45.attn_scale", &[1]));
    assert!(rules[1].matches("blocks.7.attn.c_k.weight", &[1]));
    assert!(!rules[1].matches("blocks.10.attn.c_k.weight", &[1]));
    assert!(!rules[1].matches("blocks.7.attn.c_v.weight", &[1]));
    assert!(rules[2].matches("a*b", &[1]));
    assert!(!rules[2].matches("axb", &[1]));
    // `**` is the same as `*` for names without `/`.
    assert!(rules[3].matches("blocks.1.mlp.fc.weight", &[1]));
}

#[test]
fn conditions_restrict_matches() {
    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"*\"\nmax_elements = 16\nkeep = true\n\
         [[rule]]\nmatch = \"*\"\nmin_rank = 2\nbits = 6\nclip = \"absmax\"\n",
    )
    .unwrap();
    assert!(recipe.plan("w", &[4, 4]).unwrap().is_keep());
    assert_eq!(recipe.plan("w", &[4, 5]).unwrap().rule(), 1);
    assert_eq!(recipe.plan("v", &[17]), None);
    assert!(recipe.plan("scalar", &[]).unwrap().is_keep());
    // An overflowing count is never small.
    assert_eq!(recipe.plan("w", &[u64::MAX, 2]).unwrap().rule(), 1);
}

#[test]
fn first_match_wins_and_shadowed_rules_are_errors() {
    let tensors = layout(&[
        ("blocks.0.attn.c_q.weight", &[512, 512]),
        ("blocks.0.mlp.fc.weight", &[2048, 512]),
    ]);
    let good = Recipe::parse(
        "[[rule]]\nmatch = \"blocks.*.mlp.*\"\nbits = 8\nclip = \"absmax\"\n\
         [[rule]]\nmatch = \"blocks.*\"\nbits = 6\nclip = \"absmax\"\n",
    )
    .unwrap();
    let plans = good.plan_all(&tensors).unwrap();
    assert_eq!(plans[0].1.rule(), 1);
    assert_eq!(plans[1].1.rule(), 0);

    // The broad rule first takes everything: the mlp rule is dead.
    let bad = Recipe::parse(
        "[[rule]]\nmatch = \"blocks.*\"\nbits = 6\nclip = \"absmax\"\n\
         [[rule]]\nmatch = \"blocks.*.mlp.*\"\nbits = 8\nclip = \"absmax\"\n",
    )
    .unwrap();
    let err = bad.plan_all(&tensors).unwrap_err();
    assert_eq!(
        err,
        RecipeError::Coverage {
            uncovered: vec![],
            unused: vec![UnusedRule {
                rule: 1,
                pattern: "blocks.*.mlp.*".into(),
                shadowed_by: vec![0],
            }],
        }
    );
    assert_eq!(
        err.to_string(),
        "recipe does not fit the tensors: rule 1 (`blocks.*.mlp.*`) matches no tensor: \
         every tensor it matches is taken first by rule 0"
    );
}

#[test]
fn uncovered_tensors_and_unmatched_rules_are_all_listed() {
    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"*\"\nmax_elements = 65536\nkeep = true\n\
         [[rule]]\nmatch = \"tok_emb.weight\"\nbits = 8\nclip = { sdclip = 20.0 }\n\
         [[rule]]\nmatch = \"blocks.*.mpl.*\"\nbits = 6\nclip = { sdclip = 12.0 }\n",
    )
    .unwrap();
    let tensors = layout(&[
        ("tok_emb.weight", &[8192, 512]),
        ("blocks.0.mlp_scale", &[512]),
        ("blocks.0.mlp.fc.weight", &[2048, 512]),
        ("blocks.0.mlp.proj.weight", &[512, 2048]),
    ]);
    let err = recipe.plan_all(&tensors).unwrap_err();
    assert_eq!(
        err,
        RecipeError::Coverage {
            uncovered: vec![
                "blocks.0.mlp.fc.weight".into(),
                "blocks.0.mlp.proj.weight".into()
            ],
            unused: vec![UnusedRule {
                rule: 2,
                pattern: "blocks.*.mpl.*".into(),
                shadowed_by: vec![],
            }],
        }
    );
    let message = err.to_string();
    assert!(message.contains("2 tensor(s) covered by no rule: `blocks.0.mlp.fc.weight`"));
    assert!(message.contains("rule 2 (`blocks.*.mpl.*`) matches no tensor"));
}

#[test]
fn long_uncovered_lists_are_shortened_in_the_message() {
    let recipe = Recipe::parse("[[rule]]\nmatch = \"keep.me\"\nkeep = true\n").unwrap();
    let mut tensors: Vec<(String, Vec<u64>)> =
        (0..25).map(|i| (format!("t{i}"), vec![1])).collect();
    tensors.push(("keep.me".into(), vec![1]));
    let err = recipe.plan_all(&tensors).unwrap_err();
    assert!(err.to_string().contains("and 15 more"), "{err}");
    assert!(matches!(err, RecipeError::Coverage { ref uncovered, .. } if uncovered.len() == 25));
}

#[test]
fn describe_is_canonical() {
    let inline = Recipe::parse(
        r#"
        [[rule]]
        match = "*"
        max_elements = 65536
        keep = true

        [[rule]]
        match = "tok_emb.weight"
        bits = 8
        method = "gptq"
        clip = { sdclip = 20.0 }

        [[rule]]
        match = "blocks.*"
        min_rank = 2
        bits = 6
        group_size = 128
        method = "gptq"
        act_order = true
        damp = 0.01
        clip = { percentiles = [0.999, 1.0], objective = "hessian" }

        [[rule]]
        match = "x\"y"
        bits = 7
        clip = "absmax"
        "#,
    )
    .unwrap();
    let with_defaults = Recipe::parse(
        r#"
        # Same rules, settings moved into [defaults], integers for floats.
        [defaults]
        method = "gptq"
        block_size = 128
        [[rule]]
        keep = true
        max_elements = 65536
        match = "*"
        [[rule]]
        match = "tok_emb.weight"
        clip = { sdclip = 20 }
        bits = 8
        [[rule]]
        match = "blocks.*"
        min_rank = 2
        bits = 6
        group_size = 128
        clip = { objective = "hessian", percentiles = [0.999, 1] }
        [[rule]]
        match = "x\"y"
        method = "rtn"
        bits = 7
        clip = "absmax"
        "#,
    )
    .unwrap();
    let expected = "recipe v1: 0 \"*\" n<=65536 keep; \
        1 \"tok_emb.weight\" gptq(ao,d=0.01,b=128)-sdclip k=20 int8; \
        2 \"blocks.*\" rank>=2 gptq(ao,d=0.01,b=128)-pct[0.999,1]/hessian int6 g128; \
        3 \"x\\\"y\" rtn-absmax int7";
    assert_eq!(inline.describe(), expected);
    assert_eq!(with_defaults.describe(), expected);
    assert_eq!(inline.describe(), inline.clone().describe());
}

#[test]
fn rule_plan_labels_match_the_rtn_labels() {
    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"a\"\nbits = 6\nclip = { sdclip = 12.85 }\n\
         [[rule]]\nmatch = \"b\"\nbits = 8\ngroup_size = 128\nclip = \"absmax\"\n\
         [[rule]]\nmatch = \"c\"\nkeep = true\n\
         [[rule]]\nmatch = \"d\"\nbits = 6\nmethod = \"gptq\"\nclip = { sdclip = 12.85 }\n",
    )
    .unwrap();
    let rules = recipe.rules();
    for rule in &rules[..2] {
        let rtn = rule.plan().as_rtn().unwrap();
        assert_eq!(rule.plan().describe(), rtn.describe());
    }
    assert_eq!(rules[2].plan().describe(), KEEP_METHOD);
    assert_eq!(rules[2].plan().to_tensor_plan(), TensorPlan::Keep);
    assert_eq!(rules[3].plan().describe(), "gptq-sdclip k=12.85 int6");
    assert_eq!(rules[3].plan().as_rtn(), None);
    assert_eq!(
        rules[0].plan().to_tensor_plan(),
        TensorPlan::Quantize(
            RtnConfig {
                bits: 6,
                group_size: 0,
                clip: Clip::SdClip { k: 12.85 }
            }
            .into()
        )
    );
}

#[test]
fn plans_serialize_for_reports() {
    let recipe = Recipe::parse(
        "[[rule]]\nmatch = \"d\"\nbits = 6\nmethod = \"gptq\"\nclip = { percentiles = [1] }\n",
    )
    .unwrap();
    let json = serde_json::to_string(recipe.rules()[0].plan()).unwrap();
    assert_eq!(
        json,
        r#"{"plan":"quantize","rule":0,"method":{"method":"gptq","act_order":true,"damp":0.01,"block_size":128},"bits":6,"group_size":0,"clip":{"mode":"percentiles","list":[1.0],"objective":"mse","scope":"row"}}"#
    );
}

#[test]
fn the_readme_documents_every_key() {
    let readme = include_str!("../../../recipes/README.md");
    for key in TOP_KEYS
        .iter()
        .chain(SETTING_KEYS)
        .chain(RULE_ONLY_KEYS)
        .chain(CLIP_KEYS)
    {
        assert!(
            readme.contains(&format!("`{key}`")),
            "recipes/README.md does not document `{key}`"
        );
    }
    for constant in [
        DEFAULT_DAMP.to_string(),
        DEFAULT_BLOCK_SIZE.to_string(),
        DEFAULT_ACT_ORDER.to_string(),
    ] {
        assert!(
            readme.contains(&constant),
            "README lacks default {constant}"
        );
    }
}

#[test]
fn hostile_globs_are_refused_not_panicked_on() {
    let deep = format!("{}a{}", "{".repeat(125), "}".repeat(125));
    let error = name_glob(&deep).unwrap_err();
    assert!(error.contains("nested 125 deep"), "{error}");
    let long = "a".repeat(MAX_GLOB_BYTES + 1);
    assert!(name_glob(&long).unwrap_err().contains("1025 bytes"));
    // Within the bounds, the worst shapes still compile or fail cleanly.
    let nested = format!(
        "{}a{}",
        "{x,".repeat(MAX_GLOB_NESTING),
        "}".repeat(MAX_GLOB_NESTING)
    );
    assert!(name_glob(&nested).is_ok());
    for pattern in [
        "[^a]".repeat(MAX_GLOB_BYTES / 4),
        "{a,b}".repeat(MAX_GLOB_BYTES / 5),
        "**".repeat(MAX_GLOB_BYTES / 2),
        "[\u{10FFFF}-\u{0}]".repeat(60),
        "\\{".repeat(MAX_GLOB_BYTES / 2),
    ] {
        let _ = name_glob(&pattern);
    }
    // A recipe's match goes through the same bounds.
    let recipe = format!("[[rule]]\nmatch = \"{deep}\"\nkeep = true\n");
    assert!(Recipe::parse(&recipe).is_err());
}

#[test]
fn an_lqer_table_takes_the_records_defaults_and_checks_its_keys() {
    let base = "[[rule]]\nmatch = \"*\"\nbits = 6\nclip = { sdclip = 12.85 }\n";
    let recipe = Recipe::parse(&format!("{base}[lqer]\n")).unwrap();
    assert_eq!(recipe.lqer(), Some(&crate::lqer::DEFAULT_LQER));
    assert!(recipe
        .describe()
        .ends_with("; lqer top_k=3 rank=4 A int2 B int4 g64"));
    let recipe = Recipe::parse(&format!("{base}[lqer]\ntop_k = 4\nrank = 6\n")).unwrap();
    let lqer = recipe.lqer().unwrap();
    assert_eq!((lqer.top_k, lqer.rank, lqer.b_group), (4, 6, 64));
    assert!(Recipe::parse(base).unwrap().lqer().is_none());
    for (bad, says) in [
        ("rank = 0", "rank"),
        ("rank = 257", "rank"),
        ("a_bits = 9", "a_bits"),
        ("top_k = 0", "top_k"),
        ("b_group = -1", "b_group"),
        ("ranks = 4", "ranks"),
    ] {
        let e = Recipe::parse(&format!("{base}[lqer]\n{bad}\n")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("[lqer]") && text.contains(says),
            "{bad}: {text}"
        );
    }
    let e = Recipe::parse(&format!("lqer = 3\n{base}")).unwrap_err();
    assert!(e.to_string().contains("must be a table"), "{e}");
}

#[test]
fn rdo_is_a_gptq_setting_described_only_when_set() {
    let rule = |extra: &str| {
        format!("[[rule]]\nmatch = \"*\"\nbits = 6\nmethod = \"gptq\"\nclip = {{ sdclip = 12.85 }}\n{extra}")
    };
    let plain = Recipe::parse(&rule("")).unwrap();
    assert!(!plain.describe().contains("rdo"));
    let json = serde_json::to_string(plain.rules()[0].plan()).unwrap();
    assert!(!json.contains("rdo"), "{json}");
    let with = Recipe::parse(&rule("rdo = 0.4\n")).unwrap();
    assert!(
        with.describe().contains("gptq(ao,d=0.01,b=128,rdo=0.4)"),
        "{}",
        with.describe()
    );
    let Method::Gptq { rdo, .. } = with.rules()[0].plan().matrix_plan().unwrap().method else {
        panic!("gptq")
    };
    assert_eq!(rdo, 0.4);
    let from_defaults = Recipe::parse(&format!("[defaults]\nrdo = 0.2\n{}", rule(""))).unwrap();
    assert!(from_defaults.describe().contains("rdo=0.2"));
    for (bad, says) in [("rdo = -1", "rdo"), ("rdo = \"x\"", "rdo")] {
        let e = Recipe::parse(&rule(&format!("{bad}\n"))).unwrap_err();
        assert!(e.to_string().contains(says), "{bad}: {e}");
    }
    let rtn = "[[rule]]\nmatch = \"*\"\nbits = 6\nclip = { sdclip = 12.85 }\nrdo = 0.4\n";
    assert!(Recipe::parse(rtn).unwrap_err().to_string().contains("rdo"));
}
