//! Channel-last and token models: a ConvNeXt block (NHWC LayerNorm and Linear between
//! Transposes) and ViT encoder layers (LayerNormalization op or its opset-13 decomposition).

use super::{finish, new_builder, start};
use shears_onnx::proto::ModelProto;

/// torchvision ConvNeXt CNBlock: depthwise 7x7, Transpose to NHWC, LayerNormalization over
/// the last axis, Linear expand (MatMul + Add), Gelu (Erf form at opset 17), Linear project,
/// Transpose back to NCHW, layer-scale Mul `[C, 1, 1]`, residual Add; then a consumer conv.
pub fn convnext_block() -> ModelProto {
    let (mut b, x) = start("convnext_block", &[1, 3, 16, 16]);
    let stem = b.conv(&x, "features.0.0", 8, 4, 4, 0, 1, true);
    let p = "features.1.0";
    let n = |s: &str| format!("{p}.{s}");
    b.set_scope(p);
    let y = b.conv(&stem, &n("block.0"), 8, 7, 1, 3, 8, true);
    let y = b.transpose(&y, &[0, 2, 3, 1]);
    let y = b.layernorm(&y, &n("block.2"), -1);
    let y = b.linear(&y, &n("block.3"), 32);
    let y = b.gelu(&y);
    let y = b.linear(&y, &n("block.5"), 8);
    let y = b.transpose(&y, &[0, 3, 1, 2]);
    let gamma = b.param_uniform(&n("layer_scale"), &[8, 1, 1], 0.1, 0.3);
    let y = b.mul(&y, &gamma);
    let y = b.add(&y, &stem);
    b.set_scope("");
    let y = b.conv(&y, "features.2.1", 16, 2, 2, 0, 1, true);
    finish(b, &y)
}

/// A ViT: conv patch embedding (8x8 patches, 16 dims), Reshape + Transpose into 4 tokens, one
/// encoder layer (LayerNorm, fused qkv Linear, Reshape to 2 heads, Transpose, Gather q/k/v,
/// MatMul, Div by sqrt(8), Softmax, MatMul, Transpose, Reshape, out-proj, residual Add,
/// LayerNorm, MLP with Gelu, residual Add) and a final LayerNorm.
pub fn vit_encoder_layer() -> ModelProto {
    let (mut b, x) = start("vit_encoder_layer", &[1, 3, 16, 16]);
    let (dim, heads, tokens) = (16i64, 2i64, 4i64);
    let hd = dim / heads;
    let y = b.conv(&x, "conv_proj", dim, 8, 8, 0, 1, true);
    let y = b.reshape(&y, &[1, dim, tokens]);
    let tok = b.transpose(&y, &[0, 2, 1]);
    let p = "encoder.layers.0";
    let n = |s: &str| format!("{p}.{s}");
    b.set_scope(p);
    let h = b.layernorm(&tok, &n("ln_1"), -1);
    let qkv = b.linear(&h, &n("self_attention.qkv"), 3 * dim);
    let qkv = b.reshape(&qkv, &[1, tokens, 3, heads, hd]);
    let qkv = b.transpose(&qkv, &[2, 0, 3, 1, 4]);
    let q = b.gather(&qkv, 0, 0);
    let k = b.gather(&qkv, 1, 0);
    let v = b.gather(&qkv, 2, 0);
    let kt = b.transpose(&k, &[0, 1, 3, 2]);
    let att = b.matmul(&q, &kt);
    let att = b.div_scalar(&att, (hd as f32).sqrt());
    let att = b.softmax(&att, -1);
    let o = b.matmul(&att, &v);
    let o = b.transpose(&o, &[0, 2, 1, 3]);
    let o = b.reshape(&o, &[1, tokens, dim]);
    let o = b.linear(&o, &n("self_attention.out_proj"), dim);
    let r = b.add(&tok, &o);
    let h = b.layernorm(&r, &n("ln_2"), -1);
    let h = b.linear(&h, &n("mlp.0"), 2 * dim);
    let h = b.gelu(&h);
    let h = b.linear(&h, &n("mlp.3"), dim);
    let y = b.add(&r, &h);
    b.set_scope("");
    let y = b.layernorm(&y, "encoder.ln", -1);
    finish(b, &y)
}

/// A ViT encoder layer at opset 13, where LayerNormalization is written out as
/// ReduceMean/Sub/Pow/Sqrt/Div and Gelu as Erf (older exporters).
pub fn layernorm_decomposed() -> ModelProto {
    let mut b = new_builder(13, "layernorm_decomposed");
    let x = b.input("input", &[1, 4, 16]);
    let h = b.layernorm(&x, "blocks.0.norm1", -1);
    let h = b.linear(&h, "blocks.0.mlp.fc1", 32);
    let h = b.gelu(&h);
    let h = b.linear(&h, "blocks.0.mlp.fc2", 16);
    let y = b.add(&x, &h);
    finish(b, &y)
}
