//! The text form of a plan: one line per tensor, in the spirit of Torch-Pruning's printed
//! group, then the rewrites and the totals. Deterministic.

use std::fmt::Write;

use shears_graph::rules::Rewrite;

use crate::summary::compact_indices;
use crate::{PruningPlan, TensorKind};

/// Renders `plan` as text. Activations are summarized in a count; every edited tensor gets a
/// line.
pub fn render_text(plan: &PruningPlan) -> String {
    let mut s = String::new();
    let r = &plan.root;
    let rule = "-".repeat(96);
    let _ = writeln!(s, "{rule}");
    let _ = writeln!(
        s,
        "Pruning plan: {} (node {}, {} axis {}), remove {} of {} channels: [{}]",
        r.layer,
        r.node,
        r.tensor,
        r.axis,
        plan.indices.len(),
        r.size,
        compact_indices(&plan.indices)
    );
    if let Some(root) = plan
        .entries
        .iter()
        .find(|e| e.tensor == r.tensor && e.axis == r.axis)
    {
        if root.indices != plan.indices {
            let _ = writeln!(
                s,
                "Coupled within the layer: its channels [{}] go together",
                compact_indices(&root.indices)
            );
        }
    }
    let _ = writeln!(s, "{rule}");
    let edited: Vec<_> = plan
        .entries
        .iter()
        .filter(|e| e.kind != TensorKind::Activation)
        .collect();
    let w_tensor = edited.iter().map(|e| e.tensor.len()).max().unwrap_or(0);
    let w_node = edited.iter().map(|e| e.node.len()).max().unwrap_or(0);
    let w_op = edited.iter().map(|e| e.op.len()).max().unwrap_or(0);
    for (i, e) in edited.iter().enumerate() {
        let action = match (e.kind, e.role.as_str()) {
            (TensorKind::Statistic, _) => "prune_stats",
            (_, "out") => "prune_out",
            _ => "prune_in",
        };
        let _ = writeln!(
            s,
            "[{i}] {action:<11} {:<w_tensor$}  axis {}  on {:<w_node$}  {:<w_op$}  idxs=[{}] ({} of {})  -{}",
            e.tensor,
            e.axis,
            e.node,
            e.op,
            compact_indices(&e.indices),
            e.indices.len(),
            e.size,
            e.elements_removed,
        );
    }
    if !plan.rewrites.is_empty() {
        let _ = writeln!(s, "Rewrites:");
        for rw in &plan.rewrites {
            let _ = writeln!(s, "  {}", rewrite_line(rw));
        }
    }
    if !plan.mixed_by.is_empty() {
        let _ = writeln!(
            s,
            "Mixed without a weight by: {} (valid, not exact)",
            plan.mixed_by.join(", ")
        );
    }
    let activations = plan.entries.len() - edited.len();
    let _ = writeln!(s, "{rule}");
    let _ = writeln!(
        s,
        "Total: {} parameters removed (+{} running statistics) from {} tensors; {} activations reshaped; {} of {} channels of the group",
        plan.parameters_removed,
        plan.statistics_removed,
        edited.len(),
        activations,
        plan.channels_removed,
        plan.group_channels,
    );
    s
}

/// One line describing a rewrite.
pub fn rewrite_line(rw: &Rewrite) -> String {
    match rw {
        Rewrite::AttrInt {
            node,
            attr,
            old,
            new,
        } => format!("{node}: attribute {attr} {old} -> {new}"),
        Rewrite::AttrInts {
            node,
            attr,
            old,
            new,
        } => format!("{node}: attribute {attr} {old:?} -> {new:?}"),
        Rewrite::ConstInts {
            node,
            slot,
            tensor,
            old,
            new,
            ..
        } => format!("{node}: input {slot} '{tensor}' {old:?} -> {new:?}"),
    }
}
