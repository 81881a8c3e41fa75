//! [`Evaluator`]: runs a model's main graph on CPU candle tensors.

use candle_core::{DType, Tensor};
use shears_onnx::proto::tensor_proto::DataType;
use shears_onnx::proto::TensorProto;
use shears_onnx::{Model, Node, ValueId, ValueKind};

use crate::error::{Result, VerifyError};
use crate::ops::{self, candle_message, compute_dtype, Ctx, OpFn, CPU};

/// A model prepared for evaluation: weights decoded once into tensors, every node bound to its
/// op, and the point after which each intermediate value is no longer needed.
///
/// Invariants: `steps` follow the IR's topological order; `constants` holds a tensor for every
/// initializer and `Constant` output some node or graph output reads; every step's op exists
/// (unsupported ops are refused by [`Evaluator::new`]).
#[derive(Debug)]
pub struct Evaluator {
    source: String,
    opset: i64,
    /// Per value id: its tensor when it is a constant.
    constants: Vec<Option<Tensor>>,
    steps: Vec<Step>,
    /// Runtime inputs: name, value id, declared element type (0 when unknown).
    inputs: Vec<(String, usize, i32)>,
    outputs: Vec<(String, usize)>,
    /// Name of every value, by value id.
    value_names: Vec<String>,
}

/// One evaluation in progress ([`Evaluator::start`], [`Evaluator::step`]).
///
/// Invariants: holds runtime inputs and node outputs only (constants are read from the
/// evaluator when a step runs), each freed after its last reader; `next` is the step to run.
#[derive(Debug)]
pub struct State {
    env: Vec<Option<Tensor>>,
    next: usize,
}

#[derive(Debug)]
struct Step {
    node: Node,
    op: OpFn,
    /// Values whose last reader is this step (not graph outputs, not constants).
    frees: Vec<usize>,
    /// The ONNX element type of each input and output slot (0 when unknown): integer tensors
    /// are all i64 here, so ops whose results saturate to their type (QuantizeLinear) read it.
    in_dtypes: Vec<i32>,
    out_dtypes: Vec<i32>,
}

