//! No field is dropped: `fixtures/every_field.onnx`, written by `fixtures/every_field.py` with
//! ONNX's own Python package, sets every field of every message of the official schema (every
//! oneof member included) to a non-default value. prost skips fields it does not declare, so
//! if `proto.rs` lacked a field, or declared it with another wire type or packing, re-encoding
//! would give fewer (or different) bytes.

use prost::Message;
use shears_onnx::proto::{attribute_proto::AttributeType, type_proto, ModelProto};

const FIXTURE: &[u8] = include_bytes!("fixtures/every_field.onnx");

#[test]
fn every_field_of_the_official_schema_survives_a_round_trip() {
    let m = ModelProto::decode(FIXTURE).unwrap();
    // Nothing skipped: the same length as ONNX's serializer wrote (field order differs).
    assert_eq!(m.encoded_len(), FIXTURE.len());
    let again = ModelProto::decode(m.encode_to_vec().as_slice()).unwrap();
    assert!(again == m);
}

/// Spot checks that fields land where the schema puts them (the values are the generator's
/// counters, see the fixture script), for the fields a round trip most often loses.
#[test]
fn fields_decode_to_the_values_python_wrote() {
    let m = ModelProto::decode(FIXTURE).unwrap();
    let g = m.graph.as_ref().unwrap();
    let node = &g.node[0];
    assert_eq!(
        (
            node.metadata_props[0].key_str().as_ref(),
            node.metadata_props[0].value_str().as_ref()
        ),
        ("key_427", "value_428")
    );
    assert_eq!(g.metadata_props[0].key_str(), "key_554");
    assert_eq!(g.doc_string, "doc_string_520");
    assert_eq!(node.doc_string, "doc_string_426");
    assert_eq!(m.doc_string, "doc_string_8");
    assert_eq!(m.functions[0].name, "name_1282");
    assert_eq!(
        m.training_info[0].initialization.as_ref().unwrap().name,
        "name_816"
    );
    assert_eq!(g.value_info[0].name, "name_541");
    assert_eq!(g.initializer[0].dims, [443, 444]);
    // Every AttributeProto value field and every TypeProto variant is present somewhere.
    let a = &node.attribute[0];
    assert!(AttributeType::try_from(a.r#type).is_ok());
    assert!(a.t.is_some() && a.g.is_some() && a.sparse_tensor.is_some() && a.tp.is_some());
    assert!(!a.floats.is_empty() && !a.ints.is_empty() && !a.strings.is_empty());
    let tps = &a.type_protos;
    let variant = |v: &type_proto::Value| std::mem::discriminant(v);
    let variants: std::collections::HashSet<_> = tps
        .iter()
        .filter_map(|t| t.value.as_ref())
        .map(variant)
        .collect();
    assert_eq!(variants.len(), 6, "all six TypeProto variants");
}
