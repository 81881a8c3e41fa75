//! External tensor data (`data_location = EXTERNAL`): payloads kept in side files next to the
//! model, addressed by `location`, `offset` and `length` entries.
//!
//! Invariant: a `location` is only ever resolved inside the model's own folder. Absolute paths,
//! `..` components and symbolic links that lead outside it are refused, so a model file cannot be
//! used to read arbitrary files. Side files are memory-mapped once and sliced, never copied.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::cut::CutView;
use crate::error::{OnnxError, Result};
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{ModelProto, TensorProto};

/// Resolves external payloads relative to one folder, caching each mapped side file; also
/// holds the cuts not yet made ([`CutView`]) that a pruned model's tensors refer to.
///
/// Invariants: every side file it hands out bytes of lies inside `base_dir` (see
/// [`safe_join`]); `model_file`, when set, is the file the model itself was read from, which
/// writers must never overwrite. A tensor whose `location` is a key of `cuts` (made by
/// [`cut_key`], which no file name can equal) reads that view, at offset 0, for its whole
/// length; every other location is a file.
#[derive(Debug, Default)]
pub struct ExternalStore {
    base_dir: Option<PathBuf>,
    model_file: Option<PathBuf>,
    files: Mutex<HashMap<String, Bytes>>,
    cuts: HashMap<String, Arc<CutView>>,
}

/// A fresh `location` for a [`CutView`], unique in the process. It starts with a NUL byte,
/// which no path can hold, so it never names a file, and it never reaches a saved model (the
/// saver writes a view's bytes, at a real location or inline).
pub fn cut_key() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{CUT_PREFIX}{n}")
}

const CUT_PREFIX: &str = "\0shears-cut/";

/// The parsed `external_data` entries of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    /// Path of the side file, relative to the model's folder.
    pub location: String,
    /// Byte offset of the payload in the side file.
    pub offset: u64,
    /// Byte length of the payload; `None` means "to the end of the file".
    pub length: Option<u64>,
}

impl ExternalRef {
    /// Parses the `external_data` key/value entries of `t`.
    pub fn of(t: &TensorProto) -> Result<Self> {
        Self::of_labelled(t, &t.name)
    }

    /// [`ExternalRef::of`], naming the tensor `label` in errors.
    pub fn of_labelled(t: &TensorProto, label: &str) -> Result<Self> {
        let mut location = None;
        let mut offset = 0u64;
        let mut length = None;
        for kv in &t.external_data {
            let bad = |what: &str| OnnxError::ExternalData {
                tensor: label.to_string(),
                location: location.clone().unwrap_or_default(),
                reason: format!("{what} '{}' is not a non-negative integer", kv.value_str()),
            };
            match kv.key_str().as_ref() {
                "location" => location = Some(kv.value_str().into_owned()),
                "offset" => offset = kv.value_str().parse().map_err(|_| bad("offset"))?,
                "length" => length = Some(kv.value_str().parse().map_err(|_| bad("length"))?),
                _ => {} // "checksum" and future keys do not affect where the bytes are
            }
        }
        let location = location.ok_or_else(|| OnnxError::ExternalData {
            tensor: label.to_string(),
            location: String::new(),
            reason: "no 'location' entry".into(),
        })?;
        Ok(ExternalRef {
            location,
            offset,
            length,
        })
    }
}

impl ExternalStore {
    /// A store for in-memory models: any external reference is an error.
    pub fn none() -> Self {
        ExternalStore::default()
    }

