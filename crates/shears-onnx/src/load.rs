//! Reading model bytes: memory-mapping files and decoding them into a [`ModelProto`].
//!
//! Invariant: decoding a mapped file copies no tensor payload; `raw_data` fields are slices of
//! the mapping, which stays alive as long as any slice of it does.

use std::path::Path;

use bytes::Bytes;
use prost::Message;

use crate::error::{OnnxError, Result};
use crate::proto::ModelProto;

/// Maps `path` read-only into memory as `Bytes` (an empty file gives empty bytes).
pub fn map_file(path: &Path) -> Result<Bytes> {
    let file = std::fs::File::open(path).map_err(|e| OnnxError::io(path, e))?;
    let len = file.metadata().map_err(|e| OnnxError::io(path, e))?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only. A file truncated by another process while mapped can
    // fault; that is the accepted contract of every mmap-based reader (onnxruntime included).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| OnnxError::io(path, e))?;
    Ok(Bytes::from_owner(map))
}

/// Decodes `bytes` as an ONNX model; `file` names the source in errors.
///
/// Beyond protobuf decoding, refuses what is certainly not a model: empty input, no graph, or an
/// IR version of 0 (protobuf decodes many non-ONNX files into an empty message).
pub fn decode_model(bytes: Bytes, file: &str) -> Result<ModelProto> {
    let decode = |reason: String| OnnxError::Decode {
        file: file.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(decode("the file is empty".into()));
    }
    let proto = ModelProto::decode(bytes).map_err(|e| decode(format!("protobuf: {e}")))?;
    if proto.ir_version <= 0 {
        return Err(decode(
            "no ir_version: this is not an ONNX ModelProto (wrong file type?)".into(),
        ));
    }
    if proto.graph.is_none() {
        return Err(decode("the model has no graph".into()));
    }
    Ok(proto)
}
