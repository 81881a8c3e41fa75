//! Writing models: encoding, external data, and the atomic write that never leaves a
//! half-written file or touches the input.
//!
//! [`save_model`] writes a model file and, when any tensor is stored externally, one side file
//! beside it named `<model file name>.data`:
//! - every tensor that was external in the source stays external;
//! - if the encoded model would exceed [`SaveOptions::max_model_bytes`] (protobuf's 2 GiB limit
//!   by default), the largest inline tensors (of [`MIN_MOVED_BYTES`] or more) move to external
//!   data until it fits: initializers first, attribute tensors (`Constant` values) only if that
//!   is not enough. Nothing is ever truncated; if the model still does not fit, it is an error;
//!   a tensor moved from typed fields (`float_data`...) is stored as little-endian raw bytes;
//! - each payload starts at an offset aligned to [`EXTERNAL_ALIGN`] (64) bytes, zero-padded, so
//!   that a mapped side file gives every tensor an address aligned for any element type and SIMD
//!   loads; entries are written as `location`, `offset`, `length` (always explicit), followed by
//!   any other keys the source had (`checksum` stays valid: the bytes are the same).
//!
//! Both files are written to temporary files in the output folder, synced, then renamed into
//! place, side file first, so a reader never sees a partial file and a failure leaves nothing
//! behind. The model's own input file and the side files it reads from are never overwritten.
//!
//! **Round-trip equality.** Saving an unmodified model and loading it back gives a model that is
//! protobuf-equal to the source once external payloads are read into `raw_data` on both sides
//! ([`crate::external::internalized`]): every field, every payload byte. Additionally the same
//! tensors are external (plus those [`SaveReport::moved`] lists). The `location`/`offset`
//! entries themselves are not kept: the output is a new file pair, and keeping the source's
//! location would point the new model at the old side file. A model with no external data
//! round-trips to an equal proto directly, without internalizing.
//!
//! Equality is that of the decoded messages (proto3 semantics, as `proto` declares them): a
//! scalar that a proto2 writer encoded explicitly at its default value is read as the default
//! and not written back. In `../shared` that happens only to `AttributeProto.i = 0` and
//! `OperatorSetIdProto.domain = ""`, a few bytes per model; every value is the same, and
//! `onnx.checker` and onnxruntime treat both forms alike.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use prost::Message;

use crate::cut::CutView;
use crate::error::{OnnxError, Result};
use crate::external::ExternalStore;
use crate::model::Model;
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{ModelProto, StringStringEntryProto, TensorProto};
use crate::tensor;
use crate::walk::{self, Found};

/// Protobuf's hard limit on an encoded message: 2 GiB - 1 bytes.
pub const PROTOBUF_LIMIT: u64 = i32::MAX as u64;

/// Alignment of every payload in a side file, in bytes.
pub const EXTERNAL_ALIGN: u64 = 64;

/// Smallest payload moved to external data to fit the size limit (ONNX's own default
/// threshold): below it, the `external_data` entries cost about as much as the bytes saved.
pub const MIN_MOVED_BYTES: u64 = 1024;

/// How [`save_model`] writes.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    /// The largest encoded model file allowed, in bytes; tensors move to external data until
    /// the model fits. Defaults to [`PROTOBUF_LIMIT`]; tests lower it to exercise the move.
    pub max_model_bytes: u64,
    /// Files that must not be overwritten, besides the model's own input file and the side
    /// files it reads from (which are always protected).
    pub protect: Vec<PathBuf>,
    /// Initializers (by name) to store as external data even though they are inline now: a
    /// transformation that rewrote an external tensor's payload keeps it external this way.
    pub externalize: BTreeSet<String>,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            max_model_bytes: PROTOBUF_LIMIT,
            protect: Vec::new(),
            externalize: BTreeSet::new(),
        }
    }
}

impl SaveOptions {
    /// Default options for saving a transformation of `original` (a pruned copy, for example)
    /// so that it keeps the original's storage: every initializer that `original` stores as
    /// external data is stored externally again, whether the transformation rewrote its
    /// payload (which is then inline) or left it as a reference. This is the one place that
    /// decides "external stays external"; the CLI and the `shears` facade both call it.
    /// `original`'s own file is protected too, whatever store the transformed copy reads.
    pub fn keeping_storage_of(original: &Model) -> SaveOptions {
        let externalize = original
            .proto
            .graph
            .as_ref()
            .map_or(&[][..], |g| &g.initializer[..])
            .iter()
            .filter(|t| tensor::is_external(t))
            .map(|t| t.name.clone())
            .collect();
        SaveOptions {
            externalize,
            protect: original
                .external
                .model_file()
                .map(Path::to_path_buf)
                .into_iter()
                .collect(),
            ..SaveOptions::default()
        }
    }
}

