//! Property tests: Conv, ConvTranspose, MaxPool and AveragePool on random geometries (groups,
//! strides, dilations, asymmetric pads, ceil_mode, count_include_pad) against naive loops
//! written straight from the ONNX definitions.

use proptest::prelude::*;
use shears_onnx::external::ExternalStore;
use shears_onnx::proto::attribute_proto::AttributeType;
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use shears_onnx::Model;
use shears_verify::candle_core::{Device, Tensor};
use shears_verify::Evaluator;

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn info(name: &str, dims: Option<&[usize]>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
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

/// Runs one node on float inputs; returns the output's dims and values.
fn run(
    op: &str,
    attrs: Vec<AttributeProto>,
    inputs: &[(Vec<usize>, Vec<f32>)],
) -> (Vec<usize>, Vec<f32>) {
    let names: Vec<String> = (0..inputs.len()).map(|k| format!("x{k}")).collect();
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 19,
        }],
        graph: Some(GraphProto {
            node: vec![NodeProto {
                name: "n".into(),
                op_type: op.into(),
                input: names.clone(),
                output: vec!["y".into()],
                attribute: attrs,
                ..Default::default()
            }],
            input: names
                .iter()
                .zip(inputs)
                .map(|(n, (d, _))| info(n, Some(d)))
                .collect(),
            output: vec![info("y", None)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = Model::from_proto(proto, "prop.onnx", ExternalStore::none()).unwrap();
    let feeds: Vec<(String, Tensor)> = names
        .iter()
        .zip(inputs)
        .map(|(n, (d, v))| {
            (
                n.clone(),
                Tensor::from_vec(v.clone(), d.as_slice(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let out = Evaluator::new(&m).unwrap().eval(&feeds).unwrap();
    let y = &out[0].1;
    (
        y.dims().to_vec(),
        y.flatten_all().unwrap().to_vec1().unwrap(),
    )
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    // Small integers: sums are exact in f32, so any difference is an indexing error.
    (0..n)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 7) as f32 - 3.0)
        .collect()
}

/// One spatial axis of a random window.
#[derive(Clone, Debug)]
struct Axis {
    len: usize,
    k: usize,
    s: usize,
    d: usize,
    pb: usize,
    pe: usize,
}

fn axis() -> impl Strategy<Value = Axis> {
    (
        1usize..8,
        1usize..4,
        1usize..4,
        1usize..3,
        0usize..3,
        0usize..3,
    )
        .prop_map(|(len, k, s, d, pb, pe)| Axis {
            len,
            k,
            s,
            d,
            pb,
            pe,
        })
        .prop_filter("window fits the padded input", |a| {
            let eff = (a.k - 1) * a.d + 1;
            a.len + a.pb + a.pe >= eff && a.pb < eff && a.pe < eff
        })
}

fn out_len(a: &Axis, ceil: bool) -> usize {
    let span = a.len + a.pb + a.pe - ((a.k - 1) * a.d + 1);
    let mut o = if ceil { span.div_ceil(a.s) } else { span / a.s } + 1;
    if ceil && (o - 1) * a.s >= a.len + a.pb {
        o -= 1;
    }
    o
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv_matches_the_definition(
        ay in axis(), ax in axis(), n in 1usize..3, groups in 1usize..4, cg in 1usize..3,
        mg in 1usize..3, bias in any::<bool>(), seed in any::<u32>(),
    ) {
        let (c, m) = (groups * cg, groups * mg);
        let xd = vec![n, c, ay.len, ax.len];
        let wd = vec![m, cg, ay.k, ax.k];
        let x = values(xd.iter().product(), seed);
        let w = values(wd.iter().product(), seed ^ 0x55);
        let b = values(m, seed ^ 0xaa);
        let (oh, ow) = (out_len(&ay, false), out_len(&ax, false));
        let mut want = vec![0f32; n * m * oh * ow];
        for ni in 0..n { for mi in 0..m { for oy in 0..oh { for ox in 0..ow {
            let g = mi / mg;
            let mut acc = if bias { b[mi] } else { 0.0 };
            for ci in 0..cg { for i in 0..ay.k { for j in 0..ax.k {
                let iy = (oy * ay.s + i * ay.d) as isize - ay.pb as isize;
                let ix = (ox * ax.s + j * ax.d) as isize - ax.pb as isize;
                if iy < 0 || ix < 0 || iy as usize >= ay.len || ix as usize >= ax.len { continue; }
                let xc = g * cg + ci;
                acc += x[((ni * c + xc) * ay.len + iy as usize) * ax.len + ix as usize]
                    * w[((mi * cg + ci) * ay.k + i) * ax.k + j];
            }}}
            want[((ni * m + mi) * oh + oy) * ow + ox] = acc;
        }}}}
        let attrs = vec![
            ints("strides", &[ay.s, ax.s]), ints("dilations", &[ay.d, ax.d]),
            ints("pads", &[ay.pb, ax.pb, ay.pe, ax.pe]), int("group", groups as i64),
        ];
        let mut ins = vec![(xd, x), (wd, w)];
        if bias { ins.push((vec![m], b)); }
        let (dims, got) = run("Conv", attrs, &ins);
        prop_assert_eq!(dims, vec![n, m, oh, ow]);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn conv_transpose_matches_the_definition(
        ay in axis(), ax in axis(), groups in 1usize..3, cg in 1usize..3, mg in 1usize..3,
        seed in any::<u32>(),
    ) {
        let (c, m) = (groups * cg, groups * mg);
        let xd = vec![1, c, ay.len, ax.len];
        let wd = vec![c, mg, ay.k, ax.k];
        let x = values(xd.iter().product(), seed);
        let w = values(wd.iter().product(), seed ^ 0x33);
        let out = |a: &Axis| (a.s * (a.len - 1) + (a.k - 1) * a.d + 1).checked_sub(a.pb + a.pe);
        let (oh, ow) = (out(&ay).unwrap_or(0), out(&ax).unwrap_or(0));
        prop_assume!(oh > 0 && ow > 0);
        let mut want = vec![0f32; m * oh * ow];
        // Scatter every input through every tap.
        for ci in 0..c { for iy in 0..ay.len { for ix in 0..ax.len {
            let g = ci / cg;
            for mo in 0..mg { for i in 0..ay.k { for j in 0..ax.k {
                let oy = (iy * ay.s + i * ay.d) as isize - ay.pb as isize;
                let ox = (ix * ax.s + j * ax.d) as isize - ax.pb as isize;
                if oy < 0 || ox < 0 || oy as usize >= oh || ox as usize >= ow { continue; }
                let mi = g * mg + mo;
                want[(mi * oh + oy as usize) * ow + ox as usize] +=
                    x[(ci * ay.len + iy) * ax.len + ix] * w[((ci * mg + mo) * ay.k + i) * ax.k + j];
            }}}
        }}}
        let attrs = vec![
            ints("strides", &[ay.s, ax.s]), ints("dilations", &[ay.d, ax.d]),
            ints("pads", &[ay.pb, ax.pb, ay.pe, ax.pe]), int("group", groups as i64),
        ];
        let (dims, got) = run("ConvTranspose", attrs, &[(xd, x), (wd, w)]);
        prop_assert_eq!(dims, vec![1, m, oh, ow]);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn pools_match_the_definition(
        ay in axis(), ax in axis(), ceil in any::<bool>(), include_pad in any::<bool>(),
        seed in any::<u32>(),
    ) {
        let xd = vec![1, 2, ay.len, ax.len];
        let x = values(xd.iter().product(), seed);
        let (oh, ow) = (out_len(&ay, ceil), out_len(&ax, ceil));
        let mut max = vec![0f32; 2 * oh * ow];
        let mut avg = vec![0f32; 2 * oh * ow];
        for c in 0..2 { for oy in 0..oh { for ox in 0..ow {
            let (mut best, mut sum, mut inside, mut padded) = (f32::NEG_INFINITY, 0f32, 0usize, 0usize);
            for i in 0..ay.k { for j in 0..ax.k {
                let iy = (oy * ay.s + i * ay.d) as isize - ay.pb as isize;
                let ix = (ox * ax.s + j * ax.d) as isize - ax.pb as isize;
                // Cells of the padded input (not beyond it, where only ceil_mode reaches).
                if iy < (ay.len + ay.pe) as isize && ix < (ax.len + ax.pe) as isize { padded += 1; }
                if iy < 0 || ix < 0 || iy as usize >= ay.len || ix as usize >= ax.len { continue; }
                let v = x[(c * ay.len + iy as usize) * ax.len + ix as usize];
                best = best.max(v);
                sum += v;
                inside += 1;
            }}
            let at = (c * oh + oy) * ow + ox;
            // A window entirely in the padding: the lowest float and 0, as onnxruntime gives.
            max[at] = if inside == 0 { f32::MIN } else { best };
            avg[at] = if inside == 0 { 0.0 } else { sum / if include_pad { padded } else { inside } as f32 };
        }}}
        let attrs = || vec![
            ints("kernel_shape", &[ay.k, ax.k]), ints("strides", &[ay.s, ax.s]),
            ints("dilations", &[ay.d, ax.d]), ints("pads", &[ay.pb, ax.pb, ay.pe, ax.pe]),
            int("ceil_mode", ceil as i64),
        ];
        let (dims, got) = run("MaxPool", attrs(), &[(xd.clone(), x.clone())]);
        prop_assert_eq!(&dims, &vec![1, 2, oh, ow]);
        prop_assert_eq!(got, max);
        let mut a = attrs();
        a.push(int("count_include_pad", include_pad as i64));
        let (_, got) = run("AveragePool", a, &[(xd, x)]);
        for (g, w) in got.iter().zip(&avg) {
            prop_assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{:?} vs {:?}", got, avg);
        }
    }
}
