//! Models exercising specific ops: Flatten/Reshape into Gemm (constant and computed shapes),
//! Pad/Resize/AveragePool, pass-through casts, a dynamic batch, Instance and Group norms, LRN
//! and GatherElements.

use super::{finish, new_builder, start};
use crate::builder::{attr_int, tensor_i64};
use shears_onnx::proto::ModelProto;

/// VGG-like: two conv-relu-maxpool stages, Flatten, Gemm-Relu-Gemm classifier (the first
/// Gemm reads 16 channels x 4 x 4 = 256 features).
pub fn flatten_gemm() -> ModelProto {
    let (mut b, x) = start("flatten_gemm", &[1, 3, 16, 16]);
    let y = b.conv(&x, "features.0", 8, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    let y = b.maxpool(&y, 2, 2, 0);
    let y = b.conv(&y, "features.3", 16, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    let y = b.maxpool(&y, 2, 2, 0);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "classifier.0", 32, true);
    let y = b.relu(&y);
    let y = b.gemm(&y, "classifier.3", 10, true);
    finish(b, &y)
}

/// Conv features reshaped to `[1, -1]` (a constant shape) and fed to a Gemm.
pub fn reshape_gemm() -> ModelProto {
    let (mut b, x) = start("reshape_gemm", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 2, 1, 1);
    let y = b.reshape(&y, &[1, -1]);
    let y = b.gemm(&y, "fc", 10, true);
    finish(b, &y)
}

/// `x.view(x.size(0), -1)` as the classic exporter writes it: Shape, Gather(0), Unsqueeze,
/// Concat with a Constant `[-1]`, Reshape; then a Gemm. Constant folding resolves the shape.
pub fn shape_subgraph_reshape() -> ModelProto {
    let (mut b, x) = start("shape_subgraph_reshape", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 2, 1, 1);
    let s = b.shape(&y);
    let n = b.gather(&s, 0, 0);
    let n = b.unsqueeze(&n, &[0]);
    let minus_one = b.constant_i64("", &[1], &[-1]);
    let target = b.concat(&[&n, &minus_one], 0);
    let y = b.reshape_dynamic(&y, &target, &[1, 8 * 4 * 4]);
    let y = b.gemm(&y, "fc", 10, true);
    finish(b, &y)
}

/// Pad (1 pixel each side), AveragePool 3x3, nearest Resize x2 and a consumer conv.
pub fn pad_resize_avgpool() -> ModelProto {
    let (mut b, x) = start("pad_resize_avgpool", &[1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.pad(&y, &[0, 0, 1, 1, 0, 0, 1, 1]);
    let y = b.avgpool(&y, 3, 1, 0);
    let y = b.resize(&y, &[1.0, 1.0, 2.0, 2.0]);
    let y = b.conv(&y, "conv2", 8, 3, 2, 1, 1, true);
    finish(b, &y)
}

/// Pass-through ops between two convs: Cast to float16 and back, Identity, Dropout, Relu.
pub fn cast_identity_dropout() -> ModelProto {
    use shears_onnx::proto::tensor_proto::DataType;
    let (mut b, x) = start("cast_identity_dropout", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.cast(&y, DataType::Float16 as i32);
    let y = b.cast(&y, DataType::Float as i32);
    let y = b.identity(&y);
    let y = b.dropout(&y);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

/// Conv-BN-Relu units on an input whose batch dimension is dynamic (`N`).
pub fn dynamic_batch_chain() -> ModelProto {
    let (mut b, x) = start("dynamic_batch_chain", &[-1, 3, 8, 8]);
    let y = b.conv_bn_relu(&x, "conv1", "bn1", 8, 3, 1, 1, 1);
    let y = b.conv_bn_relu(&y, "conv2", "bn2", 8, 3, 1, 1, 1);
    let y = b.global_avgpool(&y);
    let y = b.flatten(&y, 1);
    let y = b.gemm(&y, "fc", 4, true);
    finish(b, &y)
}

/// Style-transfer-like unit: conv, InstanceNormalization, PRelu (per-channel slope), conv.
pub fn instance_norm_prelu() -> ModelProto {
    let (mut b, x) = start("instance_norm_prelu", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.instance_norm(&y, "in1");
    let y = b.prelu(&y, "act1");
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

/// Conv, GroupNorm (4 groups of 4 channels) as the opset-21 `GroupNormalization` op, Relu, conv.
pub fn group_norm_block() -> ModelProto {
    let mut b = new_builder(21, "group_norm_block");
    let x = b.input("input", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 16, 3, 1, 1, 1, false);
    let y = b.group_norm(&y, "gn1", 4);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

/// The same GroupNorm as PyTorch's classic exporter writes it at opset 17: Reshape to
/// `[N, 4, -1]`, InstanceNormalization, Reshape back, Mul and Add of `[C, 1, 1]` parameters.
pub fn group_norm_decomposed() -> ModelProto {
    let (mut b, x) = start("group_norm_decomposed", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 16, 3, 1, 1, 1, false);
    let y = b.group_norm(&y, "gn1", 4);
    let y = b.relu(&y);
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    finish(b, &y)
}

/// AlexNet-style LRN after a conv (mixes neighbouring channels) and a GatherElements picking
/// columns by constant indices (channels pass through), each followed by a conv.
pub fn lrn_gather_elements() -> ModelProto {
    let (mut b, x) = start("lrn_gather_elements", &[1, 3, 8, 8]);
    let y = b.conv(&x, "conv1", 8, 3, 1, 1, 1, true);
    let y = b.relu(&y);
    b.set_scope("lrn1");
    let attrs = vec![attr_int("size", 3)];
    let y = b.op("LRN", &[&y], attrs, vec![1, 8, 8, 8]);
    b.set_scope("");
    let y = b.conv(&y, "conv2", 8, 3, 1, 1, 1, true);
    // Column j of every row takes column (j * 2 + row) % 8: indices [1, 8, 8, 4].
    let idx: Vec<i64> = (0..8 * 8 * 4)
        .map(|k| ((k % 4) * 2 + (k / 4) % 8) % 8)
        .collect();
    let idx = b.initializer(tensor_i64("gather_elements.indices", &[1, 8, 8, 4], &idx));
    let y = b.op(
        "GatherElements",
        &[&y, &idx],
        vec![attr_int("axis", 3)],
        vec![1, 8, 8, 4],
    );
    let y = b.conv(&y, "conv3", 6, 3, 1, 1, 1, true);
    finish(b, &y)
}
