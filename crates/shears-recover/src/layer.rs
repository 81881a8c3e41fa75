//! The layers reconstruction refits (Conv, Gemm, MatMul with a constant weight): their
//! geometry, and the rows of the least-squares systems (im2col for convolutions).

use faer::Mat;
use shears_onnx::{Model, Node, ValueId};

/// How a layer turns its input into rows of features.
#[derive(Clone, Debug)]
pub(crate) enum Geometry {
    /// A 1-D or 2-D convolution (1-D as height 1).
    Conv {
        group: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        /// Padding before the first element (top, left); the end padding follows from the
        /// output size.
        pads: [usize; 2],
        dilations: [usize; 2],
    },
    /// `alpha · A' B' + beta · C` with B constant.
    Gemm {
        trans_a: bool,
        alpha: f32,
        beta: f32,
    },
    /// `A · W` with W a constant matrix.
    MatMul,
}

/// A refittable layer of the pruned model.
///
/// Invariants: `weight` is a float32 initializer; `bias`, when set, is a float32 initializer
/// with one value per output channel; groups partition the input features and the output
/// channels alike (one group for Gemm and MatMul).
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub geom: Geometry,
    pub input: ValueId,
    pub weight: ValueId,
    pub weight_dims: Vec<usize>,
    pub bias: Option<ValueId>,
    /// Gemm's B is stored as (N, K).
    pub trans_b: bool,
    pub groups: usize,
    /// Input features per group (without the bias column).
    pub features: usize,
    /// Output channels per group.
    pub outputs: usize,
    /// The output's channel axis.
    pub out_axis: usize,
}

fn f32_initializer(model: &Model, v: ValueId) -> Option<Vec<usize>> {
    let t = model.initializer(v)?;
    if t.data_type != shears_onnx::proto::tensor_proto::DataType::Float as i32 {
        return None;
    }
    shears_onnx::tensor::dims(t).ok()
}

/// The node as a refittable layer, or why it cannot be refitted (`Err(reason)`), or `None`
/// when it is not a layer kind reconstruction handles at all.
pub(crate) fn describe(model: &Model, node: &Node) -> Option<Result<Layer, String>> {
    match node.op_type.as_str() {
        "Conv" => Some(conv(model, node)),
        "Gemm" => Some(gemm(model, node)),
        "MatMul" => matmul(model, node),
        "ConvTranspose" => Some(Err(
            "ConvTranspose refit is not implemented (its rows scatter rather than gather)".into(),
        )),
        _ => None,
    }
}

fn weight_of(model: &Model, node: &Node, slot: usize) -> Result<(ValueId, Vec<usize>), String> {
    let v = node.input(slot).ok_or("no weight input")?;
    let dims = f32_initializer(model, v).ok_or("the weight is not a float32 initializer")?;
    Ok((v, dims))
}

fn bias_of(model: &Model, node: &Node, slot: usize, n: usize) -> Result<Option<ValueId>, String> {
    let Some(v) = node.input(slot) else {
        return Ok(None);
    };
    match f32_initializer(model, v) {
        Some(d)
            if d.iter().product::<usize>() == n && d.iter().filter(|&&x| x > 1).count() <= 1 =>
        {
            Ok(Some(v))
        }
        _ => Err("the bias is not a float32 initializer with one value per output".into()),
    }
}

fn conv(model: &Model, node: &Node) -> Result<Layer, String> {
    let input = node.input(0).ok_or("no data input")?;
    let (weight, wd) = weight_of(model, node, 1)?;
    let spatial = wd.len().checked_sub(2).ok_or("weight rank below 3")?;
    if !(1..=2).contains(&spatial) {
        return Err(format!(
            "{spatial}-D convolutions are not refitted (1-D and 2-D are)"
        ));
    }
    let group = node.attr_i("group", 1).max(1) as usize;
    if wd[0] % group != 0 {
        return Err("output channels are not a multiple of group".into());
    }
    let ints = |name: &str, default: usize| -> Vec<usize> {
        node.attr_ints(name)
            .map(|v| v.iter().map(|&x| x.max(0) as usize).collect())
            .unwrap_or_else(|| vec![default; spatial])
    };
    let two = |v: &[usize], default: usize| -> [usize; 2] {
        if spatial == 1 {
            [default, v[0]]
        } else {
            [v[0], v[1]]
        }
    };
    let kernel = two(&wd[2..], 1);
    let strides = two(&ints("strides", 1), 1);
    let dilations = two(&ints("dilations", 1), 1);
    let auto_pad = node.attr_s("auto_pad").unwrap_or("NOTSET");
    let pads = match auto_pad {
        "NOTSET" | "" => {
            let p = node
                .attr_ints("pads")
                .map(|v| v.iter().map(|&x| x.max(0) as usize).collect::<Vec<_>>())
                .unwrap_or_else(|| vec![0; 2 * spatial]);
            two(&p[..spatial], 0)
        }
        "VALID" => [0, 0],
        // SAME pads depend on the input size: resolved per sample in `conv_rows`.
        "SAME_UPPER" => [usize::MAX, 0],
        "SAME_LOWER" => [usize::MAX, 1],
        other => return Err(format!("auto_pad {other} is not supported")),
    };
    let bias = bias_of(model, node, 2, wd[0])?;
    Ok(Layer {
        geom: Geometry::Conv {
            group,
            kernel,
            strides,
            pads,
            dilations,
        },
        input,
        weight,
        features: wd[1] * kernel[0] * kernel[1],
        outputs: wd[0] / group,
        groups: group,
        weight_dims: wd,
        bias,
        trans_b: false,
        out_axis: 1,
    })
}

