//! The text form of a plan: one line per tensor, in the spirit of Torch-Pruning's printed
//! group, then the rewrites and the totals. Deterministic.

use std::fmt::Write;

use shears_graph::rules::Rewrite;

use crate::summary::compact_indices;
use crate::{PlanEntry, PruningPlan, TensorKind};

/// Renders `plan` as text. Activations are summarized in a count; every edited tensor gets a
/// line, numbered, with aligned columns.
pub fn render_text(plan: &PruningPlan) -> String {
    render(plan, true)
}

/// The same text without numbers and column padding, one entry per line: what `shears diff`
/// compares, so that a tensor more or less shows as one changed line, not a shifted table.
pub fn render_lines(plan: &PruningPlan) -> String {
    render(plan, false)
}

fn render(plan: &PruningPlan, aligned: bool) -> String {
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
    let width = |f: fn(&PlanEntry) -> usize| {
        if aligned {
            edited.iter().map(|e| f(e)).max().unwrap_or(0)
        } else {
            0
        }
    };
    let w_tensor = width(|e| e.tensor.len());
    let w_node = width(|e| e.node.len());
    let w_op = width(|e| e.op.len());
    for (i, e) in edited.iter().enumerate() {
        let action = match (e.kind, e.role.as_str()) {
            (TensorKind::Statistic, _) => "prune_stats",
            (TensorKind::Quantization, _) => "prune_quant",
            (_, "out") => "prune_out",
            _ => "prune_in",
        };
        if aligned {
            let _ = write!(s, "[{i}] {action:<11} ");
        } else {
            let _ = write!(s, "{action} ");
        }
        let _ = writeln!(
            s,
            "{:<w_tensor$}  axis {}  on {:<w_node$}  {:<w_op$}  idxs=[{}] ({} of {})  -{}",
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
        Rewrite::SplitSizes { node, old, new } => {
            format!("{node}: implicit split sizes {old:?} -> explicit {new:?}")
        }
        Rewrite::ShapeOverlay {
            node,
            slot,
            tensor,
            entries,
        } => {
            let e: Vec<String> = entries
                .iter()
                .map(|(k, old, new)| format!("[{k}] {old} -> {new}"))
                .collect();
            format!(
                "{node}: input {slot} reads a private copy of shared '{tensor}' with {}",
                e.join(", ")
            )
        }
    }
}
