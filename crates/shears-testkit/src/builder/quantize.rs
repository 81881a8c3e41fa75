//! A float model rewritten in the QDQ format, as `onnxruntime.quantization.quantize_static(
//! QuantFormat.QDQ, per_channel=True)` writes it: every layer weight becomes an int8
//! initializer read through a per-output-channel `DequantizeLinear` (symmetric, zero point 0),
//! and every graph input and ReLU output passes through a per-tensor `QuantizeLinear` ->
//! `DequantizeLinear` pair. For tests: the quantized twin of every zoo model must group like
//! its float original.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::attr_int;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{ModelProto, NodeProto, TensorProto};

/// The activation scale: values in `[-4, 4)` (int8) are represented in steps of 1/32.
pub const ACTIVATION_SCALE: f32 = 1.0 / 32.0;

/// The weight slot of each quantized layer op and the axis of its output channels (`None`:
/// decided by the node, see [`channel_axis`]).
const LAYERS: &[(&str, usize)] = &[
    ("Conv", 1),
    ("ConvTranspose", 1),
    ("Gemm", 1),
    ("MatMul", 1),
];

fn channel_axis(node: &NodeProto, rank: usize) -> usize {
    let trans_b = node
        .attribute
        .iter()
        .any(|a| a.name == "transB" && a.i != 0);
    match node.op_type.as_str() {
        "Conv" => 0,
        "ConvTranspose" => 1,
        "Gemm" if trans_b => 0,
        _ => rank - 1,
    }
}

fn int8_tensor(name: &str, dims: &[i64], data: &[i8]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.to_vec(),
        data_type: DataType::Int8 as i32,
        raw_data: Bytes::from(data.iter().map(|&v| v as u8).collect::<Vec<u8>>()),
        ..Default::default()
    }
}

/// Symmetric per-channel int8: `scale[c] = max |w[c]| / 127`, `q = round_half_even(w / s)`.
fn quantize_per_channel(w: &[f32], dims: &[i64], axis: usize) -> (Vec<i8>, Vec<f32>) {
    let size = dims[axis] as usize;
    let inner: usize = dims[axis + 1..].iter().product::<i64>() as usize;
    let chan = |i: usize| (i / inner.max(1)) % size;
    let mut max = vec![0f32; size];
    for (i, &v) in w.iter().enumerate() {
        max[chan(i)] = max[chan(i)].max(v.abs());
    }
    let scale: Vec<f32> = max
        .iter()
        .map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 })
        .collect();
    let q = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (v / scale[chan(i)]).round_ties_even().clamp(-127.0, 127.0) as i8)
        .collect();
    (q, scale)
}

/// `proto` in the QDQ format (see the module documentation), or `None` when its opset is below
/// 13 (per-axis quantization needs 13).
pub fn qdq(proto: &ModelProto) -> Option<ModelProto> {
    let opset = proto
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")?
        .version;
    if opset < 13 {
        return None;
    }
    let mut out = proto.clone();
    let g = out.graph.as_mut()?;
    let inits: HashMap<String, usize> = g
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut front: Vec<NodeProto> = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut dropped: HashSet<usize> = HashSet::new();
    let mut added: Vec<TensorProto> = Vec::new();
    for node in &g.node {
        let Some(&(_, slot)) = LAYERS.iter().find(|(op, _)| *op == node.op_type) else {
            continue;
        };
        let Some(w) = node.input.get(slot) else {
            continue;
        };
        let Some(&i) = inits.get(w) else { continue };
        let t = &g.initializer[i];
        if t.data_type != DataType::Float as i32 || t.dims.len() < 2 || done.contains(w) {
            continue;
        }
        let data = shears_onnx::tensor::decode_f32(t, &ExternalStore::none()).ok()?;
        let axis = channel_axis(node, t.dims.len());
        let (q, scale) = quantize_per_channel(&data, &t.dims, axis);
        let c = t.dims[axis];
        let (qn, sn, zn) = (
            format!("{w}_quantized"),
            format!("{w}_scale"),
            format!("{w}_zero_point"),
        );
        added.push(int8_tensor(&qn, &t.dims, &q));
        added.push(super::tensor_f32(&sn, &[c], &scale));
        added.push(int8_tensor(&zn, &[c], &vec![0; c as usize]));
        front.push(NodeProto {
            input: vec![qn, sn, zn],
            output: vec![w.clone()],
            name: format!("{w}_DequantizeLinear"),
            op_type: "DequantizeLinear".into(),
            attribute: vec![attr_int("axis", axis as i64)],
            ..Default::default()
        });
        dropped.insert(i);
        done.insert(w.clone());
    }
    let kept: Vec<TensorProto> = g
        .initializer
        .drain(..)
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, t)| t)
        .collect();
    g.initializer = kept;
    g.initializer.extend(added);
    g.initializer.push(super::tensor_f32(
        "activation_scale",
        &[],
        &[ACTIVATION_SCALE],
    ));
    g.initializer
        .push(int8_tensor("activation_zero_point", &[], &[0]));

    // Activations: the float graph inputs and every ReLU output, through a Q -> DQ pair that
    // their readers read instead.
    let mut acts: Vec<String> = g
        .input
        .iter()
        .filter(|v| !inits.contains_key(&v.name))
        .map(|v| v.name.clone())
        .collect();
    acts.extend(
        g.node
            .iter()
            .filter(|n| n.op_type == "Relu")
            .filter_map(|n| n.output.first().cloned()),
    );
    let mut nodes: Vec<NodeProto> = front;
    let pair = |v: &str| -> [NodeProto; 2] {
        let q = |op: &str, input: String, output: String| NodeProto {
            input: vec![
                input,
                "activation_scale".into(),
                "activation_zero_point".into(),
            ],
            output: vec![output],
            name: format!("{v}_{op}"),
            op_type: op.into(),
            ..Default::default()
        };
        [
            q("QuantizeLinear", v.to_string(), format!("{v}_q")),
            q("DequantizeLinear", format!("{v}_q"), format!("{v}_dq")),
        ]
    };
    let graph_inputs: Vec<&String> = acts
        .iter()
        .filter(|a| g.input.iter().any(|i| &&i.name == a))
        .collect();
    for v in graph_inputs {
        nodes.extend(pair(v));
    }
    let acts: HashSet<&String> = acts.iter().collect();
    for node in g.node.drain(..) {
        let mut node = node;
        for i in node.input.iter_mut() {
            if acts.contains(i) {
                *i = format!("{i}_dq");
            }
        }
        let relu_out = (node.op_type == "Relu")
            .then(|| node.output.first().cloned())
            .flatten();
        nodes.push(node);
        if let Some(v) = relu_out {
            nodes.extend(pair(&v));
        }
    }
    g.node = nodes;
    Some(out)
}