fn gemm(model: &Model, node: &Node) -> Result<Layer, String> {
    let input = node.input(0).ok_or("no data input")?;
    let (weight, wd) = weight_of(model, node, 1)?;
    if wd.len() != 2 {
        return Err("B is not a matrix".into());
    }
    let trans_b = node.attr_i("transB", 0) != 0;
    let (k, n) = if trans_b {
        (wd[1], wd[0])
    } else {
        (wd[0], wd[1])
    };
    let alpha = node.attr_f("alpha", 1.0);
    let beta = node.attr_f("beta", 1.0);
    if alpha == 0.0 || !alpha.is_finite() {
        return Err("alpha is zero".into());
    }
    let bias = bias_of(model, node, 2, n)?;
    if bias.is_some() && (beta == 0.0 || !beta.is_finite()) {
        return Err("beta is zero with a bias".into());
    }
    Ok(Layer {
        geom: Geometry::Gemm {
            trans_a: node.attr_i("transA", 0) != 0,
            alpha,
            beta,
        },
        input,
        weight,
        weight_dims: wd,
        bias,
        trans_b,
        groups: 1,
        features: k,
        outputs: n,
        out_axis: 1,
    })
}

fn matmul(model: &Model, node: &Node) -> Option<Result<Layer, String>> {
    let input = node.input(0)?;
    let w = node.input(1)?;
    // A MatMul of two activations (attention) has no weight to refit.
    model.constant(w)?;
    Some((|| {
        let (weight, wd) = weight_of(model, node, 1)?;
        if wd.len() != 2 {
            return Err("the weight is not a matrix".into());
        }
        Ok(Layer {
            geom: Geometry::MatMul,
            input,
            weight,
            features: wd[0],
            outputs: wd[1],
            weight_dims: wd,
            bias: None,
            trans_b: false,
            groups: 1,
            out_axis: usize::MAX,
        })
    })())
}

impl Layer {
    /// The output's channel axis for an output of rank `rank`.
    pub fn axis(&self, rank: usize) -> usize {
        if self.out_axis == usize::MAX {
            rank - 1
        } else {
            self.out_axis
        }
    }

    /// Columns of a group's system: features, plus one for the bias.
    pub fn width(&self) -> usize {
        self.features + usize::from(self.bias.is_some())
    }

