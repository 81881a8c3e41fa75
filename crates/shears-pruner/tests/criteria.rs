//! Every criterion on hand-built models whose right answer is known by construction.
//!
//! The main model is `input[1,2,4,4] → conv1 (4 filters, 1x1) → bn1 → Relu → conv2 (3 filters,
//! 1x1) → output`: the group of conv1's output channels holds conv1's filters, bn1's scale,
//! shift and statistics, and conv2's input columns. Weights are chosen so that the channel with
//! the smallest root filter (channel 0) is *not* the one with the smallest slices across the
//! whole group (channel 2): a pruner that looked only at the root conv would get it wrong.

use shears_graph::{DependencyGraph, GroupId};
use shears_onnx::{InputShapes, Model};
use shears_pruner::importance::{lamp, observed_values};
use shears_pruner::{
    calib, prune, AllocationConfig, Calibration, Criterion, Goal, GroupImportance,
    ImportanceConfig, NoProgress, Normalizer, PruneConfig, Reduction, Scorer,
};
use shears_testkit::builder::{attr_float, ModelBuilder};

/// The chain's parameters: conv1 rows (2 inputs each), bn1 (gamma, beta, mean, var), conv2
/// columns (3 outputs each) — all per conv1 channel.
struct Chain {
    w1: [[f32; 2]; 4],
    gamma: [f32; 4],
    beta: [f32; 4],
    mean: [f32; 4],
    var: [f32; 4],
    w2_cols: [[f32; 3]; 4],
}

const BASE: Chain = Chain {
    // Root filter L2²: 0.02, 2, 0.5, 4 (channel 0 smallest).
    w1: [[0.1, 0.1], [1.0, 1.0], [0.5, 0.5], [2.0, 0.0]],
    // gamma²: 0.81, 0.0025, 1, 0.25.
    gamma: [0.9, 0.05, 1.0, 0.5],
    beta: [0.0, 0.0, 0.0, 0.0],
    // Statistics are never measured: a huge running mean on channel 1 must not matter.
    mean: [0.0, 100.0, 0.0, 0.0],
    var: [1.0, 1.0, 1.0, 1.0],
    // Column L2²: 27, 1, 0.03, 3.
    w2_cols: [
        [3.0, 3.0, 3.0],
        [1.0, 0.0, 0.0],
        [0.1, 0.1, 0.1],
        [1.0, 1.0, 1.0],
    ],
};

fn chain(c: &Chain) -> Model {
    let mut b = ModelBuilder::new(17).named("chain");
    let x = b.input("input", &[1, 2, 4, 4]);
    let w1: Vec<f32> = c.w1.iter().flatten().copied().collect();
    let w1 = b.init_f32("conv1.weight", &[4, 2, 1, 1], &w1);
    let y = b.node_named("/conv1/Conv", "Conv", &[&x, &w1], 1, vec![]);
    let g = b.init_f32("bn1.weight", &[4], &c.gamma);
    let be = b.init_f32("bn1.bias", &[4], &c.beta);
    let m = b.init_f32("bn1.running_mean", &[4], &c.mean);
    let v = b.init_f32("bn1.running_var", &[4], &c.var);
    let y = b.node_named(
        "/bn1/BatchNormalization",
        "BatchNormalization",
        &[&y[0], &g, &be, &m, &v],
        1,
        vec![attr_float("epsilon", 1e-5)],
    );
    let y = b.node_named("/relu/Relu", "Relu", &[&y[0]], 1, vec![]);
    // conv2.weight[o][i] = w2_cols[i][o].
    let mut w2 = Vec::new();
    for o in 0..3 {
        for i in 0..4 {
            w2.push(c.w2_cols[i][o]);
        }
    }
    let w2 = b.init_f32("conv2.weight", &[3, 4, 1, 1], &w2);
    let y = b.node_named("/conv2/Conv", "Conv", &[&y[0], &w2], 1, vec![]);
    b.node_with_outputs(
        "/output/Identity",
        "Identity",
        &[&y[0]],
        &["output"],
        vec![],
    );
    b.output("output");
    analysed(b.build_model())
}

