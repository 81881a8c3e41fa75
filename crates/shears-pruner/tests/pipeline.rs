//! The pruner end to end on builder models: allocation rules, cost targets, schedules and the
//! stage callback, checked on the pruned models themselves.

use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_pruner::estimate::{cost, estimate};
use shears_pruner::{
    prune, prune_iterative, AllocationConfig, Control, Goal, NoProgress, Outcome, Pattern,
    PruneConfig, Schedule, ScheduleKind, StageTarget,
};
use shears_testkit::builder::zoo;

fn load(proto: shears_onnx::proto::ModelProto, name: &str) -> Model {
    let mut m = Model::from_proto(proto, name, ExternalStore::none()).unwrap();
    let shapes = InputShapes::dynamic_as(&m.graph, 1);
    shears_onnx::shape::infer_shapes(&mut m, &shapes).unwrap();
    m
}

fn run(m: &Model, cfg: &PruneConfig) -> Outcome {
    prune(m, cfg, &NoProgress).unwrap()
}

fn ratio(r: f64) -> PruneConfig {
    PruneConfig {
        goal: Goal::Ratio(r),
        ..Default::default()
    }
}

/// Output channels of the layer owning `weight` (axis 0 of the weight) in `m`.
fn channels(m: &Model, weight: &str) -> usize {
    let g = &m.graph;
    g.value(g.value_id(weight).unwrap()).shape.as_ref().unwrap()[0]
}

#[test]
fn the_estimate_is_the_cost_of_the_applied_model() {
    for (name, build) in zoo::MODELS {
        let m = load(build(), name);
        for global in [false, true] {
            let cfg = PruneConfig {
                allocation: AllocationConfig {
                    global,
                    ..Default::default()
                },
                input_shapes: InputShapes::dynamic_as(&m.graph, 1),
                ..ratio(0.4)
            };
            let out = match prune(&m, &cfg, &NoProgress) {
                Ok(out) => out,
                Err(shears_pruner::PrunerError::NothingPruned { reason }) => {
                    // Only a model whose every group is left whole prunes nothing.
                    let n = shears_graph::DependencyGraph::build(&m).groups.len();
                    let all = format!("of {n} groups, {n} cannot lose a channel");
                    assert!(reason.starts_with(&all), "{name}: {reason}");
                    continue;
                }
                Err(e) => panic!("{name}: {e}"),
            };
            let s = &out.stages[0];
            assert_eq!(s.after, cost(&out.model).unwrap(), "{name} global={global}");
            // The estimate the cost targets search with, from the plans alone.
            assert_eq!(
                estimate(&m, &s.plans).unwrap(),
                s.after,
                "{name} global={global}"
            );
            assert_eq!(s.before, cost(&m).unwrap(), "{name}");
            // Every group that lost channels kept at least one, and blocked groups are reported.
            for g in &s.groups {
                assert!(g.after >= 1 && g.after < g.before, "{name}: {g:?}");
            }
        }
    }
}

#[test]
fn no_group_is_ever_emptied() {
    let m = load(zoo::bottleneck_block(), "bottleneck");
    let out = run(&m, &ratio(0.99));
    let s = &out.stages[0];
    assert!(!s.groups.is_empty());
    for g in &s.groups {
        assert_eq!(g.after, 1, "{g:?}");
    }
}

#[test]
fn blocked_groups_are_skipped_and_reported() {
    // The block's last conv feeds the graph output: its group is blocked.
    let m = load(zoo::residual_downsample_block(), "block");
    let out = run(&m, &ratio(0.5));
    let s = &out.stages[0];
    assert!(
        s.skipped
            .iter()
            .any(|k| k.reason.starts_with("blocked") && k.reason.contains("graph output")),
        "{:?}",
        s.skipped
    );
    assert!(!s
        .plans
        .iter()
        .any(|p| p.root.tensor == "layer2.0.conv2.weight"));
    assert_eq!(channels(&out.model, "layer2.0.conv2.weight"), 16);
}

#[test]
fn round_to_keeps_multiples() {
    let m = load(zoo::inception_block(), "inception");
    let cfg = PruneConfig {
        allocation: AllocationConfig {
            round_to: 4,
            ..Default::default()
        },
        ..ratio(0.3)
    };
    let out = run(&m, &cfg);
    let s = &out.stages[0];
    assert!(!s.groups.is_empty());
    for g in &s.groups {
        assert_eq!(g.after % 4, 0, "{g:?}");
    }
    // Without rounding the same ratio keeps counts that are not all multiples of 4.
    let plain = run(&m, &ratio(0.3));
    assert!(plain.stages[0].groups.iter().any(|g| g.after % 4 != 0));
}

#[test]
fn ignore_and_layer_ratios_by_name() {
    let m = load(zoo::conv_bn_relu_chain(), "chain");
    // conv1: 8 channels, conv2: 16; conv3 feeds the output.
    let cfg = PruneConfig {
        allocation: AllocationConfig {
            ignore: vec![Pattern::new("conv1").unwrap()],
            layer_ratios: vec![(Pattern::new("*conv2*").unwrap(), 0.75)],
            ..Default::default()
        },
        ..ratio(0.5)
    };
    let out = run(&m, &cfg);
    assert_eq!(channels(&out.model, "conv1.weight"), 8);
    // floor(16 * 0.25) = 4.
    assert_eq!(channels(&out.model, "conv2.weight"), 4);
    let s = &out.stages[0];
    assert!(s
        .skipped
        .iter()
        .any(|k| k.layer.contains("conv1") && k.reason == "ignored (--ignore conv1)"));
}

