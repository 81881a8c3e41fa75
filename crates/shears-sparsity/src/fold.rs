//! Folding constant input channels into the biases of the layers that read them, so removing
//! those channels leaves every output unchanged.

use std::collections::BTreeMap;

use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::ModelProto;
use shears_onnx::{tensor, Model, NodeId};

use crate::CompactError;

/// Why `node` cannot absorb a constant on its data input (slot 0, channel axis 1), or `None`
/// when it can: a Conv without padding or a Gemm without transposed input, with a constant
/// float32 weight and a float32 bias that is absent or one value per output.
pub(crate) fn refusal(model: &Model, node: NodeId) -> Option<String> {
    let g = &model.graph;
    let n = g.node(node);
    // The weight's payload must agree with its inferred shape (at least 2-D), so the fold's
    // indexing is in bounds.
    let weight_ok = n.input(1).is_some_and(|w| {
        let shape = g.value(w).shape.as_deref().unwrap_or(&[]);
        model.constant(w).is_some_and(|t| {
            t.data_type == DataType::Float as i32
                && shape.len() >= 2
                && tensor::num_elements(&t).ok() == Some(shape.iter().product())
        })
    });
    if !weight_ok {
        return Some(format!("`{}` has no constant float32 weight", n.name));
    }
    match n.op_type.as_str() {
        "Conv" => {
            let auto = n.attr_s("auto_pad").unwrap_or("NOTSET");
            let padded = (auto != "NOTSET" && auto != "VALID")
                || n.attr_ints("pads")
                    .is_some_and(|p| p.iter().any(|&x| x != 0));
            if padded {
                return Some(format!(
                    "`{}` (Conv) pads its input: the border would see 0, not the constant",
                    n.name
                ));
            }
        }
        "Gemm" => {
            if n.attr_i("transA", 0) != 0 {
                return Some(format!("`{}` (Gemm) transposes its input", n.name));
            }
            if n.attr_f("beta", 1.0) == 0.0 {
                return Some(format!("`{}` (Gemm) has beta = 0", n.name));
            }
        }
        op => {
            return Some(format!(
                "`{}` ({op}) has no bias to fold a constant into",
                n.name
            ))
        }
    }
    let out_count = out_count(model, node)?;
    if n.input(2).is_none() && model.proto.ir_version < 4 {
        // Below IR 4 every initializer must also be declared as a graph input.
        return Some(format!(
            "`{}` has no bias and IR < 4 cannot add one",
            n.name
        ));
    }
    if let Some(b) = n.input(2) {
        let ok = model.initializer(b).is_some_and(|t| {
            t.data_type == DataType::Float as i32
                && tensor::num_elements(t).ok() == Some(out_count)
                && t.dims.iter().filter(|&&d| d != 1).count() <= 1
        }) && g.value(b).consumers.len() == 1;
        if !ok {
            return Some(format!(
                "`{}`'s bias is not a private float32 initializer with one value per output",
                n.name
            ));
        }
    }
    None
}

/// Output channels of a Conv (weight axis 0) or Gemm (B's N axis).
fn out_count(model: &Model, node: NodeId) -> Option<usize> {
    let n = model.graph.node(node);
    let s = model.graph.value(n.input(1)?).shape.as_ref()?;
    match n.op_type.as_str() {
        "Gemm" if n.attr_i("transB", 0) == 0 => s.get(1).copied(),
        _ => s.first().copied(),
    }
}

/// A copy of `model`'s proto where each node of `folds` (all accepted by [`refusal`]) has the
/// contribution of its constant input channels (`channel -> value`) added to its bias.
pub(crate) fn apply_folds(
    model: &Model,
    folds: &BTreeMap<NodeId, BTreeMap<u32, f64>>,
) -> Result<ModelProto, CompactError> {
    let mut proto = model.proto.clone();
    let g = &model.graph;
    for (&node, chans) in folds {
        let n = g.node(node);
        let wv = n.input(1).ok_or_else(|| lost(model, node))?;
        let wt = model.constant(wv).ok_or_else(|| lost(model, node))?;
        let w: Vec<f64> = model.f32s(&wt)?.into_iter().map(f64::from).collect();
        let ws = g.value(wv).shape.clone().ok_or_else(|| lost(model, node))?;
        let outs = out_count(model, node).ok_or_else(|| lost(model, node))?;
        let mut delta = vec![0.0f64; outs];
        if n.op_type == "Conv" {
            let ipg = ws[1].max(1);
            let group = usize::try_from(n.attr_i("group", 1)).unwrap_or(1).max(1);
            let opg = outs / group;
            if outs % group != 0 || chans.keys().any(|&i| i as usize / ipg >= group) {
                return Err(lost(model, node));
            }
            let row = w.len() / outs.max(1);
            let ksize = row / ipg;
            for (&i, &c) in chans {
                let (grp, j) = (i as usize / ipg, i as usize % ipg);
                for (o, d) in delta.iter_mut().enumerate().skip(grp * opg).take(opg) {
                    let sum: f64 = w[o * row + j * ksize..o * row + (j + 1) * ksize]
                        .iter()
                        .sum();
                    *d += c * sum;
                }
            }
        } else {
            let trans_b = n.attr_i("transB", 0) != 0;
            let k_count = if trans_b { ws[1] } else { ws[0] };
            if chans.keys().any(|&k| k as usize >= k_count) {
                return Err(lost(model, node));
            }
            let scale = f64::from(n.attr_f("alpha", 1.0)) / f64::from(n.attr_f("beta", 1.0));
            for (&k, &c) in chans {
                for (j, d) in delta.iter_mut().enumerate() {
                    let b = if trans_b {
                        w[j * k_count + k as usize]
                    } else {
                        w[k as usize * outs + j]
                    };
                    *d += scale * c * b;
                }
            }
        }
        set_bias(model, &mut proto, node, &delta)?;
    }
    Ok(proto)
}

/// Adds `delta` to `node`'s bias, creating the bias initializer when the node has none.
fn set_bias(
    model: &Model,
    proto: &mut ModelProto,
    node: NodeId,
    delta: &[f64],
) -> Result<(), CompactError> {
    let g = &model.graph;
    let n = g.node(node);
    let gp = proto.graph.as_mut().ok_or_else(|| lost(model, node))?;
    if let Some(b) = n.input(2) {
        let old = model.f32s(model.initializer(b).ok_or_else(|| lost(model, node))?)?;
        let new: Vec<f32> = old
            .iter()
            .zip(delta)
            .map(|(&x, &d)| (f64::from(x) + d) as f32)
            .collect();
        let shears_onnx::ValueKind::Initializer(i) = g.value(b).kind else {
            return Err(lost(model, node));
        };
        let t = &mut gp.initializer[i];
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let raw: Vec<u8> = new.iter().flat_map(|v| v.to_le_bytes()).collect();
        tensor::set_raw(t, raw, &dims);
        return Ok(());
    }
    let name = fresh_name(model, &format!("{}.compact_bias", n.name));
    let data: Vec<f32> = delta.iter().map(|&d| d as f32).collect();
    gp.initializer
        .push(tensor::from_f32(name.clone(), &[data.len()], &data));
    let np = &mut gp.node[n.proto_index];
    while np.input.len() < 2 {
        np.input.push(String::new());
    }
    np.input.truncate(2);
    np.input.push(name);
    Ok(())
}

fn fresh_name(model: &Model, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while model.graph.value_id(&name).is_some() {
        name = format!("{base}.{k}");
        k += 1;
    }
    name
}

fn lost(model: &Model, node: NodeId) -> CompactError {
    CompactError::Fold {
        node: model.graph.node(node).name.clone(),
    }
}
