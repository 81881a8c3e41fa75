//! A dataset of model inputs (and optional labels) read from a folder of `.npy` files, checked
//! against a model and cut into the model's batches.
//!
//! # Layouts
//! A dataset is a sequence of *rows* (samples). Every input file contributes rows: a file whose
//! rank equals the model input's holds `shape[0]` rows along axis 0 (the batch axis), a file one
//! axis shorter holds one row. `--data` is read, for the model's runtime inputs, as:
//! - **stacked**, one input: DIR holds `x_*.npy` (exactly one; or `--data` names the file): that
//!   array's rows are the dataset. An `x_*.npy` present means stacked even if other `.npy`
//!   files are there too.
//! - **per sample**, one input: otherwise every `.npy` file directly in DIR, in name order,
//!   except label files (`labels.npy`, `y_*.npy`, the `--labels` file): the `--calib-dir`
//!   layout.
//! - **stacked**, several inputs: DIR holds `<input name>.npy` for every input.
//! - **per-sample folders**, several inputs: otherwise every subfolder of DIR, in name order,
//!   holds `<input name>.npy` for every input.
//!
//! Labels (optional): the `--labels` file, else `y_<S>.npy` beside a stacked `x_<S>.npy`, else
//! the only `labels.npy`/`y_*.npy` in DIR. Integer dtype, shape `(N,)` or `(N, 1)`, `N` = rows.
//!
//! # Batches
//! Axis 0 of every model input is the batch axis. A static batch `b` gives batches of exactly
//! `b` rows, the last one padded by repeating its last row (padding rows are marked, and their
//! results discarded by the caller); a symbolic batch gives batches of
//! [`DEFAULT_BATCH`] rows (or the size asked for), the last one short.

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use shears_onnx::{Dim, Model};

use crate::error::{Result, VerifyError};
use crate::npy::{NpyArray, NpyType, NpyValues};
use crate::ops::{candle_message, CPU};

/// Rows per batch for a model whose batch dimension is symbolic, unless asked otherwise.
pub const DEFAULT_BATCH: usize = 32;

/// Where labels come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LabelSource {
    /// Found in the data folder (see the module docs); none is not an error.
    #[default]
    Auto,
    /// This file.
    File(PathBuf),
    /// No labels (calibration).
    Without,
}

/// How to open a dataset.
#[derive(Clone, Debug, Default)]
pub struct DatasetOptions {
    pub labels: LabelSource,
    /// Rows per batch for a symbolic batch dimension ([`DEFAULT_BATCH`] when `None`); must
    /// equal the model's batch when that is static.
    pub batch_size: Option<usize>,
}

/// How the rows are stored (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    Stacked,
    PerSample,
    PerSampleFolders,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Stacked => "stacked",
            Layout::PerSample => "per-sample",
            Layout::PerSampleFolders => "per-sample-folders",
        }
    }
}

/// Class labels, one per row.
///
/// Invariant: every value is non-negative; `values.len()` is the dataset's row count.
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    pub path: PathBuf,
    pub values: Vec<i64>,
}

/// One file holding some rows of one input.
#[derive(Clone, Debug)]
struct Part {
    array: NpyArray,
    rows: usize,
}

/// One runtime input of the model and the files that feed it.
#[derive(Clone, Debug)]
struct InputData {
    name: String,
    /// Shape of one row (the input's shape without its batch axis).
    row_shape: Vec<usize>,
    parts: Vec<Part>,
}

/// A dataset checked against a model: every file's dtype and shape fit the model's input,
/// the inputs agree on their row counts file by file, and labels (if any) are one per row.
/// Payloads are read batch by batch ([`Dataset::batch`]), where NaN and infinity are refused.
///
/// Invariants: `starts[k]` is the first row of part `k` (the same for every input), `rows > 0`,
/// `batch > 0`.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The `--data` path as given.
    pub root: PathBuf,
    pub layout: Layout,
    inputs: Vec<InputData>,
    starts: Vec<usize>,
    rows: usize,
    batch: usize,
    /// Whether the batch size is the model's static one (the last batch is then padded).
    static_batch: bool,
    labels: Option<Labels>,
}

