//! Whole attention heads on the transformer exports in `../shared/models/transformers`: every
//! head of every attention removed alone is exact by the zeroing check (the removed heads'
//! output-projection columns zeroed in the original), at the length the models were exported
//! at. With grouped-query attention (Llama: 4 query heads, 2 key/value heads) a unit is a
//! key/value head with its query group, and the zeroing check zeroes the whole group's
//! columns. Every export is here: GPT-2's dynamo export splits its fused qkv into implicit
//! equal parts (no sizes), and Llama's dynamo export shares one computed `repeat_kv` Expand
//! shape between the layers (each layer's Expand gets a private copy of the edited entry).
#![cfg(feature = "shared-suite")]

mod common;

use common::shared;
use shears_onnx::{InputShapes, Model};

fn load(m: &str, input: &str, bound: &str) -> (Model, InputShapes) {
    let path = shared().join(format!("models/transformers/{m}.onnx"));
    let shapes = InputShapes::parse(&[format!("{input}={bound}")]).unwrap();
    let mut model = Model::load(&path).unwrap();
    shears_onnx::shape::infer_shapes(&mut model, &shapes).unwrap();
    (model, shapes)
}

#[test]
fn every_head_of_every_attention_is_removable_alone_and_exact() {
    // 2 layers of 4 heads each; Llama's units are its 2 key/value heads, each with the 2 query
    // heads reading it (a removed unit is a whole query group).
    for (m, input, bound, units) in [
        ("bert-ts", "input", "1,16", 4),
        ("bert-dynamo", "x", "1,16", 4),
        ("gpt2-ts", "input", "1,16", 4),
        ("gpt2-dynamo", "x", "1,16", 4),
        ("llama-ts", "input", "1,16", 2),
        ("llama-dynamo", "x", "1,16", 2),
        ("vit-ts", "input", "1,3,32,32", 4),
        ("vit-dynamo", "x", "1,3,32,32", 4),
    ] {
        let (model, shapes) = load(m, input, bound);
        let checks = shears_testkit::check_every_head(&model, &shapes, 1, 11).unwrap();
        assert_eq!(checks.len(), 2 * units, "{m}: {checks:?}");
        for c in &checks {
            assert_eq!(c.heads, units, "{m}: {c:?}");
            assert!(c.exactness.exact_expected, "{m}: {c:?}");
            assert!(c.exactness.shapes_equal, "{m}: {c:?}");
            assert!(c.exactness.max_rel <= 1e-5, "{m}: {c:?}");
        }
    }
}

#[test]
fn gqa_query_heads_keep_every_kv_head_and_are_exact() {
    // Llama: 4 query heads of 16 in 2 groups reading 2 key/value heads. With query heads as
    // units, unit r is query head r of both groups (heads r and r + 2), every key/value head
    // stays, and each removed alone is exact.
    for (m, input) in [("llama-ts", "input"), ("llama-dynamo", "x")] {
        let (model, shapes) = load(m, input, "1,16");
        let checks = shears_testkit::check_every_head_with(
            &model,
            &shapes,
            shears_graph::Granularity::QueryHeads,
            1,
            11,
        )
        .unwrap();
        assert_eq!(checks.len(), 2 * 2, "{m}: {checks:?}");
        for c in &checks {
            assert_eq!(c.heads, 2, "{m}: {c:?}");
            assert!(c.exactness.exact_expected, "{m}: {c:?}");
            assert!(c.exactness.shapes_equal, "{m}: {c:?}");
            assert!(c.exactness.max_rel <= 1e-5, "{m}: {c:?}");
        }
        let graph = shears_graph::DependencyGraph::build_with(
            &model,
            shears_graph::Granularity::QueryHeads,
        );
        for c in checks.iter().filter(|c| c.head == 1) {
            let plan = shears_plan::plan_heads(&model, &graph, &c.layer, &[1]).unwrap();
            let rows: Vec<u32> = (16..32).chain(48..64).collect();
            assert_eq!(plan.indices, rows, "{m}: {}", c.layer);
            // Only the query projection's rows and the output projection's columns go.
            let cut: Vec<(&str, usize)> = plan
                .entries
                .iter()
                .filter(|e| {
                    e.elements_removed > 0
                        && model
                            .graph
                            .value_id(&e.tensor)
                            .is_some_and(|v| model.is_stored(v))
                })
                .map(|e| (e.role.as_str(), e.axis))
                .collect();
            assert_eq!(cut.len(), 2, "{m}: {cut:?}");
        }
    }
}
