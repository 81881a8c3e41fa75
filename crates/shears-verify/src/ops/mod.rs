//! Operator implementations, one file per op family, reached through a table from op type to
//! function ([`table`]) so that adding an op never touches a central `match`.
//!
//! Every op takes the node (for attributes), the model's default opset (for version-dependent
//! semantics) and its inputs, and returns its outputs in slot order. Tensors are CPU candle
//! tensors: `F32` for every floating type, `I64` for every integer type, `U8` for booleans.

use std::collections::HashMap;
use std::sync::OnceLock;

use candle_core::{CpuStorage, DType, Device, Storage, Tensor};
use shears_onnx::proto::AttributeProto;
use shears_onnx::Node;

pub(crate) mod activation;
pub(crate) mod contrib;
pub(crate) mod contrib_rotary;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod quant;
pub(crate) mod reduce;
pub(crate) mod resize;
pub(crate) mod shape;

/// Why an op failed; the evaluator adds the node's name and op type.
#[derive(Debug)]
pub(crate) struct OpError(pub String);

impl From<candle_core::Error> for OpError {
    fn from(e: candle_core::Error) -> Self {
        OpError(candle_message(e))
    }
}

/// A candle error's message without the backtrace candle attaches when `RUST_BACKTRACE` is set
/// (an error names the node; a stack of candle frames would bury that).
pub(crate) fn candle_message(e: candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(*inner),
        other => other.to_string(),
    }
}

pub(crate) type OpResult<T> = std::result::Result<T, OpError>;

/// Returns early with an [`OpError`] built like `format!`.
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::ops::OpError(format!($($t)*))) };
}
pub(crate) use bail;

/// What an op sees of the node it evaluates.
pub(crate) struct Ctx<'a> {
    pub node: &'a Node,
    /// Version of the model's default (`ai.onnx`) opset.
    pub opset: i64,
    /// The ONNX element type of each input and output slot, 0 when unknown (the evaluator
    /// computes every integer type as i64; ops that saturate to their output type read it
    /// here).
    pub in_dtypes: &'a [i32],
    pub out_dtypes: &'a [i32],
}

impl Ctx<'_> {
    pub fn attr_i(&self, name: &str, default: i64) -> i64 {
        self.node.attr_i(name, default)
    }
    pub fn attr_f(&self, name: &str, default: f32) -> f32 {
        self.node.attr_f(name, default)
    }
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        self.node.attr_ints(name)
    }
    pub fn attr_s(&self, name: &str) -> Option<&str> {
        self.node.attr_s(name)
    }
    pub fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attr(name)
    }
    /// Number of output slots the node declares (present or omitted).
    pub fn num_outputs(&self) -> usize {
        self.node.outputs.len()
    }
}

/// An op: the node's context and its inputs by slot (`None` where omitted) to its outputs.
pub(crate) type OpFn = fn(&Ctx, &[Option<Tensor>]) -> OpResult<Vec<Tensor>>;

/// The op table of the default ONNX domain.
pub(crate) fn table() -> &'static HashMap<&'static str, OpFn> {
    static TABLE: OnceLock<HashMap<&'static str, OpFn>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: HashMap<&'static str, OpFn> = HashMap::new();
        activation::register(&mut t);
        contrib::register_default(&mut t);
        conv::register(&mut t);
        elementwise::register(&mut t);
        matmul::register(&mut t);
        norm::register(&mut t);
        pool::register(&mut t);
        quant::register(&mut t);
        reduce::register(&mut t);
        resize::register(&mut t);
        shape::register(&mut t);
        t
    })
}

/// The op table of onnxruntime's contrib domain (`com.microsoft`).
fn ms_table() -> &'static HashMap<&'static str, OpFn> {
    static TABLE: OnceLock<HashMap<&'static str, OpFn>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t: HashMap<&'static str, OpFn> = HashMap::new();
        contrib::register_ms(&mut t);
        t
    })
}

/// The op table of `domain` (either spelling of the default domain), if the evaluator knows
/// the domain.
pub(crate) fn domain_table(domain: &str) -> Option<&'static HashMap<&'static str, OpFn>> {
    match shears_onnx::ops::canonical_domain(domain) {
        "" => Some(table()),
        shears_onnx::ops::MS_DOMAIN => Some(ms_table()),
        _ => None,
    }
}

/// The op `op_type` of `domain`: found in its own domain's table only.
pub(crate) fn lookup(domain: &str, op_type: &str) -> Option<OpFn> {
    domain_table(domain)?.get(op_type).copied()
}

pub(crate) const CPU: Device = Device::Cpu;