    /// A store resolving locations relative to `base_dir` (the model file's folder).
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        ExternalStore {
            base_dir: Some(base_dir.into()),
            model_file: None,
            files: Mutex::new(HashMap::new()),
            cuts: HashMap::new(),
        }
    }

    /// A store for the model read from `model_file`: locations resolve in its folder, and
    /// writers know not to overwrite it.
    pub fn for_model_file(model_file: &Path) -> Self {
        let base = match model_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        ExternalStore {
            model_file: Some(model_file.to_path_buf()),
            ..ExternalStore::new(base)
        }
    }

    /// A store resolving the same locations as this one (same folder, same model file, same
    /// cut views), with its own cache: what a model derived from this one (a pruned copy)
    /// reads its untouched external tensors through.
    pub fn same_folder(&self) -> Self {
        ExternalStore {
            base_dir: self.base_dir.clone(),
            model_file: self.model_file.clone(),
            files: Mutex::new(HashMap::new()),
            cuts: self.cuts.clone(),
        }
    }

    /// Adds views, each under its key (from [`cut_key`]).
    pub fn add_cuts(&mut self, cuts: impl IntoIterator<Item = (String, Arc<CutView>)>) {
        self.cuts.extend(cuts);
    }

    /// The view an external tensor reads, if its location is one.
    pub fn cut_of(&self, t: &TensorProto) -> Option<&Arc<CutView>> {
        if !crate::tensor::is_external(t) || self.cuts.is_empty() {
            return None;
        }
        let location = t
            .external_data
            .iter()
            .find(|kv| kv.key.as_ref() == b"location")?;
        let key = std::str::from_utf8(&location.value).ok()?;
        self.cuts.get(key)
    }

    /// The byte length of an external tensor's payload, without reading it (a view is not
    /// cut for it).
    pub fn payload_len(&self, t: &TensorProto, label: &str) -> Result<usize> {
        match self.cut_of(t) {
            Some(v) => self.check_cut(t, label, v).map(|()| v.len()),
            None => Ok(self.read_labelled(t, label)?.len()),
        }
    }

    /// A view is read whole: its reference must say offset 0 and, if given, its length.
    fn check_cut(&self, t: &TensorProto, label: &str, v: &CutView) -> Result<()> {
        let r = ExternalRef::of_labelled(t, label)?;
        if r.offset != 0 || r.length.is_some_and(|l| l != v.len() as u64) {
            return Err(OnnxError::ExternalData {
                tensor: label.to_string(),
                location: r.location,
                reason: format!("a cut of {} bytes is read whole", v.len()),
            });
        }
        Ok(())
    }

    /// The file the model was read from, if known.
    pub fn model_file(&self) -> Option<&Path> {
        self.model_file.as_deref()
    }

    /// The side file `location` names, checked to lie inside the model's folder.
    pub fn resolve(&self, location: &str) -> std::result::Result<PathBuf, String> {
        let base = self
            .base_dir
            .as_ref()
            .ok_or_else(|| "the model was not read from a file, so it has no folder".to_string())?;
        safe_join(base, location)
    }

    /// The folder locations are resolved against, if any.
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    /// The payload bytes of an external tensor (zero-copy slice of the mapped side file; a
    /// cut view's bytes are made in a new buffer).
    pub fn read(&self, t: &TensorProto) -> Result<Bytes> {
        self.read_labelled(t, &t.name)
    }

    /// [`ExternalStore::read`], naming the tensor `label` in errors.
    pub fn read_labelled(&self, t: &TensorProto, label: &str) -> Result<Bytes> {
        if let Some(v) = self.cut_of(t) {
            // Made on demand, one tensor at a time: the caller drops it when done.
            self.check_cut(t, label, v)?;
            return Ok(Bytes::from(v.to_vec()));
        }
        let r = ExternalRef::of_labelled(t, label)?;
        let err = |reason: String| OnnxError::ExternalData {
            tensor: label.to_string(),
            location: r.location.clone(),
            reason,
        };
        let file = self.file(&r.location).map_err(err)?;
        let start = usize::try_from(r.offset).map_err(|_| err("offset too large".into()))?;
        let end = match r.length {
            Some(len) => start
                .checked_add(usize::try_from(len).map_err(|_| err("length too large".into()))?)
                .ok_or_else(|| err("offset + length overflows".into()))?,
            None => file.len(),
        };
        if start > end || end > file.len() {
            return Err(err(format!(
                "bytes {start}..{end} are outside the file's {} bytes",
                file.len()
            )));
        }
        Ok(file.slice(start..end))
    }

    /// The whole mapped side file named by `location`, checked to lie inside the base folder.
    fn file(&self, location: &str) -> std::result::Result<Bytes, String> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = files.get(location) {
            return Ok(b.clone());
        }
        let path = self.resolve(location)?;
        let bytes = crate::load::map_file(&path).map_err(|e| match e {
            OnnxError::Io { path, source } => format!("{}: {source}", path.display()),
            other => other.to_string(),
        })?;
        files.insert(location.to_string(), bytes.clone());
        Ok(bytes)
    }
}

/// A copy of `proto` with every external payload read into `raw_data` (zero-copy slices of
/// the mapped side files) and its `external_data` entries and `data_location` cleared.
///
/// This is the canonical form for comparing models whatever their storage: two models are
/// equal when their internalized forms are (see [`crate::save`]).
pub fn internalized(proto: &ModelProto, store: &ExternalStore) -> Result<ModelProto> {
    let mut out = proto.clone();
    for found in crate::walk::tensors_mut(&mut out) {
        let t = found.tensor;
        if crate::tensor::is_external(t) {
            t.raw_data = crate::tensor::payload_le_labelled(t, &found.label, store)?;
            t.external_data.clear();
            t.data_location = DataLocation::Default as i32;
        }
    }
    Ok(out)
}

/// Joins `location` to `base`, refusing anything that could point outside `base`.
pub fn safe_join(base: &Path, location: &str) -> std::result::Result<PathBuf, String> {
    let rel = Path::new(location);
    if location.is_empty() {
        return Err("empty location".into());
    }
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("location leaves the model's folder ('..')".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("location is an absolute path".into())
            }
        }
    }
    let joined = base.join(rel);
    // A symbolic link inside the folder could still lead outside it.
    let canon_base = base
        .canonicalize()
        .map_err(|e| format!("model folder {}: {e}", base.display()))?;
    let canon = joined
        .canonicalize()
        .map_err(|e| format!("{}: {e}", joined.display()))?;
    if !canon.starts_with(&canon_base) {
        return Err("location resolves outside the model's folder".into());
    }
    Ok(canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../../etc/passwd", "/etc/passwd", "a/../../x", ""] {
            assert!(safe_join(dir.path(), bad).is_err(), "{bad} accepted");
        }
        std::fs::write(dir.path().join("w.bin"), [0u8; 8]).unwrap();
        assert!(safe_join(dir.path(), "w.bin").is_ok());
        assert!(safe_join(dir.path(), "./w.bin").is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_out_of_the_folder() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        assert!(safe_join(dir.path(), "link").is_err());
    }
}
