//! The exactness check for whole attention heads: every head of every head group removed
//! alone, each pruned model compared with the original whose removed heads' output-projection
//! columns are zeroed ([`check_exactness`] zeroes every input-channel slice a plan removes,
//! head plans included).

use shears_graph::{DependencyGraph, Granularity};
use shears_onnx::{InputShapes, Model};

use crate::zero::{check_exactness, Exactness};

/// One head removed alone and its check.
#[derive(Clone, Debug)]
pub struct HeadCheck {
    /// The head group's layer (its q or fused qkv projection).
    pub layer: String,
    pub head: usize,
    /// How many heads (units) the layer has.
    pub heads: usize,
    pub exactness: Exactness,
}

/// Removes each head of each prunable head group of `model` alone (on its
/// [`Granularity::Heads`] graph) and checks each pruned model against the zeroed original on
/// `samples` seeded inputs. Blocked head groups are skipped (`shears groups` says why).
pub fn check_every_head(
    model: &Model,
    shapes: &InputShapes,
    samples: usize,
    seed: u64,
) -> Result<Vec<HeadCheck>, Box<dyn std::error::Error + Send + Sync>> {
    check_every_head_with(model, shapes, Granularity::Heads, samples, seed)
}

/// [`check_every_head`] with heads of the given whole-head `granularity`
/// ([`Granularity::QueryHeads`]: with grouped-query attention, query head `r` of every group).
pub fn check_every_head_with(
    model: &Model,
    shapes: &InputShapes,
    granularity: Granularity,
    samples: usize,
    seed: u64,
) -> Result<Vec<HeadCheck>, Box<dyn std::error::Error + Send + Sync>> {
    let graph = DependencyGraph::build_with(model, granularity);
    let layers = shears_plan::GroupLayers::new(model, &graph);
    let mut out = Vec::new();
    for g in &graph.groups {
        if !g.is_prunable() || !graph.is_head_group(g.id) {
            continue;
        }
        let Some(layer) = layers.layer(g.id) else {
            continue;
        };
        let name = model.graph.node(layer.node).name.clone();
        let lh = shears_plan::layer_heads(model, &graph, &name)?;
        for head in 0..lh.heads.len() {
            let plan = shears_plan::plan_heads(model, &graph, &name, &[head])?;
            let exactness = check_exactness(model, &[plan], shapes, samples, seed)?;
            out.push(HeadCheck {
                layer: name.clone(),
                head,
                heads: lh.heads.len(),
                exactness,
            });
        }
    }
    Ok(out)
}