/// Input `slot`, which the op requires.
pub(crate) fn input(inputs: &[Option<Tensor>], slot: usize) -> OpResult<&Tensor> {
    match inputs.get(slot) {
        Some(Some(t)) => Ok(t),
        _ => bail!("required input {slot} is missing"),
    }
}

/// Input `slot` if present and not an empty tensor (exporters write `""` or an empty
/// constant for "not given").
pub(crate) fn opt_input(inputs: &[Option<Tensor>], slot: usize) -> Option<&Tensor> {
    inputs
        .get(slot)
        .and_then(|t| t.as_ref())
        .filter(|t| t.elem_count() > 0 || t.rank() == 0)
}

/// An integer tensor's values, flattened.
pub(crate) fn ints(t: &Tensor) -> OpResult<Vec<i64>> {
    match t.dtype() {
        DType::I64 => Ok(t.flatten_all()?.to_vec1::<i64>()?),
        DType::U8 | DType::U32 | DType::I32 | DType::I16 => {
            Ok(t.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?)
        }
        other => bail!("expected an integer tensor, found {other:?}"),
    }
}

/// A tensor's values as f32, flattened (integers are converted).
pub(crate) fn floats(t: &Tensor) -> OpResult<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}

/// The single value of a one-element tensor, as f64.
pub(crate) fn scalar(t: &Tensor) -> OpResult<f64> {
    if t.elem_count() != 1 {
        bail!("expected a single value, found shape {:?}", t.dims());
    }
    Ok(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?[0])
}

/// `axis` (possibly negative) as an index into `rank` dimensions.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// Runs `f` on the contiguous f32 data of `t`, without copying when `t` is contiguous.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> OpResult<R> {
    if t.dtype() != DType::F32 {
        bail!("expected a float tensor, found {:?}", t.dtype());
    }
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("tensor is not contiguous");
    };
    match &*storage {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(f(&v[start..end])),
        _ => bail!("expected a CPU f32 tensor"),
    }
}

/// A CPU f32 tensor owning `data`.
pub(crate) fn tensor_f32(data: Vec<f32>, dims: &[usize]) -> OpResult<Tensor> {
    Ok(Tensor::from_vec(data, dims, &CPU)?)
}

/// A CPU i64 tensor owning `data`.
pub(crate) fn tensor_i64(data: Vec<i64>, dims: &[usize]) -> OpResult<Tensor> {
    Ok(Tensor::from_vec(data, dims, &CPU)?)
}

/// Applies `f` to every element of a float tensor in one pass.
pub(crate) fn map_f32(t: &Tensor, f: impl Fn(f32) -> f32 + Sync) -> OpResult<Tensor> {
    let out = with_f32(t, |x| x.iter().map(|&v| f(v)).collect::<Vec<f32>>())?;
    tensor_f32(out, t.dims())
}

/// `(prod(dims[..axis]), dims[axis], prod(dims[axis + 1..]))`: the element at `(o, k, i)` of
/// a contiguous tensor is at `(o * n + k) * inner + i`.
pub(crate) fn axis_split(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    )
}

/// The numpy broadcast of several shapes (the rule shape inference uses).
pub(crate) fn broadcast_shapes(shapes: &[&[usize]]) -> OpResult<Vec<usize>> {
    match shears_onnx::shape::broadcast_dims(shapes) {
        Some(out) => Ok(out),
        None => bail!("shapes {:?} do not broadcast together", shapes),
    }
}

/// Converts `shape` values read from a tensor into dims, rejecting negative ones.
/// The most elements one tensor may have (4 GiB of f32): a larger one is refused with an error
/// rather than allocated (and possibly aborted on), whatever shape a model declares or computes.
pub const MAX_ELEMENTS: u64 = 1 << 30;

/// The element count of `dims`, or an error naming `what` when it exceeds [`MAX_ELEMENTS`]
/// (or `u64`).
pub(crate) fn check_elements(dims: &[usize], what: &str) -> Result<u64, String> {
    dims.iter()
        .try_fold(1u64, |p, &d| p.checked_mul(d as u64))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| {
            format!("{what} {dims:?} has more than {MAX_ELEMENTS} elements, the evaluator's limit")
        })
}

/// [`to_dims`] of a tensor shape the op will allocate, refused past [`MAX_ELEMENTS`].
pub(crate) fn alloc_dims(v: &[i64], what: &str) -> OpResult<Vec<usize>> {
    let dims = to_dims(v, what)?;
    check_elements(&dims, what).map_err(OpError)?;
    Ok(dims)
}

pub(crate) fn to_dims(v: &[i64], what: &str) -> OpResult<Vec<usize>> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| OpError(format!("{what}: negative dim {d}"))))
        .collect()
}

/// Spatial parameters shared by Conv, ConvTranspose and the pools, resolved for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    /// Padding before each spatial axis.
    pub pad_begin: Vec<usize>,
    /// Padding after each spatial axis.
    pub pad_end: Vec<usize>,
}

