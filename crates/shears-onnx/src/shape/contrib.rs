//! onnxruntime's fused transformer ops (domain `com.microsoft`, as its transformer optimizer
//! writes them; docs/fused.md), from the contrib-op spec (`ContribOperators.md`):
//! - `SkipLayerNormalization(input, skip, gamma, beta?, bias?) -> (output, mean?,
//!   inv_std_var?, input_skip_bias_sum?)` and `SkipSimplifiedLayerNormalization(input, skip,
//!   gamma, bias?)` with the same outputs: `input + skip + bias` normalized over the last
//!   (hidden) axis. `skip` is `input`'s shape or a trailing part of it (`[seq, hidden]`,
//!   `[1, seq, hidden]`); every vector is `[hidden]`; mean and inverse deviation are the
//!   leading axes then 1.
//! - `BiasGelu(A, B)`, `FastGelu(X, bias?)`: `Gelu(X + bias)` with `bias` `[hidden]` (FastGelu's
//!   tanh approximation); `Gelu(X)`: the output has the input's shape.
//!
//! - `MultiHeadAttention(query[B, S, D], key[B, L, D], value[B, L, Dv], ...)`: output
//!   `[B, S, Dv]`; the packed forms (no key, or a 5-D key) and the present outputs are left
//!   unknown (the coupling rule refuses them).
//! - `GroupQueryAttention(query[B, S, N·d], key[B, S, Nkv·d], value, past_key?, ...)`: output
//!   `[B, S, N·d]`; `present_key`/`present_value` `[B, Nkv, T, d]` with `T` the larger of the
//!   past length and a statically known `total_sequence_length` (unknown otherwise).
//! - `RotaryEmbedding(input, position_ids, cos_cache, sin_cache)`: the input's shape.
//!
//! These rules are looked up by domain and op together (`shape::rule`, [`super::has_rule`]): a node named like one
//! of them in another domain has no rule here.

/// MultiHeadAttention's optional inputs (slot, name) that Shears does not follow: its coupling
/// rule leaves a node giving one opaque, with this name, and the evaluator refuses it.
pub const MHA_UNFOLLOWED_INPUTS: &[(usize, &str)] = &[
    (3, "bias"),
    (5, "attention_bias"),
    (6, "past_key"),
    (7, "past_value"),
    (8, "past_sequence_length"),
    (9, "cache_indirection"),
];

use super::{broadcast, invalid, Ctx, Fail, Out, ShapeFn, FLOAT};

type R = Result<Vec<Out>, Fail>;

pub(super) const RULES: &[(&str, ShapeFn)] = &[
    ("SkipLayerNormalization", skip_norm),
    ("SkipSimplifiedLayerNormalization", skip_norm),
    ("BiasGelu", bias_gelu),
    ("FastGelu", bias_gelu),
    ("Gelu", same),
    ("Attention", attention),
    ("MultiHeadAttention", multi_head_attention),
    ("GroupQueryAttention", group_query_attention),
    ("RotaryEmbedding", same),
];

/// The sizes of the q, k and v parts of an Attention's packed weight of `total` columns.
/// Shared with the coupling rule and the evaluator, so the three agree by construction.
pub fn qkv_sizes(qkv_hidden_sizes: Option<&[i64]>, total: usize) -> Result<[usize; 3], String> {
    let sizes = match qkv_hidden_sizes {
        None if total.is_multiple_of(3) => [total / 3; 3],
        None => {
            return Err(format!(
                "{total} packed columns do not split into three equal parts"
            ))
        }
        Some(&[q, k, v]) if q > 0 && k > 0 && v > 0 => [q as usize, k as usize, v as usize],
        Some(s) => {
            return Err(format!(
                "qkv_hidden_sizes {s:?} is not three positive sizes"
            ))
        }
    };
    if sizes.iter().sum::<usize>() != total {
        return Err(format!(
            "qkv_hidden_sizes {sizes:?} do not add up to {total} packed columns"
        ));
    }
    if sizes[0] != sizes[1] {
        return Err(format!(
            "q and k sizes differ ({} and {})",
            sizes[0], sizes[1]
        ));
    }
    Ok(sizes)
}

