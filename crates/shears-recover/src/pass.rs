//! One lockstep pass of a recovery method: the original and the pruned model run node by node
//! over all samples; at each node the method applies to, the pruned node's constants are
//! refitted from the samples' current values before the step is committed.

use std::collections::BTreeMap;
use std::time::Instant;

use shears_onnx::{Model, Node, ValueId};
use shears_pruner::Progress;
use shears_verify::candle_core::{DType, Device, Tensor};
use shears_verify::{Evaluator, State};

use crate::config::Method;
use crate::error::{node_err, RecoverError, Result};
use crate::kept::Kept;
use crate::layer::{describe, Geometry, Layer};
use crate::report::{LayerRecovery, NotRecovered};
use crate::solve::Normal;
use crate::{Masks, Sample};

/// Edited float32 initializers of the pruned model, by name: dims and values.
pub(crate) type Edits = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// What a pass did and the graph outputs it saw.
pub(crate) struct PassOutput {
    pub edits: Edits,
    pub layers: Vec<LayerRecovery>,
    pub not_recovered: Vec<NotRecovered>,
    /// Per sample, the original's graph outputs.
    pub original: Vec<Vec<Tensor>>,
    /// Per sample, the recovered model's graph outputs.
    pub recovered: Vec<Vec<Tensor>>,
}

struct Pass<'a> {
    original: &'a Model,
    pruned: &'a Model,
    kept: &'a Kept,
    masks: &'a Masks,
    oe: Evaluator,
    pe: Evaluator,
    os: Vec<State>,
    ps: Vec<State>,
    method: Method,
    ridge: f64,
    out: PassOutput,
}

/// Runs `method` over `pruned` against `original` on every sample; `pruned` keeps the
/// channels `kept` says and its weights are zero outside `masks`.
pub(crate) fn run_pass(
    original: &Model,
    pruned: &Model,
    (kept, masks): (&Kept, &Masks),
    samples: &[Sample],
    method: Method,
    ridge: f64,
    progress: &dyn Progress,
) -> Result<PassOutput> {
    let oe = Evaluator::new(original)?;
    let pe = Evaluator::new(pruned)?;
    if oe.step_count() != pe.step_count() {
        return Err(RecoverError::Mismatch {
            node: String::new(),
            reason: format!(
                "the original has {} nodes to run, the pruned model {}: not a pruned copy",
                oe.step_count(),
                pe.step_count()
            ),
        });
    }
    for i in 0..oe.step_count() {
        let (a, b) = (oe.step_node(i), pe.step_node(i));
        if a.name != b.name || a.op_type != b.op_type {
            return Err(RecoverError::Mismatch {
                node: b.name.clone(),
                reason: format!(
                    "the original runs '{}' ({}) at this point: not a pruned copy",
                    a.name, a.op_type
                ),
            });
        }
    }
    let os = samples
        .iter()
        .map(|s| oe.start(s))
        .collect::<Result<_, _>>()?;
    let ps = samples
        .iter()
        .map(|s| pe.start(s))
        .collect::<Result<_, _>>()?;
    let mut pass = Pass {
        original,
        pruned,
        kept,
        masks,
        oe,
        pe,
        os,
        ps,
        method,
        ridge,
        out: PassOutput {
            edits: Edits::new(),
            layers: Vec::new(),
            not_recovered: Vec::new(),
            original: Vec::new(),
            recovered: Vec::new(),
        },
    };
    let n = pass.pe.step_count();
    progress.begin(&format!("recovering ({})", method.name()), n as u64);
    // Values whose kept channels differ from the original's, by pruned value id.
    let mut changed = vec![false; pruned.graph.values.len()];
    for i in 0..n {
        let node = pass.pe.step_node(i).clone();
        let affected = pass.affected(i, &node, &changed);
        for s in pass.os.iter_mut() {
            pass.oe.step(s, i, |_, _| {})?;
        }
        if affected {
            pass.recover_node(i, &node)?;
            for v in node.outputs.iter().flatten() {
                changed[v.index()] = true;
            }
        } else {
            pass.plain(i)?;
        }
        progress.advance(1);
    }
    progress.end();
    let Pass {
        oe,
        pe,
        os,
        ps,
        mut out,
        ..
    } = pass;
    for s in os {
        out.original
            .push(oe.finish(s)?.into_iter().map(|(_, t)| t).collect());
    }
    for s in ps {
        out.recovered
            .push(pe.finish(s)?.into_iter().map(|(_, t)| t).collect());
    }
    Ok(out)
}

