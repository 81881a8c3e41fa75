//! Bad model files, shared by this crate's library tests (`tests/bad_input.rs`) and the CLI
//! tests of the root package (`tests/bad_input.rs`, which includes this file by path).
//!
//! Each case writes its files into a fresh folder and names the model file to open, with the
//! fragments a clear error message must contain.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use shears_onnx::proto::tensor_proto::{DataLocation, DataType};
use shears_onnx::proto::{
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use shears_onnx::save::encode;
use shears_onnx::tensor::from_f32;

/// One bad input: the files to create, the model file to open, and what the error must say.
pub struct Case {
    pub name: &'static str,
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub model: &'static str,
    /// Fragments the error message must contain (besides the model's path for file errors).
    pub expect: Vec<&'static str>,
}

impl Case {
    /// Writes the case's files into `dir` and returns the model path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes).expect("write a test file");
        }
        dir.join(self.model)
    }
}

/// The repository's copy of the fixtures (`tests/fixtures` at the workspace root), from the
/// manifest of whichever package includes this file.
pub fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["tests/fixtures", "../../tests/fixtures"]
        .iter()
        .map(|rel| manifest.join(rel))
        .find(|d| d.join("tiny_resnet-keepbn.onnx").is_file())
        .unwrap_or_else(|| panic!("no tests/fixtures above {}", manifest.display()))
}