/// What [`save_model`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveReport {
    /// The model file.
    pub model_path: PathBuf,
    /// Size of the model file in bytes.
    pub model_bytes: u64,
    /// The side file, when at least one tensor is external (otherwise nothing else is written
    /// and an existing file of that name is left alone).
    pub data_path: Option<PathBuf>,
    /// Size of the side file in bytes (0 without one).
    pub data_bytes: u64,
    /// Number of tensors stored in the side file.
    pub external_tensors: usize,
    /// Tensors that were inline in the source and were moved to external data to keep the
    /// model under the size limit, by label.
    pub moved: Vec<String>,
}

/// Writes `model` to `path` (and its external data to `<path>.data`); see the module docs.
pub fn save_model(model: &Model, path: &Path, opts: &SaveOptions) -> Result<SaveReport> {
    save_proto(&model.proto, &model.external, path, opts)
}

/// Writes `proto`, whose external tensors are read through `store`, to `path`; see the module
/// docs. Every tensor is validated first (lengths against dims, external ranges), so an
/// invalid model writes nothing.
pub fn save_proto(
    proto: &ModelProto,
    store: &ExternalStore,
    path: &Path,
    opts: &SaveOptions,
) -> Result<SaveReport> {
    tensor::validate_all(proto, store)?;
    let inlined;
    let (proto, placeholders) = match inline_cuts(proto, store, opts)? {
        Some((p, placeholders)) => {
            inlined = p;
            (&inlined, placeholders)
        }
        None => (proto, Placeholders::default()),
    };
    let (data_path, location) = side_file(path)?;
    let found = walk::tensors(proto);
    let mut external: Vec<bool> = found
        .iter()
        .map(|f| {
            tensor::is_external(f.tensor)
                || (!f.in_attribute && opts.externalize.contains(&f.tensor.name))
        })
        .collect();
    let (out, layout, moved) = plan_layout(
        proto,
        &found,
        &mut external,
        &location,
        opts.max_model_bytes,
    )?;

    let writes_data = !layout.is_empty();
    refuse_overwrite(proto, store, path, opts)?;
    if writes_data {
        refuse_overwrite(proto, store, &data_path, opts)?;
    }

    let dir = folder_of(path);
    let data_tmp = if writes_data {
        Some(write_side_file(dir, &found, &layout, store, &placeholders)?)
    } else {
        None
    };
    let (model_tmp, model_bytes) = write_encoded(dir, &out, &placeholders)?;
    // Each placeholder stands in exactly one place: had one been copied as it is, its zeros
    // would be in the output instead of the tensor.
    if placeholders.written.get() != placeholders.by_addr.len() {
        return Err(OnnxError::io(
            path,
            std::io::Error::other("a cut tensor was not written in place of its placeholder"),
        ));
    }

    let mut data_bytes = 0;
    if let Some(tmp) = data_tmp {
        data_bytes = layout.last().map_or(0, |s| s.offset + s.len);
        tmp.persist(&data_path)
            .map_err(|e| OnnxError::io(&data_path, e.error))?;
    }
    model_tmp
        .persist(path)
        .map_err(|e| OnnxError::io(path, e.error))?;
    Ok(SaveReport {
        model_path: path.to_path_buf(),
        model_bytes,
        data_path: writes_data.then_some(data_path),
        data_bytes,
        external_tensors: layout.len(),
        moved: moved.into_iter().map(|i| found[i].label.clone()).collect(),
    })
}