#[test]
fn global_allocation_respects_max_ratio() {
    let m = load(zoo::inception_block(), "inception");
    let cfg = PruneConfig {
        allocation: AllocationConfig {
            global: true,
            max_ratio: 0.6,
            ..Default::default()
        },
        ..ratio(0.55)
    };
    let out = run(&m, &cfg);
    let s = &out.stages[0];
    let (mut before, mut after) = (0, 0);
    for g in &s.groups {
        // At least ceil(40%) of each group stays.
        assert!(g.after * 10 >= g.before * 4, "{g:?}");
        before += g.before;
        after += g.after;
    }
    assert!(after < before);
}

#[test]
fn cost_targets_land_within_two_percent() {
    let m = load(zoo::resnet50_like(), "resnet50_like");
    let original = cost(&m).unwrap();
    for (goal, pick) in [
        (
            Goal::Macs(0.5),
            (|c: shears_pruner::Cost| c.macs) as fn(shears_pruner::Cost) -> u64,
        ),
        (Goal::Parameters(0.3), |c: shears_pruner::Cost| c.parameters),
    ] {
        let f = match goal {
            Goal::Macs(f) | Goal::Parameters(f) => f,
            Goal::Ratio(_) => unreachable!(),
        };
        let out = run(
            &m,
            &PruneConfig {
                goal,
                ..Default::default()
            },
        );
        let got = pick(cost(&out.model).unwrap()) as f64 / pick(original) as f64;
        assert!((got / f - 1.0).abs() <= 0.02, "{goal:?}: {got}");
        assert_eq!(out.target_reached, Some(true));
    }
}

#[test]
fn agp_stages_recompute_and_reach_the_one_shot_counts() {
    let m = load(zoo::bottleneck_block(), "bottleneck");
    let cfg = PruneConfig {
        schedule: Schedule {
            steps: 3,
            kind: ScheduleKind::Agp,
        },
        ..ratio(0.5)
    };
    let mut seen = Vec::new();
    let out = prune_iterative(&m, &cfg, &NoProgress, |stage| {
        seen.push((stage.index, cost(&stage.model).unwrap()));
        Control::Continue
    })
    .unwrap();
    assert_eq!(out.stages.len(), 3);
    let targets: Vec<f64> = out
        .stages
        .iter()
        .map(|s| match s.target {
            StageTarget::Sparsity(x) => x,
            _ => panic!(),
        })
        .collect();
    let agp = |t: f64| 0.5 * (1.0 - (1.0 - t / 3.0).powi(3));
    for (t, x) in targets.iter().enumerate() {
        assert!((x - agp(t as f64 + 1.0)).abs() < 1e-12, "{targets:?}");
    }
    // Costs fall stage by stage and the callback saw each stage's model.
    assert_eq!(seen.len(), 3);
    assert!(seen[0].1.parameters >= seen[1].1.parameters);
    assert!(seen[1].1.parameters >= seen[2].1.parameters);
    assert!(seen[0].1.parameters > seen[2].1.parameters);
    assert!(cost(&m).unwrap().parameters > seen[0].1.parameters);
    // Channel counts after the last stage are the one-shot counts (floor of the start count).
    let one_shot = run(&m, &ratio(0.5));
    for w in [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer1.0.conv2.weight",
    ] {
        assert_eq!(channels(&out.model, w), channels(&one_shot.model, w), "{w}");
    }
    // Later stages plan in the pruned model's coordinates.
    let later: Vec<_> = out.stages[1..].iter().flat_map(|s| &s.plans).collect();
    assert!(!later.is_empty());
    for p in later {
        let first = out.stages[0]
            .plans
            .iter()
            .find(|q| q.root.tensor == p.root.tensor)
            .unwrap();
        assert!(p.root.size < first.root.size, "{}", p.root.tensor);
    }
}

#[test]
fn the_callback_can_repeat_stop_and_replace_the_model() {
    let m = load(zoo::bottleneck_block(), "bottleneck");
    let cfg = PruneConfig {
        schedule: Schedule {
            steps: 4,
            kind: ScheduleKind::Linear,
        },
        ..ratio(0.6)
    };
    let mut calls = Vec::new();
    let out = prune_iterative(&m, &cfg, &NoProgress, |stage| {
        calls.push(stage.index);
        match calls.len() {
            // "Fine-tune again" once on stage 1.
            1 => Control::Repeat,
            // Replace stage 2's model by the original architecture pruned elsewhere: here,
            // an untouched copy. The next stage must score that one.
            3 => {
                stage.model = load(zoo::bottleneck_block(), "replaced");
                Control::Continue
            }
            4 => Control::Stop,
            _ => Control::Continue,
        }
    })
    .unwrap();
    assert_eq!(calls, vec![1, 1, 2, 3]);
    assert_eq!(out.stages.len(), 3);
    // Stage 3 started from the full-size replacement.
    assert_eq!(out.stages[2].before, cost(&m).unwrap());
}

#[test]
fn runs_are_deterministic() {
    let m = load(zoo::mobilenetv2_inverted_residual(), "mbv2");
    let cfg = PruneConfig {
        allocation: AllocationConfig {
            global: true,
            ..Default::default()
        },
        ..ratio(0.4)
    };
    let a = run(&m, &cfg);
    let b = run(&m, &cfg);
    assert_eq!(a.stages[0].plans, b.stages[0].plans);
}
