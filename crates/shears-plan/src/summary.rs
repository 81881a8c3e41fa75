//! Short human descriptions of ops and dims for rendered plans and groups.

use std::fmt::Write as _;

use shears_graph::{DependencyGraph, DimId, DimKey};
use shears_onnx::{ops, Model, NodeId};

/// `Conv(3→64, 7x7, s2)`, `BatchNormalization(64)`, `Gemm(512→1000)`... or the op type.
pub fn op_summary(model: &Model, id: NodeId) -> String {
    let g = &model.graph;
    let n = g.node(id);
    let shape = |slot: usize| n.input(slot).and_then(|v| g.value(v).shape.as_deref());
    match n.op_type.as_str() {
        "Conv" | "ConvTranspose" => {
            let (Some(w), Some(x)) = (shape(1), shape(0)) else {
                return n.op_type.clone();
            };
            let group = n.attr_i("group", 1);
            let out = if n.op_type == "Conv" {
                w[0]
            } else {
                w[1] * group as usize
            };
            // Written into one string: a plan entry carries one per layer.
            let mut s = format!("{}({}→{}, ", n.op_type, x.get(1).copied().unwrap_or(0), out);
            for (i, d) in w[2..].iter().enumerate() {
                let sep = if i == 0 { "" } else { "x" };
                let _ = write!(s, "{sep}{d}");
            }
            if let Some(st) = n.attr_ints("strides") {
                if st.iter().any(|&v| v != 1) {
                    let _ = write!(s, ", s{}", st[0]);
                }
            }
            if group != 1 {
                let _ = write!(s, ", g{group}");
            }
            s.push(')');
            s
        }
        "Gemm" => match shape(1) {
            Some(w) if w.len() == 2 => {
                let (k, o) = if n.attr_i("transB", 0) != 0 {
                    (w[1], w[0])
                } else {
                    (w[0], w[1])
                };
                format!("Gemm({k}→{o})")
            }
            _ => n.op_type.clone(),
        },
        "MatMul" => match (shape(0), shape(1)) {
            (Some(a), Some(b)) if b.len() >= 2 && !a.is_empty() => {
                format!("MatMul({}→{})", b[b.len() - 2], b[b.len() - 1])
            }
            _ => n.op_type.clone(),
        },
        _ if ops::facts(n).role == ops::OpRole::Norm => match shape(1) {
            Some(s) if !s.is_empty() => format!("{}({})", n.op_type, s[s.len() - 1]),
            _ => n.op_type.clone(),
        },
        _ => n.op_type.clone(),
    }
}

/// `tensor[axis]` for a value axis, `node<vk>` for a virtual dim.
pub fn dim_name(model: &Model, graph: &DependencyGraph, d: DimId) -> String {
    match graph.dim(d).key {
        DimKey::Axis(v, a) => format!("{}[{a}]", model.graph.value(v).name),
        DimKey::Virtual(n, k) => format!("{}<group position {k}>", model.graph.node(n).name),
    }
}

/// Indices as a compact, deterministic list: `2, 6, 9` or `98..147, 294..343`.
pub fn compact_indices(idx: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}..{}", idx[i], idx[j] + 1));
        } else {
            parts.extend(idx[i..=j].iter().map(|v| v.to_string()));
        }
        i = j + 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_indices_collapses_runs_of_three_or_more() {
        assert_eq!(super::compact_indices(&[2, 6, 9]), "2, 6, 9");
        assert_eq!(super::compact_indices(&[0, 1, 2, 3, 7, 8]), "0..4, 7, 8");
        assert_eq!(super::compact_indices(&[]), "");
    }
}
