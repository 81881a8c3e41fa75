//! Which channels of which activations are constant for every input: seeded where a layer's
//! weights for a channel are zero (Conv, Gemm, MatMul rows; BatchNorm scales), then carried
//! through the ops that map a per-channel constant to a per-channel constant.

use std::collections::HashMap;

use shears_onnx::{Model, Node, NodeId, ValueId};

/// A channel's constant value.
///
/// Invariant: `approximate` is true when some weight treated as zero was not exactly zero
/// (`--tolerance`), so the activation only approximately equals `value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Konst {
    pub value: f64,
    pub approximate: bool,
}

impl Konst {
    fn map(self, f: impl Fn(f64) -> f64) -> Konst {
        Konst {
            value: f(self.value),
            approximate: self.approximate,
        }
    }
}

/// The per-channel constants of one activation along one axis.
///
/// Invariant: `consts.len()` is the value's size on `axis`; `consts[i] = Some(k)` means every
/// element with index `i` on `axis` equals `k.value` for every model input.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelConsts {
    pub axis: usize,
    pub consts: Vec<Option<Konst>>,
}

/// Per activation, its constant channels (values with none are absent). `tolerance`: weights
/// with `|w| < tolerance` count as zero.
pub fn channel_constants(model: &Model, tolerance: f32) -> HashMap<ValueId, ChannelConsts> {
    let mut out: HashMap<ValueId, ChannelConsts> = HashMap::new();
    for id in model.graph.node_ids() {
        let cx = Cx {
            model,
            node: model.graph.node(id),
            tol: tolerance,
            states: &out,
        };
        let Some(state) = cx.eval(id) else {
            continue;
        };
        let Some(v) = cx.node.output(0) else {
            continue;
        };
        let size = model
            .graph
            .value(v)
            .shape
            .as_ref()
            .and_then(|s| s.get(state.axis).copied());
        // A state whose length disagrees with the inferred shape is dropped, never trusted.
        if size == Some(state.consts.len()) && state.consts.iter().any(Option::is_some) {
            out.insert(v, state);
        }
    }
    out
}

struct Cx<'a> {
    model: &'a Model,
    node: &'a Node,
    tol: f32,
    states: &'a HashMap<ValueId, ChannelConsts>,
}

