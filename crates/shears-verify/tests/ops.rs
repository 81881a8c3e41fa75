//! Op-by-op tests: each case is a one-node model evaluated through [`check`] against values
//! computed by hand (the arithmetic is in the comments).

use shears_onnx::external::ExternalStore;
use shears_onnx::proto::attribute_proto::AttributeType;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use shears_onnx::Model;
use shears_verify::candle_core::{DType, Device, Tensor};
use shears_verify::{Evaluator, VerifyError};

// ---------- building one-node models ----------

fn f(dims: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
}
fn i(dims: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
}
fn b(dims: &[usize], v: &[u8]) -> Tensor {
    Tensor::from_vec(v.to_vec(), dims, &Device::Cpu).unwrap()
}
/// 1, 2, ..., n as f32 in the given shape.
fn iota(dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    f(dims, &(1..=n).map(|v| v as f32).collect::<Vec<_>>())
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: ty as i32,
        ..Default::default()
    }
}
fn ai(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: v,
        ..attr(name, AttributeType::Int)
    }
}
fn af(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: v,
        ..attr(name, AttributeType::Float)
    }
}
fn ais(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}
fn astr(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: v.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}
fn atensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        t: Some(Box::new(t)),
        ..attr(name, AttributeType::Tensor)
    }
}

fn onnx_type(t: &Tensor) -> i32 {
    match t.dtype() {
        DType::F32 => DataType::Float as i32,
        DType::I64 => DataType::Int64 as i32,
        DType::U8 => DataType::Bool as i32,
        other => panic!("no ONNX type for {other:?} in these tests"),
    }
}

fn value_info(name: &str, elem_type: i32, dims: Option<&[usize]>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: dims.map(|d| TensorShapeProto {
                    dim: d
                        .iter()
                        .map(|&v| Dimension {
                            value: Some(dimension::Value::DimValue(v as i64)),
                            denotation: String::new(),
                        })
                        .collect(),
                }),
            })),
            denotation: String::new(),
        }),
        ..Default::default()
    }
}

/// A model of one `op` node named `node` reading `inputs` (each a graph input `x{k}`, or
/// omitted) and writing `outputs` outputs `y{k}`.
fn one_node(
    op: &str,
    opset: i64,
    attrs: Vec<AttributeProto>,
    inputs: &[Option<&Tensor>],
    outputs: usize,
) -> Model {
    let names: Vec<String> = inputs
        .iter()
        .enumerate()
        .map(|(k, t)| t.map_or(String::new(), |_| format!("x{k}")))
        .collect();
    let graph_inputs = inputs
        .iter()
        .enumerate()
        .filter_map(|(k, t)| t.map(|t| value_info(&format!("x{k}"), onnx_type(t), Some(t.dims()))))
        .collect();
    let outs: Vec<String> = (0..outputs).map(|k| format!("y{k}")).collect();
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                name: "node".into(),
                op_type: op.into(),
                input: names,
                output: outs.clone(),
                attribute: attrs,
                ..Default::default()
            }],
            input: graph_inputs,
            output: outs.iter().map(|o| value_info(o, 0, None)).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    Model::from_proto(proto, "test.onnx", ExternalStore::none()).unwrap()
}

