#!/usr/bin/env python3
"""Writes a grouped-query attention block that is not in ../shared, built with onnx.helper, for
the whole-heads interop test ("other transformer exports").

Usage: gqa_model.py VARIANT OUT.onnx, VARIANT one of:
  gqa  pre-LN (LayerNormalization before attention), 6 query heads of 8 in 2 groups over 2
       key/value heads, no biases, k and v from one fused projection split by an opset-18
       Split with `num_outputs` (no sizes), opset 18;
  mqa  post-LN (LayerNormalization after the residual), multi-query attention: 4 query heads
       of 16 over 1 key/value head, a bias on q only, separate k and v projections, opset 17.
Both: input x[1, seq, D] (seq symbolic); q, k, v MatMul with weights [in, out]; heads split by
Reshape [0, 0, h, d]; key/value heads repeated as Llama's repeat_kv does (Unsqueeze, Expand to
a literal [1, kv, rep, 1, 1], Reshape to [1, h, -1, d]); scaled scores, Softmax, context
merged back with [0, 0, D], output projection, residual Add. Exits 3 if onnx or numpy is
missing.
"""
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx numpy)", file=sys.stderr)
    sys.exit(3)

VARIANTS = {
    # heads, kv heads, head dim, pre-LN, q bias, fused kv, opset
    "gqa": dict(h=6, kv=2, hd=8, pre_ln=True, q_bias=False, fused_kv=True, opset=18),
    "mqa": dict(h=4, kv=1, hd=16, pre_ln=False, q_bias=True, fused_kv=False, opset=17),
}


def build(v):
    h, kv, hd = v["h"], v["kv"], v["hd"]
    d, rep = h * hd, h // kv
    rng = np.random.default_rng(11)
    inits = []
    nodes = []

    def param(name, shape, scale=0.3):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        inits.append(numpy_helper.from_array(a, name))
        return name

    def const(name, values):
        inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def node(op, inputs, name, n_out=1, **attrs):
        outs = [name] if n_out == 1 else [f"{name}_{i}" for i in range(n_out)]
        nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def layer_norm(x, name):
        g = param(f"{name}.weight", [d], 0.1)
        b = param(f"{name}.bias", [d], 0.1)
        return node("LayerNormalization", [x, g, b], name, axis=-1)

    x = layer_norm("x", "ln") if v["pre_ln"] else "x"
    q = node("MatMul", [x, param("q.weight", [d, d])], "q_mm")
    if v["q_bias"]:
        q = node("Add", [q, param("q.bias", [d], 0.1)], "q_lin")
    if v["fused_kv"]:
        kv_out = node("MatMul", [x, param("kv.weight", [d, 2 * kv * hd])], "kv_mm")
        k, val = node("Split", [kv_out], "kv_split", n_out=2, axis=-1, num_outputs=2)
    else:
        k = node("MatMul", [x, param("k.weight", [d, kv * hd])], "k_mm")
        val = node("MatMul", [x, param("v.weight", [d, kv * hd])], "v_mm")
    q = node("Reshape", [q, const("q_heads", [0, 0, h, hd])], "q_view")
    q = node("Transpose", [q], "q_t", perm=[0, 2, 1, 3])
    axis2 = const("axis2", [2])
    expand = const("repeat", [1, kv, rep, 1, 1])
    merge = const("merge_kv", [1, h, -1, hd])
    split_kv = const("kv_heads", [0, 0, kv, hd])
    rep_out = {}
    for p, t in (("k", k), ("v", val)):
        t = node("Reshape", [t, split_kv], f"{p}_view")
        t = node("Transpose", [t], f"{p}_t", perm=[0, 2, 1, 3])
        t = node("Unsqueeze", [t, axis2], f"{p}_unsq")
        t = node("Expand", [t, expand], f"{p}_rep")
        rep_out[p] = node("Reshape", [t, merge], f"{p}_merged")
    kt = node("Transpose", [rep_out["k"]], "k_tt", perm=[0, 1, 3, 2])
    s = node("MatMul", [q, kt], "scores")
    inits.append(numpy_helper.from_array(np.array(hd ** -0.5, dtype=np.float32), "scale"))
    s = node("Mul", [s, "scale"], "scaled")
    a = node("Softmax", [s], "attn", axis=-1)
    c = node("MatMul", [a, rep_out["v"]], "context")
    c = node("Transpose", [c], "context_t", perm=[0, 2, 1, 3])
    c = node("Reshape", [c, const("merge_heads", [0, 0, d])], "merged")
    o = node("MatMul", [c, param("out.weight", [d, d])], "out_mm")
    y = node("Add", ["x", o], "residual")
    if not v["pre_ln"]:
        y = layer_norm(y, "ln")
    nodes.append(helper.make_node("Identity", [y], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "gqa_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", d])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", d])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", v["opset"])])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


if __name__ == "__main__":
    onnx.save(build(VARIANTS[sys.argv[1]]), sys.argv[2])