/// `proto` with a placeholder ([`Placeholders`]) for each cut view ([`crate::cut::CutView`])
/// to be stored inline, or `None` when there is none. A view is stored externally when its
/// tensor is one `opts` keeps external (it was in the source), and is then streamed into the
/// side file by [`write_side_file`]; inline, it is streamed into the model file in its
/// placeholder's place. Either way it is never made whole, and the bytes are those an
/// immediate cut would have stored.
fn inline_cuts(
    proto: &ModelProto,
    store: &ExternalStore,
    opts: &SaveOptions,
) -> Result<Option<(ModelProto, Placeholders)>> {
    // Same order in both walks (`walk`'s invariant): indices carry over.
    let inline: Vec<(usize, Arc<CutView>)> = walk::tensors(proto)
        .iter()
        .enumerate()
        .filter(|(_, f)| f.in_attribute || !opts.externalize.contains(&f.tensor.name))
        .filter_map(|(i, f)| store.cut_of(f.tensor).map(|v| (i, v.clone())))
        .collect();
    if inline.is_empty() {
        return Ok(None);
    }
    let mut out = proto.clone();
    let mut tensors = walk::tensors_mut(&mut out);
    let mut placeholders = Placeholders::default();
    for (i, v) in inline {
        let t = &mut *tensors[i].tensor;
        let raw = placeholders
            .add(v.clone())
            .map_err(|e| OnnxError::tensor(&t.name, e))?;
        tensor::set_raw(t, Vec::new(), &v.dims());
        t.raw_data = raw;
    }
    Ok(Some((out, placeholders)))
}

/// Stand-ins for cut views in an output proto: each a `raw_data` of the view's length over its
/// own private anonymous mapping, never touched (it costs no memory, and would read as zeros),
/// so the encoder sizes the tensor right; the writers recognise a placeholder by its address
/// and write the view's bytes in its place ([`Placeholders::claim`]).
///
/// Invariant: `by_addr` maps each placeholder's first byte to its view, lengths equal;
/// `written` counts the placeholders written in place, which `save_proto` checks is all of
/// them.
#[derive(Default)]
struct Placeholders {
    by_addr: HashMap<usize, Arc<CutView>>,
    written: Cell<usize>,
}

impl Placeholders {
    /// A placeholder for `v` (an empty payload for an empty view, which has nothing to write).
    fn add(&mut self, v: Arc<CutView>) -> std::result::Result<Bytes, String> {
        if v.is_empty() {
            return Ok(Bytes::new());
        }
        let map = memmap2::MmapOptions::new()
            .len(v.len())
            .map_anon()
            .and_then(|m| m.make_read_only())
            .map_err(|e| format!("cannot reserve its placeholder: {e}"))?;
        let bytes = Bytes::from_owner(map);
        self.by_addr.insert(bytes.as_ptr() as usize, v);
        Ok(bytes)
    }

    /// The view `bytes` stands in for, if it is a placeholder, counted as written: the
    /// caller writes the view's bytes in its place.
    fn claim(&self, bytes: &[u8]) -> Option<&CutView> {
        if self.by_addr.is_empty() || bytes.is_empty() {
            return None;
        }
        let view = self
            .by_addr
            .get(&(bytes.as_ptr() as usize))
            .filter(|v| v.len() == bytes.len())?;
        self.written.set(self.written.get() + 1);
        Some(view)
    }
}

/// Where one external payload goes in the side file.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Index into the walk order of the source's tensors.
    tensor: usize,
    offset: u64,
    len: u64,
}

/// Decides which tensors are external (moving inline ones until the model fits `limit`) and
/// where each goes; returns the output proto, the side-file layout and the moved tensors.
fn plan_layout(
    proto: &ModelProto,
    found: &[Found<&TensorProto>],
    external: &mut [bool],
    location: &str,
    limit: u64,
) -> Result<(ModelProto, Vec<Slot>, Vec<usize>)> {
    // Largest first; initializers before attribute tensors, which fewer runtimes read
    // externally; walk order breaks ties, so the choice is deterministic.
    let mut candidates: Vec<usize> = (0..found.len())
        .filter(|&i| !external[i] && movable(found[i].tensor))
        .collect();
    candidates.sort_by_key(|&i| {
        (
            found[i].in_attribute,
            std::cmp::Reverse(found[i].tensor.encoded_len()),
            i,
        )
    });
    let mut candidates = candidates.into_iter();
    let mut moved = Vec::new();
    loop {
        let layout = layout_of(found, external)?;
        let out = rewrite(proto, &layout, location);
        let len = out.encoded_len() as u64;
        if len <= limit {
            return Ok((out, layout, moved));
        }
        // Move enough to cover the excess by estimate; the loop re-measures exactly.
        let before = moved.len();
        let mut saved = 0u64;
        while saved < len - limit {
            let Some(i) = candidates.next() else { break };
            external[i] = true;
            moved.push(i);
            // An external entry costs about this much in the model file.
            saved += (found[i].tensor.encoded_len() as u64).saturating_sub(96);
        }
        if moved.len() == before {
            return Err(OnnxError::TooLarge { bytes: len, limit });
        }
    }
}