fn analysed(mut m: Model) -> Model {
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

fn group_of(m: &Model, g: &DependencyGraph, layer: &str) -> GroupId {
    let (_, dim) = shears_plan::resolve_layer(m, g, layer).unwrap();
    g.group_at(dim, 0).unwrap()
}

fn cfg(criterion: Criterion) -> ImportanceConfig {
    ImportanceConfig {
        criterion,
        ..Default::default()
    }
}

/// The scores of conv1's group under `cfg`.
fn scores(m: &Model, cfg: &ImportanceConfig) -> Vec<f64> {
    let g = DependencyGraph::build(m);
    let gid = group_of(m, &g, "conv1.weight");
    let s = Scorer::new(m, &g, cfg, &[gid], None).unwrap();
    match s.score(gid, "conv1").unwrap() {
        GroupImportance::Scores(s) => s,
        GroupImportance::Missing(why) => panic!("no scores: {why}"),
    }
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (a, b) in got.iter().zip(want) {
        assert!(
            (a - b).abs() < 1e-5 * b.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

/// The conv1 channels a one-shot prune at `ratio` removes.
fn pruned_channels(m: &Model, importance: ImportanceConfig, ratio: f64) -> Vec<u32> {
    pruned_with(
        m,
        PruneConfig {
            importance,
            goal: Goal::Ratio(ratio),
            ..Default::default()
        },
    )
}

fn pruned_with(m: &Model, cfg: PruneConfig) -> Vec<u32> {
    let out = prune(m, &cfg, &NoProgress).unwrap();
    out.stages[0]
        .plans
        .iter()
        .find(|p| p.root.tensor == "conv1.weight")
        .map(|p| p.indices.clone())
        .unwrap_or_default()
}

#[test]
fn l2_measures_the_whole_group_not_the_root_conv() {
    let m = chain(&BASE);
    // Mean over conv1 rows, bn1 gamma and conv2 columns of the squared slice norms.
    let want = [
        (0.02 + 0.81 + 27.0) / 3.0,
        (2.0 + 0.0025 + 1.0) / 3.0,
        (0.5 + 1.0 + 0.03) / 3.0,
        (4.0 + 0.25 + 3.0) / 3.0,
    ];
    assert_close(&scores(&m, &cfg(Criterion::L2)), &want);
    // Root-only L2 would remove channel 0; the group-wide one removes channel 2, then 1.
    assert_eq!(pruned_channels(&m, cfg(Criterion::L2), 0.25), vec![2]);
    assert_eq!(pruned_channels(&m, cfg(Criterion::L2), 0.5), vec![1, 2]);
}

#[test]
fn l1_sums_absolute_values_per_slice() {
    let m = chain(&BASE);
    let want = [
        (0.2 + 0.9 + 9.0) / 3.0,
        (2.0 + 0.05 + 1.0) / 3.0,
        (1.0 + 1.0 + 0.3) / 3.0,
        (2.0 + 0.5 + 3.0) / 3.0,
    ];
    assert_close(&scores(&m, &cfg(Criterion::L1)), &want);
    assert_eq!(pruned_channels(&m, cfg(Criterion::L1), 0.25), vec![2]);
}

#[test]
fn reductions_across_the_group_tensors() {
    let m = chain(&BASE);
    let per_tensor = [
        [0.02, 0.81, 27.0],
        [2.0, 0.0025, 1.0],
        [0.5, 1.0, 0.03],
        [4.0, 0.25, 3.0],
    ];
    for (how, f) in [
        (
            Reduction::Sum,
            (|t: &[f64; 3]| t.iter().sum()) as fn(&[f64; 3]) -> f64,
        ),
        (Reduction::Max, |t: &[f64; 3]| {
            t.iter().cloned().fold(0.0, f64::max)
        }),
        (Reduction::Mean, |t: &[f64; 3]| t.iter().sum::<f64>() / 3.0),
    ] {
        let c = ImportanceConfig {
            reduction: how,
            ..cfg(Criterion::L2)
        };
        let want: Vec<f64> = per_tensor.iter().map(f).collect();
        assert_close(&scores(&m, &c), &want);
    }
}

#[test]
fn normalization_rescales_without_reordering() {
    let m = chain(&BASE);
    let raw = scores(&m, &cfg(Criterion::L2));
    let c = ImportanceConfig {
        normalizer: Normalizer::Mean,
        ..cfg(Criterion::L2)
    };
    let mean = raw.iter().sum::<f64>() / 4.0;
    let want: Vec<f64> = raw.iter().map(|s| s / mean).collect();
    assert_close(&scores(&m, &c), &want);
}

#[test]
fn vectors_are_measured_only_on_request_and_statistics_never() {
    // A large shift on channel 2 makes it important once shifts count.
    let m = chain(&Chain {
        beta: [0.0, 0.0, 5.0, 0.0],
        ..BASE
    });
    assert_eq!(pruned_channels(&m, cfg(Criterion::L2), 0.25), vec![2]);
    let with = ImportanceConfig {
        include_vectors: true,
        ..cfg(Criterion::L2)
    };
    // (0.5 + 1 + 0.03 + 25) / 4 for channel 2; channel 1 is now the lowest, although its
    // running mean (a statistic) is 100.
    let s = scores(&m, &with);
    assert_close(
        &s[1..3],
        &[
            (2.0 + 0.0025 + 0.0 + 1.0) / 4.0,
            (0.5 + 1.0 + 25.0 + 0.03) / 4.0,
        ],
    );
    assert_eq!(pruned_channels(&m, with, 0.25), vec![1]);
}

#[test]
fn bn_scale_ranks_by_gamma_alone() {
    let m = chain(&BASE);
    assert_close(
        &scores(&m, &cfg(Criterion::BnScale)),
        &[0.9, 0.05, 1.0, 0.5],
    );
    assert_eq!(
        pruned_channels(&m, cfg(Criterion::BnScale), 0.5),
        vec![1, 3]
    );
}

#[test]
fn bn_scale_skips_groups_without_a_norm_and_says_so() {
    // The same chain with BatchNorm folded away: nothing to measure.
    let mut b = ModelBuilder::new(17).named("nobn");
    let x = b.input("input", &[1, 2, 4, 4]);
    let w1 = b.init_f32("conv1.weight", &[4, 2, 1, 1], &[1.0; 8]);
    let y = b.node_named("/conv1/Conv", "Conv", &[&x, &w1], 1, vec![]);
    let w2 = b.init_f32("conv2.weight", &[3, 4, 1, 1], &[1.0; 12]);
    let y = b.node_named("/conv2/Conv", "Conv", &[&y[0], &w2], 1, vec![]);
    b.output(&y[0]);
    let m = analysed(b.build_model());
    // With every group left whole the run removes nothing: an error that says why, group by
    // group, never a success.
    let err = prune(
        &m,
        &PruneConfig {
            importance: cfg(Criterion::BnScale),
            ..Default::default()
        },
        &NoProgress,
    )
    .err()
    .expect("a run that prunes nothing fails");
    let why = err.to_string();
    assert!(
        matches!(err, shears_pruner::PrunerError::NothingPruned { .. }),
        "{why}"
    );
    assert!(
        why.contains("/conv1/Conv (conv1.weight[0]): no normalization scale"),
        "{why}"
    );
}

#[test]
fn fpgm_removes_the_filters_nearest_the_others() {
    // Root filters in the plane: (0.1, 0.1), (1, 1), (0.5, 0.5), (2, 0). Channel 2 lies between
    // 0 and 1 on the diagonal: its distance sum is the smallest, channel 3 (off the line)
    // the largest. conv2's columns do not count for FPGM.
    let m = chain(&BASE);
    let p = [[0.1f64, 0.1], [1.0, 1.0], [0.5, 0.5], [2.0, 0.0]];
    let d = |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let want: Vec<f64> = (0..4)
        .map(|i| (0..4).map(|j| d(p[i], p[j])).sum())
        .collect();
    let s = scores(&m, &cfg(Criterion::Fpgm));
    assert_close(&s, &want);
    assert!(s[2] < s[1] && s[1] < s[0] && s[0] < s[3], "{s:?}");
    assert_eq!(pruned_channels(&m, cfg(Criterion::Fpgm), 0.5), vec![1, 2]);
}

#[test]
fn random_is_seeded_and_uniform() {
    let m = wide(64);
    let pick = |seed| {
        let c = ImportanceConfig {
            seed,
            ..cfg(Criterion::Random)
        };
        pruned_channels(&m, c, 0.5)
    };
    assert_eq!(pick(7), pick(7));
    assert_ne!(pick(7), pick(8));
    let s = scores(&m, &cfg(Criterion::Random));
    assert!(s.iter().all(|&x| (0.0..1.0).contains(&x)));
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    assert!((0.3..0.7).contains(&mean), "{mean}");
}

/// conv1 with `n` equal filters into conv2: every magnitude criterion ties.
fn wide(n: i64) -> Model {
    let mut b = ModelBuilder::new(17).named("wide");
    let x = b.input("input", &[1, 2, 4, 4]);
    let w1 = b.init_f32("conv1.weight", &[n, 2, 1, 1], &vec![1.0; 2 * n as usize]);
    let y = b.node_named("/conv1/Conv", "Conv", &[&x, &w1], 1, vec![]);
    let w2 = b.init_f32("conv2.weight", &[3, n, 1, 1], &vec![1.0; 3 * n as usize]);
    let y = b.node_named("/conv2/Conv", "Conv", &[&y[0], &w2], 1, vec![]);
    b.output(&y[0]);
    analysed(b.build_model())
}

/// Activations after bn1 + Relu, with conv1 passing input channel 0 to every channel:
/// - channel 0: `x` → zero about half the time, mean about 0.4;
/// - channel 1: the constant 0.01 (gamma 0) → never zero, tiny mean;
/// - channel 2: `x + 1` → zero about 16% of the time, mean about 1.08;
/// - channel 3: the constant 0 (gamma 0, shift -1) → always zero.
fn activation_chain() -> Model {
    chain(&Chain {
        w1: [[1.0, 0.0]; 4],
        gamma: [1.0, 0.0, 1.0, 0.0],
        beta: [0.0, 0.01, 1.0, -1.0],
        mean: [0.0; 4],
        var: [1.0; 4],
        w2_cols: [[1.0; 3]; 4],
    })
}

fn activation_cfg(criterion: Criterion) -> PruneConfig {
    PruneConfig {
        importance: cfg(criterion),
        calibration: Some(Calibration::Random {
            samples: 8,
            seed: 3,
        }),
        goal: Goal::Ratio(0.5),
        ..Default::default()
    }
}

#[test]
fn apoz_removes_the_channels_that_are_zero_most_often() {
    let m = activation_chain();
    // APoZ: 3 (always zero), then 0 (half), keeping 2 and the constant channel 1.
    assert_eq!(pruned_with(&m, activation_cfg(Criterion::Apoz)), vec![0, 3]);
}

#[test]
fn mean_activation_removes_the_weakest_channels() {
    let m = activation_chain();
    // Mean: 3 (zero), then 1 (0.01).
    assert_eq!(
        pruned_with(&m, activation_cfg(Criterion::MeanAct)),
        vec![1, 3]
    );
}

#[test]
fn activation_statistics_are_read_after_the_activation_function() {
    let m = activation_chain();
    let g = DependencyGraph::build(&m);
    let gid = group_of(&m, &g, "conv1.weight");
    let obs = observed_values(&m, &g, g.group(gid));
    let names: Vec<&str> = obs
        .iter()
        .map(|&(v, _)| m.graph.value(v).name.as_str())
        .collect();
    assert_eq!(names, vec!["/relu/Relu_output_0"]);
    let samples = calib::inputs(
        &m,
        &InputShapes::default(),
        &Calibration::Random {
            samples: 4,
            seed: 1,
        },
    )
    .unwrap();
    let stats = calib::collect(&m, &obs, &samples, &NoProgress).unwrap();
    let st = &stats.channels[&obs[0]];
    // 4 samples of 4x4 positions per channel.
    assert_eq!(st.count, vec![64; 4]);
    assert_eq!(st.zeros[3], 64);
    assert_eq!(st.zeros[1], 0);
    assert!((st.sum[1] - 0.64).abs() < 1e-4, "{:?}", st.sum);
    let c = ImportanceConfig {
        criterion: Criterion::Apoz,
        ..Default::default()
    };
    let s = Scorer::new(&m, &g, &c, &[gid], Some(&stats)).unwrap();
    let GroupImportance::Scores(s) = s.score(gid, "conv1").unwrap() else {
        panic!("no scores")
    };
    assert_eq!(s[3], 0.0);
    assert_eq!(s[1], 1.0);
    assert!((s[0] - (1.0 - st.zeros[0] as f64 / 64.0)).abs() < 1e-12);
}

/// `input → conv1 (4 filters) → Relu → conv2 (4) → Relu → conv3 (2) → output`, 1x1 convs, with
/// conv2 all zeros so the two groups' L2 scores are set by conv1's rows and conv3's columns
/// alone: group A (conv1) = [100; 4], group B (conv2) = [1, 1, 10, 10].
fn two_groups() -> Model {
    let mut b = ModelBuilder::new(17).named("two_groups");
    let x = b.input("input", &[1, 4, 2, 2]);
    let w1: Vec<f32> = (0..4).flat_map(|_| [10.0, 10.0, 0.0, 0.0]).collect();
    let w1 = b.init_f32("conv1.weight", &[4, 4, 1, 1], &w1);
    let y = b.node_named("/conv1/Conv", "Conv", &[&x, &w1], 1, vec![]);
    let y = b.node_named("/relu1/Relu", "Relu", &[&y[0]], 1, vec![]);
    let w2 = b.init_f32("conv2.weight", &[4, 4, 1, 1], &[0.0; 16]);
    let y = b.node_named("/conv2/Conv", "Conv", &[&y[0], &w2], 1, vec![]);
    let y = b.node_named("/relu2/Relu", "Relu", &[&y[0]], 1, vec![]);
    let s = 10f32.sqrt();
    // conv3.weight[o][i]: columns i = [1, 1], [1, 1], [√10, √10], [√10, √10].
    let w3 = b.init_f32(
        "conv3.weight",
        &[2, 4, 1, 1],
        &[1.0, 1.0, s, s, 1.0, 1.0, s, s],
    );
    let y = b.node_named("/conv3/Conv", "Conv", &[&y[0], &w3], 1, vec![]);
    b.output(&y[0]);
    analysed(b.build_model())
}

fn global_counts(criterion: Criterion) -> (usize, usize) {
    let m = two_groups();
    let out = prune(
        &m,
        &PruneConfig {
            importance: cfg(criterion),
            allocation: AllocationConfig {
                global: true,
                ..Default::default()
            },
            goal: Goal::Ratio(0.5),
            ..Default::default()
        },
        &NoProgress,
    )
    .unwrap();
    let count = |t: &str| {
        out.stages[0]
            .plans
            .iter()
            .find(|p| p.root.tensor == t)
            .map_or(0, |p| p.indices.len())
    };
    (count("conv1.weight"), count("conv2.weight"))
}

#[test]
fn lamp_makes_groups_of_different_scales_comparable() {
    let m = two_groups();
    let g = DependencyGraph::build(&m);
    let b = group_of(&m, &g, "conv2.weight");
    let c = cfg(Criterion::Lamp);
    let s = Scorer::new(&m, &g, &c, &[b], None).unwrap();
    let GroupImportance::Scores(got) = s.score(b, "conv2").unwrap() else {
        panic!()
    };
    let mut want = vec![1.0, 1.0, 10.0, 10.0];
    lamp(&mut want);
    assert_close(&got, &want);
    // Global L2 takes three of B's four channels (its raw scores are all below A's); LAMP
    // compares each group's distribution and takes two from each.
    assert_eq!(global_counts(Criterion::L2), (1, 3));
    assert_eq!(global_counts(Criterion::Lamp), (2, 2));
}