fn attention(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let w = c.shape(1)?;
    if x.len() != 3 || w.len() != 2 || w[0] != x[2] {
        return invalid(format!(
            "input {x:?} and weights {w:?} are not [batch, sequence, hidden] and [hidden, q + k + v]"
        ));
    }
    let sizes = qkv_sizes(c.attr_ints("qkv_hidden_sizes"), w[1])?;
    let heads = c.attr_i("num_heads", 0);
    if heads < 1 || sizes[0] % heads as usize != 0 || sizes[2] % heads as usize != 0 {
        return invalid(format!(
            "num_heads {heads} does not divide the q and v sizes {sizes:?}"
        ));
    }
    vector(c, 2, "bias", w[1])?;
    Ok(vec![Out::new(vec![x[0], x[1], sizes[2]], c.dtype(0)?)])
}

/// `num_heads` as a positive divisor of every width in `widths`.
fn heads_dividing(c: &Ctx<'_>, attr: &str, widths: &[usize]) -> Result<usize, Fail> {
    let h = c.attr_i(attr, 0);
    match usize::try_from(h) {
        Ok(n) if n > 0 && widths.iter().all(|w| w % n == 0) => Ok(n),
        _ => invalid(format!("{attr} {h} does not divide the widths {widths:?}")),
    }
}

fn multi_head_attention(c: &Ctx<'_>) -> R {
    let q = c.shape(0)?;
    if q.len() != 3 || !c.has(1) || !c.has(2) {
        // Packed q/k/v or k/v: not followed (the coupling rule says so).
        return Err(Fail::Unknown);
    }
    let (k, v) = (c.shape(1)?, c.shape(2)?);
    if k.len() != 3 || v.len() != 3 {
        return Err(Fail::Unknown);
    }
    if k[0] != q[0] || v[0] != q[0] || k[1] != v[1] || k[2] != q[2] {
        return invalid(format!(
            "query {q:?}, key {k:?}, value {v:?} are not [B, S, D], [B, L, D], [B, L, Dv]"
        ));
    }
    heads_dividing(c, "num_heads", &[q[2], v[2]])?;
    Ok(vec![Out::new(vec![q[0], q[1], v[2]], c.dtype(0)?)])
}

fn group_query_attention(c: &Ctx<'_>) -> R {
    let q = c.shape(0)?;
    if q.len() != 3 || !c.has(1) || !c.has(2) {
        return Err(Fail::Unknown);
    }
    let (k, v) = (c.shape(1)?, c.shape(2)?);
    if k.len() != 3 || k != v || k[..2] != q[..2] {
        return invalid(format!(
            "query {q:?}, key {k:?}, value {v:?} are not [B, S, N·d], [B, S, Nkv·d] twice"
        ));
    }
    let heads = heads_dividing(c, "num_heads", &[q[2]])?;
    let kv = heads_dividing(c, "kv_num_heads", &[k[2]])?;
    let d = q[2] / heads;
    if k[2] / kv != d || heads % kv != 0 {
        return invalid(format!(
            "{heads} query heads of {d} and {kv} key/value heads of {} do not group",
            k[2] / kv
        ));
    }
    let dtype = c.dtype(0)?;
    let mut outs = vec![Out::new(q.to_vec(), dtype)];
    let past = if c.has(3) {
        let p = c.shape(3)?;
        if p.len() != 4 || p[0] != q[0] || p[1] != kv || p[3] != d {
            return invalid(format!("past_key {p:?} is not [{}, {kv}, P, {d}]", q[0]));
        }
        p[2]
    } else {
        0
    };
    let total = c.folded_opt(6).and_then(|t| t.first().copied());
    if let Some(t) = total.and_then(|t| usize::try_from(t).ok()) {
        let present = vec![q[0], kv, past.max(t), d];
        outs.push(Out::new(present.clone(), dtype));
        outs.push(Out::new(present, dtype));
    }
    Ok(outs)
}

fn same(c: &Ctx<'_>) -> R {
    Ok(vec![Out::new(c.shape(0)?.to_vec(), c.dtype(0)?)])
}