/// Whether an inline tensor is worth storing externally to fit the limit: it has a fixed-size
/// binary form of at least [`MIN_MOVED_BYTES`].
fn movable(t: &TensorProto) -> bool {
    matches!(tensor::byte_len(t), Ok(Some(n)) if n as u64 >= MIN_MOVED_BYTES)
}

/// Consecutive aligned slots for the tensors marked external, in walk order.
fn layout_of(found: &[Found<&TensorProto>], external: &[bool]) -> Result<Vec<Slot>> {
    let mut cursor = 0u64;
    let mut slots = Vec::new();
    for (i, f) in found.iter().enumerate().filter(|(i, _)| external[*i]) {
        // Validated before: every external or movable tensor has a byte length.
        let len = tensor::byte_len(f.tensor)?.ok_or_else(|| {
            OnnxError::tensor(
                &f.label,
                "has no fixed-size binary form to store externally",
            )
        })? as u64;
        let offset = cursor.next_multiple_of(EXTERNAL_ALIGN);
        slots.push(Slot {
            tensor: i,
            offset,
            len,
        });
        cursor = offset + len;
    }
    Ok(slots)
}

/// The output proto: `proto` with the tensors of `layout` pointing into the side file.
fn rewrite(proto: &ModelProto, layout: &[Slot], location: &str) -> ModelProto {
    let mut out = proto.clone();
    let mut tensors = walk::tensors_mut(&mut out);
    for slot in layout {
        let t = &mut *tensors[slot.tensor].tensor;
        let mut entries = vec![
            entry("location", location.to_string()),
            entry("offset", slot.offset.to_string()),
            entry("length", slot.len.to_string()),
        ];
        entries.extend(
            t.external_data
                .iter()
                .filter(|kv| !matches!(kv.key.as_ref(), b"location" | b"offset" | b"length"))
                .cloned(),
        );
        t.external_data = entries;
        t.data_location = DataLocation::External as i32;
        t.raw_data = bytes::Bytes::new();
        t.float_data.clear();
        t.int32_data.clear();
        t.int64_data.clear();
        t.double_data.clear();
        t.uint64_data.clear();
    }
    out
}

fn entry(key: &str, value: String) -> StringStringEntryProto {
    StringStringEntryProto::new(key, value)
}

/// Streams the payloads of `layout` into a temporary file in `dir`, zero-padding to each
/// offset, and syncs it.
fn write_side_file(
    dir: &Path,
    found: &[Found<&TensorProto>],
    layout: &[Slot],
    store: &ExternalStore,
    placeholders: &Placeholders,
) -> Result<tempfile::NamedTempFile> {
    let tmp = temp_in(dir)?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp);
    let io = |w: &BufWriter<tempfile::NamedTempFile>, e| OnnxError::io(w.get_ref().path(), e);
    let mut cursor = 0u64;
    for slot in layout {
        let f = &found[slot.tensor];
        // An inline view moved out to fit the size limit is a placeholder now.
        let placeholder = placeholders.claim(&f.tensor.raw_data);
        if let Some(view) = placeholder.or_else(|| store.cut_of(f.tensor).map(|v| &**v)) {
            // Cut straight into the file: the cut tensor is never held whole.
            let pad = (slot.offset - cursor) as usize;
            w.write_all(&[0u8; EXTERNAL_ALIGN as usize][..pad])
                .map_err(|e| io(&w, e))?;
            // The view writes whole chunks of its own: past the buffer, straight to the file.
            w.flush().map_err(|e| io(&w, e))?;
            let n = view.write_to(w.get_mut()).map_err(|e| io(&w, e))?;
            if n != slot.len {
                return Err(OnnxError::tensor(
                    &f.label,
                    "payload length changed while saving",
                ));
            }
            cursor = slot.offset + slot.len;
            continue;
        }
        let payload = tensor::payload_le_labelled(f.tensor, &f.label, store)?;
        if payload.len() as u64 != slot.len {
            // payload_le checks the length against the dims the slot was sized from.
            return Err(OnnxError::tensor(
                &f.label,
                "payload length changed while saving",
            ));
        }
        let pad = (slot.offset - cursor) as usize;
        w.write_all(&[0u8; EXTERNAL_ALIGN as usize][..pad])
            .map_err(|e| io(&w, e))?;
        w.write_all(&payload).map_err(|e| io(&w, e))?;
        // Copied: the input's pages need not stay resident (the output is written one tensor
        // at a time, so only the tensor being copied is).
        crate::load::release_pages(&payload);
        cursor = slot.offset + slot.len;
    }
    let tmp = w.into_inner().map_err(|e| {
        let (error, w) = e.into_parts();
        OnnxError::io(w.get_ref().path(), error)
    })?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OnnxError::io(tmp.path(), e))?;
    Ok(tmp)
}