/// One batch: a tensor per runtime input, by name.
///
/// Invariant: rows `first..first + rows` of the dataset are the batch's first `rows` rows; any
/// further rows are padding.
#[derive(Clone, Debug)]
pub struct Batch {
    pub inputs: Vec<(String, Tensor)>,
    pub first: usize,
    pub rows: usize,
}

fn data_error(path: &Path, reason: impl Into<String>) -> VerifyError {
    VerifyError::Data {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_npy(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "npy")
}

fn is_label_name(name: &str) -> bool {
    name == "labels.npy" || (name.starts_with("y_") && name.ends_with(".npy"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| data_error(dir, e.to_string()))?;
    let mut out = Vec::new();
    for e in rd {
        out.push(e.map_err(|e| data_error(dir, e.to_string()))?.path());
    }
    out.sort();
    Ok(out)
}

/// A model input as the dataset needs it: name, dtype, declared dims (None: unknown rank).
struct ModelInput {
    name: String,
    dtype: i32,
    dims: Option<Vec<Dim>>,
}

impl Dataset {
    /// Finds the files of `path` (a folder, or one stacked `.npy` file) for `model`'s runtime
    /// inputs, reads their headers and the labels, and checks them against the model.
    pub fn open(model: &Model, path: &Path, opts: &DatasetOptions) -> Result<Dataset> {
        let g = &model.graph;
        let inputs: Vec<ModelInput> = g
            .inputs
            .iter()
            .map(|&v| {
                let value = g.value(v);
                ModelInput {
                    name: value.name.clone(),
                    dtype: value.dtype,
                    dims: value.declared.clone(),
                }
            })
            .collect();
        if inputs.is_empty() {
            return Err(VerifyError::Mismatch(format!(
                "{}: the model has no runtime input to feed",
                model.source
            )));
        }
        let found = find_files(path, &inputs, &opts.labels)?;
        let files = found.files;
        let mut data: Vec<InputData> = inputs
            .iter()
            .map(|i| InputData {
                name: i.name.clone(),
                row_shape: Vec::new(),
                parts: Vec::new(),
            })
            .collect();
        let mut starts = Vec::with_capacity(files.len());
        let mut rows = 0usize;
        for sample in &files {
            let mut count: Option<(usize, &Path)> = None;
            for ((p, input), d) in sample.iter().zip(&inputs).zip(data.iter_mut()) {
                let array = NpyArray::open(p)?;
                let n = check_file(&array, input, d)?;
                if let Some((m, q)) = count {
                    if m != n {
                        return Err(data_error(
                            p,
                            format!("{n} rows but {} has {m}", q.display()),
                        ));
                    }
                }
                count = Some((n, p));
                d.parts.push(Part { array, rows: n });
            }
            starts.push(rows);
            rows += count.map_or(0, |c| c.0);
        }
        if rows == 0 {
            return Err(data_error(path, "no samples (every array has 0 rows)"));
        }
        let (batch, static_batch) = batch_size(model, &inputs, opts.batch_size)?;
        let label_file = match &opts.labels {
            LabelSource::Without => None,
            LabelSource::File(f) => Some(f.clone()),
            LabelSource::Auto => find_labels(&found.label_dir, found.stacked_stem.as_deref())?,
        };
        let labels = label_file
            .map(|f| read_labels(&f, rows, path))
            .transpose()?;
        Ok(Dataset {
            root: path.to_path_buf(),
            layout: found.layout,
            inputs: data,
            starts,
            rows,
            batch,
            static_batch,
            labels,
        })
    }

    /// Number of rows (samples).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Never true: an empty dataset is refused by [`Dataset::open`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Rows per batch.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// Number of batches.
    pub fn batches(&self) -> usize {
        self.rows.div_ceil(self.batch)
    }

    /// Padding rows the last batch carries (0 for a symbolic batch: it runs short).
    pub fn padding(&self) -> usize {
        if self.static_batch {
            self.batches() * self.batch - self.rows
        } else {
            0
        }
    }

    pub fn labels(&self) -> Option<&Labels> {
        self.labels.as_ref()
    }

    /// The names of the runtime inputs, in graph order.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|i| i.name.as_str())
    }

    /// Reads batch `index` (< [`Dataset::batches`]); NaN or infinity in a float input is an
    /// error naming the file and row.
    pub fn batch(&self, index: usize) -> Result<Batch> {
        let first = index * self.batch;
        let rows = self.batch.min(self.rows.saturating_sub(first));
        let size = if self.static_batch { self.batch } else { rows };
        let inputs = self
            .inputs
            .iter()
            .map(|input| Ok((input.name.clone(), self.read(input, first, rows, size)?)))
            .collect::<Result<_>>()?;
        Ok(Batch {
            inputs,
            first,
            rows,
        })
    }

    /// Rows `first..first + rows` of `input` as one tensor of `size` rows, the last row
    /// repeated as padding.
    fn read(&self, input: &InputData, first: usize, rows: usize, size: usize) -> Result<Tensor> {
        let row_len: usize = input.row_shape.iter().product();
        let mut floats: Vec<f32> = Vec::new();
        let mut ints: Vec<i64> = Vec::new();
        // The part holding `first`: the last whose start is not after it.
        let mut k = self
            .starts
            .partition_point(|&s| s <= first)
            .saturating_sub(1);
        let mut at = first;
        while at < first + rows {
            let part = &input.parts[k];
            let local = at - self.starts[k];
            let take = (part.rows - local).min(first + rows - at);
            match part.array.read_elements(local * row_len, take * row_len)? {
                NpyValues::F32(v) => {
                    if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
                        return Err(data_error(
                            &part.array.path,
                            format!(
                                "row {} holds {} (element {})",
                                local + bad / row_len.max(1),
                                v[bad],
                                bad % row_len.max(1)
                            ),
                        ));
                    }
                    floats.extend(v);
                }
                NpyValues::I64(v) => ints.extend(v),
            }
            at += take;
            k += 1;
        }
        let mut shape = vec![size];
        shape.extend(&input.row_shape);
        let t = if floats.is_empty() && !ints.is_empty() {
            pad(&mut ints, row_len, size - rows);
            Tensor::from_vec(ints, shape, &CPU)
        } else {
            pad(&mut floats, row_len, size - rows);
            Tensor::from_vec(floats, shape, &CPU)
        };
        t.map_err(|e| data_error(&self.root, candle_message(e)))
    }
}

