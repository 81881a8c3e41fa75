//! The property `groups` promises: a group it calls prunable can be planned, applied and
//! re-analysed. Shared by this crate's tests (zoo and repository fixtures) and the root
//! package's shared-suite test (which includes this file by path).
//!
//! For every prunable group with at least two channels and a layer naming it (the others the
//! pruner reports as left whole before planning), two plans: the group's first unit, and a
//! seeded random proper subset of its units. Each is planned (`plan_units`, as pruners do),
//! applied, and the result reloaded with shape inference; any refusal is a broken promise.

#![allow(dead_code)]

use shears_graph::{DependencyGraph, UnitId};
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};

/// A deterministic proper, non-empty subset of `units` (about half), seeded by `seed`.
fn random_subset(units: &[UnitId], seed: u64) -> Vec<UnitId> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut pick: Vec<UnitId> = units
        .iter()
        .copied()
        .filter(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x & 1 == 1
        })
        .collect();
    if pick.is_empty() {
        pick.push(units[units.len() / 2]);
    }
    if pick.len() == units.len() {
        pick.pop();
    }
    pick
}

/// Every broken promise of `model` (analysed with `shapes`), one line each; empty when every
/// prunable group plans, applies and re-analyses. Also returns how many groups were checked.
pub fn refusals(model: &Model, shapes: &InputShapes, what: &str) -> (usize, Vec<String>) {
    let graph = DependencyGraph::build(model);
    let reports = shears_plan::group_reports(model, &graph);
    let mut out = Vec::new();
    let mut checked = 0;
    for (report, group) in reports.iter().zip(&graph.groups) {
        if !report.prunable || group.units.len() < 2 {
            continue;
        }
        if shears_plan::group_layer(model, &graph, group.id).is_none() {
            continue;
        }
        checked += 1;
        let subsets = [
            vec![group.units[0]],
            random_subset(&group.units, u64::from(group.id.0) + 1),
        ];
        for units in subsets {
            let fail = |stage: &str, e: String| {
                format!(
                    "{what}: group {} ({} of {} units): {stage}: {e}",
                    report.root,
                    units.len(),
                    group.units.len()
                )
            };
            let plan = match shears_plan::plan_units(model, &graph, group.id, &units) {
                Ok(p) => p,
                Err(e) => {
                    out.push(fail("plan", e.to_string()));
                    continue;
                }
            };
            let applied = match shears_exec::apply(model, std::slice::from_ref(&plan)) {
                Ok(a) => a,
                Err(e) => {
                    out.push(fail("apply", e.to_string()));
                    continue;
                }
            };
            let reloaded = Model::from_proto(applied.proto, what, ExternalStore::none())
                .and_then(|mut m| shears_onnx::shape::infer_shapes(&mut m, shapes).map(|_| m));
            if let Err(e) = reloaded {
                out.push(fail("the pruned model", e.to_string()));
            }
        }
    }
    (checked, out)
}
