#!/usr/bin/env python3
"""Writes a multi-head attention block that is not in ../shared, built with onnx.helper, for
the whole-heads interop test.

Usage: attention_model.py OUT.onnx
Layout, unlike the shared exports: input x[1, seq, 32] (seq symbolic); q, k and v as MatMul
with weights stored [in, out] plus bias; a Reshape target written with 0 entries
([0, 0, 4, 8]: copy batch and sequence), keys transposed straight to [1, 4, 8, seq] (perm
0,2,3,1) so no Transpose of the scores is needed; a learned per-head bias [1, 4, 1, 1] added
to the scores (a constant indexed by head); Softmax; the context merged back with
[0, 0, 32]; the output projection; a residual Add. Exits 3 if onnx or numpy is missing.
"""
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx numpy)", file=sys.stderr)
    sys.exit(3)

D, H, HD = 32, 4, 8


def main(out):
    rng = np.random.default_rng(5)
    inits = []

    def param(name, shape, scale=0.3):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def const(name, values):
        inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    nodes = []

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    split = const("split_heads", [0, 0, H, HD])
    merge = const("merge_heads", [0, 0, D])
    heads = {}
    for p in "qkv":
        y = node("MatMul", ["x", param(f"{p}.weight", [D, D])], f"{p}_mm")
        y = node("Add", [y, param(f"{p}.bias", [D], 0.1)], f"{p}_lin")
        heads[p] = node("Reshape", [y, split], f"{p}_heads")
    q = node("Transpose", [heads["q"]], "q_t", perm=[0, 2, 1, 3])
    k = node("Transpose", [heads["k"]], "k_t", perm=[0, 2, 3, 1])
    v = node("Transpose", [heads["v"]], "v_t", perm=[0, 2, 1, 3])
    s = node("MatMul", [q, k], "scores")
    s = node("Mul", [s, param("scale", [], 0.0)], "scaled")
    inits[-1] = numpy_helper.from_array(np.array(HD ** -0.5, dtype=np.float32), "scale")
    s = node("Add", [s, param("head_bias", [1, H, 1, 1], 1.0)], "biased")
    a = node("Softmax", [s], "attn", axis=-1)
    c = node("MatMul", [a, v], "context")
    c = node("Transpose", [c], "context_t", perm=[0, 2, 1, 3])
    c = node("Reshape", [c, merge], "merged")
    o = node("MatMul", [c, param("out.weight", [D, D])], "out_mm")
    o = node("Add", [o, param("out.bias", [D], 0.1)], "out_lin")
    nodes.append(helper.make_node("Add", ["x", o], ["y"], name="residual"))
    graph = helper.make_graph(
        nodes,
        "attention_block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "seq", D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "seq", D])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out)


if __name__ == "__main__":
    main(sys.argv[1])
