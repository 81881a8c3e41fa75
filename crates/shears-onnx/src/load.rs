//! Reading model bytes: memory-mapping files and decoding them into a [`ModelProto`].
//!
//! Invariant: decoding a mapped file copies no tensor payload; `raw_data` fields are slices of
//! the mapping, which stays alive as long as any slice of it does.
//!
//! Why loading is cheap even on a cold page cache: prost only reads the few bytes of each
//! field's tag and length, so decoding touches one page per tensor header. But a page fault on
//! a mapping normally triggers the kernel's read-ahead, which pulls in the weight pages around
//! it as well: decoding `resnet18` (46 MB) from a cold cache took 37 ms, nearly the cost of
//! reading the whole file. While decoding, the mapping is therefore advised `MADV_RANDOM` (no
//! read-ahead: 3 ms cold, 0.3 ms warm), then set back to normal so that code which does read
//! weights later (pruning, export) gets read-ahead again.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use crate::error::{OnnxError, Result};
use crate::proto::ModelProto;

/// Maps `path` read-only into memory as `Bytes` (an empty file gives empty bytes).
pub fn map_file(path: &Path) -> Result<Bytes> {
    Ok(Mapped::open(path)?.bytes())
}

/// A model file mapped into memory and decoded.
///
/// Invariant: every `raw_data` in `proto` is a slice of `bytes` (zero copy).
#[derive(Debug)]
pub struct DecodedFile {
    pub proto: ModelProto,
    /// The whole file, as mapped.
    pub bytes: Bytes,
}

/// Maps and decodes the model file at `path` without reading its weight pages (see the module
/// documentation); `file` names the source in errors.
pub fn decode_file(path: &Path, file: &str) -> Result<DecodedFile> {
    let mapped = Mapped::open(path)?;
    mapped.advise_random(true);
    let bytes = mapped.bytes();
    let decoded = decode_model(bytes.clone(), file);
    mapped.advise_random(false);
    Ok(DecodedFile {
        proto: decoded?,
        bytes,
    })
}

/// Drops the resident pages of `bytes` from this process when they are a slice of a file
/// Shears mapped (a model or side file), after a reader is done with them: streaming over a
/// multi-gigabyte file then keeps only the pages being read resident, not the whole file. The
/// kernel keeps them in its page cache, and a later read of the slice faults them back in, so
/// this changes memory use and speed, never what is read. Any other slice (an owned buffer) is
/// left alone: `MADV_DONTNEED` on anonymous memory would zero it, so only ranges inside a live
/// registered mapping are advised.
pub fn release_pages(bytes: &[u8]) {
    #[cfg(unix)]
    {
        if bytes.len() < RELEASE_MIN {
            return;
        }
        let start = bytes.as_ptr() as usize;
        let mut maps = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(|w| w.strong_count() > 0);
        for map in maps.iter().filter_map(std::sync::Weak::upgrade) {
            let base = map.as_ptr() as usize;
            if start >= base && start + bytes.len() <= base + map.len() {
                // SAFETY: the range lies inside a read-only shared file mapping; DONTNEED only
                // drops its page-table entries and a later access re-reads the file's pages, so
                // every live slice keeps reading the same bytes. Failure is only slower.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start - base,
                        bytes.len(),
                    )
                };
                return;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = bytes;
}

/// Slices smaller than this are not worth a system call (and share their pages with neighbours).
#[cfg(unix)]
const RELEASE_MIN: usize = 1 << 20;

/// Every mapping [`Mapped::open`] made that may still be alive, for [`release_pages`].
#[cfg(unix)]
static MAPPINGS: std::sync::Mutex<Vec<std::sync::Weak<memmap2::Mmap>>> =
    std::sync::Mutex::new(Vec::new());

/// A read-only mapping shared between the `Bytes` slices made from it and the loader, which
/// still needs it to change the paging advice after decoding.
struct Mapped(Option<Arc<memmap2::Mmap>>);

/// The owner handed to `Bytes::from_owner`: keeps the mapping alive while any slice lives.
struct MapOwner(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for MapOwner {
    fn as_ref(&self) -> &[u8] {
        &self.0[..]
    }
}

impl Mapped {
    fn open(path: &Path) -> Result<Mapped> {
        let file = std::fs::File::open(path).map_err(|e| OnnxError::io(path, e))?;
        let meta = file.metadata().map_err(|e| OnnxError::io(path, e))?;
        if meta.is_dir() {
            return Err(OnnxError::io(
                path,
                std::io::Error::other("is a folder, not a file"),
            ));
        }
        if meta.len() == 0 {
            return Ok(Mapped(None));
        }
        // SAFETY: the mapping is read-only. A file truncated by another process while mapped can
        // fault; that is the accepted contract of every mmap-based reader (onnxruntime included).
        // Shears itself never writes over a file in place (see `save::write_atomic`).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| OnnxError::io(path, e))?;
        let map = Arc::new(map);
        #[cfg(unix)]
        MAPPINGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&map));
        Ok(Mapped(Some(map)))
    }

    fn bytes(&self) -> Bytes {
        match &self.0 {
            Some(map) => Bytes::from_owner(MapOwner(Arc::clone(map))),
            None => Bytes::new(),
        }
    }

    /// Paging advice only: failure changes speed, never results, so it is ignored.
    fn advise_random(&self, random: bool) {
        #[cfg(unix)]
        if let Some(map) = &self.0 {
            let advice = if random {
                memmap2::Advice::Random
            } else {
                memmap2::Advice::Normal
            };
            let _ = map.advise(advice);
        }
        #[cfg(not(unix))]
        let _ = random;
    }
}