impl Pass<'_> {
    /// Whether the node's kept outputs can differ from the original's: an input differs, or
    /// the op mixes channels and an input lost some.
    fn affected(&self, i: usize, node: &Node, changed: &[bool]) -> bool {
        if node.inputs.iter().flatten().any(|v| changed[v.index()]) {
            return true;
        }
        // A layer whose weight was masked computes something else on the same input.
        let g = &self.pruned.graph;
        if node
            .inputs
            .iter()
            .flatten()
            .any(|v| self.masks.contains_key(&g.value(*v).name))
        {
            return true;
        }
        // Output channel c depends only on input channel c (element-wise ops, per-channel
        // norms, pooling, layout): removing other channels leaves the kept outputs alone.
        if shears_onnx::ops::facts(node).channelwise {
            return false;
        }
        // Constants lose slices for removed outputs too, which leave the kept outputs alone; an
        // input channel removed shows on the activation.
        let onode = self.oe.step_node(i);
        let activation = |v: &ValueId| self.pruned.constant(*v).is_none();
        node.inputs
            .iter()
            .zip(&onode.inputs)
            .any(|(p, o)| match (p, o) {
                (Some(p), Some(o)) if activation(p) => {
                    let pd = self.pe.value(&self.ps[0], *p).map(|t| t.dims().to_vec());
                    let od = self.oe.value(&self.os[0], *o).map(|t| t.dims().to_vec());
                    pd != od
                }
                _ => false,
            })
    }

    fn plain(&mut self, i: usize) -> Result<()> {
        for s in self.ps.iter_mut() {
            self.pe.step(s, i, |_, _| {})?;
        }
        Ok(())
    }

    fn skip(&mut self, i: usize, node: &Node, reason: String) -> Result<()> {
        self.out.not_recovered.push(NotRecovered {
            node: node.name.clone(),
            method: self.method,
            reason,
        });
        self.plain(i)
    }

    fn recover_node(&mut self, i: usize, node: &Node) -> Result<()> {
        let layer = describe(self.pruned, node);
        match (self.method, layer) {
            (Method::Reconstruct, Some(Ok(layer))) => match self.shared_weight(&layer) {
                Some(reason) => self.skip(i, node, reason),
                None => self.reconstruct(i, node, &layer),
            },
            (Method::Reconstruct, Some(Err(reason))) => self.skip(i, node, reason),
            (Method::Bn, _) if node.op_type == "BatchNormalization" => self.batch_norm(i, node),
            (Method::Bn, Some(Ok(layer)))
                if layer.bias.is_some()
                    && !matches!(layer.geom, Geometry::MatMul)
                    && !self.feeds_batch_norm(node) =>
            {
                match self.shared_weight(&layer) {
                    Some(reason) => self.skip(i, node, reason),
                    None => self.shift_bias(i, node, &layer),
                }
            }
            _ => self.plain(i),
        }
    }

    /// Why a layer's constants cannot be edited alone, if they are read by another node too.
    fn shared_weight(&self, layer: &Layer) -> Option<String> {
        let g = &self.pruned.graph;
        [Some(layer.weight), layer.bias]
            .into_iter()
            .flatten()
            .find(|&v| g.value(v).consumers.len() > 1)
            .map(|v| format!("'{}' is read by another node too", g.value(v).name))
    }

    fn feeds_batch_norm(&self, node: &Node) -> bool {
        let g = &self.pruned.graph;
        node.output(0).is_some_and(|v| {
            g.value(v)
                .consumers
                .iter()
                .any(|(c, _)| g.node(*c).op_type == "BatchNormalization")
        })
    }

    /// The original's output `slot` of step `i` for every sample, restricted to the channels
    /// the pruned model keeps on `axis` (the last axis when `axis` is `usize::MAX`).
    fn targets(&self, i: usize, slot: usize, axis: usize) -> Result<Vec<Tensor>> {
        let onode = self.oe.step_node(i);
        let name = &onode.name;
        let v = onode
            .output(slot)
            .ok_or_else(|| node_err(name, "no output"))?;
        let vname = &self.original.graph.value(v).name;
        self.os
            .iter()
            .map(|s| {
                let t = self
                    .oe
                    .value(s, v)
                    .ok_or_else(|| node_err(name, "the original's output was freed"))?;
                let axis = if axis == usize::MAX {
                    t.rank().saturating_sub(1)
                } else {
                    axis
                };
                match self.kept.get(vname, axis) {
                    None => Ok(t),
                    Some(idx) => {
                        let idx = Tensor::new(idx, &Device::Cpu).map_err(|e| node_err(name, e))?;
                        t.index_select(&idx, axis).map_err(|e| node_err(name, e))
                    }
                }
            })
            .collect()
    }

    /// Commits, per sample, `outs` as step `i`'s outputs.
    fn commit(&mut self, i: usize, outs: Vec<Vec<Tensor>>) -> Result<()> {
        for (s, o) in self.ps.iter_mut().zip(outs) {
            self.pe.commit(s, i, o, |_, _| {})?;
        }
        Ok(())
    }

    /// Step `i`'s outputs on every sample with the constants as they are now.
    fn trial(&self, i: usize) -> Result<Vec<Vec<Tensor>>> {
        Ok(self
            .ps
            .iter()
            .map(|s| self.pe.trial(s, i))
            .collect::<Result<_, _>>()?)
    }

    fn set(&mut self, node: &str, v: ValueId, dims: &[usize], data: Vec<f32>) -> Result<()> {
        let t = Tensor::from_vec(data, dims, &Device::Cpu).map_err(|e| node_err(node, e))?;
        self.pe.set_constant(v, t)?;
        Ok(())
    }

    fn constant(&self, node: &str, v: ValueId) -> Result<Tensor> {
        self.pe.value(&self.ps[0], v).ok_or_else(|| {
            node_err(
                node,
                format!("'{}' is not a constant", self.pruned.graph.value(v).name),
            )
        })
    }

    fn record(&mut self, v: ValueId, dims: &[usize], data: Vec<f32>) {
        let name = self.pruned.graph.value(v).name.clone();
        self.out.edits.insert(name, (dims.to_vec(), data));
    }

    fn reconstruct(&mut self, i: usize, node: &Node, layer: &Layer) -> Result<()> {
        let start = Instant::now();
        let name = node.name.as_str();
        let targets = self.targets(i, 0, layer.out_axis)?;
        let mut normals: Vec<Normal> = (0..layer.groups)
            .map(|_| Normal::new(layer.width(), layer.outputs))
            .collect();
        for (s, t) in self.ps.iter().zip(&targets) {
            let x = self
                .pe
                .value(s, layer.input)
                .ok_or_else(|| node_err(name, "the input is not available"))?;
            let (xv, yv) = (to_f32(name, &x)?, to_f32(name, t)?);
            let mismatch = |reason: String| RecoverError::Mismatch {
                node: name.to_string(),
                reason,
            };
            let rows = layer.rows(&xv, x.dims(), t.dims()).map_err(mismatch)?;
            let ys = layer.targets(&yv, t.dims()).map_err(mismatch)?;
            for ((n, x), y) in normals.iter_mut().zip(rows).zip(ys) {
                n.add(x, y);
            }
        }
        let mut thetas = Vec::with_capacity(normals.len());
        let mut stronger = false;
        let mask = self.masks.get(&self.pruned.graph.value(layer.weight).name);
        if mask.is_some_and(|m| m.len() != layer.weight_dims.iter().product::<usize>()) {
            return self.skip(i, node, "the mask does not match the weight".into());
        }
        for (g, n) in normals.iter_mut().enumerate() {
            let solution = match mask {
                // Masked weights stay exactly 0: each output refits only its kept inputs
                // (and its bias, column `features`).
                Some(mask) => n.solve_masked(self.ridge, |f, j| {
                    f >= layer.features || mask[layer.weight_at(g * layer.outputs + j, f)]
                }),
                None => n.solve(self.ridge),
            };
            match solution {
                Some(s) => {
                    stronger |= s.stronger;
                    thetas.push(s.theta);
                }
                None => {
                    return self.skip(
                        i,
                        node,
                        "the system is not positive definite even with a 10^6x stronger ridge"
                            .into(),
                    )
                }
            }
        }
        drop(normals);
        let (w, b) = layer.unpack(&thetas);
        let old = self.trial(i)?;
        let before = rel_error(name, old.iter().map(|o| &o[0]), &targets)?;
        let old_w = self.constant(name, layer.weight)?;
        let old_b = layer.bias.map(|v| self.constant(name, v)).transpose()?;
        self.set(name, layer.weight, &layer.weight_dims, w.clone())?;
        if let (Some(v), Some(b)) = (layer.bias, &b) {
            let dims = old_b.as_ref().map_or(vec![b.len()], |t| t.dims().to_vec());
            self.set(name, v, &dims, b.clone())?;
        }
        let new = self.trial(i)?;
        let after = rel_error(name, new.iter().map(|o| &o[0]), &targets)?;
        let better = after.is_finite() && after < before;
        if better {
            self.commit(i, new)?;
            self.record(layer.weight, &layer.weight_dims, w);
            if let (Some(v), Some(b), Some(ob)) = (layer.bias, b, &old_b) {
                let dims = ob.dims().to_vec();
                self.record(v, &dims, b);
            }
        } else {
            self.pe.set_constant(layer.weight, old_w)?;
            if let (Some(v), Some(t)) = (layer.bias, old_b) {
                self.pe.set_constant(v, t)?;
            }
            self.commit(i, old)?;
        }
        self.out.layers.push(LayerRecovery {
            node: name.to_string(),
            op_type: node.op_type.clone(),
            method: Method::Reconstruct,
            changed: if layer.bias.is_some() {
                "weights+bias"
            } else {
                "weights"
            }
            .into(),
            error_before: before,
            error_after: if better { after } else { before },
            stronger_ridge: stronger,
            kept_old: !better,
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    fn batch_norm(&mut self, i: usize, node: &Node) -> Result<()> {
        let start = Instant::now();
        let name = node.name.as_str();
        let (Some(x), Some(mean), Some(var)) = (node.input(0), node.input(3), node.input(4)) else {
            return self.skip(i, node, "missing running statistics".into());
        };
        let g = &self.pruned.graph;
        let float = |v: ValueId| {
            self.pruned.initializer(v).is_some_and(|t| {
                t.data_type == shears_onnx::proto::tensor_proto::DataType::Float as i32
            }) && g.value(v).consumers.len() == 1
        };
        if !(float(mean) && float(var)) {
            return self.skip(
                i,
                node,
                "running statistics are not float32 initializers of this node alone".into(),
            );
        }
        let mut sum: Vec<f64> = Vec::new();
        let mut sq: Vec<f64> = Vec::new();
        let mut count = 0usize;
        for s in &self.ps {
            let t = self
                .pe
                .value(s, x)
                .ok_or_else(|| node_err(name, "the input is not available"))?;
            let d = t.dims().to_vec();
            if d.len() < 2 {
                return self.skip(i, node, "input has no channel axis".into());
            }
            let (c, inner) = (d[1], d[2..].iter().product::<usize>());
            if sum.is_empty() {
                sum = vec![0.0; c];
                sq = vec![0.0; c];
            }
            let v = to_f32(name, &t)?;
            for (k, chunk) in v.chunks_exact(inner.max(1)).enumerate() {
                let ch = k % c;
                for &e in chunk {
                    sum[ch] += e as f64;
                    sq[ch] += (e as f64) * (e as f64);
                }
            }
            count += d[0] * inner;
        }
        let n = count.max(1) as f64;
        let m: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let var_new: Vec<f32> = sum
            .iter()
            .zip(&sq)
            .map(|(s, q)| (q / n - (s / n) * (s / n)).max(0.0) as f32)
            .collect();
        let targets = self.targets(i, 0, 1)?;
        let old = self.trial(i)?;
        let before = rel_error(name, old.iter().map(|o| &o[0]), &targets)?;
        drop(old);
        let md = self.constant(name, mean)?.dims().to_vec();
        let vd = self.constant(name, var)?.dims().to_vec();
        self.set(name, mean, &md, m.clone())?;
        self.set(name, var, &vd, var_new.clone())?;
        let new = self.trial(i)?;
        let after = rel_error(name, new.iter().map(|o| &o[0]), &targets)?;
        self.commit(i, new)?;
        self.record(mean, &md, m);
        self.record(var, &vd, var_new);
        self.out.layers.push(LayerRecovery {
            node: name.to_string(),
            op_type: node.op_type.clone(),
            method: Method::Bn,
            changed: "statistics".into(),
            error_before: before,
            error_after: after,
            stronger_ridge: false,
            kept_old: false,
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// For a layer whose BatchNormalization was folded into it: shifts the bias so the output
    /// mean per channel matches the original's (which lowers the squared error by exactly the
    /// squared mean difference).
    fn shift_bias(&mut self, i: usize, node: &Node, layer: &Layer) -> Result<()> {
        let start = Instant::now();
        let name = node.name.as_str();
        let Some(bias) = layer.bias else {
            return self.plain(i);
        };
        let targets = self.targets(i, 0, layer.out_axis)?;
        let old = self.trial(i)?;
        let before = rel_error(name, old.iter().map(|o| &o[0]), &targets)?;
        let axis = layer.axis(targets[0].rank());
        let mp = channel_means(name, old.iter().map(|o| &o[0]), axis)?;
        let mt = channel_means(name, targets.iter(), axis)?;
        let scale = match layer.geom {
            Geometry::Gemm { beta, .. } => beta as f64,
            _ => 1.0,
        };
        let ob = self.constant(name, bias)?;
        let dims = ob.dims().to_vec();
        let b: Vec<f32> = to_f32(name, &ob)?
            .iter()
            .zip(mt.iter().zip(&mp))
            .map(|(&b, (t, p))| (b as f64 + (t - p) / scale) as f32)
            .collect();
        if b.len() != mt.len() || b.iter().any(|v| !v.is_finite()) {
            return self.commit(i, old);
        }
        drop(old);
        self.set(name, bias, &dims, b.clone())?;
        let new = self.trial(i)?;
        let after = rel_error(name, new.iter().map(|o| &o[0]), &targets)?;
        self.commit(i, new)?;
        self.record(bias, &dims, b);
        self.out.layers.push(LayerRecovery {
            node: name.to_string(),
            op_type: node.op_type.clone(),
            method: Method::Bn,
            changed: "bias".into(),
            error_before: before,
            error_after: after,
            stronger_ridge: false,
            kept_old: false,
            seconds: start.elapsed().as_secs_f64(),
        });
        Ok(())
    }
}

pub(crate) fn to_f32(node: &str, t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| node_err(node, e))
}

/// ‖a − b‖ / ‖b‖ over all pairs (0 when both are zero).
pub(crate) fn rel_error<'a>(
    node: &str,
    a: impl Iterator<Item = &'a Tensor>,
    b: &[Tensor],
) -> Result<f64> {
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.zip(b) {
        if x.dims() != y.dims() {
            return Err(RecoverError::Mismatch {
                node: node.to_string(),
                reason: format!(
                    "output has dims {:?}, the original's kept channels {:?}: the kept channels do not describe this model",
                    x.dims(),
                    y.dims()
                ),
            });
        }
        let (xv, yv) = (to_f32(node, x)?, to_f32(node, y)?);
        for (p, q) in xv.iter().zip(&yv) {
            let d = (*p as f64) - (*q as f64);
            num += d * d;
            den += (*q as f64) * (*q as f64);
        }
    }
    Ok(if den > 0.0 {
        (num / den).sqrt()
    } else if num > 0.0 {
        f64::INFINITY
    } else {
        0.0
    })
}

/// Per channel on `axis`, the mean over every other axis and every tensor.
fn channel_means<'a>(
    node: &str,
    ts: impl Iterator<Item = &'a Tensor>,
    axis: usize,
) -> Result<Vec<f64>> {
    let mut sum: Vec<f64> = Vec::new();
    let mut count = 0usize;
    for t in ts {
        let d = t.dims();
        let c = d[axis];
        let inner: usize = d[axis + 1..].iter().product();
        if sum.is_empty() {
            sum = vec![0.0; c];
        }
        let v = to_f32(node, t)?;
        for (k, chunk) in v.chunks_exact(inner.max(1)).enumerate() {
            sum[k % c] += chunk.iter().map(|&e| e as f64).sum::<f64>();
        }
        count += v.len() / c.max(1);
    }
    Ok(sum.iter().map(|s| s / count.max(1) as f64).collect())
}