/// Appends `copies` copies of the last row (of `row_len` values) of `v`.
fn pad<T: Copy>(v: &mut Vec<T>, row_len: usize, copies: usize) {
    if let Some(last) = v.len().checked_sub(row_len) {
        for _ in 0..copies {
            v.extend_from_within(last..last + row_len);
        }
    }
}

/// The input files `Dataset::open` found, before any is read.
struct Found {
    layout: Layout,
    /// Per sample part: one file per model input, in input order.
    files: Vec<Vec<PathBuf>>,
    /// Where labels are looked for.
    label_dir: PathBuf,
    /// `S` of a stacked `x_S.npy`, whose labels are `y_S.npy`.
    stacked_stem: Option<String>,
}

/// Applies the layout rules of the module docs to `path`.
fn find_files(path: &Path, inputs: &[ModelInput], labels: &LabelSource) -> Result<Found> {
    let explicit = match labels {
        LabelSource::File(f) => Some(f.clone()),
        _ => None,
    };
    let is_explicit_labels = |p: &Path| explicit.as_ref().is_some_and(|l| same_file(l, p));
    let (layout, files, label_dir, stacked_stem) = if path.is_file() {
        let stem = file_name(path).strip_prefix("x_").map(str::to_owned);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if inputs.len() > 1 {
            return Err(data_error(
                path,
                format!(
                    "the model has {} inputs: give a folder (see docs/eval.md)",
                    inputs.len()
                ),
            ));
        }
        (Layout::Stacked, vec![vec![path.to_path_buf()]], dir, stem)
    } else if path.is_dir() {
        let entries = sorted_entries(path)?;
        if inputs.len() == 1 {
            let stacked: Vec<&PathBuf> = entries
                .iter()
                .filter(|p| is_npy(p) && file_name(p).starts_with("x_"))
                .collect();
            match stacked.as_slice() {
                [one] => {
                    let stem = file_name(one).strip_prefix("x_").map(str::to_owned);
                    (
                        Layout::Stacked,
                        vec![vec![(*one).clone()]],
                        path.into(),
                        stem,
                    )
                }
                [] => {
                    let files: Vec<Vec<PathBuf>> = entries
                        .iter()
                        .filter(|p| {
                            is_npy(p) && !is_label_name(&file_name(p)) && !is_explicit_labels(p)
                        })
                        .map(|p| vec![p.clone()])
                        .collect();
                    if files.is_empty() {
                        return Err(data_error(path, "no .npy file"));
                    }
                    (Layout::PerSample, files, path.into(), None)
                }
                many => {
                    let names: Vec<String> = many.iter().map(|p| file_name(p)).collect();
                    return Err(data_error(
                        path,
                        format!(
                            "several stacked arrays ({}): pass one as --data FILE",
                            names.join(", ")
                        ),
                    ));
                }
            }
        } else {
            let direct: Vec<PathBuf> = inputs
                .iter()
                .map(|i| path.join(format!("{}.npy", i.name)))
                .collect();
            if direct.iter().all(|p| is_npy(p)) {
                (Layout::Stacked, vec![direct], path.into(), None)
            } else {
                let mut files = Vec::new();
                for sub in entries.iter().filter(|p| p.is_dir()) {
                    let mut sample = Vec::new();
                    for i in inputs {
                        let p = sub.join(format!("{}.npy", i.name));
                        if !p.is_file() {
                            return Err(data_error(
                                sub,
                                format!("missing {}.npy (one file per model input)", i.name),
                            ));
                        }
                        sample.push(p);
                    }
                    files.push(sample);
                }
                if files.is_empty() {
                    return Err(data_error(path, "no sample subfolder"));
                }
                (Layout::PerSampleFolders, files, path.into(), None)
            }
        }
    } else {
        return Err(data_error(path, "no such file or folder"));
    };
    Ok(Found {
        layout,
        files,
        label_dir,
        stacked_stem,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn dims_text(dims: &[Dim]) -> String {
    let d: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Known(n) => n.to_string(),
            Dim::Dynamic(s) if s.is_empty() => "?".into(),
            Dim::Dynamic(s) => s.clone(),
        })
        .collect();
    format!("({})", d.join(", "))
}

/// Checks one file against its input (setting the row shape from the first file where the
/// model leaves it open) and returns its row count.
fn check_file(array: &NpyArray, input: &ModelInput, data: &mut InputData) -> Result<usize> {
    let path = &array.path;
    if input.dtype != 0 && array.dtype.onnx() != input.dtype {
        return Err(data_error(
            path,
            format!(
                "dtype {} does not match input '{}' ({})",
                array.dtype.name(),
                input.name,
                NpyType::from_onnx(input.dtype)
                    .map_or(shears_onnx::tensor::dtype_name(input.dtype), NpyType::name)
            ),
        ));
    }
    if let Some(first) = data.parts.first() {
        if first.array.dtype != array.dtype {
            return Err(data_error(
                path,
                format!(
                    "dtype {} differs from {} in {}",
                    array.dtype.name(),
                    first.array.dtype.name(),
                    first.array.path.display()
                ),
            ));
        }
    }
    let shape = &array.shape;
    let mismatch = |why: &str| {
        let want = input
            .dims
            .as_deref()
            .map_or("(unknown)".to_string(), dims_text);
        data_error(
            path,
            format!(
                "shape {shape:?} does not match input '{}' {want}: {why}",
                input.name
            ),
        )
    };
    let (rows, row_shape) = match &input.dims {
        Some(d) if d.is_empty() => return Err(mismatch("a scalar input cannot be batched")),
        Some(d) if shape.len() == d.len() => (shape[0], &shape[1..]),
        Some(d) if shape.len() + 1 == d.len() => (1, &shape[..]),
        Some(_) => return Err(mismatch("wrong rank")),
        None if shape.is_empty() => return Err(mismatch("a scalar cannot be batched")),
        None => (shape[0], &shape[1..]),
    };
    if let Some(d) = &input.dims {
        for (axis, (want, got)) in d[1..].iter().zip(row_shape).enumerate() {
            if let Dim::Known(w) = want {
                if w != got {
                    return Err(mismatch(&format!("axis {} is {got}, not {w}", axis + 1)));
                }
            }
        }
    }
    if data.parts.is_empty() {
        data.row_shape = row_shape.to_vec();
    } else if data.row_shape != row_shape {
        return Err(mismatch(&format!(
            "earlier files have rows of shape {:?}",
            data.row_shape
        )));
    }
    Ok(rows)
}

/// The batch size and whether it is the model's static batch.
fn batch_size(model: &Model, inputs: &[ModelInput], asked: Option<usize>) -> Result<(usize, bool)> {
    let mut fixed: Option<(usize, &str)> = None;
    for i in inputs {
        if let Some(Dim::Known(b)) = i.dims.as_ref().and_then(|d| d.first()) {
            match fixed {
                Some((f, other)) if f != *b => {
                    return Err(VerifyError::Mismatch(format!(
                        "{}: inputs '{other}' and '{}' have different batch sizes ({f} and {b})",
                        model.source, i.name
                    )))
                }
                _ => fixed = Some((*b, &i.name)),
            }
        }
    }
    match (fixed, asked) {
        (Some((0, name)), _) => Err(VerifyError::Mismatch(format!(
            "{}: input '{name}' has a batch of 0",
            model.source
        ))),
        (Some((b, name)), Some(a)) if a != b => Err(VerifyError::Mismatch(format!(
            "{}: input '{name}' has a static batch of {b}; a batch of {a} cannot be used",
            model.source
        ))),
        (Some((b, _)), _) => Ok((b, true)),
        (None, Some(0)) => Err(VerifyError::Mismatch(
            "a batch size must be positive".into(),
        )),
        (None, asked) => Ok((asked.unwrap_or(DEFAULT_BATCH), false)),
    }
}

/// The labels file in `dir`: `y_<stem>` for a stacked `x_<stem>`, else the only candidate.
fn find_labels(dir: &Path, stacked_stem: Option<&str>) -> Result<Option<PathBuf>> {
    if let Some(stem) = stacked_stem {
        let p = dir.join(format!("y_{stem}"));
        if p.is_file() {
            return Ok(Some(p));
        }
    }
    let dir_or_here = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let found: Vec<PathBuf> = sorted_entries(dir_or_here)?
        .into_iter()
        .filter(|p| is_npy(p) && is_label_name(&file_name(p)))
        .collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        _ => {
            let names: Vec<String> = found.iter().map(|p| file_name(p)).collect();
            Err(data_error(
                dir_or_here,
                format!(
                    "several label files ({}): name one with --labels",
                    names.join(", ")
                ),
            ))
        }
    }
}

