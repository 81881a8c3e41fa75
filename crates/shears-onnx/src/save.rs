//! Writing models: encoding, external data, and the atomic write that never leaves a
//! half-written file or touches the input.

use std::io::Write;
use std::path::Path;

use prost::Message;

use crate::error::{OnnxError, Result};
use crate::proto::ModelProto;

/// Encodes `proto` and writes it to `path` through a temporary file in the same folder renamed
/// into place, so readers never see a partial model.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".shears-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| OnnxError::io(dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| OnnxError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OnnxError::io(tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| OnnxError::io(path, e.error))?;
    Ok(())
}

/// Encodes `proto` to bytes.
pub fn encode(proto: &ModelProto) -> Vec<u8> {
    proto.encode_to_vec()
}