/// `<path>.data` and the `location` string naming it from the model's folder.
fn side_file(path: &Path) -> Result<(PathBuf, String)> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        OnnxError::io(
            path,
            std::io::Error::other("the output needs a UTF-8 file name (external data names it)"),
        )
    })?;
    let location = format!("{name}.data");
    Ok((path.with_file_name(&location), location))
}

/// Refuses to write `target` if it is the model's input file, a side file the model reads
/// from, or a file the caller protected.
fn refuse_overwrite(
    proto: &ModelProto,
    store: &ExternalStore,
    target: &Path,
    opts: &SaveOptions,
) -> Result<()> {
    let refuse = |what: &str| {
        Err(OnnxError::WouldOverwrite {
            path: target.to_path_buf(),
            what: what.to_string(),
        })
    };
    if !target.exists() {
        return Ok(());
    }
    if let Some(input) = store.model_file() {
        if same_file(target, input) {
            return refuse("the model's own input file");
        }
    }
    let locations: BTreeSet<String> = walk::tensors(proto)
        .into_iter()
        .filter(|f| tensor::is_external(f.tensor))
        .filter_map(|f| crate::external::ExternalRef::of(f.tensor).ok())
        .map(|r| r.location)
        .collect();
    for location in &locations {
        if let Ok(side) = store.resolve(location) {
            if same_file(target, &side) {
                return refuse("a side file the model reads its external data from");
            }
        }
    }
    if opts.protect.iter().any(|p| same_file(target, p)) {
        return refuse("a protected file");
    }
    Ok(())
}

/// Whether `a` and `b` are the same existing file (through links, `..` and hard links too).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".shears-").suffix(".tmp");
    // Temporary files are private (0600) by default; the renamed output is an ordinary file
    // and gets the permissions any new file gets (0666 less the umask).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir).map_err(|e| OnnxError::io(dir, e))
}

/// Writes `bytes` to a synced temporary file in `dir`, ready to be renamed into place.
fn write_temp(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = temp_in(dir)?;
    tmp.write_all(bytes)
        .map_err(|e| OnnxError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OnnxError::io(tmp.path(), e))?;
    Ok(tmp)
}

/// Encodes `proto` straight into a synced temporary file in `dir`; returns it with its size.
///
/// Streaming instead of `encode_to_vec` + write: payloads go from their buffers (often the
/// mapped input file) to the file without first being copied into a fresh model-sized
/// allocation, which cost as much as the write itself for a 100 MB model.
fn write_encoded(
    dir: &Path,
    proto: &ModelProto,
    placeholders: &Placeholders,
) -> Result<(tempfile::NamedTempFile, u64)> {
    let tmp = temp_in(dir)?;
    let mut sink = StreamBuf::new(tmp.as_file(), placeholders);
    proto
        .encode(&mut sink)
        .map_err(|e| OnnxError::io(tmp.path(), std::io::Error::other(e)))?;
    let written = sink.finish().map_err(|e| OnnxError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| OnnxError::io(tmp.path(), e))?;
    Ok((tmp, written))
}

/// A `BufMut` that writes through a fixed buffer to `W`, passing large slices (tensor
/// payloads) straight to the writer, and a cut view's bytes in its placeholder's place. The
/// first I/O error is kept and returned by `finish` (`BufMut` methods cannot fail); later
/// writes are dropped.
struct StreamBuf<'p, W: Write> {
    out: W,
    buf: Vec<u8>,
    written: u64,
    error: Option<std::io::Error>,
    placeholders: &'p Placeholders,
}