    /// Per group, the input rows (with a trailing 1 when there is a bias) for input `x`
    /// (`xd` its dims) and output dims `yd`.
    pub fn rows(&self, x: &[f32], xd: &[usize], yd: &[usize]) -> Result<Vec<Mat<f64>>, String> {
        let ones = self.bias.is_some();
        match &self.geom {
            Geometry::Conv {
                group,
                kernel,
                strides,
                pads,
                dilations,
            } => {
                let (n, c, h, w) = match xd.len() {
                    3 => (xd[0], xd[1], 1, xd[2]),
                    4 => (xd[0], xd[1], xd[2], xd[3]),
                    _ => return Err(format!("input rank {} for a convolution", xd.len())),
                };
                let (oh, ow) = match yd.len() {
                    3 => (1, yd[2]),
                    4 => (yd[2], yd[3]),
                    _ => return Err(format!("output rank {} for a convolution", yd.len())),
                };
                let cin_g = self.weight_dims[1];
                if c != cin_g * group {
                    return Err(format!(
                        "input has {c} channels, the weight expects {}",
                        cin_g * group
                    ));
                }
                let pads = if pads[0] == usize::MAX {
                    same_pads(
                        [h, w],
                        [oh, ow],
                        *kernel,
                        *strides,
                        *dilations,
                        pads[1] == 1,
                    )
                } else {
                    *pads
                };
                let rows = n * oh * ow;
                let (kh, kw) = (kernel[0], kernel[1]);
                let mut out = Vec::with_capacity(*group);
                for g in 0..*group {
                    let mut m = Mat::<f64>::zeros(rows, self.width());
                    for ci in 0..cin_g {
                        let ch = g * cin_g + ci;
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let col = (ci * kh + ki) * kw + kj;
                                let mut dst = m.col_mut(col);
                                for b in 0..n {
                                    let plane = &x[(b * c + ch) * h * w..][..h * w];
                                    for y in 0..oh {
                                        let iy = (y * strides[0] + ki * dilations[0])
                                            .wrapping_sub(pads[0]);
                                        if iy >= h {
                                            continue;
                                        }
                                        let row0 = (b * oh + y) * ow;
                                        for xx in 0..ow {
                                            let ix = (xx * strides[1] + kj * dilations[1])
                                                .wrapping_sub(pads[1]);
                                            if ix < w {
                                                dst[row0 + xx] = plane[iy * w + ix] as f64;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if ones {
                        m.col_mut(self.features).fill(1.0);
                    }
                    out.push(m);
                }
                Ok(out)
            }
            Geometry::Gemm { trans_a, .. } => {
                if xd.len() != 2 {
                    return Err("Gemm input is not a matrix".into());
                }
                let (rows, k) = if *trans_a {
                    (xd[1], xd[0])
                } else {
                    (xd[0], xd[1])
                };
                if k != self.features {
                    return Err(format!(
                        "input has {k} features, B expects {}",
                        self.features
                    ));
                }
                let mut m = Mat::<f64>::zeros(rows, self.width());
                for r in 0..rows {
                    for f in 0..k {
                        let v = if *trans_a {
                            x[f * rows + r]
                        } else {
                            x[r * k + f]
                        };
                        m[(r, f)] = v as f64;
                    }
                    if ones {
                        m[(r, k)] = 1.0;
                    }
                }
                Ok(vec![m])
            }
            Geometry::MatMul => {
                let k = *xd.last().ok_or("scalar input")?;
                if k != self.features {
                    return Err(format!(
                        "input has {k} features, W expects {}",
                        self.features
                    ));
                }
                let rows = x.len() / k.max(1);
                let mut m = Mat::<f64>::zeros(rows, self.width());
                for r in 0..rows {
                    for f in 0..k {
                        m[(r, f)] = x[r * k + f] as f64;
                    }
                }
                Ok(vec![m])
            }
        }
    }

    /// Per group, the target rows: output `y` (dims `yd`, channels on [`Layer::axis`]) as
    /// (rows × outputs) in the row order of [`Layer::rows`].
    pub fn targets(&self, y: &[f32], yd: &[usize]) -> Result<Vec<Mat<f64>>, String> {
        let axis = self.axis(yd.len());
        let m_total = yd[axis];
        if m_total != self.groups * self.outputs {
            return Err(format!(
                "output has {m_total} channels, the weight makes {}",
                self.groups * self.outputs
            ));
        }
        let outer: usize = yd[..axis].iter().product();
        let inner: usize = yd[axis + 1..].iter().product();
        let rows = outer * inner;
        let mut out = Vec::with_capacity(self.groups);
        for g in 0..self.groups {
            let mut m = Mat::<f64>::zeros(rows, self.outputs);
            for j in 0..self.outputs {
                let ch = g * self.outputs + j;
                let mut dst = m.col_mut(j);
                for o in 0..outer {
                    let src = &y[(o * m_total + ch) * inner..][..inner];
                    for (i, &v) in src.iter().enumerate() {
                        dst[o * inner + i] = v as f64;
                    }
                }
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Where coefficient `f` of output channel `oc` (over all groups) sits in the stored
    /// weight.
    pub fn weight_at(&self, oc: usize, f: usize) -> usize {
        match self.geom {
            Geometry::Conv { .. } => oc * self.features + f,
            Geometry::Gemm { .. } if self.trans_b => oc * self.features + f,
            _ => f * self.groups * self.outputs + oc,
        }
    }

    /// The weight (in its stored layout) and bias from each group's solution Θ (width ×
    /// outputs: Θᵀ's rows are output channels, the last row the bias when there is one).
    pub fn unpack(&self, thetas: &[Mat<f64>]) -> (Vec<f32>, Option<Vec<f32>>) {
        let (scale_w, scale_b) = match self.geom {
            Geometry::Gemm { alpha, beta, .. } => (1.0 / alpha as f64, 1.0 / beta as f64),
            _ => (1.0, 1.0),
        };
        let total_out = self.groups * self.outputs;
        let mut w = vec![0f32; self.weight_dims.iter().product()];
        let mut b = self.bias.map(|_| vec![0f32; total_out]);
        for (g, th) in thetas.iter().enumerate() {
            for j in 0..self.outputs {
                let oc = g * self.outputs + j;
                for f in 0..self.features {
                    w[self.weight_at(oc, f)] = (th[(f, j)] * scale_w) as f32;
                }
                if let Some(b) = b.as_mut() {
                    b[oc] = (th[(self.features, j)] * scale_b) as f32;
                }
            }
        }
        (w, b)
    }
}

/// Begin pads for `auto_pad = SAME_*` (SAME_UPPER puts the extra one at the end).
fn same_pads(
    input: [usize; 2],
    output: [usize; 2],
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    lower: bool,
) -> [usize; 2] {
    let mut p = [0; 2];
    for i in 0..2 {
        let need = (output[i].saturating_sub(1)) * strides[i] + (kernel[i] - 1) * dilations[i] + 1;
        let total = need.saturating_sub(input[i]);
        p[i] = if lower { total - total / 2 } else { total / 2 };
    }
    p
}