fn read_labels(path: &Path, rows: usize, data: &Path) -> Result<Labels> {
    let array = NpyArray::open(path)?;
    if array.dtype.is_float() || array.dtype == NpyType::Bool {
        return Err(data_error(
            path,
            format!("labels must be integers, not {}", array.dtype.name()),
        ));
    }
    let n = match array.shape.as_slice() {
        [n] | [n, 1] => *n,
        s => {
            return Err(data_error(
                path,
                format!("labels must have shape (N,) or (N, 1), not {s:?}"),
            ))
        }
    };
    if n != rows {
        return Err(data_error(
            path,
            format!("{n} labels for {rows} samples in {}", data.display()),
        ));
    }
    let NpyValues::I64(values) = array.read_all()? else {
        return Err(data_error(path, "labels must be integers"));
    };
    if let Some(bad) = values.iter().position(|&v| v < 0) {
        return Err(data_error(
            path,
            format!("label {} at row {bad} is negative", values[bad]),
        ));
    }
    Ok(Labels {
        path: path.to_path_buf(),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use shears_onnx::proto::tensor_proto::DataType;
    use shears_testkit::builder::ModelBuilder;

    /// `y = x` for one input of shape `dims` (negative: symbolic).
    fn identity(dims: &[i64]) -> Model {
        let mut b = ModelBuilder::new(17);
        let x = b.input("x", dims);
        let y = b.node("Identity", &[&x], 1, vec![]).remove(0);
        b.set_shape(&y, dims);
        b.output(&y);
        b.build_model()
    }

    /// `y = a + b` for two inputs of shape `dims`.
    fn two_inputs(dims: &[i64]) -> Model {
        let mut b = ModelBuilder::new(17);
        let x = b.input("a", dims);
        let z = b.input("b", dims);
        let y = b.node("Add", &[&x, &z], 1, vec![]).remove(0);
        b.set_shape(&y, dims);
        b.output(&y);
        b.build_model()
    }

    fn save(t: &Tensor, path: &Path) {
        t.write_npy(path).unwrap();
    }

    /// `n` rows of `shape` (without batch) counting from `from`, as f32.
    fn rows(from: usize, n: usize, shape: &[usize]) -> Tensor {
        let len: usize = shape.iter().product();
        let v: Vec<f32> = (0..n * len).map(|i| (from * len + i) as f32).collect();
        let mut dims = vec![n];
        dims.extend(shape);
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    fn open(m: &Model, p: &Path) -> Result<Dataset> {
        Dataset::open(m, p, &DatasetOptions::default())
    }

    fn error(r: Result<Dataset>) -> String {
        r.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn stacked_array_is_cut_into_padded_static_batches() {
        let dir = tempfile::tempdir().unwrap();
        save(&rows(0, 5, &[3]), &dir.path().join("x_test.npy"));
        let labels = Tensor::new(&[0i64, 1, 2, 0, 1], &Device::Cpu).unwrap();
        save(&labels, &dir.path().join("y_test.npy"));
        // A stray per-sample file: x_*.npy present means stacked.
        save(&rows(9, 1, &[3]), &dir.path().join("other.npy"));
        let d = open(&identity(&[2, 3]), dir.path()).unwrap();
        assert_eq!(d.layout, Layout::Stacked);
        assert_eq!(
            (d.len(), d.batch_size(), d.batches(), d.padding()),
            (5, 2, 3, 1)
        );
        assert_eq!(d.labels().unwrap().values, vec![0, 1, 2, 0, 1]);
        assert!(d.labels().unwrap().path.ends_with("y_test.npy"));
        let b = d.batch(1).unwrap();
        assert_eq!((b.first, b.rows), (2, 2));
        assert_eq!(
            values(&b.inputs[0].1),
            (6..12).map(|v| v as f32).collect::<Vec<_>>()
        );
        let last = d.batch(2).unwrap();
        assert_eq!((last.first, last.rows), (4, 1));
        assert_eq!(last.inputs[0].1.dims(), &[2, 3]);
        assert_eq!(
            values(&last.inputs[0].1),
            vec![12., 13., 14., 12., 13., 14.]
        );
    }

    #[test]
    fn per_sample_files_are_read_in_name_order_with_or_without_batch_axis() {
        let dir = tempfile::tempdir().unwrap();
        save(&rows(1, 1, &[3]), &dir.path().join("b.npy"));
        // One axis short of the input: a single row without the batch axis.
        save(
            &rows(0, 1, &[3]).squeeze(0).unwrap(),
            &dir.path().join("a.npy"),
        );
        save(&rows(2, 2, &[3]), &dir.path().join("c.npy"));
        save(
            &Tensor::new(&[2i64, 1, 0, 0], &Device::Cpu).unwrap(),
            &dir.path().join("labels.npy"),
        );
        let d = open(&identity(&[-1, 3]), dir.path()).unwrap();
        assert_eq!(d.layout, Layout::PerSample);
        assert_eq!(
            (d.len(), d.batch_size(), d.batches(), d.padding()),
            (4, DEFAULT_BATCH, 1, 0)
        );
        let b = d.batch(0).unwrap();
        assert_eq!(b.inputs[0].1.dims(), &[4, 3]);
        assert_eq!(
            values(&b.inputs[0].1),
            (0..12).map(|v| v as f32).collect::<Vec<_>>()
        );
        assert!(d.labels().unwrap().path.ends_with("labels.npy"));
        // Batches that straddle files.
        let opts = DatasetOptions {
            batch_size: Some(3),
            labels: LabelSource::Without,
        };
        let d = Dataset::open(&identity(&[-1, 3]), dir.path(), &opts).unwrap();
        assert!(d.labels().is_none());
        assert_eq!(d.batches(), 2);
        let b = d.batch(1).unwrap();
        assert_eq!(
            (b.first, b.rows, b.inputs[0].1.dims()),
            (3, 1, &[1usize, 3][..])
        );
        assert_eq!(values(&b.inputs[0].1), vec![9., 10., 11.]);
    }

    #[test]
    fn several_inputs_read_one_subfolder_per_sample_or_stacked_files() {
        let dir = tempfile::tempdir().unwrap();
        for (k, name) in ["s0", "s1"].iter().enumerate() {
            let sub = dir.path().join(name);
            std::fs::create_dir(&sub).unwrap();
            save(&rows(k, 1, &[2]), &sub.join("a.npy"));
            save(&rows(10 + k, 1, &[2]), &sub.join("b.npy"));
        }
        let m = two_inputs(&[1, 2]);
        let d = open(&m, dir.path()).unwrap();
        assert_eq!(
            (d.layout, d.len(), d.batches()),
            (Layout::PerSampleFolders, 2, 2)
        );
        let b = d.batch(1).unwrap();
        let names: Vec<&str> = b.inputs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(values(&b.inputs[0].1), vec![2., 3.]);
        assert_eq!(values(&b.inputs[1].1), vec![22., 23.]);
        // A subfolder missing an input is named.
        std::fs::remove_file(dir.path().join("s1/b.npy")).unwrap();
        let e = error(open(&m, dir.path()));
        assert!(e.contains("s1") && e.contains("missing b.npy"), "{e}");
        // Stacked: <input>.npy for every input directly in the folder.
        let st = tempfile::tempdir().unwrap();
        save(&rows(0, 3, &[2]), &st.path().join("a.npy"));
        save(&rows(5, 3, &[2]), &st.path().join("b.npy"));
        let d = open(&m, st.path()).unwrap();
        assert_eq!((d.layout, d.len()), (Layout::Stacked, 3));
        // Row counts must agree between inputs.
        save(&rows(5, 2, &[2]), &st.path().join("b.npy"));
        let e = error(open(&m, st.path()));
        assert!(e.contains("b.npy") && e.contains("2 rows"), "{e}");
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_file() {
        let m = identity(&[1, 3]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        // Empty folder.
        let e = error(open(&m, p));
        assert!(
            e.contains(&p.display().to_string()) && e.contains("no .npy file"),
            "{e}"
        );
        // Shape.
        save(&rows(0, 1, &[4]), &p.join("a.npy"));
        let e = error(open(&m, p));
        assert!(
            e.contains("a.npy") && e.contains("axis 1 is 4, not 3"),
            "{e}"
        );
        save(&rows(0, 1, &[3, 1]), &p.join("a.npy"));
        let e = error(open(&m, p));
        assert!(e.contains("a.npy") && e.contains("wrong rank"), "{e}");
        // Dtype.
        save(
            &rows(0, 1, &[3]).to_dtype(DType::F64).unwrap(),
            &p.join("a.npy"),
        );
        let e = error(open(&m, p));
        assert!(e.contains("a.npy") && e.contains("dtype float64"), "{e}");
        // NaN, found when the batch is read.
        let bad = Tensor::new(&[[1f32, f32::NAN, 3.0]], &Device::Cpu).unwrap();
        save(&rows(0, 1, &[3]), &p.join("a.npy"));
        save(&bad, &p.join("b.npy"));
        let d = open(&m, p).unwrap();
        d.batch(0).unwrap();
        let e = d.batch(1).unwrap_err().to_string();
        assert!(e.contains("b.npy") && e.contains("row 0 holds NaN"), "{e}");
        let inf = Tensor::new(&[[1f32, 2.0, f32::INFINITY]], &Device::Cpu).unwrap();
        save(&inf, &p.join("b.npy"));
        let e = open(&m, p).unwrap().batch(1).unwrap_err().to_string();
        assert!(e.contains("b.npy") && e.contains("inf"), "{e}");
        std::fs::remove_file(p.join("b.npy")).unwrap();
        // Labels: length, dtype, shape, sign.
        let cases: [(Tensor, &str); 4] = [
            (
                Tensor::new(&[0i64, 1], &Device::Cpu).unwrap(),
                "2 labels for 1 samples",
            ),
            (
                Tensor::new(&[0f32], &Device::Cpu).unwrap(),
                "labels must be integers, not float32",
            ),
            (
                Tensor::new(&[[0i64, 1]], &Device::Cpu).unwrap(),
                "shape (N,) or (N, 1)",
            ),
            (Tensor::new(&[-1i64], &Device::Cpu).unwrap(), "negative"),
        ];
        for (t, want) in cases {
            save(&t, &p.join("labels.npy"));
            let e = error(open(&m, p));
            assert!(e.contains("labels.npy") && e.contains(want), "{e}");
        }
        // Several label candidates: ambiguous.
        save(
            &Tensor::new(&[0i64], &Device::Cpu).unwrap(),
            &p.join("labels.npy"),
        );
        save(
            &Tensor::new(&[0i64], &Device::Cpu).unwrap(),
            &p.join("y_a.npy"),
        );
        let e = error(open(&m, p));
        assert!(
            e.contains("several label files") && e.contains("--labels"),
            "{e}"
        );
        // An explicit labels file resolves it, and is not read as a sample.
        let opts = DatasetOptions {
            labels: LabelSource::File(p.join("y_a.npy")),
            batch_size: None,
        };
        assert_eq!(Dataset::open(&m, p, &opts).unwrap().len(), 1);
        // A batch other than the model's static one.
        let opts = DatasetOptions {
            labels: LabelSource::Without,
            batch_size: Some(4),
        };
        let e = error(Dataset::open(&m, p, &opts));
        assert!(e.contains("static batch of 1"), "{e}");
        // A missing path.
        let e = error(open(&m, &p.join("nope")));
        assert!(e.contains("nope") && e.contains("no such file"), "{e}");
    }

    #[test]
    fn integer_inputs_keep_their_type() {
        let mut b = ModelBuilder::new(17);
        let x = b.input_typed("ids", &[1, 2], DataType::Int64 as i32);
        let y = b.node("Identity", &[&x], 1, vec![]).remove(0);
        b.set_shape(&y, &[1, 2]);
        b.set_dtype(&y, DataType::Int64 as i32);
        b.output(&y);
        let m = b.build_model();
        let dir = tempfile::tempdir().unwrap();
        save(
            &Tensor::new(&[[4i64, 5]], &Device::Cpu).unwrap(),
            &dir.path().join("0.npy"),
        );
        let d = open(&m, dir.path()).unwrap();
        let t = &d.batch(0).unwrap().inputs[0].1;
        assert_eq!(t.dtype(), DType::I64);
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![4, 5]
        );
        save(
            &Tensor::new(&[[4f32, 5.]], &Device::Cpu).unwrap(),
            &dir.path().join("0.npy"),
        );
        let e = error(open(&m, dir.path()));
        assert!(
            e.contains("0.npy") && e.contains("does not match input 'ids' (int64)"),
            "{e}"
        );
    }
}