impl Evaluator {
    /// Prepares `model`: decodes every initializer and `Constant` that is read (f32 for floating
    /// types, i64 for integers, u8 for booleans) and binds every node to its op.
    pub fn new(model: &Model) -> Result<Evaluator> {
        let g = &model.graph;
        let file = model.source.clone();
        let mut constants: Vec<Option<Tensor>> = vec![None; g.values.len()];
        let mut needed = vec![false; g.values.len()];
        for n in &g.nodes {
            for v in n.inputs.iter().flatten() {
                needed[v.index()] = true;
            }
        }
        for v in &g.outputs {
            needed[v.index()] = true;
        }
        for (i, value) in g.values.iter().enumerate() {
            // Refuse before allocating: a shape the model declares or infers past the limit
            // would otherwise abort the process on its allocation.
            if let Some(shape) = &value.shape {
                ops::check_elements(shape, "its shape").map_err(|reason| VerifyError::Tensor {
                    file: file.clone(),
                    tensor: value.name.clone(),
                    reason,
                })?;
            }
            if !needed[i] || value.kind == ValueKind::Input {
                continue;
            }
            let id = ValueId(i as u32);
            if let Some(t) = model.constant(id) {
                constants[i] = Some(decode(model, &t)?);
            }
        }

        let mut last_use: Vec<Option<usize>> = vec![None; g.values.len()];
        let mut steps = Vec::with_capacity(g.nodes.len());
        for n in &g.nodes {
            if is_default_domain(&n.domain) && n.op_type == "Constant" {
                // Its value was decoded above; a form `Model::constant` cannot read (sparse,
                // strings) would otherwise surface later as a missing input.
                let unread = n
                    .outputs
                    .iter()
                    .flatten()
                    .find(|v| needed[v.index()] && constants[v.index()].is_none());
                if unread.is_some() {
                    return Err(VerifyError::Node {
                        file,
                        node: n.name.clone(),
                        op_type: n.op_type.clone(),
                        reason: "this form of Constant (sparse or string value) is not supported"
                            .into(),
                    });
                }
                continue;
            }
            let op = match ops::lookup(&n.domain, &n.op_type) {
                Some(op) => op,
                None => {
                    return Err(VerifyError::Unsupported {
                        file,
                        node: n.name.clone(),
                        op_type: n.op_type.clone(),
                        domain: n.domain.clone(),
                    })
                }
            };
            let at = steps.len();
            for v in n.inputs.iter().flatten() {
                last_use[v.index()] = Some(at);
            }
            let dtypes = |vs: &[Option<ValueId>]| -> Vec<i32> {
                vs.iter()
                    .map(|v| v.map_or(0, |v| g.value(v).dtype))
                    .collect()
            };
            steps.push(Step {
                node: n.clone(),
                op,
                frees: Vec::new(),
                in_dtypes: dtypes(&n.inputs),
                out_dtypes: dtypes(&n.outputs),
            });
        }
        for (v, last) in last_use.iter().enumerate() {
            let keep = constants[v].is_some() || g.outputs.iter().any(|o| o.index() == v);
            if let (Some(at), false) = (last, keep) {
                steps[*at].frees.push(v);
            }
        }
        // Outputs nobody reads (a Dropout mask, BatchNormalization's training outputs) are
        // dropped right after the step that makes them.
        for (at, step) in steps.iter_mut().enumerate() {
            for v in step.node.outputs.iter().flatten() {
                let unread = last_use[v.index()].is_none() && !g.outputs.contains(v);
                if unread {
                    step.frees.push(v.index());
                }
                debug_assert!(last_use[v.index()].is_none_or(|l| l > at));
            }
        }
        Ok(Evaluator {
            source: file,
            opset: g.opset,
            constants,
            steps,
            inputs: g
                .inputs
                .iter()
                .map(|&v| {
                    let value = g.value(v);
                    (value.name.clone(), v.index(), value.dtype)
                })
                .collect(),
            outputs: g
                .outputs
                .iter()
                .map(|&v| (g.value(v).name.clone(), v.index()))
                .collect(),
            value_names: g.values.iter().map(|v| v.name.clone()).collect(),
        })
    }