/// Evaluates one `op` node on `inputs` (`None` for an omitted optional input).
fn run(
    op: &str,
    opset: i64,
    attrs: Vec<AttributeProto>,
    inputs: &[Option<&Tensor>],
    outputs: usize,
) -> Result<Vec<Tensor>, VerifyError> {
    let m = one_node(op, opset, attrs, inputs, outputs);
    let feeds: Vec<(String, Tensor)> = inputs
        .iter()
        .enumerate()
        .filter_map(|(k, t)| t.map(|t| (format!("x{k}"), t.clone())))
        .collect();
    let out = Evaluator::new(&m)?.eval(&feeds)?;
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

/// The check every case goes through: one `op` node at `opset` on `inputs` must produce
/// exactly `expect` (same dtypes and shapes; values within 1e-5).
#[track_caller]
fn check(op: &str, opset: i64, attrs: Vec<AttributeProto>, inputs: &[&Tensor], expect: &[Tensor]) {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    check_opt(op, opset, attrs, &ins, expect);
}

/// [`check`] with optional inputs.
#[track_caller]
fn check_opt(
    op: &str,
    opset: i64,
    attrs: Vec<AttributeProto>,
    inputs: &[Option<&Tensor>],
    expect: &[Tensor],
) {
    let got = run(op, opset, attrs, inputs, expect.len())
        .unwrap_or_else(|e| panic!("{op} (opset {opset}) failed: {e}"));
    assert_eq!(got.len(), expect.len(), "{op}: number of outputs");
    for (k, (g, e)) in got.iter().zip(expect).enumerate() {
        assert_eq!(g.dims(), e.dims(), "{op} output {k}: shape");
        assert_eq!(g.dtype(), e.dtype(), "{op} output {k}: dtype");
        let gv = g
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let ev = e
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let close = gv.iter().zip(&ev).all(|(a, b)| (a - b).abs() <= 1e-5);
        assert!(close, "{op} output {k}: got {gv:?}, expected {ev:?}");
    }
}

/// The error one `op` node gives on `inputs`, as text.
fn error(op: &str, opset: i64, attrs: Vec<AttributeProto>, inputs: &[&Tensor]) -> String {
    let ins: Vec<Option<&Tensor>> = inputs.iter().map(|t| Some(*t)).collect();
    match run(op, opset, attrs, &ins, 1) {
        Ok(v) => panic!("{op} should fail, gave {v:?}"),
        Err(e) => e.to_string(),
    }
}

// ---------- conv.rs ----------

// x = [[1,2,3],[4,5,6],[7,8,9]]; a 3x3 all-ones kernel sums each neighbourhood.
#[test]
fn conv_same_padding_and_bias() {
    let x = iota(&[1, 1, 3, 3]);
    let w = f(&[1, 1, 3, 3], &[1.0; 9]);
    let bias = f(&[1], &[1.0]);
    // 1+2+4+5=12, 1+2+3+4+5+6=21, ...; plus bias 1.
    check(
        "Conv",
        17,
        vec![ais("pads", &[1, 1, 1, 1]), ais("kernel_shape", &[3, 3])],
        &[&x, &w, &bias],
        &[f(
            &[1, 1, 3, 3],
            &[13., 22., 17., 28., 46., 34., 25., 40., 29.],
        )],
    );
}

#[test]
fn conv_asymmetric_pads_and_auto_pad() {
    let x = iota(&[1, 1, 3, 3]);
    let w = f(&[1, 1, 2, 2], &[1.0; 4]);
    // Pads only at the bottom and right: windows rows oy..oy+1, cols ox..ox+1.
    let bottom_right = f(&[1, 1, 3, 3], &[12., 16., 9., 24., 28., 15., 15., 17., 9.]);
    check(
        "Conv",
        17,
        vec![ais("pads", &[0, 0, 1, 1])],
        &[&x, &w],
        std::slice::from_ref(&bottom_right),
    );
    // SAME_UPPER puts the odd padding at the end: the same thing.
    check(
        "Conv",
        17,
        vec![astr("auto_pad", "SAME_UPPER")],
        &[&x, &w],
        &[bottom_right],
    );
    // SAME_LOWER puts it at the beginning: windows rows oy-1..oy.
    check(
        "Conv",
        17,
        vec![astr("auto_pad", "SAME_LOWER")],
        &[&x, &w],
        &[f(&[1, 1, 3, 3], &[1., 3., 5., 5., 12., 16., 11., 24., 28.])],
    );
}

#[test]
fn conv_per_axis_strides_and_dilations() {
    let x = iota(&[1, 1, 3, 3]);
    let w = f(&[1, 1, 2, 2], &[1.0; 4]);
    // Stride 2 down, 1 across: one row of windows at rows 0..1: 1+2+4+5, 2+3+5+6.
    check(
        "Conv",
        17,
        vec![ais("strides", &[2, 1])],
        &[&x, &w],
        &[f(&[1, 1, 1, 2], &[12., 16.])],
    );
    // Dilation 2: the taps are the four corners 1+3+7+9.
    check(
        "Conv",
        17,
        vec![ais("dilations", &[2, 2])],
        &[&x, &w],
        &[f(&[1, 1, 1, 1], &[20.])],
    );
}

#[test]
fn conv_groups() {
    // Two groups of two channels: 1*1 + 2*10 and 3*100 + 4*1000.
    let x = f(&[1, 4, 1, 1], &[1., 2., 3., 4.]);
    let w = f(&[2, 2, 1, 1], &[1., 10., 100., 1000.]);
    check(
        "Conv",
        17,
        vec![ai("group", 2)],
        &[&x, &w],
        &[f(&[1, 2, 1, 1], &[21., 4300.])],
    );
    // Depthwise with channel multiplier 2: outputs 0,1 read channel 0, outputs 2,3 channel 1.
    let x = f(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
    let w = f(&[4, 1, 1, 1], &[1., 2., 3., 4.]);
    check(
        "Conv",
        17,
        vec![ai("group", 2)],
        &[&x, &w],
        &[f(&[1, 4, 1, 2], &[1., 2., 2., 4., 9., 12., 12., 16.])],
    );
}

#[test]
fn depthwise_conv_with_padding_and_stride() {
    // Channel 1 is ten times channel 0; all-ones 3x3 kernels, pad 1, stride 2: the
    // neighbourhood sums at the four corners (12, 16, 24, 28).
    let mut v: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    v.extend((1..=9).map(|v| 10.0 * v as f32));
    let x = f(&[1, 2, 3, 3], &v);
    let w = f(&[2, 1, 3, 3], &[1.0; 18]);
    let bias = f(&[2], &[0.5, -0.5]);
    check(
        "Conv",
        17,
        vec![
            ai("group", 2),
            ais("pads", &[1, 1, 1, 1]),
            ais("strides", &[2, 2]),
        ],
        &[&x, &w, &bias],
        &[f(
            &[1, 2, 2, 2],
            &[12.5, 16.5, 24.5, 28.5, 119.5, 159.5, 239.5, 279.5],
        )],
    );
}

#[test]
fn conv_batch_and_1d() {
    // Two samples through the im2col path: 10*1 + 2 = 12 and 10*3 + 4 = 34.
    let x = f(&[2, 2, 1, 1], &[1., 2., 3., 4.]);
    let w = f(&[1, 2, 1, 1], &[10., 1.]);
    check(
        "Conv",
        17,
        vec![],
        &[&x, &w],
        &[f(&[2, 1, 1, 1], &[12., 34.])],
    );
    // Two samples, grouped, 2x2 kernel with padding.
    let x = f(&[2, 2, 1, 1], &[1., 2., 3., 4.]);
    let w = f(&[2, 1, 1, 2], &[1., 10., 100., 1000.]);
    // Pad 1 on the left of the width: out[ox] = x[ox-1]*w0 + x[ox]*w1 over width 1 -> 2 outputs.
    check(
        "Conv",
        17,
        vec![ai("group", 2), ais("pads", &[0, 1, 0, 0])],
        &[&x, &w],
        &[f(&[2, 2, 1, 1], &[10., 2000., 30., 4000.])],
    );
    // 1-D: [1,2,3,4] with kernel [1,2] and one zero in front: 0+2, 1+4, 2+6, 3+8.
    let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
    let w = f(&[1, 1, 2], &[1., 2.]);
    check(
        "Conv",
        17,
        vec![ais("pads", &[1, 0])],
        &[&x, &w],
        &[f(&[1, 1, 4], &[2., 5., 8., 11.])],
    );
}

#[test]
fn conv_transpose() {
    let x = f(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
    let w = f(&[1, 1, 2, 2], &[1.0; 4]);
    // Every input spreads over a 2x2 block; overlaps add up.
    let full = f(&[1, 1, 3, 3], &[1., 3., 2., 4., 10., 6., 3., 7., 4.]);
    check("ConvTranspose", 17, vec![], &[&x, &w], &[full]);
    // Pads crop the border of the full output.
    check(
        "ConvTranspose",
        17,
        vec![ais("pads", &[1, 1, 1, 1])],
        &[&x, &w],
        &[f(&[1, 1, 1, 1], &[10.])],
    );
    // Stride 2: blocks side by side, output_padding adds a zero row and column; bias 1.
    let bias = f(&[1], &[1.0]);
    #[rustfmt::skip]
    let strided = f(&[1, 1, 5, 5], &[
        2., 2., 3., 3., 1.,
        2., 2., 3., 3., 1.,
        4., 4., 5., 5., 1.,
        4., 4., 5., 5., 1.,
        1., 1., 1., 1., 1.,
    ]);
    check(
        "ConvTranspose",
        17,
        vec![ais("strides", &[2, 2]), ais("output_padding", &[1, 1])],
        &[&x, &w, &bias],
        &[strided],
    );
    // output_shape 3x3 with stride 2 (full output 4x4): one row and column of padding, at the
    // beginning unless auto_pad is SAME_UPPER (the spec's rule; onnxruntime agrees).
    check(
        "ConvTranspose",
        17,
        vec![ais("strides", &[2, 2]), ais("output_shape", &[3, 3])],
        &[&x, &w],
        &[f(&[1, 1, 3, 3], &[1., 2., 2., 3., 4., 4., 3., 4., 4.])],
    );
    check(
        "ConvTranspose",
        17,
        vec![
            ais("strides", &[2, 2]),
            ais("output_shape", &[3, 3]),
            astr("auto_pad", "SAME_UPPER"),
        ],
        &[&x, &w],
        &[f(&[1, 1, 3, 3], &[1., 1., 2., 1., 1., 2., 3., 3., 4.])],
    );
    // Groups: each channel scales itself.
    let x = f(&[1, 2, 1, 1], &[1., 2.]);
    let w = f(&[2, 1, 1, 1], &[3., 5.]);
    check(
        "ConvTranspose",
        17,
        vec![ai("group", 2)],
        &[&x, &w],
        &[f(&[1, 2, 1, 1], &[3., 10.])],
    );
}

// ---------- pool.rs ----------

// x = 1..16 as 4x4: [[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]].
#[test]
fn max_pool_strides_pads_ceil_mode_dilations() {
    let x = iota(&[1, 1, 4, 4]);
    let k = |v: i64| ais("kernel_shape", &[v, v]);
    check(
        "MaxPool",
        17,
        vec![k(2), ais("strides", &[2, 2])],
        &[&x],
        &[f(&[1, 1, 2, 2], &[6., 8., 14., 16.])],
    );
    // 3x3 stride 2: floor gives one window, ceil_mode a second (partial) one per axis.
    check(
        "MaxPool",
        17,
        vec![k(3), ais("strides", &[2, 2])],
        &[&x],
        &[f(&[1, 1, 1, 1], &[11.])],
    );
    check(
        "MaxPool",
        17,
        vec![k(3), ais("strides", &[2, 2]), ai("ceil_mode", 1)],
        &[&x],
        &[f(&[1, 1, 2, 2], &[11., 12., 15., 16.])],
    );
    // Padding never wins a max: with all-negative inputs a zero pad would show up.
    let neg = x.neg().unwrap();
    check(
        "MaxPool",
        17,
        vec![k(3), ais("strides", &[2, 2]), ais("pads", &[1, 1, 1, 1])],
        &[&neg],
        &[f(&[1, 1, 2, 2], &[-1., -2., -5., -6.])],
    );
    // Dilation 2: taps two apart, e.g. max(1, 3, 9, 11).
    check(
        "MaxPool",
        17,
        vec![k(2), ais("dilations", &[2, 2])],
        &[&x],
        &[f(&[1, 1, 2, 2], &[11., 12., 15., 16.])],
    );
    // Asymmetric pads (bottom/right) on 3x3.
    let x3 = iota(&[1, 1, 3, 3]);
    check(
        "MaxPool",
        17,
        vec![k(2), ais("strides", &[2, 2]), ais("pads", &[0, 0, 1, 1])],
        &[&x3],
        &[f(&[1, 1, 2, 2], &[5., 6., 8., 9.])],
    );
}

#[test]
fn max_pool_ceil_mode_drops_a_window_starting_in_the_end_padding() {
    // Length 4, kernel 2, stride 2, one pad at the end: ceil gives 3 windows, but the third
    // would start at 4, inside the padding, so there are 2.
    let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
    check(
        "MaxPool",
        17,
        vec![
            ais("kernel_shape", &[2]),
            ais("strides", &[2]),
            ais("pads", &[0, 1]),
            ai("ceil_mode", 1),
        ],
        &[&x],
        &[f(&[1, 1, 2], &[2., 4.])],
    );
}

#[test]
fn average_pool_count_include_pad_and_ceil_mode() {
    let x = iota(&[1, 1, 4, 4]);
    let k = |v: i64| ais("kernel_shape", &[v, v]);
    check(
        "AveragePool",
        17,
        vec![k(2), ais("strides", &[2, 2])],
        &[&x],
        &[f(&[1, 1, 2, 2], &[3.5, 5.5, 11.5, 13.5])],
    );
    let padded = || vec![k(3), ais("strides", &[2, 2]), ais("pads", &[1, 1, 1, 1])];
    // Excluding pads: (1+2+5+6)/4, (2+3+4+6+7+8)/6, (5+6+9+10+13+14)/6, (6+7+8+10+11+12+14+15+16)/9.
    check(
        "AveragePool",
        17,
        padded(),
        &[&x],
        &[f(&[1, 1, 2, 2], &[3.5, 5., 9.5, 11.])],
    );
    // Including pads: every window covers 9 cells of the padded input.
    let mut with = padded();
    with.push(ai("count_include_pad", 1));
    check(
        "AveragePool",
        17,
        with,
        &[&x],
        &[f(&[1, 1, 2, 2], &[14. / 9., 30. / 9., 57. / 9., 99. / 9.])],
    );
    // 1-D, kernel 3, stride 2, pads 1, ceil_mode on [1,2,3,4]: windows [-1..1], [1..3], [3..5].
    // The last covers x[3] and one pad cell; its third cell is beyond the padded input.
    let x = f(&[1, 1, 4], &[1., 2., 3., 4.]);
    let attrs = || {
        vec![
            ais("kernel_shape", &[3]),
            ais("strides", &[2]),
            ais("pads", &[1, 1]),
            ai("ceil_mode", 1),
        ]
    };
    check(
        "AveragePool",
        17,
        attrs(),
        &[&x],
        &[f(&[1, 1, 3], &[1.5, 3., 4.])],
    );
    let mut inc = attrs();
    inc.push(ai("count_include_pad", 1));
    check(
        "AveragePool",
        17,
        inc,
        &[&x],
        &[f(&[1, 1, 3], &[1., 3., 2.])],
    );
}

#[test]
fn global_pools() {
    let x = iota(&[1, 2, 2, 2]);
    check(
        "GlobalAveragePool",
        17,
        vec![],
        &[&x],
        &[f(&[1, 2, 1, 1], &[2.5, 6.5])],
    );
    check(
        "GlobalMaxPool",
        17,
        vec![],
        &[&x],
        &[f(&[1, 2, 1, 1], &[4., 8.])],
    );
}

// ---------- norm.rs ----------

#[test]
fn batch_normalization() {
    let x = f(&[1, 2, 1, 2], &[1., 2., 3., 4.]);
    let (scale, bias) = (f(&[2], &[1., 2.]), f(&[2], &[0., 1.]));
    let (mean, var) = (f(&[2], &[1., 3.]), f(&[2], &[4., 1.]));
    // Channel 0: (x - 1) / 2; channel 1: (x - 3) * 2 + 1.
    check(
        "BatchNormalization",
        15,
        vec![af("epsilon", 0.0)],
        &[&x, &scale, &bias, &mean, &var],
        &[f(&[1, 2, 1, 2], &[0., 0.5, 1., 3.])],
    );
}

#[test]
fn layer_normalization() {
    // Rows [1,3] (mean 2, var 1) and [2,6] (mean 4, var 4) both normalise to [-1, 1].
    let x = f(&[2, 2], &[1., 3., 2., 6.]);
    let (scale, bias) = (f(&[2], &[1., 2.]), f(&[2], &[0., 1.]));
    check(
        "LayerNormalization",
        17,
        vec![af("epsilon", 0.0)],
        &[&x, &scale, &bias],
        &[f(&[2, 2], &[-1., 3., -1., 3.])],
    );
    // axis 1 of [1,2,2]: one group of four values, mean 3, variance 5; Mean and InvStdDev too.
    let x = f(&[1, 2, 2], &[0., 2., 4., 6.]);
    let s = 5f32.sqrt();
    check(
        "LayerNormalization",
        17,
        vec![ai("axis", 1), af("epsilon", 0.0)],
        &[&x, &f(&[2, 2], &[1.0; 4])],
        &[
            f(&[1, 2, 2], &[-3. / s, -1. / s, 1. / s, 3. / s]),
            f(&[1, 1, 1], &[3.]),
            f(&[1, 1, 1], &[1. / s]),
        ],
    );
}

#[test]
fn instance_and_group_normalization() {
    // Per channel: [1,3] and [0,4] both normalise to [-1, 1].
    let x = f(&[1, 2, 1, 2], &[1., 3., 0., 4.]);
    check(
        "InstanceNormalization",
        17,
        vec![af("epsilon", 0.0)],
        &[&x, &f(&[2], &[1., 2.]), &f(&[2], &[0., 1.])],
        &[f(&[1, 2, 1, 2], &[-1., 1., -1., 3.])],
    );
    // Two groups of two channels, same values; scale/bias per channel (opset 21) or per group
    // (opset 18) give the same result here.
    let x = f(&[1, 4, 1, 1], &[1., 3., 0., 4.]);
    let expect = f(&[1, 4, 1, 1], &[-1., 1., -1., 3.]);
    check(
        "GroupNormalization",
        21,
        vec![ai("num_groups", 2), af("epsilon", 0.0)],
        &[&x, &f(&[4], &[1., 1., 2., 2.]), &f(&[4], &[0., 0., 1., 1.])],
        std::slice::from_ref(&expect),
    );
    check(
        "GroupNormalization",
        18,
        vec![ai("num_groups", 2), af("epsilon", 0.0)],
        &[&x, &f(&[2], &[1., 2.]), &f(&[2], &[0., 1.])],
        &[expect],
    );
}

// ---------- matmul.rs ----------

#[test]
fn gemm_alpha_beta_transposes_and_broadcast_c() {
    let a = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let bm = f(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
    let c = f(&[2], &[1., 2.]);
    // A B = [[4,5],[10,11]]; 2 A B + 0.5 C.
    let expect = f(&[2, 2], &[8.5, 11., 20.5, 23.]);
    let ab = || vec![af("alpha", 2.0), af("beta", 0.5)];
    check(
        "Gemm",
        13,
        ab(),
        &[&a, &bm, &c],
        std::slice::from_ref(&expect),
    );
    let at = a.t().unwrap().contiguous().unwrap();
    let bt = bm.t().unwrap().contiguous().unwrap();
    let mut attrs = ab();
    attrs.extend([ai("transA", 1), ai("transB", 1)]);
    check("Gemm", 13, attrs, &[&at, &bt, &c], &[expect]);
    // Scalar C, no alpha/beta.
    check(
        "Gemm",
        13,
        vec![],
        &[&a, &bm, &f(&[], &[1.])],
        &[f(&[2, 2], &[5., 6., 11., 12.])],
    );
}

#[test]
fn matmul_batched_broadcast_and_vectors() {
    // Batch dims [2,1] x [1,3] broadcast to [2,3]: a_i . b_j.
    let a = f(&[2, 1, 1, 2], &[1., 2., 3., 4.]);
    let bm = f(&[1, 3, 2, 1], &[1., 0., 0., 1., 1., 1.]);
    check(
        "MatMul",
        13,
        vec![],
        &[&a, &bm],
        &[f(&[2, 3, 1, 1], &[1., 2., 3., 3., 4., 7.])],
    );
    // Same batch on both sides, rank 3.
    let a = f(&[2, 1, 2], &[1., 2., 3., 4.]);
    let bm = f(&[2, 2, 1], &[1., 1., 2., 0.]);
    check(
        "MatMul",
        13,
        vec![],
        &[&a, &bm],
        &[f(&[2, 1, 1], &[3., 6.])],
    );
    // Rank 3 times a matrix.
    let w = f(&[2, 1], &[1., 1.]);
    check("MatMul", 13, vec![], &[&a, &w], &[f(&[2, 1, 1], &[3., 7.])]);
    // 1-D on either side, and both.
    let v = f(&[3], &[1., 2., 3.]);
    let m32 = f(&[3, 2], &[1., 0., 0., 1., 1., 1.]);
    check("MatMul", 13, vec![], &[&v, &m32], &[f(&[2], &[4., 5.])]);
    let m23 = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    check(
        "MatMul",
        13,
        vec![],
        &[&m23, &f(&[3], &[1., 1., 1.])],
        &[f(&[2], &[6., 15.])],
    );
    check("MatMul", 13, vec![], &[&v, &v], &[f(&[], &[14.])]);
}

// ---------- elementwise.rs ----------

#[test]
fn arithmetic_broadcasts_like_numpy() {
    let col = f(&[2, 1], &[1., 2.]);
    let row = f(&[3], &[10., 20., 30.]);
    check(
        "Add",
        14,
        vec![],
        &[&col, &row],
        &[f(&[2, 3], &[11., 21., 31., 12., 22., 32.])],
    );
    check(
        "Sub",
        14,
        vec![],
        &[&col, &row],
        &[f(&[2, 3], &[-9., -19., -29., -8., -18., -28.])],
    );
    check(
        "Mul",
        14,
        vec![],
        &[&col, &row],
        &[f(&[2, 3], &[10., 20., 30., 20., 40., 60.])],
    );
    check(
        "Div",
        14,
        vec![],
        &[&f(&[2], &[6., 8.]), &f(&[2], &[2., 4.])],
        &[f(&[2], &[3., 2.])],
    );
    // Integer division truncates; integer shape arithmetic stays i64.
    check(
        "Div",
        14,
        vec![],
        &[&i(&[2], &[7, -7]), &i(&[], &[2])],
        &[i(&[2], &[3, -3])],
    );
    check(
        "Mul",
        14,
        vec![],
        &[&i(&[2], &[3, 4]), &i(&[1], &[2])],
        &[i(&[2], &[6, 8])],
    );
    assert!(
        error("Div", 14, vec![], &[&i(&[1], &[1]), &i(&[1], &[0])]).contains("division by zero")
    );
}

#[test]
fn pow_mod_max_min() {
    check(
        "Pow",
        15,
        vec![],
        &[&f(&[2], &[2., -3.]), &f(&[], &[2.])],
        &[f(&[2], &[4., 9.])],
    );
    check(
        "Pow",
        15,
        vec![],
        &[&f(&[2], &[4., 9.]), &f(&[1], &[0.5])],
        &[f(&[2], &[2., 3.])],
    );
    check(
        "Pow",
        15,
        vec![],
        &[&f(&[2], &[2., 3.]), &f(&[2], &[3., 2.])],
        &[f(&[2], &[8., 9.])],
    );
    // Python's % takes the divisor's sign; fmod=1 the dividend's.
    let (a, m) = (i(&[2], &[-7, 7]), i(&[2], &[3, -3]));
    check("Mod", 13, vec![], &[&a, &m], &[i(&[2], &[2, -2])]);
    check(
        "Mod",
        13,
        vec![ai("fmod", 1)],
        &[&a, &m],
        &[i(&[2], &[-1, 1])],
    );
    let (x, y, z) = (f(&[2], &[1., 5.]), f(&[2], &[3., 2.]), f(&[2], &[0., 4.]));
    check("Max", 13, vec![], &[&x, &y, &z], &[f(&[2], &[3., 5.])]);
    check("Min", 13, vec![], &[&x, &y, &z], &[f(&[2], &[0., 2.])]);
}

#[test]
fn comparisons_and_where() {
    let a = i(&[3], &[1, 2, 3]);
    check(
        "Equal",
        13,
        vec![],
        &[&a, &i(&[3], &[1, 0, 3])],
        &[b(&[3], &[1, 0, 1])],
    );
    check(
        "Less",
        13,
        vec![],
        &[&a, &i(&[], &[2])],
        &[b(&[3], &[1, 0, 0])],
    );
    check("Not", 13, vec![], &[&b(&[2], &[1, 0])], &[b(&[2], &[0, 1])]);
    check(
        "Where",
        16,
        vec![],
        &[
            &b(&[3], &[1, 0, 1]),
            &f(&[3], &[1., 2., 3.]),
            &f(&[1], &[10.]),
        ],
        &[f(&[3], &[1., 10., 3.])],
    );
}

#[test]
fn activations() {
    let x = f(&[2], &[-1., 2.]);
    check("Relu", 14, vec![], &[&x], &[f(&[2], &[0., 2.])]);
    check(
        "LeakyRelu",
        16,
        vec![af("alpha", 0.1)],
        &[&x],
        &[f(&[2], &[-0.1, 2.])],
    );
    // PRelu: slope broadcast over channels of [1,2,1,1].
    let xc = f(&[1, 2, 1, 1], &[-2., -4.]);
    check(
        "PRelu",
        16,
        vec![],
        &[&xc, &f(&[2, 1, 1], &[0.5, 0.25])],
        &[f(&[1, 2, 1, 1], &[-1., -1.])],
    );
    let ln3 = 3f32.ln();
    check(
        "Sigmoid",
        13,
        vec![],
        &[&f(&[3], &[0., ln3, -ln3])],
        &[f(&[3], &[0.5, 0.75, 0.25])],
    );
    check(
        "HardSigmoid",
        6,
        vec![],
        &[&f(&[4], &[-3., 0., 1., 3.])],
        &[f(&[4], &[0., 0.5, 0.7, 1.])],
    );
    check(
        "HardSwish",
        14,
        vec![],
        &[&f(&[4], &[-4., 0., 1., 4.])],
        &[f(&[4], &[0., 0., 2. / 3., 4.])],
    );
    check(
        "Tanh",
        13,
        vec![],
        &[&f(&[2], &[0., 2f32.ln()])],
        &[f(&[2], &[0., 0.6])],
    );
    let g = f(&[3], &[0., 1., -1.]);
    check(
        "Gelu",
        20,
        vec![],
        &[&g],
        &[f(&[3], &[0., 0.841_344_7, -0.158_655_26])],
    );
    check(
        "Gelu",
        20,
        vec![astr("approximate", "tanh")],
        &[&g],
        &[f(&[3], &[0., 0.841_192, -0.158_808])],
    );
}

#[test]
fn clip_bounds_by_opset() {
    let x = f(&[3], &[-1., 0.5, 2.]);
    // Opset 6: attributes.
    check(
        "Clip",
        6,
        vec![af("min", 0.0), af("max", 1.0)],
        &[&x],
        &[f(&[3], &[0., 0.5, 1.])],
    );
    // Opset 13: optional inputs; only a lower bound here.
    check_opt(
        "Clip",
        13,
        vec![],
        &[Some(&x), Some(&f(&[], &[0.]))],
        &[f(&[3], &[0., 0.5, 2.])],
    );
    check_opt(
        "Clip",
        13,
        vec![],
        &[Some(&x), None, Some(&f(&[], &[1.]))],
        &[f(&[3], &[-1., 0.5, 1.])],
    );
    // Opset 13 ignores the old attributes.
    check(
        "Clip",
        13,
        vec![af("min", 0.0)],
        &[&x],
        std::slice::from_ref(&x),
    );
    check(
        "Clip",
        13,
        vec![],
        &[&i(&[3], &[-5, 3, 9]), &i(&[], &[0]), &i(&[], &[6])],
        &[i(&[3], &[0, 3, 6])],
    );
}

#[test]
fn unary_math() {
    let e = std::f32::consts::E;
    check(
        "Erf",
        13,
        vec![],
        &[&f(&[2], &[0., 1.])],
        &[f(&[2], &[0., 0.842_700_8])],
    );
    check(
        "Exp",
        13,
        vec![],
        &[&f(&[2], &[0., 1.])],
        &[f(&[2], &[1., e])],
    );
    check(
        "Log",
        13,
        vec![],
        &[&f(&[2], &[1., e])],
        &[f(&[2], &[0., 1.])],
    );
    check(
        "Sqrt",
        13,
        vec![],
        &[&f(&[2], &[4., 9.])],
        &[f(&[2], &[2., 3.])],
    );
    check(
        "Neg",
        13,
        vec![],
        &[&f(&[2], &[1., -2.])],
        &[f(&[2], &[-1., 2.])],
    );
    check(
        "Abs",
        13,
        vec![],
        &[&f(&[2], &[-1., 2.])],
        &[f(&[2], &[1., 2.])],
    );
    check(
        "Reciprocal",
        13,
        vec![],
        &[&f(&[2], &[2., 4.])],
        &[f(&[2], &[0.5, 0.25])],
    );
}

#[test]
fn softmax_coerces_to_2d_before_opset_13() {
    let ln3 = 3f32.ln();
    let x = f(&[1, 2, 2], &[0., ln3, 0., 0.]);
    // Opset 11, axis 1: softmax over the 4 values of [1, 4]: exps 1,3,1,1 over 6.
    check(
        "Softmax",
        11,
        vec![],
        &[&x],
        &[f(&[1, 2, 2], &[1. / 6., 0.5, 1. / 6., 1. / 6.])],
    );
    // Opset 13, axis -1: per row.
    check(
        "Softmax",
        13,
        vec![],
        &[&x],
        &[f(&[1, 2, 2], &[0.25, 0.75, 0.5, 0.5])],
    );
    // Opset 13, axis 1: per column.
    check(
        "Softmax",
        13,
        vec![ai("axis", 1)],
        &[&x],
        &[f(&[1, 2, 2], &[0.5, 0.75, 0.5, 0.25])],
    );
}

#[test]
fn identities_and_cast() {
    let x = f(&[2], &[1.7, -1.7]);
    check("Identity", 16, vec![], &[&x], std::slice::from_ref(&x));
    check("Dropout", 13, vec![], &[&x], &[x.clone(), b(&[2], &[1, 1])]);
    // Float to int truncates toward zero.
    check(
        "Cast",
        13,
        vec![ai("to", DataType::Int64 as i64)],
        &[&x],
        &[i(&[2], &[1, -1])],
    );
    check(
        "Cast",
        13,
        vec![ai("to", DataType::Float as i64)],
        &[&i(&[1], &[3])],
        &[f(&[1], &[3.])],
    );
    check(
        "Cast",
        13,
        vec![ai("to", DataType::Bool as i64)],
        &[&f(&[2], &[0., 2.])],
        &[b(&[2], &[0, 1])],
    );
}

// ---------- shape.rs ----------

#[test]
fn reshape_zero_minus_one_and_allowzero() {
    let x = iota(&[2, 3, 4]);
    let flat: Vec<f32> = (1..=24).map(|v| v as f32).collect();
    check(
        "Reshape",
        14,
        vec![],
        &[&x, &i(&[2], &[0, -1])],
        &[f(&[2, 12], &flat)],
    );
    check(
        "Reshape",
        14,
        vec![],
        &[&x, &i(&[3], &[-1, 3, 2])],
        &[f(&[4, 3, 2], &flat)],
    );
    // With allowzero, 0 is a real zero-size dim; without, it copies the input's dim.
    let empty = f(&[0, 3], &[]);
    check(
        "Reshape",
        14,
        vec![ai("allowzero", 1)],
        &[&empty, &i(&[2], &[3, 0])],
        &[f(&[3, 0], &[])],
    );
    assert!(error("Reshape", 14, vec![], &[&empty, &i(&[2], &[3, 0])]).contains("cannot reshape"));
    assert!(error("Reshape", 14, vec![], &[&x, &i(&[2], &[-1, -1])]).contains("more than one -1"));
}

#[test]
fn flatten_and_transpose() {
    let x = iota(&[2, 3, 4]);
    let v: Vec<f32> = (1..=24).map(|v| v as f32).collect();
    check("Flatten", 13, vec![ai("axis", 2)], &[&x], &[f(&[6, 4], &v)]);
    check(
        "Flatten",
        13,
        vec![ai("axis", 0)],
        &[&x],
        &[f(&[1, 24], &v)],
    );
    check(
        "Flatten",
        13,
        vec![ai("axis", -1)],
        &[&x],
        &[f(&[6, 4], &v)],
    );
    let m = iota(&[2, 3]);
    let mt = f(&[3, 2], &[1., 4., 2., 5., 3., 6.]);
    check(
        "Transpose",
        13,
        vec![ais("perm", &[1, 0])],
        &[&m],
        std::slice::from_ref(&mt),
    );
    check("Transpose", 13, vec![], &[&m], &[mt]);
    // [1,2,3] -> perm [2,0,1] -> [3,1,2].
    let t = iota(&[1, 2, 3]);
    check(
        "Transpose",
        13,
        vec![ais("perm", &[2, 0, 1])],
        &[&t],
        &[f(&[3, 1, 2], &[1., 4., 2., 5., 3., 6.])],
    );
}

#[test]
fn concat_and_split_forms() {
    let a = f(&[2, 1], &[1., 2.]);
    let c = f(&[2, 2], &[3., 4., 5., 6.]);
    check(
        "Concat",
        13,
        vec![ai("axis", -1)],
        &[&a, &c],
        &[f(&[2, 3], &[1., 3., 4., 2., 5., 6.])],
    );
    let x = f(&[3], &[1., 2., 3.]);
    let parts = [f(&[1], &[1.]), f(&[2], &[2., 3.])];
    // Opset 11: sizes as attribute; 13: as input; 18: num_outputs with a smaller last chunk.
    check("Split", 11, vec![ais("split", &[1, 2])], &[&x], &parts);
    check("Split", 13, vec![], &[&x, &i(&[2], &[1, 2])], &parts);
    check(
        "Split",
        18,
        vec![ai("num_outputs", 2)],
        &[&x],
        &[f(&[2], &[1., 2.]), f(&[1], &[3.])],
    );
    check(
        "Split",
        13,
        vec![ai("axis", 1)],
        &[&iota(&[1, 4])],
        &[f(&[1, 2], &[1., 2.]), f(&[1, 2], &[3., 4.])],
    );
}

#[test]
fn slice_negative_indices_steps_and_axes() {
    let x = f(&[10], &(0..10).map(|v| v as f32).collect::<Vec<_>>());
    let s = |starts: i64, ends: i64| (i(&[1], &[starts]), i(&[1], &[ends]));
    let (st, en) = s(-3, i64::MAX);
    check(
        "Slice",
        13,
        vec![],
        &[&x, &st, &en],
        &[f(&[3], &[7., 8., 9.])],
    );
    let (st, en) = s(8, 1);
    let (ax, step) = (i(&[1], &[0]), i(&[1], &[-2]));
    check(
        "Slice",
        13,
        vec![],
        &[&x, &st, &en, &ax, &step],
        &[f(&[4], &[8., 6., 4., 2.])],
    );
    // Reverse everything: start -1, end "minus infinity".
    let (st, en) = s(-1, i64::MIN);
    let rev: Vec<f32> = (0..10).rev().map(|v| v as f32).collect();
    check(
        "Slice",
        13,
        vec![],
        &[&x, &st, &en, &ax, &i(&[1], &[-1])],
        &[f(&[10], &rev)],
    );
    // Only axis 1 of a matrix.
    let m = iota(&[2, 3]);
    let (st, en) = s(1, 3);
    check(
        "Slice",
        13,
        vec![],
        &[&m, &st, &en, &i(&[1], &[1])],
        &[f(&[2, 2], &[2., 3., 5., 6.])],
    );
    // Opset 9: attributes.
    check(
        "Slice",
        9,
        vec![ais("starts", &[1]), ais("ends", &[3]), ais("axes", &[1])],
        &[&m],
        &[f(&[2, 2], &[2., 3., 5., 6.])],
    );
}

#[test]
fn squeeze_and_unsqueeze_axes_by_opset() {
    let x = f(&[1, 2, 1], &[1., 2.]);
    check(
        "Squeeze",
        11,
        vec![ais("axes", &[0])],
        &[&x],
        &[f(&[2, 1], &[1., 2.])],
    );
    check(
        "Squeeze",
        13,
        vec![],
        &[&x, &i(&[1], &[-1])],
        &[f(&[1, 2], &[1., 2.])],
    );
    check("Squeeze", 13, vec![], &[&x], &[f(&[2], &[1., 2.])]);
    let m = iota(&[2, 3]);
    let v: Vec<f32> = (1..=6).map(|v| v as f32).collect();
    check(
        "Unsqueeze",
        11,
        vec![ais("axes", &[0, 3])],
        &[&m],
        &[f(&[1, 2, 3, 1], &v)],
    );
    check(
        "Unsqueeze",
        13,
        vec![],
        &[&m, &i(&[1], &[-1])],
        &[f(&[2, 3, 1], &v)],
    );
    check(
        "Unsqueeze",
        13,
        vec![],
        &[&f(&[], &[5.]), &i(&[1], &[0])],
        &[f(&[1], &[5.])],
    );
}

#[test]
fn shape_with_start_and_end() {
    let x = f(&[2, 3, 4], &[0.; 24]);
    check("Shape", 13, vec![], &[&x], &[i(&[3], &[2, 3, 4])]);
    check(
        "Shape",
        15,
        vec![ai("start", 1)],
        &[&x],
        &[i(&[2], &[3, 4])],
    );
    check("Shape", 15, vec![ai("end", -1)], &[&x], &[i(&[2], &[2, 3])]);
    check(
        "Shape",
        15,
        vec![ai("start", -2), ai("end", 10)],
        &[&x],
        &[i(&[2], &[3, 4])],
    );
}

#[test]
fn gather_any_axis_and_negative_indices() {
    let x = iota(&[3, 2]);
    check(
        "Gather",
        13,
        vec![],
        &[&x, &i(&[1, 2], &[0, -1])],
        &[f(&[1, 2, 2], &[1., 2., 5., 6.])],
    );
    check(
        "Gather",
        13,
        vec![ai("axis", 1)],
        &[&x, &i(&[], &[1])],
        &[f(&[3], &[2., 4., 6.])],
    );
    // Shape arithmetic: gathering from an i64 shape vector.
    check(
        "Gather",
        13,
        vec![],
        &[&i(&[3], &[2, 3, 4]), &i(&[], &[-1])],
        &[i(&[], &[4])],
    );
    assert!(error("Gather", 13, vec![], &[&x, &i(&[1], &[3])]).contains("out of range"));
}

#[test]
fn expand_and_tile() {
    let col = f(&[2, 1], &[1., 2.]);
    check(
        "Expand",
        13,
        vec![],
        &[&col, &i(&[2], &[2, 3])],
        &[f(&[2, 3], &[1., 1., 1., 2., 2., 2.])],
    );
    // Bidirectional: [2] with target [2,1] gives [2,2].
    let row = f(&[2], &[1., 2.]);
    check(
        "Expand",
        13,
        vec![],
        &[&row, &i(&[2], &[2, 1])],
        &[f(&[2, 2], &[1., 2., 1., 2.])],
    );
    check(
        "Tile",
        13,
        vec![],
        &[&f(&[1, 2], &[1., 2.]), &i(&[2], &[2, 2])],
        &[f(&[2, 4], &[1., 2., 1., 2., 1., 2., 1., 2.])],
    );
}

#[test]
fn pad_modes() {
    let x = f(&[3], &[1., 2., 3.]);
    let pads = i(&[2], &[2, 1]);
    check(
        "Pad",
        13,
        vec![],
        &[&x, &pads, &f(&[], &[9.])],
        &[f(&[6], &[9., 9., 1., 2., 3., 9.])],
    );
    check(
        "Pad",
        13,
        vec![astr("mode", "reflect")],
        &[&x, &pads],
        &[f(&[6], &[3., 2., 1., 2., 3., 2.])],
    );
    check(
        "Pad",
        13,
        vec![astr("mode", "edge")],
        &[&x, &pads],
        &[f(&[6], &[1., 1., 1., 2., 3., 3.])],
    );
    // Negative pads crop.
    check(
        "Pad",
        13,
        vec![],
        &[&x, &i(&[2], &[-1, 1])],
        &[f(&[3], &[2., 3., 0.])],
    );
    // Opset 2: attributes.
    check(
        "Pad",
        2,
        vec![ais("pads", &[1, 0]), af("value", 5.0)],
        &[&x],
        &[f(&[4], &[5., 1., 2., 3.])],
    );
    // Opset 18: only the listed axes.
    let m = iota(&[2, 2]);
    check_opt(
        "Pad",
        18,
        vec![],
        &[
            Some(&m),
            Some(&i(&[2], &[1, 0])),
            None,
            Some(&i(&[1], &[1])),
        ],
        &[f(&[2, 3], &[0., 1., 2., 0., 3., 4.])],
    );
}

#[test]
fn resize_modes_torchvision_exports() {
    // F.interpolate(scale_factor=2, mode="nearest"): asymmetric + floor.
    let x = iota(&[1, 1, 2, 2]);
    let scales = f(&[4], &[1., 1., 2., 2.]);
    #[rustfmt::skip]
    let up = f(&[1, 1, 4, 4], &[
        1., 1., 2., 2.,
        1., 1., 2., 2.,
        3., 3., 4., 4.,
        3., 3., 4., 4.,
    ]);
    let nearest = || {
        vec![
            astr("mode", "nearest"),
            astr("coordinate_transformation_mode", "asymmetric"),
            astr("nearest_mode", "floor"),
        ]
    };
    check_opt(
        "Resize",
        13,
        nearest(),
        &[Some(&x), None, Some(&scales)],
        std::slice::from_ref(&up),
    );
    // Opset 10: (X, scales).
    check(
        "Resize",
        10,
        vec![astr("mode", "nearest")],
        &[&x, &scales],
        &[up],
    );
    // Bilinear, align_corners=False (half_pixel): source coords -0.25, 0.25, 0.75, 1.25 clamp
    // to [0, 1] on [0, 4].
    let row = f(&[1, 1, 1, 2], &[0., 4.]);
    let s = f(&[4], &[1., 1., 1., 2.]);
    for mode in ["half_pixel", "pytorch_half_pixel"] {
        check_opt(
            "Resize",
            13,
            vec![
                astr("mode", "linear"),
                astr("coordinate_transformation_mode", mode),
            ],
            &[Some(&row), None, Some(&s)],
            &[f(&[1, 1, 1, 4], &[0., 1., 3., 4.])],
        );
    }
    // align_corners=True with sizes: coords 0, 0.5, 1.
    check_opt(
        "Resize",
        13,
        vec![
            astr("mode", "linear"),
            astr("coordinate_transformation_mode", "align_corners"),
        ],
        &[Some(&row), None, None, Some(&i(&[4], &[1, 1, 1, 3]))],
        &[f(&[1, 1, 1, 3], &[0., 2., 4.])],
    );
    assert!(error(
        "Resize",
        13,
        vec![astr("mode", "cubic")],
        &[&x, &f(&[0], &[]), &scales]
    )
    .contains("cubic"));
}

#[test]
fn constant_of_shape_range() {
    let seven = shears_onnx::tensor::from_i64("v", &[1], &[7]);
    check(
        "ConstantOfShape",
        13,
        vec![atensor("value", seven)],
        &[&i(&[2], &[2, 2])],
        &[i(&[2, 2], &[7, 7, 7, 7])],
    );
    check(
        "ConstantOfShape",
        13,
        vec![],
        &[&i(&[1], &[3])],
        &[f(&[3], &[0., 0., 0.])],
    );
    let r = |a: i64, b: i64, c: i64| [i(&[], &[a]), i(&[], &[b]), i(&[], &[c])];
    let [s, l, d] = r(1, 7, 2);
    check("Range", 13, vec![], &[&s, &l, &d], &[i(&[3], &[1, 3, 5])]);
    let [s, l, d] = r(5, 1, -2);
    check("Range", 13, vec![], &[&s, &l, &d], &[i(&[2], &[5, 3])]);
    check(
        "Range",
        13,
        vec![],
        &[&f(&[], &[0.]), &f(&[], &[1.]), &f(&[], &[0.25])],
        &[f(&[4], &[0., 0.25, 0.5, 0.75])],
    );
}

// ---------- reduce.rs ----------

#[test]
fn reduce_axes_attribute_before_18_input_from_18() {
    let x = f(&[2, 2], &[1., 2., 3., 4.]);
    check(
        "ReduceMean",
        13,
        vec![ais("axes", &[1])],
        &[&x],
        &[f(&[2, 1], &[1.5, 3.5])],
    );
    // Opset 18: the axes input is honoured (not a reduction over everything).
    check(
        "ReduceMean",
        18,
        vec![ai("keepdims", 0)],
        &[&x, &i(&[1], &[1])],
        &[f(&[2], &[1.5, 3.5])],
    );
    // No axes: everything, unless noop_with_empty_axes.
    check("ReduceMean", 18, vec![], &[&x], &[f(&[1, 1], &[2.5])]);
    check(
        "ReduceMean",
        18,
        vec![ai("noop_with_empty_axes", 1)],
        &[&x],
        std::slice::from_ref(&x),
    );
    // ReduceSum took its axes as input from opset 13.
    check(
        "ReduceSum",
        13,
        vec![],
        &[&x, &i(&[1], &[0])],
        &[f(&[1, 2], &[4., 6.])],
    );
    check(
        "ReduceSum",
        11,
        vec![ais("axes", &[0]), ai("keepdims", 0)],
        &[&x],
        &[f(&[2], &[4., 6.])],
    );
    check(
        "ReduceMax",
        13,
        vec![ais("axes", &[-1]), ai("keepdims", 0)],
        &[&x],
        &[f(&[2], &[2., 4.])],
    );
    check(
        "ReduceMin",
        18,
        vec![],
        &[&x, &i(&[2], &[0, 1])],
        &[f(&[1, 1], &[1.])],
    );
}

// ---------- the evaluator ----------

#[test]
fn unsupported_op_names_the_node_and_op() {
    let x = f(&[1], &[1.]);
    let m = one_node("FancyOp", 17, vec![], &[Some(&x)], 1);
    let err = Evaluator::new(&m).unwrap_err().to_string();
    assert!(
        err.contains("'node'") && err.contains("FancyOp") && err.contains("test.onnx"),
        "{err}"
    );
}

#[test]
fn op_failures_name_the_node() {
    let err = error("Reshape", 14, vec![], &[&iota(&[2, 3]), &i(&[1], &[4])]);
    assert!(
        err.contains("node 'node' (Reshape)") && err.contains("cannot reshape"),
        "{err}"
    );
    // An error raised inside candle carries no backtrace, even with RUST_BACKTRACE set.
    std::env::set_var("RUST_BACKTRACE", "1");
    let err = error(
        "Concat",
        13,
        vec![ai("axis", 0)],
        &[&iota(&[1, 2]), &iota(&[1, 3])],
    );
    assert!(err.contains("node 'node' (Concat)"), "{err}");
    assert!(
        !err.contains("candle_core::") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn inputs_are_checked_by_name() {
    let x = f(&[1], &[1.]);
    let m = one_node("Relu", 17, vec![], &[Some(&x)], 1);
    let e = Evaluator::new(&m).unwrap();
    let missing = e.eval(&[]).unwrap_err().to_string();
    assert!(
        missing.contains("input 'x0'") && missing.contains("no value"),
        "{missing}"
    );
    let unknown = e.eval(&[("y".into(), x.clone())]).unwrap_err().to_string();
    assert!(unknown.contains("input 'y'"), "{unknown}");
    // f64 inputs are computed in f32.
    let out = e
        .eval(&[("x0".into(), x.to_dtype(DType::F64).unwrap())])
        .unwrap();
    assert_eq!(out[0].1.dtype(), DType::F32);
}

// ---------- the other ops the dependency rules know ----------

#[test]
fn more_activations() {
    let ln2 = 2f32.ln();
    let ln3 = 3f32.ln();
    check(
        "Elu",
        6,
        vec![],
        &[&f(&[2], &[-ln2, 1.])],
        &[f(&[2], &[-0.5, 1.])],
    );
    // alpha 2: 2 * (exp(-2 ln 2 / 2) - 1) = -1.
    check(
        "Celu",
        12,
        vec![af("alpha", 2.0)],
        &[&f(&[2], &[-2. * ln2, 3.])],
        &[f(&[2], &[-1., 3.])],
    );
    check(
        "Selu",
        6,
        vec![],
        &[&f(&[3], &[0., 1., -ln2])],
        &[f(&[3], &[0., 1.050_701, -0.879_049_66])],
    );
    check(
        "Shrink",
        9,
        vec![af("lambd", 1.0), af("bias", 0.5)],
        &[&f(&[3], &[-2., 0.5, 2.])],
        &[f(&[3], &[-1.5, 0., 1.5])],
    );
    check(
        "Softplus",
        1,
        vec![],
        &[&f(&[2], &[0., ln3])],
        &[f(&[2], &[ln2, 4f32.ln()])],
    );
    check(
        "Softsign",
        1,
        vec![],
        &[&f(&[2], &[1., -3.])],
        &[f(&[2], &[0.5, -0.75])],
    );
    // ln3 * tanh(ln 4) = ln3 * 15/17.
    check(
        "Mish",
        18,
        vec![],
        &[&f(&[2], &[0., ln3])],
        &[f(&[2], &[0., ln3 * 15. / 17.])],
    );
    check(
        "ThresholdedRelu",
        10,
        vec![],
        &[&f(&[2], &[0.5, 2.])],
        &[f(&[2], &[0., 2.])],
    );
}

#[test]
fn more_unary_math() {
    let (ln2, pi) = (2f32.ln(), std::f32::consts::PI);
    check(
        "Sin",
        7,
        vec![],
        &[&f(&[1], &[pi / 6.])],
        &[f(&[1], &[0.5])],
    );
    check(
        "Cos",
        7,
        vec![],
        &[&f(&[1], &[pi / 3.])],
        &[f(&[1], &[0.5])],
    );
    check("Tan", 7, vec![], &[&f(&[1], &[pi / 4.])], &[f(&[1], &[1.])]);
    check(
        "Asin",
        7,
        vec![],
        &[&f(&[1], &[0.5])],
        &[f(&[1], &[pi / 6.])],
    );
    check(
        "Acos",
        7,
        vec![],
        &[&f(&[1], &[0.5])],
        &[f(&[1], &[pi / 3.])],
    );
    check(
        "Atan",
        7,
        vec![],
        &[&f(&[1], &[1.])],
        &[f(&[1], &[pi / 4.])],
    );
    // sinh(ln 2) = (2 - 1/2) / 2, cosh(ln 2) = (2 + 1/2) / 2; the inverses go back.
    check("Sinh", 9, vec![], &[&f(&[1], &[ln2])], &[f(&[1], &[0.75])]);
    check("Cosh", 9, vec![], &[&f(&[1], &[ln2])], &[f(&[1], &[1.25])]);
    check("Asinh", 9, vec![], &[&f(&[1], &[0.75])], &[f(&[1], &[ln2])]);
    check("Acosh", 9, vec![], &[&f(&[1], &[1.25])], &[f(&[1], &[ln2])]);
    check("Atanh", 9, vec![], &[&f(&[1], &[0.6])], &[f(&[1], &[ln2])]);
    // Halves round to even.
    check(
        "Round",
        11,
        vec![],
        &[&f(&[6], &[0.5, 1.5, 2.5, -0.5, -1.5, 1.4])],
        &[f(&[6], &[0., 2., 2., 0., -2., 1.])],
    );
    check(
        "Sign",
        9,
        vec![],
        &[&f(&[3], &[-2., 0., 3.])],
        &[f(&[3], &[-1., 0., 1.])],
    );
    check(
        "Sign",
        9,
        vec![],
        &[&i(&[3], &[-5, 0, 7])],
        &[i(&[3], &[-1, 0, 1])],
    );
    check(
        "Neg",
        13,
        vec![],
        &[&i(&[2], &[3, -4])],
        &[i(&[2], &[-3, 4])],
    );
    check(
        "Abs",
        13,
        vec![],
        &[&i(&[2], &[3, -4])],
        &[i(&[2], &[3, 4])],
    );
    let x = f(&[3], &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
    check("IsInf", 10, vec![], &[&x], &[b(&[3], &[1, 1, 0])]);
    check(
        "IsInf",
        10,
        vec![ai("detect_negative", 0)],
        &[&x],
        &[b(&[3], &[1, 0, 0])],
    );
    check("IsNaN", 13, vec![], &[&x], &[b(&[3], &[0, 0, 1])]);
}

#[test]
fn hardmax_coerces_to_2d_before_opset_13() {
    let x = f(&[1, 2, 2], &[1., 5., 3., 2.]);
    check(
        "Hardmax",
        11,
        vec![],
        &[&x],
        &[f(&[1, 2, 2], &[0., 1., 0., 0.])],
    );
    check(
        "Hardmax",
        13,
        vec![],
        &[&x],
        &[f(&[1, 2, 2], &[0., 1., 1., 0.])],
    );
    // Ties go to the first.
    check(
        "Hardmax",
        13,
        vec![],
        &[&f(&[3], &[3., 3., 1.])],
        &[f(&[3], &[1., 0., 0.])],
    );
}

#[test]
fn logic_bitwise_mean_castlike() {
    let (p, q) = (b(&[4], &[1, 1, 0, 0]), b(&[4], &[1, 0, 1, 0]));
    check("And", 7, vec![], &[&p, &q], &[b(&[4], &[1, 0, 0, 0])]);
    check("Or", 7, vec![], &[&p, &q], &[b(&[4], &[1, 1, 1, 0])]);
    check("Xor", 7, vec![], &[&p, &q], &[b(&[4], &[0, 1, 1, 0])]);
    let (m, n) = (i(&[2], &[12, 10]), i(&[2], &[10, 6]));
    check("BitwiseAnd", 18, vec![], &[&m, &n], &[i(&[2], &[8, 2])]);
    check("BitwiseOr", 18, vec![], &[&m, &n], &[i(&[2], &[14, 14])]);
    check("BitwiseXor", 18, vec![], &[&m, &n], &[i(&[2], &[6, 12])]);
    check(
        "BitwiseNot",
        18,
        vec![],
        &[&i(&[2], &[0, 5])],
        &[i(&[2], &[-1, -6])],
    );
    check(
        "Mean",
        13,
        vec![],
        &[&f(&[2], &[1., 2.]), &f(&[2], &[3., 6.])],
        &[f(&[2], &[2., 4.])],
    );
    check(
        "CastLike",
        15,
        vec![],
        &[&f(&[2], &[1.5, -2.5]), &i(&[1], &[0])],
        &[i(&[2], &[1, -2])],
    );
}

#[test]
fn more_reductions_and_arg() {
    let x = f(&[2, 2], &[1., 2., 3., 4.]);
    let axis1 = || vec![ais("axes", &[1])];
    check("ReduceProd", 13, axis1(), &[&x], &[f(&[2, 1], &[2., 12.])]);
    check(
        "ReduceSumSquare",
        13,
        axis1(),
        &[&x],
        &[f(&[2, 1], &[5., 25.])],
    );
    let s = f(&[2, 2], &[-1., 2., 3., -4.]);
    check("ReduceL1", 13, axis1(), &[&s], &[f(&[2, 1], &[3., 7.])]);
    let t = f(&[2, 2], &[3., 4., 6., 8.]);
    check("ReduceL2", 13, axis1(), &[&t], &[f(&[2, 1], &[5., 10.])]);
    check(
        "ReduceLogSum",
        13,
        axis1(),
        &[&x],
        &[f(&[2, 1], &[3f32.ln(), 7f32.ln()])],
    );
    // log(e^0 + e^ln3) = ln 4; a large value does not overflow.
    check(
        "ReduceLogSumExp",
        18,
        vec![],
        &[&f(&[2, 2], &[0., 3f32.ln(), 1000., 1000.]), &i(&[1], &[1])],
        &[f(&[2, 1], &[4f32.ln(), 1000. + 2f32.ln()])],
    );
    let a = f(&[2, 3], &[1., 3., 3., 2., 0., 1.]);
    check(
        "ArgMax",
        13,
        vec![ai("axis", 1)],
        &[&a],
        &[i(&[2, 1], &[1, 0])],
    );
    check(
        "ArgMax",
        13,
        vec![ai("axis", 1), ai("select_last_index", 1)],
        &[&a],
        &[i(&[2, 1], &[2, 0])],
    );
    check(
        "ArgMin",
        13,
        vec![ai("keepdims", 0)],
        &[&a],
        &[i(&[3], &[0, 1, 1])],
    );
}

#[test]
fn lp_pools() {
    let x = f(&[1, 1, 2, 2], &[3., 4., 0., 0.]);
    check(
        "LpPool",
        18,
        vec![ais("kernel_shape", &[2, 2]), ais("strides", &[2, 2])],
        &[&x],
        &[f(&[1, 1, 1, 1], &[5.])],
    );
    let y = f(&[1, 1, 2, 2], &[-1., 2., 3., -4.]);
    check(
        "GlobalLpPool",
        2,
        vec![ai("p", 1)],
        &[&y],
        &[f(&[1, 1, 1, 1], &[10.])],
    );
    check("GlobalLpPool", 2, vec![], &[&x], &[f(&[1, 1, 1, 1], &[5.])]);
}

#[test]
fn upsample_and_legacy_resize() {
    let x = iota(&[1, 1, 2, 2]);
    let scales = f(&[4], &[1., 1., 2., 2.]);
    let up = f(
        &[1, 1, 4, 4],
        &[
            1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.,
        ],
    );
    check(
        "Upsample",
        9,
        vec![],
        &[&x, &scales],
        std::slice::from_ref(&up),
    );
    let attr_scales = AttributeProto {
        floats: vec![1., 1., 2., 2.],
        ..attr("scales", AttributeType::Floats)
    };
    check("Upsample", 7, vec![attr_scales], &[&x], &[up]);
    // Linear, asymmetric: source coords 0, 0.5, 1, 1.5 (clamped to 1).
    check(
        "Upsample",
        9,
        vec![astr("mode", "linear")],
        &[&f(&[1, 1, 1, 2], &[0., 4.]), &f(&[4], &[1., 1., 1., 2.])],
        &[f(&[1, 1, 1, 4], &[0., 2., 4., 4.])],
    );
    // Opset-10 Resize shrinking takes the ceiling: sources 0 and 1/0.6 -> 0 and 2.
    check(
        "Resize",
        10,
        vec![],
        &[&iota(&[1, 1, 1, 4]), &f(&[4], &[1., 1., 1., 0.6])],
        &[f(&[1, 1, 1, 2], &[1., 3.])],
    );
}

#[test]
fn constants_initializers_and_freed_intermediates() {
    // y = Relu(x) + Relu(x) * c, with c a Constant node and w an initializer: x feeds two
    // nodes, the Relu output three slots; freeing after the last reader must not lose them.
    let c = shears_onnx::tensor::from_f32("c", &[1], &[10.]);
    let w = shears_onnx::tensor::from_f32("w", &[2], &[1., -1.]);
    let node =
        |name: &str, op: &str, ins: &[&str], out: &str, attrs: Vec<AttributeProto>| NodeProto {
            name: name.into(),
            op_type: op.into(),
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            attribute: attrs,
            ..Default::default()
        };
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: vec![
                node("k", "Constant", &[], "c", vec![atensor("value", c)]),
                node("r", "Relu", &["x"], "r", vec![]),
                node("m", "Mul", &["r", "c"], "m", vec![]),
                node("a", "Add", &["r", "m"], "a", vec![]),
                node("s", "Mul", &["a", "w"], "y", vec![]),
            ],
            initializer: vec![w],
            input: vec![value_info("x", DataType::Float as i32, Some(&[2]))],
            output: vec![
                value_info("y", DataType::Float as i32, None),
                value_info("r", DataType::Float as i32, None),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = Model::from_proto(proto, "graph.onnx", ExternalStore::none()).unwrap();
    let e = Evaluator::new(&m).unwrap();
    for _ in 0..2 {
        let out = e.eval(&[("x".into(), f(&[2], &[2., -3.]))]).unwrap();
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["y", "r"]);
        // Relu: [2, 0]; 2 + 20 = 22 times 1, 0 times -1.
        assert_eq!(out[0].1.to_vec1::<f32>().unwrap(), [22., 0.]);
        assert_eq!(out[1].1.to_vec1::<f32>().unwrap(), [2., 0.]);
    }
}

#[test]
fn intermediate_values_can_be_observed_and_fetched() {
    // x -> Relu -> Neg -> y: the Relu output is freed after Neg, but observed before that.
    let node = |name: &str, op: &str, input: &str, out: &str| NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: vec![input.into()],
        output: vec![out.into()],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: vec![node("r", "Relu", "x", "h"), node("n", "Neg", "h", "y")],
            input: vec![value_info("x", DataType::Float as i32, Some(&[3]))],
            output: vec![value_info("y", DataType::Float as i32, None)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = Model::from_proto(proto, "chain.onnx", ExternalStore::none()).unwrap();
    let e = Evaluator::new(&m).unwrap();
    let x = vec![("x".to_string(), f(&[3], &[-1., 0., 2.]))];
    let mut seen = Vec::new();
    e.eval_observed(&x, |name, t| {
        seen.push((name.to_string(), t.to_vec1::<f32>().unwrap()))
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            ("h".to_string(), vec![0., 0., 2.]),
            ("y".to_string(), vec![-0., -0., -2.])
        ]
    );
    let got = e.eval_values(&x, &["h", "x"]).unwrap();
    assert_eq!(got[0].1.to_vec1::<f32>().unwrap(), [0., 0., 2.]);
    assert_eq!(got[1].1.to_vec1::<f32>().unwrap(), [-1., 0., 2.]);
    let err = e.eval_values(&x, &["nope"]).unwrap_err().to_string();
    assert!(err.contains("'nope'"), "{err}");
}

#[test]
fn degenerate_inputs_give_errors_or_empty_results_not_panics() {
    // Slicing an empty axis backwards is empty.
    let empty = f(&[0], &[]);
    let (st, en, ax, step) = (
        i(&[1], &[-1]),
        i(&[1], &[i64::MIN]),
        i(&[1], &[0]),
        i(&[1], &[-1]),
    );
    check(
        "Slice",
        13,
        vec![],
        &[&empty, &st, &en, &ax, &step],
        &[f(&[0], &[])],
    );
    // A step so large that the next index overflows.
    let x = f(&[3], &[1., 2., 3.]);
    let big = i(&[1], &[i64::MAX]);
    check(
        "Slice",
        13,
        vec![],
        &[&x, &i(&[1], &[1]), &i(&[1], &[3]), &ax, &big],
        &[f(&[1], &[2.])],
    );
    let huge = error(
        "Range",
        13,
        vec![],
        &[&f(&[], &[0.]), &f(&[], &[1e30]), &f(&[], &[1e-30])],
    );
    assert!(huge.contains("over the evaluator's limit"), "{huge}");
    // Past the element limit, not only past u32: refused before allocating 4G elements.
    let big = error(
        "Range",
        13,
        vec![],
        &[&f(&[], &[0.]), &f(&[], &[4e9]), &f(&[], &[1.])],
    );
    assert!(big.contains("over the evaluator's limit"), "{big}");
    assert!(error("ArgMax", 13, vec![], &[&f(&[], &[1.])]).contains("rank 1"));
    let w0 = f(&[1, 1, 0, 3], &[]);
    assert!(error("Conv", 17, vec![], &[&iota(&[1, 1, 3, 3]), &w0]).contains("does not fit"));
    let same = error(
        "Conv",
        17,
        vec![astr("auto_pad", "SAME_UPPER")],
        &[&f(&[1, 1, 0, 3], &[]), &f(&[1, 1, 1, 1], &[1.])],
    );
    assert!(same.contains("empty spatial axis"), "{same}");
    let bad_group = error(
        "Conv",
        17,
        vec![ai("group", 0)],
        &[&iota(&[1, 2, 2, 2]), &iota(&[1, 2, 1, 1])],
    );
    assert!(bad_group.contains("group 0"), "{bad_group}");
}

/// Evaluates `op` on the transpose of `x` (a strided, non-contiguous tensor inside the
/// evaluator) and further inputs `extra`.
fn on_transposed(op: &str, attrs: Vec<AttributeProto>, x: &Tensor, extra: &[&Tensor]) -> Tensor {
    let mut inputs = vec![value_info("x", onnx_type(x), Some(x.dims()))];
    let mut feeds = vec![("x".to_string(), x.clone())];
    let mut op_inputs = vec!["t".to_string()];
    for (k, t) in extra.iter().enumerate() {
        let name = format!("e{k}");
        inputs.push(value_info(&name, onnx_type(t), Some(t.dims())));
        feeds.push((name.clone(), (*t).clone()));
        op_inputs.push(name);
    }
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(GraphProto {
            node: vec![
                NodeProto {
                    name: "tr".into(),
                    op_type: "Transpose".into(),
                    input: vec!["x".into()],
                    output: vec!["t".into()],
                    ..Default::default()
                },
                NodeProto {
                    name: "op".into(),
                    op_type: op.into(),
                    input: op_inputs,
                    output: vec!["y".into()],
                    attribute: attrs,
                    ..Default::default()
                },
            ],
            input: inputs,
            output: vec![value_info("y", 0, None)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = Model::from_proto(proto, "transposed.onnx", ExternalStore::none()).unwrap();
    let out = Evaluator::new(&m).unwrap().eval(&feeds).unwrap();
    out.into_iter().next().unwrap().1
}

#[test]
fn index_based_ops_read_transposed_inputs() {
    // x = [[1,2,3],[4,5,6]]; its transpose is [[1,4],[2,5],[3,6]].
    let x = iota(&[2, 3]);
    let values = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let y = on_transposed("Gather", vec![], &x, &[&i(&[2], &[2, 0])]);
    assert_eq!(values(y), [3., 6., 1., 4.]);
    let (st, en, ax, step) = (i(&[1], &[0]), i(&[1], &[3]), i(&[1], &[0]), i(&[1], &[2]));
    let y = on_transposed("Slice", vec![], &x, &[&st, &en, &ax, &step]);
    assert_eq!(values(y), [1., 4., 3., 6.]);
    let y = on_transposed(
        "Pad",
        vec![astr("mode", "edge")],
        &x,
        &[&i(&[4], &[0, 1, 0, 0])],
    );
    assert_eq!(values(y), [1., 1., 4., 2., 2., 5., 3., 3., 6.]);
    let y = on_transposed(
        "Resize",
        vec![astr("mode", "linear")],
        &x,
        &[&f(&[0], &[]), &f(&[2], &[1., 2.])],
    );
    // Rows [1,4], [2,5], [3,6] doubled in width with half-pixel linear interpolation.
    assert_eq!(
        values(y),
        [1., 1.75, 3.25, 4., 2., 2.75, 4.25, 5., 3., 3.75, 5.25, 6.]
    );
}

#[test]
fn lrn_scales_by_the_squares_of_neighbouring_channels() {
    // size 3, alpha 3, beta 1, bias 1: y = x / (1 + sum of x² over c-1..=c+1), per position.
    // Position 0 holds channels [1, 2, 3]: 1/(1+5), 2/(1+14), 3/(1+13); position 1 holds
    // [-1, 0, 1]: -1/(1+1), 0/(1+2), 1/(1+1). (onnxruntime agrees.)
    let x = f(&[1, 3, 1, 2], &[1.0, -1.0, 2.0, 0.0, 3.0, 1.0]);
    let attrs = vec![
        ai("size", 3),
        af("alpha", 3.0),
        af("beta", 1.0),
        af("bias", 1.0),
    ];
    let want = [1.0 / 6.0, -0.5, 2.0 / 15.0, 0.0, 3.0 / 14.0, 0.5];
    check("LRN", 17, attrs, &[&x], &[f(&[1, 3, 1, 2], &want)]);
    // Even sizes look one channel further ahead than behind (spec): size 2 sums c..=c+1.
    let x = f(&[1, 3, 1, 1], &[1.0, 2.0, 3.0]);
    let attrs = vec![
        ai("size", 2),
        af("alpha", 2.0),
        af("beta", 1.0),
        af("bias", 1.0),
    ];
    let want = [1.0 / 6.0, 2.0 / 14.0, 3.0 / 10.0];
    check("LRN", 17, attrs, &[&x], &[f(&[1, 3, 1, 1], &want)]);
    assert!(error("LRN", 17, vec![], &[&x]).contains("size"));
}

#[test]
fn gather_elements_picks_along_the_axis() {
    // The spec's examples: axis 1 on [[1, 2], [3, 4]] with [[0, 0], [1, 0]] -> [[1, 1], [4, 3]];
    // axis 0 on 1..9 (3x3) with [[1, 2, 0], [2, 0, 0]] -> [[4, 8, 3], [7, 2, 3]]; a negative
    // index counts from the end.
    let x = f(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let idx = i(&[2, 2], &[0, 0, 1, 0]);
    check(
        "GatherElements",
        13,
        vec![ai("axis", 1)],
        &[&x, &idx],
        &[f(&[2, 2], &[1.0, 1.0, 4.0, 3.0])],
    );
    let x = iota(&[3, 3]);
    let idx = i(&[2, 3], &[1, -1, 0, 2, 0, 0]);
    let want = f(&[2, 3], &[4.0, 8.0, 3.0, 7.0, 2.0, 3.0]);
    check(
        "GatherElements",
        13,
        vec![ai("axis", 0)],
        &[&x, &idx],
        &[want],
    );
    let ints = i(&[2, 2], &[5, 6, 7, 8]);
    let idx = i(&[2, 1], &[1, 0]);
    check(
        "GatherElements",
        13,
        vec![ai("axis", 1)],
        &[&ints, &idx],
        &[i(&[2, 1], &[6, 7])],
    );
    let bad = i(&[2, 1], &[2, 0]);
    assert!(
        error("GatherElements", 13, vec![ai("axis", 1)], &[&ints, &bad]).contains("out of range")
    );
}

#[test]
fn gather_nd_reads_index_tuples() {
    // The spec's examples, on data 0..7.
    let d2 = i(&[2, 2], &[0, 1, 2, 3]);
    check(
        "GatherND",
        13,
        vec![],
        &[&d2, &i(&[2, 2], &[0, 0, 1, 1])],
        &[i(&[2], &[0, 3])],
    );
    check(
        "GatherND",
        13,
        vec![],
        &[&d2, &i(&[2, 1], &[1, 0])],
        &[i(&[2, 2], &[2, 3, 0, 1])],
    );
    let d3 = i(&[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7]);
    check(
        "GatherND",
        13,
        vec![],
        &[&d3, &i(&[2, 2], &[0, 1, 1, 0])],
        &[i(&[2, 2], &[2, 3, 4, 5])],
    );
    // batch_dims 1: batch 0 takes row 1 ([2, 3]), batch 1 row 0 ([4, 5]).
    check(
        "GatherND",
        13,
        vec![ai("batch_dims", 1)],
        &[&d3, &i(&[2, 1], &[1, 0])],
        &[i(&[2, 2], &[2, 3, 4, 5])],
    );
    // Floats, with a negative index: row -1 of 1..6 (3x2) is [5, 6].
    let x = iota(&[3, 2]);
    check(
        "GatherND",
        13,
        vec![],
        &[&x, &i(&[1, 1], &[-1])],
        &[f(&[1, 2], &[5.0, 6.0])],
    );
    assert!(error("GatherND", 13, vec![], &[&x, &i(&[1, 1], &[3])]).contains("out of range"));
}