impl Window {
    /// Reads `strides`, `dilations`, `pads` and `auto_pad` for a window of `kernel` sliding over
    /// `spatial` input dims (the output-size rule of Conv and the pools; `ceil_mode` is not
    /// applied here).
    pub fn read(ctx: &Ctx, kernel: Vec<usize>, spatial: &[usize]) -> OpResult<Window> {
        let n = kernel.len();
        if kernel.contains(&0) || spatial.len() != n {
            bail!("kernel {kernel:?} does not fit spatial dims {spatial:?}");
        }
        let list = |name: &str, default: usize| -> OpResult<Vec<usize>> {
            match ctx.attr_ints(name) {
                Some(v) if !v.is_empty() => {
                    if v.len() != n {
                        bail!(
                            "attribute {name} has {} values for {n} spatial axes",
                            v.len()
                        );
                    }
                    to_dims(v, name)
                }
                _ => Ok(vec![default; n]),
            }
        };
        let strides = list("strides", 1)?;
        let dilations = list("dilations", 1)?;
        if strides.contains(&0) || dilations.contains(&0) {
            bail!("strides and dilations must be positive");
        }
        let auto_pad = ctx.attr_s("auto_pad").unwrap_or("NOTSET");
        let (pad_begin, pad_end) = match auto_pad {
            "NOTSET" | "" => match ctx.attr_ints("pads") {
                Some(p) if !p.is_empty() => {
                    if p.len() != 2 * n {
                        bail!("attribute pads has {} values for {n} spatial axes", p.len());
                    }
                    (to_dims(&p[..n], "pads")?, to_dims(&p[n..], "pads")?)
                }
                _ => (vec![0; n], vec![0; n]),
            },
            "VALID" => (vec![0; n], vec![0; n]),
            "SAME_UPPER" | "SAME_LOWER" => {
                if spatial.contains(&0) {
                    bail!("auto_pad {auto_pad} on an empty spatial axis");
                }
                let mut b = vec![0; n];
                let mut e = vec![0; n];
                for i in 0..n {
                    let out = spatial[i].div_ceil(strides[i]);
                    let eff = (kernel[i] - 1) * dilations[i] + 1;
                    let total = ((out - 1) * strides[i] + eff).saturating_sub(spatial[i]);
                    let small = total / 2;
                    if auto_pad == "SAME_UPPER" {
                        b[i] = small;
                        e[i] = total - small;
                    } else {
                        b[i] = total - small;
                        e[i] = small;
                    }
                }
                (b, e)
            }
            other => bail!("unknown auto_pad '{other}'"),
        };
        Ok(Window {
            kernel,
            strides,
            dilations,
            pad_begin,
            pad_end,
        })
    }

    /// Extent of the dilated kernel along axis `i`.
    pub fn effective(&self, i: usize) -> usize {
        (self.kernel[i] - 1) * self.dilations[i] + 1
    }

    /// Output size along axis `i` for input size `input` (floor or, with `ceil_mode`, ceil,
    /// dropping a last window that would start entirely in the end padding).
    pub fn out_size(&self, i: usize, input: usize, ceil_mode: bool) -> OpResult<usize> {
        let padded = input + self.pad_begin[i] + self.pad_end[i];
        let eff = self.effective(i);
        if padded < eff {
            bail!(
                "kernel extent {eff} is larger than the padded input {padded} on spatial axis {i}"
            );
        }
        let s = self.strides[i];
        let span = padded - eff;
        let mut out = if ceil_mode {
            span.div_ceil(s)
        } else {
            span / s
        } + 1;
        if ceil_mode && (out - 1) * s >= input + self.pad_begin[i] {
            out -= 1;
        }
        Ok(out)
    }
}

/// The ONNX element type `dt` as the dtype the evaluator computes in.
pub(crate) fn compute_dtype(dt: i32) -> OpResult<DType> {
    use shears_onnx::proto::tensor_proto::DataType as D;
    match D::try_from(dt) {
        Ok(D::Float | D::Double | D::Float16 | D::Bfloat16) => Ok(DType::F32),
        Ok(
            D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::Uint8 | D::Uint16 | D::Uint32 | D::Uint64,
        ) => Ok(DType::I64),
        Ok(D::Bool) => Ok(DType::U8),
        _ => bail!(
            "element type {} is not supported",
            shears_onnx::tensor::dtype_name(dt)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(
            broadcast_shapes(&[&[2, 1, 4], &[3, 1], &[]]).unwrap(),
            vec![2, 3, 4]
        );
        assert!(broadcast_shapes(&[&[2, 3], &[4]]).is_err());
    }
}
