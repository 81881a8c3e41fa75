//! Ops that move data between axes without computing: Concat, Split, Slice, Flatten, Reshape,
//! Transpose, Pad, Resize, and the Shape / Gather / Unsqueeze pieces of shape subgraphs.

use super::super::{attr_int, attr_ints, attr_string, tensor_i64, ModelBuilder};
use super::{norm_axis, product_or_unknown};
use shears_onnx::proto::tensor_proto::DataType;

impl ModelBuilder {
    /// Concat along `axis`.
    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        assert!(!xs.is_empty(), "builder: concat of nothing");
        let first = self.shape_of(xs[0]).to_vec();
        let a = norm_axis(axis, first.len());
        let mut shape = first;
        for x in &xs[1..] {
            let d = self.shape_of(x)[a];
            shape[a] = if shape[a] < 0 || d < 0 {
                -1
            } else {
                shape[a] + d
            };
        }
        self.op("Concat", xs, vec![attr_int("axis", axis)], shape)
    }

    /// Split along `axis` into parts of `sizes` (sizes as an input at opset 13+).
    pub fn split(&mut self, x: &str, axis: i64, sizes: &[i64]) -> Vec<String> {
        let s = self.shape_of(x).to_vec();
        let a = norm_axis(axis, s.len());
        assert!(
            s[a] < 0 || sizes.iter().sum::<i64>() == s[a],
            "builder: split sizes {sizes:?} do not add up to {}",
            s[a]
        );
        let node = self.auto_node_name("Split");
        let outs: Vec<String> = (0..sizes.len())
            .map(|i| format!("{node}_output_{i}"))
            .collect();
        let mut inputs = vec![x.to_string()];
        let mut attrs = vec![attr_int("axis", axis)];
        if self.opset >= 13 {
            inputs.push(self.vec_i64(&format!("{node}_split"), sizes));
        } else {
            attrs.push(attr_ints("split", sizes));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let dtype = self.dtype_of(x);
        self.push_node(node, "Split", &refs, &outs, attrs);
        for (o, &n) in outs.iter().zip(sizes) {
            let mut sh = s.clone();
            sh[a] = n;
            self.shapes.insert(o.clone(), sh);
            self.dtypes.insert(o.clone(), dtype);
        }
        outs
    }

    /// Slice (bounds as inputs, opset 10+). `steps` may be empty (all 1).
    pub fn slice(
        &mut self,
        x: &str,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
        steps: &[i64],
    ) -> String {
        assert!(
            self.opset >= 10,
            "builder: Slice with inputs needs opset 10+"
        );
        let mut shape = self.shape_of(x).to_vec();
        let rank = shape.len();
        for (i, &axis) in axes.iter().enumerate() {
            let a = norm_axis(axis, rank);
            let d = shape[a];
            if d < 0 {
                continue;
            }
            let step = steps.get(i).copied().unwrap_or(1);
            let fix = |v: i64| if v < 0 { v + d } else { v };
            let (s, e) = (fix(starts[i]), fix(ends[i]));
            shape[a] = if step > 0 {
                let (s, e) = (s.clamp(0, d), e.clamp(0, d));
                ((e - s + step - 1) / step).max(0)
            } else {
                let (s, e) = (s.clamp(0, d - 1), e.clamp(-1, d - 1));
                ((s - e + (-step) - 1) / (-step)).max(0)
            };
        }
        let node = self.auto_node_name("Slice");
        let st = self.vec_i64(&format!("{node}_starts"), starts);
        let en = self.vec_i64(&format!("{node}_ends"), ends);
        let ax = self.vec_i64(&format!("{node}_axes"), axes);
        let mut inputs = vec![x.to_string(), st, en, ax];
        if !steps.is_empty() {
            inputs.push(self.vec_i64(&format!("{node}_steps"), steps));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.emit(node, "Slice", &refs, vec![], shape)
    }

    /// Flatten at `axis` into 2-D.
    pub fn flatten(&mut self, x: &str, axis: i64) -> String {
        let s = self.shape_of(x).to_vec();
        let a = if axis < 0 {
            axis + s.len() as i64
        } else {
            axis
        } as usize;
        let shape = vec![product_or_unknown(&s[..a]), product_or_unknown(&s[a..])];
        self.op("Flatten", &[x], vec![attr_int("axis", axis)], shape)
    }

    /// Reshape to `shape` (0 copies the input dim, -1 is inferred); the shape is a parameter
    /// named `{node}_shape`.
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.shape_of(x).to_vec();
        let mut out: Vec<i64> = shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if d == 0 { s[i] } else { d })
            .collect();
        if let Some(pos) = out.iter().position(|&d| d == -1) {
            let total = product_or_unknown(&s);
            let known: Vec<i64> = out
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != pos)
                .map(|(_, &d)| d)
                .collect();
            let rest = product_or_unknown(&known);
            out[pos] = if total < 0 || rest <= 0 {
                -1
            } else {
                total / rest
            };
        }
        let node = self.auto_node_name("Reshape");
        let sh = self.vec_i64(&format!("{node}_shape"), shape);
        self.emit(node, "Reshape", &[x, &sh], vec![], out)
    }

    /// Reshape by a shape computed in the graph (`shape` is an int64 value).
    pub fn reshape_dynamic(&mut self, x: &str, shape: &str, result: &[i64]) -> String {
        self.op("Reshape", &[x, shape], vec![], result.to_vec())
    }

    /// Transpose by `perm`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        let s = self.shape_of(x).to_vec();
        let shape = perm.iter().map(|&p| s[p as usize]).collect();
        self.op("Transpose", &[x], vec![attr_ints("perm", perm)], shape)
    }

    /// Constant zero padding; `pads` is ONNX's `[begin_0.., end_0..]` (an input at opset 11+).
    pub fn pad(&mut self, x: &str, pads: &[i64]) -> String {
        let s = self.shape_of(x).to_vec();
        let r = s.len();
        assert_eq!(pads.len(), 2 * r, "builder: pad needs 2 * rank values");
        let shape = (0..r)
            .map(|i| {
                if s[i] < 0 {
                    -1
                } else {
                    s[i] + pads[i] + pads[r + i]
                }
            })
            .collect();
        let node = self.auto_node_name("Pad");
        if self.opset >= 11 {
            let p = self.vec_i64(&format!("{node}_pads"), pads);
            self.emit(
                node,
                "Pad",
                &[x, &p],
                vec![attr_string("mode", "constant")],
                shape,
            )
        } else {
            let attrs = vec![attr_string("mode", "constant"), attr_ints("pads", pads)];
            self.emit(node, "Pad", &[x], attrs, shape)
        }
    }

    /// Nearest-neighbour Resize by per-axis `scales` (the form `nn.Upsample` exports).
    pub fn resize(&mut self, x: &str, scales: &[f32]) -> String {
        assert!(self.opset >= 11, "builder: Resize helper needs opset 11+");
        let s = self.shape_of(x).to_vec();
        let shape = s
            .iter()
            .zip(scales)
            .map(|(&d, &f)| {
                if d < 0 {
                    -1
                } else {
                    (d as f32 * f).floor() as i64
                }
            })
            .collect();
        let node = self.auto_node_name("Resize");
        let sc = self.vec_f32(&format!("{node}_scales"), scales);
        let roi = if self.opset >= 13 {
            String::new()
        } else {
            self.vec_f32(&format!("{node}_roi"), &[])
        };
        let attrs = vec![
            attr_string("coordinate_transformation_mode", "asymmetric"),
            attr_string("mode", "nearest"),
            attr_string("nearest_mode", "floor"),
        ];
        self.emit(node, "Resize", &[x, &roi, &sc], attrs, shape)
    }

    /// Shape: the int64 vector of `x`'s dims.
    pub fn shape(&mut self, x: &str) -> String {
        let r = self.shape_of(x).len() as i64;
        let out = self.op("Shape", &[x], vec![], vec![r]);
        self.dtypes.insert(out.clone(), DataType::Int64 as i32);
        out
    }

    /// Gather of one scalar index along `axis` (the index is an int64 scalar parameter).
    pub fn gather(&mut self, x: &str, index: i64, axis: i64) -> String {
        let mut s = self.shape_of(x).to_vec();
        let a = norm_axis(axis, s.len());
        s.remove(a);
        let node = self.auto_node_name("Gather");
        let name = self.unique_value_name(&format!("{node}_indices"));
        let idx = self.param(tensor_i64(&name, &[], &[index]));
        self.emit(node, "Gather", &[x, &idx], vec![attr_int("axis", axis)], s)
    }

    /// Unsqueeze at `axes` (an input at opset 13+).
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> String {
        let mut s = self.shape_of(x).to_vec();
        let r = s.len() + axes.len();
        let mut sorted: Vec<usize> = axes.iter().map(|&a| norm_axis(a, r)).collect();
        sorted.sort_unstable();
        for a in sorted {
            s.insert(a, 1);
        }
        let node = self.auto_node_name("Unsqueeze");
        if self.opset >= 13 {
            let ax = self.vec_i64(&format!("{node}_axes"), axes);
            self.emit(node, "Unsqueeze", &[x, &ax], vec![], s)
        } else {
            self.emit(node, "Unsqueeze", &[x], vec![attr_ints("axes", axes)], s)
        }
    }
}
