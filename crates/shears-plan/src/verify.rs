//! Plans read from a file are verified, not trusted: each is re-derived from its root and
//! indices on the model it is applied to, and must equal what the file says. An edited plan
//! (BatchNorm indices that disagree with their conv, a rewrite changed by hand) would otherwise
//! give a model that loads and runs with misaligned channels.

use shears_graph::DependencyGraph;
use shears_onnx::Model;

use crate::summary::compact_indices;
use crate::{plan, rewrite_line, PlanEntry, PlanError, PruningPlan};

/// Re-derives `given` from its root layer and indices on `model` and returns the derived plan
/// when it equals `given`; otherwise a [`PlanError::Differs`] naming the first difference (root,
/// then entries in order, then rewrites, then totals).
pub fn verify_plan(
    model: &Model,
    graph: &DependencyGraph,
    given: &PruningPlan,
) -> Result<PruningPlan, PlanError> {
    let label = plan_label(given);
    let differs = |detail: String| PlanError::Differs {
        plan: label.clone(),
        detail,
    };
    let idxs: Vec<usize> = given.indices.iter().map(|&i| i as usize).collect();
    // A head plan is re-derived on a graph with whole heads as units, and the other way round.
    let other;
    let graph = if graph.granularity == given.granularity {
        graph
    } else {
        other = DependencyGraph::build_with(model, given.granularity);
        &other
    };
    let derived = plan(model, graph, &given.root.layer, &idxs)
        .map_err(|e| differs(format!("it cannot be re-derived on this model: {e}")))?;
    if derived == *given {
        return Ok(derived);
    }
    if given.version != derived.version {
        return Err(differs(format!(
            "format version {} (this build writes {})",
            given.version, derived.version
        )));
    }
    if given.root != derived.root {
        let r = |p: &PruningPlan| {
            format!(
                "node {}, {} axis {} of {}",
                p.root.node, p.root.tensor, p.root.axis, p.root.size
            )
        };
        return Err(differs(format!(
            "root: the file has {}, the model gives {}",
            r(given),
            r(&derived)
        )));
    }
    for (i, (a, b)) in given.entries.iter().zip(&derived.entries).enumerate() {
        if a != b {
            return Err(differs(format!(
                "entry {i}: the file has {}, the model gives {}",
                entry_text(a),
                entry_text(b)
            )));
        }
    }
    if given.entries.len() != derived.entries.len() {
        let n = given.entries.len().min(derived.entries.len());
        return Err(differs(
            match (given.entries.get(n), derived.entries.get(n)) {
                (Some(a), _) => format!(
                    "entry {n}: the file has {}, the model has no such entry",
                    entry_text(a)
                ),
                (_, Some(b)) => format!(
                    "entry {n}: the file lacks {}, which the model gives",
                    entry_text(b)
                ),
                _ => unreachable!("the lengths differ"),
            },
        ));
    }
    for (i, (a, b)) in given.rewrites.iter().zip(&derived.rewrites).enumerate() {
        if a != b {
            return Err(differs(format!(
                "rewrite {i}: the file has '{}', the model gives '{}'",
                rewrite_line(a),
                rewrite_line(b)
            )));
        }
    }
    if given.rewrites.len() != derived.rewrites.len() {
        return Err(differs(format!(
            "the file has {} rewrites, the model gives {}",
            given.rewrites.len(),
            derived.rewrites.len()
        )));
    }
    let totals = |p: &PruningPlan| {
        format!(
            "{} of {} channels, {} parameters and {} statistics removed, mixed by [{}]",
            p.channels_removed,
            p.group_channels,
            p.parameters_removed,
            p.statistics_removed,
            p.mixed_by.join(", ")
        )
    };
    Err(differs(format!(
        "totals: the file has {}, the model gives {}",
        totals(given),
        totals(&derived)
    )))
}

/// `layer 'conv1' [1, 3]`: how errors name a plan.
fn plan_label(p: &PruningPlan) -> String {
    format!("layer '{}' [{}]", p.root.layer, compact_indices(&p.indices))
}

fn entry_text(e: &PlanEntry) -> String {
    format!(
        "'{}' axis {} ({:?}, {} on {}, size {}) idxs=[{}] -{}",
        e.tensor,
        e.axis,
        e.kind,
        e.role,
        e.node,
        e.size,
        compact_indices(&e.indices),
        e.elements_removed
    )
}