impl Cx<'_> {
    fn eval(&self, _id: NodeId) -> Option<ChannelConsts> {
        let n = self.node;
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return None;
        }
        match n.op_type.as_str() {
            "Conv" => self.conv(),
            "Gemm" => self.gemm(),
            "MatMul" => self.matmul(),
            "BatchNormalization" => self.batch_norm(),
            "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish"
            | "Identity" | "Dropout" | "Clip" | "Elu" | "Neg" | "Abs" => self.unary(),
            "Add" | "Sub" | "Mul" | "Div" => self.binary(),
            "Cast" => self.cast(),
            "MaxPool" | "GlobalMaxPool" | "GlobalAveragePool" => self.pool(false),
            "AveragePool" => self.pool(n.attr_i("count_include_pad", 0) != 0),
            "Flatten" => self.flatten(),
            "Concat" => self.concat(),
            _ => None,
        }
    }

    fn input_state(&self, slot: usize) -> Option<&ChannelConsts> {
        self.states.get(&self.node.input(slot)?)
    }

    fn shape(&self, v: ValueId) -> Option<&[usize]> {
        self.model.graph.value(v).shape.as_deref()
    }

    /// A constant input's values as f64, if it is one.
    fn constant(&self, slot: usize) -> Option<Vec<f64>> {
        let v = self.node.input(slot)?;
        let t = self.model.constant(v)?;
        let vals = self.model.f32s(&t).ok()?;
        Some(vals.into_iter().map(f64::from).collect())
    }

    fn is_zero(&self, w: f64) -> bool {
        w == 0.0 || w.abs() < f64::from(self.tol)
    }

    /// Whether the node pads its spatial input (a padded border sees 0, not the constant).
    fn pads(&self) -> bool {
        let auto = self.node.attr_s("auto_pad").unwrap_or("NOTSET");
        if auto != "NOTSET" && auto != "VALID" {
            return true;
        }
        self.node
            .attr_ints("pads")
            .is_some_and(|p| p.iter().any(|&x| x != 0))
    }

    fn conv(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let wv = n.input(1)?;
        let shape = self.shape(wv)?.to_vec();
        let w = self.constant(1)?;
        let (o_count, ipg) = (*shape.first()?, *shape.get(1)?);
        let group = usize::try_from(n.attr_i("group", 1)).ok()?.max(1);
        if o_count == 0 || o_count % group != 0 || w.len() % o_count != 0 {
            return None;
        }
        let row = w.len() / o_count;
        let ksize = row / ipg.max(1);
        let opg = o_count / group;
        let bias = match n.input(2) {
            Some(_) => self.constant(2)?,
            None => vec![0.0; o_count],
        };
        if bias.len() != o_count {
            return None;
        }
        let input = self.input_state(0).filter(|s| s.axis == 1);
        let padded = self.pads();
        let consts = (0..o_count)
            .map(|o| {
                let r = &w[o * row..(o + 1) * row];
                if r.iter().all(|&x| self.is_zero(x)) {
                    let approximate = r.iter().any(|&x| x != 0.0);
                    return Some(Konst {
                        value: bias[o],
                        approximate,
                    });
                }
                // Every input channel of this output's group constant: a constant output when
                // no padded border can see a non-zero constant.
                let s = input?;
                let g = o / opg;
                let ins: Vec<Konst> = (0..ipg)
                    .map(|j| s.consts.get(g * ipg + j).copied().flatten())
                    .collect::<Option<_>>()?;
                if padded && ins.iter().any(|k| k.value != 0.0) {
                    return None;
                }
                let mut value = bias[o];
                for (j, k) in ins.iter().enumerate() {
                    let sum: f64 = r[j * ksize..(j + 1) * ksize].iter().sum();
                    value += k.value * sum;
                }
                Some(Konst {
                    value,
                    approximate: ins.iter().any(|k| k.approximate),
                })
            })
            .collect();
        Some(ChannelConsts { axis: 1, consts })
    }

    fn gemm(&self) -> Option<ChannelConsts> {
        let n = self.node;
        if n.attr_i("transA", 0) != 0 {
            return None;
        }
        let trans_b = n.attr_i("transB", 0) != 0;
        let b_shape = self.shape(n.input(1)?)?.to_vec();
        let [r0, r1] = b_shape[..] else {
            return None;
        };
        let (k_count, n_count) = if trans_b { (r1, r0) } else { (r0, r1) };
        let b = self.constant(1)?;
        if b.len() != k_count * n_count {
            return None;
        }
        let (alpha, beta) = (
            f64::from(n.attr_f("alpha", 1.0)),
            f64::from(n.attr_f("beta", 1.0)),
        );
        let c = match n.input(2) {
            Some(cv) => {
                let cs = self.shape(cv)?;
                // Only a bias constant along the rows: [], [1], [N] or [1, N].
                if cs.len() > 2 || (cs.len() == 2 && cs[0] != 1) {
                    return None;
                }
                let c = self.constant(2)?;
                match c.len() {
                    1 => vec![c[0]; n_count],
                    l if l == n_count => c,
                    _ => return None,
                }
            }
            None => vec![0.0; n_count],
        };
        let at = |k: usize, j: usize| {
            if trans_b {
                b[j * k_count + k]
            } else {
                b[k * n_count + j]
            }
        };
        let input = self.input_state(0).filter(|s| s.axis == 1);
        let consts = (0..n_count)
            .map(|j| {
                let zero = (0..k_count).all(|k| self.is_zero(at(k, j)));
                if zero {
                    let approximate = (0..k_count).any(|k| at(k, j) != 0.0);
                    return Some(Konst {
                        value: beta * c[j],
                        approximate,
                    });
                }
                let s = input?;
                let ins: Vec<Konst> = s.consts.iter().copied().collect::<Option<_>>()?;
                if ins.len() != k_count {
                    return None;
                }
                let sum: f64 = ins
                    .iter()
                    .enumerate()
                    .map(|(k, x)| x.value * at(k, j))
                    .sum();
                Some(Konst {
                    value: alpha * sum + beta * c[j],
                    approximate: ins.iter().any(|k| k.approximate),
                })
            })
            .collect();
        Some(ChannelConsts { axis: 1, consts })
    }

    fn matmul(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let b_shape = self.shape(n.input(1)?)?.to_vec();
        let [k_count, n_count] = b_shape[..] else {
            return None;
        };
        let out_rank = self.shape(n.output(0)?)?.len();
        let b = self.constant(1)?;
        if b.len() != k_count * n_count {
            return None;
        }
        let consts = (0..n_count)
            .map(|j| {
                let col = (0..k_count).map(|k| b[k * n_count + j]);
                let mut col2 = col.clone();
                col2.all(|x| self.is_zero(x)).then(|| Konst {
                    value: 0.0,
                    approximate: col.clone().any(|x| x != 0.0),
                })
            })
            .collect();
        Some(ChannelConsts {
            axis: out_rank.checked_sub(1)?,
            consts,
        })
    }

    fn batch_norm(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let scale = self.constant(1)?;
        let shift = self.constant(2)?;
        let mean = self.constant(3)?;
        let var = self.constant(4)?;
        let eps = f64::from(n.attr_f("epsilon", 1e-5));
        let c = scale.len();
        if [shift.len(), mean.len(), var.len()] != [c, c, c] {
            return None;
        }
        let input = self.input_state(0).filter(|s| s.axis == 1);
        let consts = (0..c)
            .map(|i| {
                if self.is_zero(scale[i]) {
                    return Some(Konst {
                        value: shift[i],
                        approximate: scale[i] != 0.0,
                    });
                }
                let k = input?.consts.get(i).copied().flatten()?;
                Some(k.map(|x| scale[i] * (x - mean[i]) / (var[i] + eps).sqrt() + shift[i]))
            })
            .collect();
        Some(ChannelConsts { axis: 1, consts })
    }

    fn unary(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let s = self.input_state(0)?;
        let alpha = |d: f32| f64::from(n.attr_f("alpha", d));
        let f: Box<dyn Fn(f64) -> f64> = match n.op_type.as_str() {
            "Relu" => Box::new(|x: f64| x.max(0.0)),
            "LeakyRelu" => {
                let a = alpha(0.01);
                Box::new(move |x| if x < 0.0 { a * x } else { x })
            }
            "Sigmoid" => Box::new(|x: f64| 1.0 / (1.0 + (-x).exp())),
            "Tanh" => Box::new(f64::tanh),
            "HardSigmoid" => {
                let (a, b) = (alpha(0.2), f64::from(n.attr_f("beta", 0.5)));
                Box::new(move |x| (a * x + b).clamp(0.0, 1.0))
            }
            "HardSwish" => Box::new(|x: f64| x * (x / 6.0 + 0.5).clamp(0.0, 1.0)),
            "Identity" | "Dropout" => Box::new(|x| x),
            "Clip" => {
                let (lo, hi) = self.clip_bounds()?;
                Box::new(move |x| x.max(lo).min(hi))
            }
            "Elu" => {
                let a = alpha(1.0);
                Box::new(move |x| if x < 0.0 { a * (x.exp() - 1.0) } else { x })
            }
            "Neg" => Box::new(|x: f64| -x),
            "Abs" => Box::new(f64::abs),
            _ => return None,
        };
        Some(ChannelConsts {
            axis: s.axis,
            consts: s.consts.iter().map(|k| k.map(|k| k.map(&f))).collect(),
        })
    }

    /// A cast between float types keeps a constant: exactly 0 always, any other value only
    /// into float32 or float64 (half precision would round it); other casts are not followed.
    fn cast(&self) -> Option<ChannelConsts> {
        use shears_onnx::proto::tensor_proto::DataType as D;
        let n = self.node;
        let wide = |t: i32| t == D::Float as i32 || t == D::Double as i32;
        let float = |t: i32| wide(t) || t == D::Float16 as i32 || t == D::Bfloat16 as i32;
        let (from, to) = (
            self.model.graph.value(n.input(0)?).dtype,
            n.attr_i("to", 0) as i32,
        );
        if !(float(from) && float(to)) {
            return None;
        }
        let s = self.input_state(0)?;
        let consts = s
            .consts
            .iter()
            .map(|k| k.filter(|k| k.value == 0.0 || wide(to)))
            .collect();
        Some(ChannelConsts {
            axis: s.axis,
            consts,
        })
    }

    fn clip_bounds(&self) -> Option<(f64, f64)> {
        let n = self.node;
        if self.model.graph.opset < 11 {
            return Some((
                f64::from(n.attr_f("min", f32::MIN)),
                f64::from(n.attr_f("max", f32::MAX)),
            ));
        }
        let bound = |slot: usize, d: f64| match n.input(slot) {
            None => Some(d),
            Some(_) => self.constant(slot).and_then(|v| v.first().copied()),
        };
        Some((bound(1, f64::MIN)?, bound(2, f64::MAX)?))
    }

    fn binary(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let out_shape = self.shape(n.output(0)?)?.to_vec();
        let op = n.op_type.clone();
        let f = move |a: f64, b: f64| match op.as_str() {
            "Add" => a + b,
            "Sub" => a - b,
            "Mul" => a * b,
            _ => a / b,
        };
        // A stateful operand keeps its property under broadcasting as long as its channel axis
        // is not itself broadcast: the output axis it lands on, if it keeps its length.
        let out_axis = |slot: usize, s: &ChannelConsts| {
            let shape = self.shape(n.input(slot)?)?;
            let axis = s.axis + out_shape.len().checked_sub(shape.len())?;
            (shape.get(s.axis) == out_shape.get(axis)).then_some(axis)
        };
        match (self.input_state(0), self.input_state(1)) {
            (Some(a), Some(b)) => {
                let axis = out_axis(0, a)?;
                if out_axis(1, b)? != axis {
                    return None;
                }
                let consts = a
                    .consts
                    .iter()
                    .zip(&b.consts)
                    .map(|(x, y)| {
                        let (x, y) = ((*x)?, (*y)?);
                        Some(Konst {
                            value: f(x.value, y.value),
                            approximate: x.approximate || y.approximate,
                        })
                    })
                    .collect();
                Some(ChannelConsts { axis, consts })
            }
            (Some(s), None) => {
                if out_axis(0, s)? != s.axis {
                    return None;
                }
                let other = self.per_channel(1, s, &out_shape)?;
                let consts = s
                    .consts
                    .iter()
                    .zip(other)
                    .map(|(k, o)| k.map(|k| k.map(|x| f(x, o))))
                    .collect();
                Some(ChannelConsts {
                    axis: s.axis,
                    consts,
                })
            }
            (None, Some(s)) => {
                if out_axis(1, s)? != s.axis {
                    return None;
                }
                let other = self.per_channel(0, s, &out_shape)?;
                let consts = s
                    .consts
                    .iter()
                    .zip(other)
                    .map(|(k, o)| k.map(|k| k.map(|x| f(o, x))))
                    .collect();
                Some(ChannelConsts {
                    axis: s.axis,
                    consts,
                })
            }
            _ => None,
        }
    }

    /// A constant operand that is one number per channel of `s.axis` (every other broadcast
    /// axis of length 1), expanded to one value per channel.
    fn per_channel(&self, slot: usize, s: &ChannelConsts, out: &[usize]) -> Option<Vec<f64>> {
        let shape = self.shape(self.node.input(slot)?)?.to_vec();
        let vals = self.constant(slot)?;
        if shape.len() > out.len() {
            return None;
        }
        let lead = out.len() - shape.len();
        for (i, &d) in shape.iter().enumerate() {
            if d != 1 && i + lead != s.axis {
                return None;
            }
        }
        let c = s.consts.len();
        match vals.len() {
            1 => Some(vec![vals[0]; c]),
            l if l == c => Some(vals),
            _ => None,
        }
    }

    fn pool(&self, pad_sees_zero: bool) -> Option<ChannelConsts> {
        let s = self.input_state(0).filter(|s| s.axis == 1)?;
        // An averaging window counting padded zeros changes a non-zero constant at the border.
        let padded = pad_sees_zero && self.pads();
        let consts = s
            .consts
            .iter()
            .map(|k| k.filter(|k| !padded || k.value == 0.0))
            .collect();
        Some(ChannelConsts { axis: 1, consts })
    }

    fn flatten(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let s = self.input_state(0)?;
        let shape = self.shape(n.input(0)?)?;
        let rank = shape.len() as i64;
        let mut f = n.attr_i("axis", 1);
        if f < 0 {
            f += rank;
        }
        // Only the channel axis leading the flattened block: channel i becomes a run of
        // `inner` consecutive features.
        if f != s.axis as i64 {
            return None;
        }
        let inner: usize = shape[s.axis + 1..].iter().product();
        let consts = s
            .consts
            .iter()
            .flat_map(|k| std::iter::repeat_n(*k, inner))
            .collect();
        Some(ChannelConsts { axis: 1, consts })
    }

    fn concat(&self) -> Option<ChannelConsts> {
        let n = self.node;
        let rank = self.shape(n.output(0)?)?.len() as i64;
        let mut axis = n.attr_i("axis", 1);
        if axis < 0 {
            axis += rank;
        }
        let axis = usize::try_from(axis).ok()?;
        let mut consts = Vec::new();
        for slot in 0..n.inputs.len() {
            let v = n.input(slot)?;
            let len = *self.shape(v)?.get(axis)?;
            match self.states.get(&v).filter(|s| s.axis == axis) {
                Some(s) => consts.extend_from_slice(&s.consts),
                None => consts.extend(std::iter::repeat_n(None, len)),
            }
        }
        Some(ChannelConsts { axis, consts })
    }
}
