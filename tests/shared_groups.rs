//! `shears groups` on every shared model and fixture: every blocked group, with what blocks
//! it, pinned in one snapshot. Each block there is a graph input or output (a first conv's
//! image channels, a classifier's logits) or, in the ViTs, the token axis: tokens are the
//! patch conv's spatial positions merged by a Reshape, and the class-token selection (a Gather
//! with a scalar index) drops that axis, so tokens cannot be pruned.
#![cfg(feature = "shared-suite")]

mod common;

use std::fmt::Write;

use common::{onnx_files, shared};
use shears_graph::DependencyGraph;
use shears_onnx::{InputShapes, Model};

#[test]
fn blocked_groups_of_every_shared_model() {
    let mut out = String::new();
    for dir in ["models", "fixtures"] {
        for path in onnx_files(&shared().join(dir)) {
            let mut model = Model::load(&path).unwrap();
            shears_onnx::shape::infer_shapes(&mut model, &InputShapes::default()).unwrap();
            let graph = DependencyGraph::build(&model);
            let reports = shears_plan::group_reports(&model, &graph);
            let name = path.file_name().unwrap().to_string_lossy();
            let prunable = reports.iter().filter(|r| r.prunable).count();
            let _ = writeln!(
                out,
                "{dir}/{name}: {} groups, {prunable} prunable",
                reports.len()
            );
            for r in reports.iter().filter(|r| !r.prunable) {
                let part = r.members.iter().any(|m| {
                    format!("{}[{}]", m.tensor, m.axis) == r.root && m.size != r.root_indices.len()
                });
                let idx = &r.root_indices;
                let contiguous = idx.windows(2).all(|w| w[1] == w[0] + 1);
                let root = if part && contiguous && idx.len() > 1 {
                    format!("{} at {}..{}", r.root, idx[0], idx[idx.len() - 1] + 1)
                } else if part {
                    format!("{} at {idx:?}", r.root)
                } else {
                    r.root.clone()
                };
                let _ = writeln!(out, "  BLOCKED {root} ({} ch)", r.channels);
                for b in &r.blockers {
                    assert!(!b.reason.is_empty(), "{name}: {}", r.root);
                    let _ = writeln!(out, "    {}: {}", b.dim, b.reason);
                }
            }
        }
    }
    insta::assert_snapshot!("blocked", out);
}
