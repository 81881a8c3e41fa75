//! Seeded random batches of plans, for property tests and fuzzing: every prunable group whose
//! root is a layer may get a plan removing a random proper subset of its channels.

use std::collections::BTreeSet;

use shears_graph::DependencyGraph;
use shears_onnx::Model;
use shears_plan::PruningPlan;

/// A small deterministic generator (splitmix64), so batches are reproducible from a seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A batch of plans over distinct groups of `model`, chosen from `seed`: each prunable group
/// with at least two channels is included with probability 1/2 and loses between one channel
/// and all but one. Plans that cannot be made (a rewrite the model does not allow) are left out.
pub fn random_plans(model: &Model, graph: &DependencyGraph, seed: u64) -> Vec<PruningPlan> {
    let mut rng = SplitMix(seed);
    let mut plans = Vec::new();
    for (report, group) in shears_plan::group_reports(model, graph)
        .iter()
        .zip(&graph.groups)
    {
        if !report.prunable || report.channels < 2 || rng.below(2) == 0 {
            continue;
        }
        let Some((root, _)) = report.root.rsplit_once('[') else {
            continue;
        };
        // The layer named by the root tensor must own this group (a root that is an input
        // axis names a layer whose output channels are another group).
        let Ok((_, dim)) = shears_plan::resolve_layer(model, graph, root) else {
            continue;
        };
        if graph.group_at(dim, 0) != Some(group.id) {
            continue;
        }
        // Indices of the root, one per unit, in unit order.
        let mut seen = BTreeSet::new();
        let firsts: Vec<usize> = (0..graph.dim(dim).size)
            .filter(|&i| graph.unit_at(dim, i).is_some_and(|u| seen.insert(u)))
            .collect();
        let n = firsts.len();
        if n < 2 {
            continue;
        }
        let k = 1 + rng.below(n - 1);
        let mut chosen = BTreeSet::new();
        while chosen.len() < k {
            chosen.insert(firsts[rng.below(n)]);
        }
        let idxs: Vec<usize> = chosen.into_iter().collect();
        if let Ok(p) = shears_plan::plan(model, graph, root, &idxs) {
            plans.push(p);
        }
    }
    plans
}