/// Decodes `bytes` as an ONNX model; `file` names the source in errors.
///
/// Beyond protobuf decoding, refuses what is certainly not a model: empty input, a file that
/// starts with another format's magic number, no graph, or an IR version of 0 (protobuf decodes
/// many non-ONNX files into an empty message).
pub fn decode_model(bytes: Bytes, file: &str) -> Result<ModelProto> {
    let decode = |reason: String| OnnxError::Decode {
        file: file.to_string(),
        reason,
    };
    if bytes.is_empty() {
        return Err(decode("the file is empty".into()));
    }
    if let Some(kind) = foreign_format(&bytes) {
        return Err(decode(format!("wrong magic: this is {kind}")));
    }
    let proto = ModelProto::decode(bytes).map_err(|e| {
        decode(format!(
            "protobuf: {e} (the file is truncated, corrupt or not ONNX)"
        ))
    })?;
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

/// Names the format of files that start with a well-known magic number.
///
/// ONNX has no magic number of its own, so this only recognises what a model is not: read as a
/// protobuf tag, each of these prefixes is an invalid wire type, a field number `ModelProto`
/// does not define, or a wire type contradicting the field's type, so no ONNX writer produces
/// it. Naming the format beats protobuf's own message ("invalid wire type") for a user who
/// passed the wrong file.
fn foreign_format(bytes: &[u8]) -> Option<&'static str> {
    const MAGICS: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xff\xd8\xff", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x93NUMPY", "a NumPy .npy array"),
        (
            b"PK\x03\x04",
            "a zip archive (a PyTorch checkpoint or .npz?)",
        ),
        (b"\x1f\x8b", "a gzip archive"),
        (b"\x7fELF", "an ELF executable"),
        (b"%PDF", "a PDF document"),
        (b"\x80\x02", "a Python pickle"),
        (b"\x80\x04", "a Python pickle"),
        (b"\x80\x05", "a Python pickle"),
    ];
    if let Some((_, kind)) = MAGICS.iter().find(|(m, _)| bytes.starts_with(m)) {
        return Some(kind);
    }
    // Text: a ModelProto's first byte is a field tag, never `{`, `[`, `<` or `#`.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => Some("JSON text"),
        Some(b'<') => Some("XML or HTML text"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_read_back_the_same_and_owned_buffers_are_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        let data: Vec<u8> = (0..(3usize << 20)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mapped = map_file(&path).unwrap();
        assert_eq!(&mapped[..], &data[..]);
        // A slice starting mid-page, as tensor payloads do.
        release_pages(&mapped[100..(2 << 20) + 100]);
        release_pages(&mapped);
        assert_eq!(
            &mapped[..],
            &data[..],
            "a released mapping reads the file again"
        );
        // An owned buffer is not a registered mapping: releasing it must not zero it.
        let owned = data.clone();
        release_pages(&owned);
        assert_eq!(owned, data);
    }
}