fn fixture(name: &str) -> Vec<u8> {
    let p = fixtures_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f32_input(name: &str, dims: &[i64]) -> ValueInfoProto {
    use shears_onnx::proto::tensor_shape_proto::{dimension, Dimension};
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A valid model computing `y = x * w` with `w` a [2, 2] initializer, with `nodes` and
/// `init` replacing the defaults when given.
pub fn model(nodes: Vec<NodeProto>, init: Vec<TensorProto>) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "shears-tests".into(),
        graph: Some(GraphProto {
            name: "g".into(),
            node: nodes,
            initializer: init,
            input: vec![f32_input("x", &[2, 2])],
            output: vec![f32_input("y", &[2, 2])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The default weights `w` of [`model`].
pub fn weights() -> TensorProto {
    from_f32("w", &[2, 2], &[1.0, 2.0, 3.0, 4.0])
}

/// The default single `Mul` node of [`model`].
pub fn mul() -> Vec<NodeProto> {
    vec![node("mul", "Mul", &["x", "w"], &["y"])]
}

/// `w` stored externally at `location`.
pub fn external_weights(location: &str, offset: u64, length: u64) -> TensorProto {
    let kv = |k: &str, v: String| StringStringEntryProto::new(k, v);
    TensorProto {
        name: "w".into(),
        dims: vec![2, 2],
        data_type: DataType::Float as i32,
        data_location: DataLocation::External as i32,
        external_data: vec![
            kv("location", location.into()),
            kv("offset", offset.to_string()),
            kv("length", length.to_string()),
        ],
        ..Default::default()
    }
}

/// Every bad input the importer must refuse with a clear error.
pub fn cases() -> Vec<Case> {
    let resnet = fixture("tiny_resnet-keepbn.onnx");
    let half = resnet[..resnet.len() / 2].to_vec();
    // Deterministic noise (xorshift), not a valid protobuf.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    let npy = fixture("tiny_resnet.input.npy");
    let json = br#"{"ir_version": 8, "graph": {}}"#.to_vec();

    let cyclic = model(
        vec![
            node("a", "Relu", &["c"], &["b"]),
            node("b_node", "Relu", &["b"], &["c"]),
            node("mul", "Mul", &["x", "c"], &["y"]),
        ],
        vec![],
    );
    let undefined = model(vec![node("mul", "Mul", &["x", "nowhere"], &["y"])], vec![]);
    let duplicate = model(
        vec![
            node("first", "Relu", &["x"], &["t"]),
            node("second", "Relu", &["x"], &["t"]),
            node("mul", "Mul", &["t", "w"], &["y"]),
        ],
        vec![weights()],
    );
    let mut short = weights();
    short.raw_data = short.raw_data.slice(..12);

    // An initializer also listed as a graph input (IR < 4 layout) must be declared as it is.
    let declared_as = |dims: &[i64], elem_type: DataType| {
        let mut m = model(mul(), vec![weights()]);
        let mut input = f32_input("w", dims);
        if let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.elem_type = elem_type as i32;
        }
        m.graph
            .as_mut()
            .expect("built with a graph")
            .input
            .push(input);
        encode(&m)
    };

    let ext = |location: &str, offset, length| {
        encode(&model(
            mul(),
            vec![external_weights(location, offset, length)],
        ))
    };
    vec![
        Case {
            name: "empty file",
            files: vec![("empty.onnx", vec![])],
            model: "empty.onnx",
            expect: vec!["the file is empty"],
        },
        Case {
            name: "truncated file",
            files: vec![("half.onnx", half)],
            model: "half.onnx",
            expect: vec!["truncated"],
        },
        Case {
            name: "garbage bytes",
            files: vec![("noise.onnx", garbage)],
            model: "noise.onnx",
            expect: vec!["not an ONNX model"],
        },
        Case {
            name: "a PNG image",
            files: vec![("image.onnx", png)],
            model: "image.onnx",
            expect: vec!["wrong magic", "PNG image"],
        },
        Case {
            name: "a NumPy array",
            files: vec![("input.npy", npy)],
            model: "input.npy",
            expect: vec!["wrong magic", "NumPy"],
        },
        Case {
            name: "JSON text",
            files: vec![("model.json", json)],
            model: "model.json",
            expect: vec!["wrong magic", "JSON"],
        },
        Case {
            name: "a cyclic graph",
            files: vec![("cyclic.onnx", encode(&cyclic))],
            model: "cyclic.onnx",
            expect: vec!["cycle", "node 'a'"],
        },
        Case {
            name: "a node reading an undefined value",
            files: vec![("undefined.onnx", encode(&undefined))],
            model: "undefined.onnx",
            expect: vec!["node 'mul'", "'nowhere'"],
        },
        Case {
            name: "duplicate value names",
            files: vec![("duplicate.onnx", encode(&duplicate))],
            model: "duplicate.onnx",
            expect: vec!["value 't' is defined twice", "node 'second'"],
        },
        Case {
            name: "data length disagreeing with the shape",
            files: vec![("short.onnx", encode(&model(mul(), vec![short])))],
            model: "short.onnx",
            expect: vec!["tensor 'w'", "12 bytes", "need 16"],
        },
        Case {
            name: "an initializer-input declared with another shape",
            files: vec![("init_shape.onnx", declared_as(&[2, 3], DataType::Float))],
            model: "init_shape.onnx",
            expect: vec!["tensor 'w'", "graph input", "[2, 3]", "[2, 2]"],
        },
        Case {
            name: "an initializer-input declared with another type",
            files: vec![("init_type.onnx", declared_as(&[2, 2], DataType::Int64))],
            model: "init_type.onnx",
            expect: vec!["tensor 'w'", "graph input", "element type i64", "holds f32"],
        },
        Case {
            name: "a missing external data file",
            files: vec![("missing.onnx", ext("weights.bin", 0, 16))],
            model: "missing.onnx",
            expect: vec!["tensor 'w'", "external data 'weights.bin'", "No such file"],
        },
        Case {
            name: "external data leaving the folder",
            files: vec![("escape.onnx", ext("../../etc/passwd", 0, 16))],
            model: "escape.onnx",
            expect: vec![
                "tensor 'w'",
                "'../../etc/passwd'",
                "leaves the model's folder",
            ],
        },
        Case {
            name: "external data at an absolute path",
            files: vec![("absolute.onnx", ext("/etc/passwd", 0, 16))],
            model: "absolute.onnx",
            expect: vec!["tensor 'w'", "'/etc/passwd'", "absolute path"],
        },
        Case {
            name: "external data past the end of its file",
            files: vec![
                ("overrun.onnx", ext("overrun.bin", 8, 16)),
                ("overrun.bin", vec![0u8; 16]),
            ],
            model: "overrun.onnx",
            expect: vec!["tensor 'w'", "bytes 8..24 are outside the file's 16 bytes"],
        },
        Case {
            name: "external data shorter than the shape",
            files: vec![
                ("ext_short.onnx", ext("ext_short.bin", 0, 12)),
                ("ext_short.bin", vec![0u8; 16]),
            ],
            model: "ext_short.onnx",
            expect: vec!["tensor 'w'", "12 bytes", "need 16"],
        },
    ]
}