/// The last axis of `x` (the hidden size), or an error for a scalar.
fn hidden(x: &[usize]) -> Result<usize, Fail> {
    match x.last() {
        Some(&h) => Ok(h),
        None => invalid("input is a scalar (needs a hidden axis)"),
    }
}

/// Checks that input `slot`, when present, is `[h]`.
fn vector(c: &Ctx<'_>, slot: usize, what: &str, h: usize) -> Result<(), Fail> {
    if c.has(slot) {
        let s = c.shape(slot)?;
        if s != [h] {
            return invalid(format!(
                "{what} has shape {s:?}, expected [{h}] (the input's last axis)"
            ));
        }
    }
    Ok(())
}

fn bias_gelu(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    vector(c, 1, "bias", hidden(x)?)?;
    same(c)
}

/// Both skip normalizations: slot 3 is `beta` then `bias` for SkipLayerNormalization and
/// `bias` for the simplified one; each is `[hidden]` either way.
fn skip_norm(c: &Ctx<'_>) -> R {
    let x = c.shape(0)?;
    let h = hidden(x)?;
    let skip = c.shape(1)?;
    if skip.len() > x.len() || broadcast(&[x, skip]).ok().as_deref() != Some(x) {
        return invalid(format!(
            "skip of shape {skip:?} does not broadcast to the input's {x:?}"
        ));
    }
    let names: &[&str] = if c.node.op_type == "SkipLayerNormalization" {
        &["gamma", "beta", "bias"]
    } else {
        &["gamma", "bias"]
    };
    if c.n_inputs() > 2 + names.len() {
        return invalid(format!(
            "{} inputs, at most {}",
            c.n_inputs(),
            2 + names.len()
        ));
    }
    if !c.has(2) {
        return invalid("gamma (input 2) is missing");
    }
    for (k, what) in names.iter().enumerate() {
        vector(c, 2 + k, what, h)?;
    }
    let dtype = c.dtype(0)?;
    let mut stat = x[..x.len() - 1].to_vec();
    stat.push(1);
    Ok(vec![
        Out::new(x.to_vec(), dtype),
        Out::new(stat.clone(), FLOAT),
        Out::new(stat, FLOAT),
        Out::new(x.to_vec(), dtype),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::ops::MS_DOMAIN;
    use crate::proto::OperatorSetIdProto;
    use crate::Model;

    /// `b`'s model with every node in com.microsoft (imported), shapes inferred.
    fn infer_ms(b: &GraphBuilder, specs: &[&str]) -> crate::Result<Model> {
        let mut p = b.proto();
        for n in &mut p.graph.as_mut().unwrap().node {
            n.domain = MS_DOMAIN.into();
        }
        p.opset_import.push(OperatorSetIdProto {
            domain: MS_DOMAIN.into(),
            version: 1,
        });
        let mut m = Model::from_proto(p, "test", crate::external::ExternalStore::none())?;
        crate::shape::infer_shapes(&mut m, &crate::InputShapes::parse(specs)?)?;
        Ok(m)
    }

    fn shape_of(m: &Model, name: &str) -> Option<Vec<usize>> {
        let v = m.graph.value_id(name).unwrap();
        m.graph.value(v).shape.clone()
    }

    #[test]
    fn skip_layer_norm_keeps_the_input_shape_and_checks_its_vectors() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[2, 5, 8]).input("skip", &[5, 8]);
        for v in ["g", "beta", "bias"] {
            b.init_f32(v, &[8]);
        }
        b.node(
            "SkipLayerNormalization",
            &["x", "skip", "g", "beta", "bias"],
            &["y", "mean", "inv", "sum"],
            vec![],
        );
        b.output("y");
        let m = infer_ms(&b, &[]).unwrap();
        assert_eq!(shape_of(&m, "y"), Some(vec![2, 5, 8]));
        assert_eq!(shape_of(&m, "mean"), Some(vec![2, 5, 1]));
        assert_eq!(shape_of(&m, "sum"), Some(vec![2, 5, 8]));

        let mut bad = GraphBuilder::new(17);
        bad.input("x", &[2, 5, 8]).input("skip", &[2, 5, 8]);
        bad.init_f32("g", &[7]);
        bad.node(
            "SkipSimplifiedLayerNormalization",
            &["x", "skip", "g"],
            &["y"],
            vec![],
        );
        bad.output("y");
        let e = infer_ms(&bad, &[]).unwrap_err().to_string();
        assert!(e.contains("gamma has shape [7], expected [8]"), "{e}");
    }

    #[test]
    fn bias_gelu_checks_its_bias_and_the_rules_need_their_domain() {
        let mut b = GraphBuilder::new(17);
        b.input("x", &[1, 3, 16]);
        b.init_f32("bias", &[16]);
        b.node("BiasGelu", &["x", "bias"], &["y"], vec![]);
        b.node("FastGelu", &["y"], &["z"], vec![]);
        b.output("z");
        let m = infer_ms(&b, &[]).unwrap();
        assert_eq!(shape_of(&m, "z"), Some(vec![1, 3, 16]));
        // The same nodes in the default domain are unknown ops: no shape.
        let plain = b.infer(&[]).unwrap();
        assert_eq!(shape_of(&plain, "y"), None);

        let mut bad = GraphBuilder::new(17);
        bad.input("x", &[1, 3, 16]);
        bad.init_f32("bias", &[3]);
        bad.node("BiasGelu", &["x", "bias"], &["y"], vec![]);
        bad.output("y");
        let e = infer_ms(&bad, &[]).unwrap_err().to_string();
        assert!(e.contains("bias has shape [3], expected [16]"), "{e}");
    }

    #[test]
    fn multi_head_attention_outputs_the_value_width_and_checks_num_heads() {
        let mut b = GraphBuilder::new(17);
        b.input("q", &[2, 5, 16])
            .input("k", &[2, 7, 16])
            .input("v", &[2, 7, 12]);
        b.node(
            "MultiHeadAttention",
            &["q", "k", "v"],
            &["y"],
            vec![ai("num_heads", 4)],
        );
        b.output("y");
        let m = infer_ms(&b, &[]).unwrap();
        assert_eq!(shape_of(&m, "y"), Some(vec![2, 5, 12]));

        let mut bad = GraphBuilder::new(17);
        bad.input("q", &[2, 5, 16])
            .input("k", &[2, 7, 16])
            .input("v", &[2, 7, 12]);
        bad.node(
            "MultiHeadAttention",
            &["q", "k", "v"],
            &["y"],
            vec![ai("num_heads", 5)],
        );
        bad.output("y");
        let e = infer_ms(&bad, &[]).unwrap_err().to_string();
        assert!(
            e.contains("num_heads 5 does not divide the widths [16, 12]"),
            "{e}"
        );

        // Packed q/k/v (no key): not followed, the output stays unknown, inference goes on.
        let mut packed = GraphBuilder::new(17);
        packed.input("qkv", &[2, 5, 4, 3, 4]);
        packed.node(
            "MultiHeadAttention",
            &["qkv"],
            &["y"],
            vec![ai("num_heads", 4)],
        );
        packed.output("y");
        let m = infer_ms(&packed, &[]).unwrap();
        assert_eq!(shape_of(&m, "y"), None);
    }

    #[test]
    fn group_query_attention_groups_its_heads_and_sizes_the_present_caches() {
        let gqa = |kv: i64| {
            let mut b = GraphBuilder::new(17);
            b.input("q", &[1, 5, 64])
                .input("k", &[1, 5, 32])
                .input("v", &[1, 5, 32])
                .input("pk", &[1, 2, 3, 16])
                .input("pv", &[1, 2, 3, 16])
                .init_ints("total", &[], &[8]);
            b.node(
                "GroupQueryAttention",
                &["q", "k", "v", "pk", "pv", "", "total"],
                &["y", "present_key", "present_value"],
                vec![ai("num_heads", 4), ai("kv_num_heads", kv)],
            );
            b.output("y");
            infer_ms(&b, &[])
        };
        let m = gqa(2).unwrap();
        assert_eq!(shape_of(&m, "y"), Some(vec![1, 5, 64]));
        assert_eq!(shape_of(&m, "present_key"), Some(vec![1, 2, 8, 16]));
        let e = gqa(4).unwrap_err().to_string();
        assert!(e.contains("4 key/value heads of 8 do not group"), "{e}");
    }
}
