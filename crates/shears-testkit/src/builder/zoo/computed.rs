//! Models whose channels cross weights computed in the graph and rarer layout ops: weight
//! standardisation (BiT's `StdConv2d`, directly and through a 2-D Reshape and back), a conv bias
//! made by `ConstantOfShape` and one by `Expand`, a `GatherND` picking tokens, and a Reshape that
//! folds the channel axis with a patch axis and back.

use super::{finish, start};
use crate::builder::{attr_int, attr_ints, attr_tensor, tensor_f32, tensor_i64, ModelBuilder};
use shears_onnx::proto::ModelProto;

/// `(w - mean(w)) / sqrt(var(w) + eps)` over every axis but the first: BiT's `StdConv2d`.
fn standardise(b: &mut ModelBuilder, layer: &str, w: &str) -> String {
    let ws = b.shape_of(w).to_vec();
    let mut stat = ws.clone();
    stat[1..].iter_mut().for_each(|d| *d = 1);
    let axes = || vec![attr_ints("axes", &[1, 2, 3]), attr_int("keepdims", 1)];
    let mean = b.layer_op(layer, "ReduceMean", &[w], axes(), stat.clone());
    let c = b.layer_op(layer, "Sub", &[w, &mean], vec![], ws.clone());
    let sq = b.layer_op(layer, "Mul", &[&c, &c], vec![], ws.clone());
    let var = b.layer_op(layer, "ReduceMean", &[&sq], axes(), stat.clone());
    let eps = b.scalar_f32(&format!("{layer}.eps"), 1e-5);
    let ve = b.layer_op(layer, "Add", &[&var, &eps], vec![], stat.clone());
    let sd = b.layer_op(layer, "Sqrt", &[&ve], vec![], stat);
    b.layer_op(layer, "Div", &[&c, &sd], vec![], ws)
}

/// The same through a 2-D view: `w.reshape(C, -1)` normalised over axis 1, reshaped back.
fn standardise_2d(b: &mut ModelBuilder, layer: &str, w: &str) -> String {
    let ws = b.shape_of(w).to_vec();
    let flat = b.reshape(w, &[ws[0], -1]);
    let fs = b.shape_of(&flat).to_vec();
    let stat = vec![ws[0], 1];
    let axes = || vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)];
    let mean = b.layer_op(layer, "ReduceMean", &[&flat], axes(), stat.clone());
    let c = b.layer_op(layer, "Sub", &[&flat, &mean], vec![], fs.clone());
    let two = b.scalar_f32(&format!("{layer}.two"), 2.0);
    let sq = b.layer_op(layer, "Pow", &[&c, &two], vec![], fs.clone());
    let var = b.layer_op(layer, "ReduceMean", &[&sq], axes(), stat.clone());
    let eps = b.scalar_f32(&format!("{layer}.eps"), 1e-5);
    let ve = b.layer_op(layer, "Add", &[&var, &eps], vec![], stat.clone());
    let sd = b.layer_op(layer, "Sqrt", &[&ve], vec![], stat);
    let n = b.layer_op(layer, "Div", &[&c, &sd], vec![], fs);
    b.reshape(&n, &ws)
}

/// A 3x3 conv (padding 1, with bias) reading a weight `make` computes from `{layer}.weight`.
fn conv_computed(
    b: &mut ModelBuilder,
    x: &str,
    layer: &str,
    out: i64,
    make: fn(&mut ModelBuilder, &str, &str) -> String,
) -> String {
    let xs = b.shape_of(x).to_vec();
    let w = b.param_random(&format!("{layer}.weight"), &[out, xs[1], 3, 3]);
    let bias = b.param_uniform(&format!("{layer}.bias"), &[out], -0.1, 0.1);
    let ws = make(b, layer, &w);
    let attrs = vec![
        attr_ints("kernel_shape", &[3, 3]),
        attr_ints("pads", &[1, 1, 1, 1]),
    ];
    b.layer_op(
        layer,
        "Conv",
        &[x, &ws, &bias],
        attrs,
        vec![xs[0], out, xs[2], xs[3]],
    )
}