    /// Names of the runtime inputs, in graph order.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|(n, _, _)| n.as_str())
    }

    /// Names of the graph outputs, in graph order.
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|(n, _)| n.as_str())
    }

    /// Evaluates the graph on `inputs` (every runtime input by name, no others) and returns the
    /// graph outputs in graph order. Float inputs are computed in f32, integer ones in i64.
    pub fn eval(&self, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>> {
        self.eval_observed(inputs, |_, _| {})
    }

    /// [`Evaluator::eval`], also calling `observe(name, value)` on every value a node produces,
    /// in topological order, before it can be freed: the hook for activation statistics
    /// (calibration) that must not keep every intermediate alive.
    pub fn eval_observed(
        &self,
        inputs: &[(String, Tensor)],
        mut observe: impl FnMut(&str, &Tensor),
    ) -> Result<Vec<(String, Tensor)>> {
        let mut state = self.start(inputs)?;
        for i in 0..self.steps.len() {
            self.step(&mut state, i, &mut observe)?;
        }
        self.finish(state)
    }

    /// Starts an evaluation on `inputs` (every runtime input by name, no others) to be driven
    /// step by step with [`Evaluator::step`]: the stepping API for callers that run several
    /// models or samples in lockstep and edit constants between steps.
    pub fn start(&self, inputs: &[(String, Tensor)]) -> Result<State> {
        let mut env: Vec<Option<Tensor>> = vec![None; self.value_names.len()];
        for (name, t) in inputs {
            let Some((_, v, dtype)) = self.inputs.iter().find(|(n, _, _)| n == name) else {
                return Err(self.input_error(name, "the model has no runtime input of that name"));
            };
            env[*v] = Some(self.coerce_input(name, t, *dtype)?);
        }
        for (name, v, _) in &self.inputs {
            if env[*v].is_none() {
                return Err(self.input_error(name, "no value given"));
            }
        }
        Ok(State { env, next: 0 })
    }

    /// The number of steps (nodes other than `Constant`, in topological order).
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The node step `i` runs.
    pub fn step_node(&self, i: usize) -> &Node {
        &self.steps[i].node
    }

    /// Runs step `i` on `state` (steps must run in order, each once), calling
    /// `observe(name, value)` on every value it produces, then frees the values nobody reads
    /// later. Constants are read as they are when the step runs (see
    /// [`Evaluator::set_constant`]).
    pub fn step(
        &self,
        state: &mut State,
        i: usize,
        observe: impl FnMut(&str, &Tensor),
    ) -> Result<()> {
        let outs = self.trial(state, i)?;
        self.commit(state, i, outs, observe)
    }

    /// The outputs step `i` would produce on `state` with the constants as they are now,
    /// without storing them: lets a caller compare candidate constants before committing one.
    pub fn trial(&self, state: &State, i: usize) -> Result<Vec<Tensor>> {
        assert_eq!(state.next, i, "evaluator steps run in order, each once");
        let step = &self.steps[i];
        let n = &step.node;
        let args: Vec<Option<Tensor>> = n
            .inputs
            .iter()
            .map(|v| v.and_then(|v| self.value(state, v)))
            .collect();
        let ctx = Ctx {
            node: n,
            opset: self.opset,
            in_dtypes: &step.in_dtypes,
            out_dtypes: &step.out_dtypes,
        };
        let outs = (step.op)(&ctx, &args).map_err(|e| self.node_error(n, e.0))?;
        for (slot, v) in n.outputs.iter().enumerate() {
            if v.is_some() && outs.get(slot).is_none() {
                return Err(self.node_error(n, format!("output {slot} is not produced")));
            }
        }
        Ok(outs)
    }

    /// Stores `outs` (from [`Evaluator::trial`] on the same state and step) as step `i`'s
    /// outputs, observing each, and frees the values nobody reads later.
    pub fn commit(
        &self,
        state: &mut State,
        i: usize,
        outs: Vec<Tensor>,
        mut observe: impl FnMut(&str, &Tensor),
    ) -> Result<()> {
        assert_eq!(state.next, i, "evaluator steps run in order, each once");
        let step = &self.steps[i];
        let n = &step.node;
        for (slot, v) in n.outputs.iter().enumerate() {
            let Some(v) = v else { continue };
            let Some(t) = outs.get(slot) else {
                return Err(self.node_error(n, format!("output {slot} is not produced")));
            };
            observe(&self.value_names[v.index()], t);
            state.env[v.index()] = Some(t.clone());
        }
        for &v in &step.frees {
            state.env[v] = None;
        }
        state.next = i + 1;
        Ok(())
    }

    fn node_error(&self, n: &Node, reason: String) -> VerifyError {
        VerifyError::Node {
            file: self.source.clone(),
            node: n.name.clone(),
            op_type: n.op_type.clone(),
            reason,
        }
    }

    /// The value `v` of the evaluator's model as `state` holds it: a constant, a runtime input,
    /// or a node output already computed and not yet freed.
    pub fn value(&self, state: &State, v: ValueId) -> Option<Tensor> {
        let i = v.index();
        self.constants
            .get(i)?
            .clone()
            .or_else(|| state.env.get(i)?.clone())
    }

    /// Replaces the constant `v` (an initializer or `Constant` output) by `t`; steps run after
    /// this read `t`, in every state. The tensor must be in the evaluator's compute dtype (f32
    /// for floating constants).
    pub fn set_constant(&mut self, v: ValueId, t: Tensor) -> Result<()> {
        let name = self.value_names.get(v.index()).cloned().unwrap_or_default();
        match self.constants.get_mut(v.index()) {
            Some(slot @ Some(_)) => {
                *slot = Some(t);
                Ok(())
            }
            _ => Err(VerifyError::Tensor {
                file: self.source.clone(),
                tensor: name,
                reason: "is not a constant the evaluator reads".into(),
            }),
        }
    }

    /// Ends an evaluation whose steps all ran, giving the graph outputs in graph order.
    pub fn finish(&self, mut state: State) -> Result<Vec<(String, Tensor)>> {
        self.outputs
            .iter()
            .map(|(name, v)| match state.env[*v].take() {
                Some(t) => Ok((name.clone(), t)),
                None => Err(VerifyError::Tensor {
                    file: self.source.clone(),
                    tensor: name.clone(),
                    reason: "graph output was not computed".into(),
                }),
            })
            .collect()
    }

    /// The values called `names` (node outputs, graph inputs or constants), in that order, for
    /// `inputs`; only those values are kept while evaluating.
    pub fn eval_values(
        &self,
        inputs: &[(String, Tensor)],
        names: &[&str],
    ) -> Result<Vec<(String, Tensor)>> {
        let mut found: Vec<Option<Tensor>> = vec![None; names.len()];
        for (i, name) in names.iter().enumerate() {
            let Some(v) = self.value_names.iter().position(|n| n == name) else {
                return Err(VerifyError::Tensor {
                    file: self.source.clone(),
                    tensor: name.to_string(),
                    reason: "the graph has no value of that name".into(),
                });
            };
            found[i] = self.constants[v].clone().or_else(|| {
                let (n, t) = inputs.iter().find(|(n, _)| n == name)?;
                let dtype = self.inputs.iter().find(|(i, _, _)| i == n)?.2;
                self.coerce_input(n, t, dtype).ok()
            });
        }
        self.eval_observed(inputs, |name, t| {
            for (i, want) in names.iter().enumerate() {
                if *want == name {
                    found[i] = Some(t.clone());
                }
            }
        })?;
        names
            .iter()
            .zip(found)
            .map(|(name, t)| match t {
                Some(t) => Ok((name.to_string(), t)),
                None => Err(VerifyError::Tensor {
                    file: self.source.clone(),
                    tensor: name.to_string(),
                    reason: "no node computes this value".into(),
                }),
            })
            .collect()
    }

    fn input_error(&self, name: &str, reason: &str) -> VerifyError {
        VerifyError::Input {
            file: self.source.clone(),
            input: name.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Converts a caller's tensor to the dtype the evaluator computes the input's type in.
    fn coerce_input(&self, name: &str, t: &Tensor, declared: i32) -> Result<Tensor> {
        let want = if declared == 0 {
            match t.dtype() {
                DType::F16 | DType::BF16 | DType::F32 | DType::F64 => DType::F32,
                DType::U8 => DType::U8,
                _ => DType::I64,
            }
        } else {
            compute_dtype(declared).map_err(|e| self.input_error(name, &e.0))?
        };
        let t = if t.device().is_cpu() {
            t.clone()
        } else {
            t.to_device(&CPU)
                .map_err(|e| self.input_error(name, &candle_message(e)))?
        };
        t.to_dtype(want)
            .map_err(|e| self.input_error(name, &candle_message(e)))
    }
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// A constant tensor in the dtype the evaluator computes its type in.
fn decode(model: &Model, t: &TensorProto) -> Result<Tensor> {
    let err = |reason: String| VerifyError::Tensor {
        file: model.source.clone(),
        tensor: t.name.clone(),
        reason,
    };
    let dims = shears_onnx::tensor::dims(t)?;
    let dtype = compute_dtype(t.data_type).map_err(|e| err(e.0))?;
    let tensor = match dtype {
        // The common case, decoded here (optimised even in test builds) straight from the
        // little-endian payload.
        DType::F32 if t.data_type == DataType::Float as i32 => {
            let bytes = model.payload(t)?;
            let v: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            Tensor::from_vec(v, dims, &CPU)
        }
        DType::F32 => Tensor::from_vec(model.f32s(t)?, dims, &CPU),
        DType::U8 if t.data_type == DataType::Bool as i32 => {
            let v: Vec<u8> = model
                .i64s(t)?
                .into_iter()
                .map(|v| u8::from(v != 0))
                .collect();
            Tensor::from_vec(v, dims, &CPU)
        }
        _ => Tensor::from_vec(model.i64s(t)?, dims, &CPU),
    };
    tensor.map_err(|e| err(candle_message(e)))
}
