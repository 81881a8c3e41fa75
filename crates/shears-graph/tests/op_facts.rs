//! The op facts (`shears_onnx::ops::OP_FACTS`: parameter slots, roles, channel-wise ops) and the
//! coupling rules (`shears_graph::rules::RULES`) describe the same ops: a fact about an op the
//! graph cannot couple would classify tensors of nodes that are opaque anyway, so every op with
//! facts has a rule, unless it is listed here as deliberately opaque, with the reason.

use std::collections::BTreeSet;

use shears_graph::rules::all_rules;
use shears_onnx::ops::{facts_in, facts_of, OpRole, QuantizedAxis, MS_DOMAIN, OP_FACTS};

/// Ops with facts but, on purpose, no coupling rule: (op, why).
const DELIBERATELY_OPAQUE: &[(&str, &str)] = &[];

#[test]
fn every_op_with_facts_has_a_coupling_rule_or_is_deliberately_opaque() {
    // Keyed by domain and op: a contrib op's rule never stands for a default-domain op's.
    let ruled: BTreeSet<(&str, &str)> = all_rules().map(|(d, op, _)| (d, op)).collect();
    let opaque: BTreeSet<(&str, &str)> = DELIBERATELY_OPAQUE
        .iter()
        .map(|(op, _)| ("", *op))
        .collect();
    let mut missing = Vec::new();
    for f in OP_FACTS {
        for op in f.ops {
            if !ruled.contains(&(f.domain, *op)) && !opaque.contains(&(f.domain, *op)) {
                missing.push(format!("{}:{op}", f.domain));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ops with facts but no rule: {missing:?}"
    );
    for op in &opaque {
        assert!(
            !ruled.contains(op),
            "{op:?} is listed as opaque but has a rule"
        );
    }
}

#[test]
fn the_facts_the_tools_rely_on() {
    // Parameter counting: Conv's bias is a parameter whatever its size, BatchNorm's running
    // statistics are not.
    assert!(facts_of("Conv").is_parameter_slot(2));
    assert_eq!(facts_of("BatchNormalization").statistic_slots, &[3, 4]);
    assert!(!facts_of("BatchNormalization").is_parameter_slot(3));
    // Roles.
    assert_eq!(facts_of("LayerNormalization").scale_slot, Some(1));
    assert_eq!(facts_of("Gemm").kernel_slots, &[0, 1]);
    assert_eq!(facts_of("PRelu").role, OpRole::Activation);
    assert_eq!(facts_of("Transpose").role, OpRole::Layout);
    // LayerNorm mixes channels; BatchNorm does not.
    assert!(facts_of("BatchNormalization").channelwise);
    assert!(!facts_of("LayerNormalization").channelwise);
    // onnxruntime's fused ops: found in com.microsoft only.
    let skip = facts_in(MS_DOMAIN, "SkipLayerNormalization");
    assert_eq!(skip.scale_slot, Some(2));
    assert_eq!(skip.vector_slots, &[2, 3, 4]);
    assert_eq!(facts_in(MS_DOMAIN, "FastGelu").role, OpRole::Activation);
    assert_eq!(facts_of("FastGelu").role, OpRole::Other);
    assert_eq!(facts_of("SimplifiedLayerNormalization").scale_slot, Some(1));
    // Computed weights: a standardised kernel (ReduceMean, Sub, Div, Reshape) and a transposed
    // one are weights; an activation's or a layer's output never is.
    for op in [
        "ReduceMean",
        "Sub",
        "Div",
        "Reshape",
        "BatchNormalization",
        "Transpose",
    ] {
        assert!(facts_of(op).passes_weights(), "{op}");
    }
    for op in ["Relu", "Conv", "MatMul", "Concat", "NoSuchOp"] {
        assert!(!facts_of(op).passes_weights(), "{op}");
    }
    // Quantized reads: a QLinearConv's weight per output channel with its own scale and zero
    // point; a QLinearMatMul's operands per row and per column; ConvInteger without a scale;
    // none for its bias, nor for a QuantizeLinear (its input is float).
    let conv = facts_of("QLinearConv").quantized_read(3).expect("weight");
    assert_eq!(
        (conv.scale_slot, conv.zero_point_slot, conv.axis),
        (Some(4), 5, QuantizedAxis::First)
    );
    assert!(facts_of("QLinearConv").quantized_read(8).is_none());
    let axes = |op: &str, slot| facts_of(op).quantized_read(slot).map(|r| r.axis);
    assert_eq!(axes("QLinearMatMul", 0), Some(QuantizedAxis::Rows));
    assert_eq!(axes("QLinearMatMul", 3), Some(QuantizedAxis::Columns));
    assert_eq!(axes("DequantizeLinear", 0), Some(QuantizedAxis::Attribute));
    assert_eq!(
        facts_of("ConvInteger")
            .quantized_read(1)
            .unwrap()
            .scale_slot,
        None
    );
    assert!(facts_of("QuantizeLinear").quantized_read(0).is_none());
}