/// Conv with a standardised weight -> Relu -> conv: the first conv's output channels are
/// prunable, its stored weight sliced through the ReduceMean/Sub/Div chain.
pub fn std_conv() -> ModelProto {
    let (mut b, x) = start("std_conv", &[1, 3, 8, 8]);
    let y = conv_computed(&mut b, &x, "stem.conv", 8, standardise);
    let y = b.relu(&y);
    let y = conv_computed(&mut b, &y, "stage.conv", 12, standardise);
    let y = b.relu(&y);
    let y = b.conv(&y, "head", 4, 1, 1, 0, 1, true);
    finish(b, &y)
}

/// [`std_conv`] with the weight standardised through `reshape(C, -1)` and back.
pub fn std_conv_2d() -> ModelProto {
    let (mut b, x) = start("std_conv_2d", &[1, 3, 8, 8]);
    let y = conv_computed(&mut b, &x, "stem.conv", 8, standardise_2d);
    let y = b.relu(&y);
    let y = b.conv(&y, "head", 4, 1, 1, 0, 1, true);
    finish(b, &y)
}

/// Biases made in the graph: `ConstantOfShape([8])` filled with 0.5 times a learned gain,
/// reshaped to `[1, 8, 1, 1]`, and a learned scalar `Expand`ed to `[1, 8, 1, 1]`.
pub fn computed_bias() -> ModelProto {
    let (mut b, x) = start("computed_bias", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, false);
    let shape = b.initializer(tensor_i64("bias.shape", &[1], &[8]));
    let fill = attr_tensor("value", tensor_f32("value", &[1], &[0.5]));
    let filled = b.op("ConstantOfShape", &[&shape], vec![fill], vec![8]);
    let gain = b.param_uniform("bias.gain", &[8], 0.5, 1.5);
    let bias = b.mul(&filled, &gain);
    let bias = b.reshape(&bias, &[1, 8, 1, 1]);
    let y = b.add(&y, &bias);
    let scalar = b.param_uniform("shift", &[1], -0.5, 0.5);
    let view = b.initializer(tensor_i64("shift.shape", &[4], &[1, 8, 1, 1]));
    let shift = b.op("Expand", &[&scalar, &view], vec![], vec![1, 8, 1, 1]);
    let y = b.add(&y, &shift);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 4, 1, 1, 0, 1, true);
    finish(b, &y)
}

/// Tokens `[1, 5, 6]` -> Linear -> Relu -> GatherND picking tokens 3 and 1 -> Linear: the
/// hidden axis passes through GatherND, so the first Linear's outputs stay prunable.
pub fn gather_nd_tokens() -> ModelProto {
    let (mut b, x) = start("gather_nd_tokens", &[1, 5, 6]);
    let y = b.linear(&x, "fc1", 8);
    let y = b.relu(&y);
    let idx = b.initializer(tensor_i64("pick.indices", &[1, 2, 2], &[0, 3, 0, 1]));
    let y = b.op("GatherND", &[&y, &idx], vec![], vec![1, 2, 8]);
    let y = b.linear(&y, "fc2", 4);
    finish(b, &y)
}

/// Patches folded into the channel axis and back: `[1, 8, 16] -> [1, 32, 4]`, a linear map
/// over the last axis (per patch row), then `[1, 32, 4] -> [1, 8, 16]`, between two convs.
pub fn patch_regroup() -> ModelProto {
    let (mut b, x) = start("patch_regroup", &[1, 3, 4, 4]);
    let y = b.conv(&x, "conv1", 8, 1, 1, 0, 1, true);
    let y = b.relu(&y);
    let y = b.reshape(&y, &[1, 8, 16]);
    let y = b.reshape(&y, &[1, 32, 4]);
    let w = b.param_random("patch.weight", &[4, 4]);
    let y = b.matmul(&y, &w);
    let y = b.reshape(&y, &[1, 8, 16]);
    let y = b.reshape(&y, &[1, 8, 4, 4]);
    let y = b.conv(&y, "conv2", 4, 1, 1, 0, 1, true);
    finish(b, &y)
}