impl<'p, W: Write> StreamBuf<'p, W> {
    const CAPACITY: usize = 1 << 20;

    fn new(out: W, placeholders: &'p Placeholders) -> Self {
        StreamBuf {
            out,
            buf: Vec::with_capacity(Self::CAPACITY),
            written: 0,
            error: None,
            placeholders,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            match self.out.write_all(bytes) {
                Ok(()) => self.written += bytes.len() as u64,
                Err(e) => self.error = Some(e),
            }
        }
    }

    fn flush_buf(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.write(&buf);
        self.buf = buf;
        self.buf.clear();
    }

    fn finish(mut self) -> std::io::Result<u64> {
        self.flush_buf();
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush().map(|()| self.written),
        }
    }
}

// SAFETY: `chunk_mut` hands out the vector's spare capacity and `advance_mut` only extends the
// length over bytes the caller initialised there, as the `BufMut` contract requires.
unsafe impl<W: Write> bytes::BufMut for StreamBuf<'_, W> {
    fn remaining_mut(&self) -> usize {
        isize::MAX as usize
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        let len = self.buf.len() + cnt;
        assert!(len <= self.buf.capacity(), "advance_mut past the chunk");
        // SAFETY: the caller initialised `cnt` bytes of the spare capacity (BufMut contract).
        unsafe { self.buf.set_len(len) };
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        if self.buf.len() == self.buf.capacity() {
            self.flush_buf();
        }
        bytes::buf::UninitSlice::uninit(self.buf.spare_capacity_mut())
    }

    fn put_slice(&mut self, src: &[u8]) {
        if let Some(view) = self.placeholders.claim(src) {
            self.flush_buf();
            if self.error.is_none() {
                match view.write_to(&mut self.out) {
                    Ok(n) => self.written += n,
                    Err(e) => self.error = Some(e),
                }
            }
            return;
        }
        if src.len() >= Self::CAPACITY / 4 {
            self.flush_buf();
            self.write(src);
            // A payload of the mapped input, copied: its pages need not stay resident.
            crate::load::release_pages(src);
        } else {
            if self.buf.len() + src.len() > self.buf.capacity() {
                self.flush_buf();
            }
            self.buf.extend_from_slice(src);
        }
    }

    fn put<T: bytes::Buf>(&mut self, mut src: T) {
        while src.has_remaining() {
            let chunk = src.chunk();
            let n = chunk.len();
            self.put_slice(chunk);
            src.advance(n);
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder renamed into place, so
/// readers never see a partial file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_temp(folder_of(path), bytes)?
        .persist(path)
        .map_err(|e| OnnxError::io(path, e.error))?;
    Ok(())
}

/// Encodes `proto` to bytes.
pub fn encode(proto: &ModelProto) -> Vec<u8> {
    proto.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-Conv model with a weight initializer.
    fn conv_model() -> ModelProto {
        let mut b = crate::shape::testutil::GraphBuilder::new(17);
        b.input("x", &[1, 3, 8, 8]);
        b.init_f32("w", &[8, 3, 3, 3]);
        b.node("Conv", &["x", "w"], &["y"], vec![]);
        b.output("y");
        b.proto()
    }

    #[test]
    fn streaming_encoding_equals_encode_to_vec() {
        // Payloads above and below the pass-through size, and enough of them to fill the buffer.
        let mut proto = conv_model();
        let g = proto.graph.as_mut().unwrap();
        for (i, n) in [10usize, 70_000, 300_000, 2_000_000]
            .into_iter()
            .enumerate()
        {
            g.initializer.push(tensor::from_f32(
                format!("extra{i}"),
                &[n],
                &vec![i as f32; n],
            ));
        }
        let mut out = Vec::new();
        let none = Placeholders::default();
        let mut sink = StreamBuf::new(&mut out, &none);
        proto.encode(&mut sink).unwrap();
        let n = sink.finish().unwrap();
        assert_eq!(out, proto.encode_to_vec());
        assert_eq!(n as usize, out.len());
    }

    #[test]
    fn streaming_reports_the_first_write_error() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let proto = conv_model();
        let none = Placeholders::default();
        let mut sink = StreamBuf::new(Full, &none);
        proto.encode(&mut sink).unwrap();
        assert_eq!(sink.finish().unwrap_err().to_string(), "disk full");
    }
}
