//! `head_ratio`: whole attention heads ranked by every slice they own (q, k, v rows and the
//! output projection's columns) and removed in a stage of their own, before the widths.

use shears_graph::Granularity;
use shears_onnx::external::ExternalStore;
use shears_onnx::{InputShapes, Model};
use shears_pruner::{prune, Goal, NoProgress, PruneConfig};
use shears_testkit::builder::zoo;

const QKV: &str = "encoder.layers.0.self_attention.qkv.weight";

/// The zoo ViT layer (2 heads of 8 dims, fused qkv stored `[16, 48]`) with head `loud`'s qkv
/// columns scaled up tenfold, so that the other head is the less important one.
fn vit(loud: usize) -> Model {
    let mut proto = zoo::vit_encoder_layer();
    let graph = proto.graph.as_mut().unwrap();
    let t = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == QKV)
        .unwrap();
    let mut w: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    assert_eq!(w.len(), 16 * 48);
    for (i, x) in w.iter_mut().enumerate() {
        let col = i % 48;
        if (col / 8) % 2 == loud {
            *x *= 10.0;
        }
    }
    t.float_data.clear();
    t.raw_data = w
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect::<Vec<u8>>()
        .into();
    let mut m = Model::from_proto(proto, "vit", ExternalStore::none()).unwrap();
    shears_onnx::shape::infer_shapes(&mut m, &InputShapes::default()).unwrap();
    m
}

fn cfg(head_ratio: f64, ratio: f64) -> PruneConfig {
    PruneConfig {
        goal: Goal::Ratio(ratio),
        head_ratio: Some(head_ratio),
        ..Default::default()
    }
}

#[test]
fn the_head_stage_removes_the_weaker_whole_head_first() {
    for (loud, weak) in [(0usize, 1usize), (1, 0)] {
        let out = prune(&vit(loud), &cfg(0.5, 0.0), &NoProgress).unwrap();
        let heads = &out.stages[0];
        assert_eq!(heads.stage, 0);
        assert_eq!(heads.plans.len(), 1, "one attention");
        let plan = &heads.plans[0];
        assert_eq!(plan.granularity, Granularity::Heads);
        assert_eq!(plan.channels_removed, 1, "one of 2 heads");
        let want: Vec<u32> = (0..48u32)
            .filter(|c| (c / 8) as usize % 2 == weak)
            .collect();
        assert_eq!(plan.indices, want, "loud head {loud}");
        // The widths stage at ratio 0 removes nothing; the model has one head left.
        assert!(out.stages[1].plans.is_empty());
        let w = out.model.graph.value_id(QKV).unwrap();
        assert_eq!(
            out.model.graph.value(w).shape.as_deref(),
            Some(&[16usize, 24][..])
        );
    }
}

#[test]
fn heads_then_widths_compose_and_the_ratio_is_checked() {
    let out = prune(&vit(0), &cfg(0.5, 0.5), &NoProgress).unwrap();
    assert_eq!(out.stages.len(), 2);
    assert!(!out.stages[1].plans.is_empty(), "widths pruned after heads");
    assert!(out.stages[1]
        .plans
        .iter()
        .all(|p| p.granularity == Granularity::HeadDims));
    assert!(out.pruned.parameters < out.original.parameters);
    let bad = PruneConfig {
        head_ratio: Some(1.0),
        ..Default::default()
    };
    let Err(e) = prune(&vit(0), &bad, &NoProgress) else {
        panic!("a head ratio of 1 was accepted");
    };
    assert!(e.to_string().contains("head-ratio"), "{e}");
}
