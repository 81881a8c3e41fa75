#!/usr/bin/env python3
"""Writes a model with onnxruntime's fused `com.microsoft.Attention` (docs/fused.md), as its
transformer optimizer writes it when its attention fusion matches: packed qkv weight
[16, 48] and bias, 4 heads, a [batch, seq] int32 mask input and unidirectional=1, between an
input projection and a residual block, with a symbolic sequence axis.

Usage: attention_fused_model.py OUT.onnx
`input[1, seq, 8] -> MatMul -> r -> Attention -> MatMul -> + r -> MatMul -> output[1, seq, 4]`.
Exits 3 if the packages are missing.
"""
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing Python package: {e.name} (pip install onnx onnxruntime numpy)", file=sys.stderr)
    sys.exit(3)


def main():
    rng = np.random.default_rng(0)

    def weight(name, *dims):
        return numpy_helper.from_array(rng.standard_normal(dims).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("MatMul", ["input", "w0"], ["r"], name="proj"),
        helper.make_node(
            "Attention",
            ["r", "wqkv", "bqkv", "mask"],
            ["a"],
            name="attention",
            domain="com.microsoft",
            num_heads=4,
            unidirectional=1,
        ),
        helper.make_node("MatMul", ["a", "wo"], ["o"], name="out_proj"),
        helper.make_node("Add", ["o", "r"], ["s"], name="residual"),
        helper.make_node("MatMul", ["s", "wc"], ["output"], name="head"),
    ]
    graph = helper.make_graph(
        nodes,
        "attention_fused",
        [
            helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "seq", 8]),
            helper.make_tensor_value_info("mask", TensorProto.INT32, [1, "seq"]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, "seq", 4])],
        [weight("w0", 8, 16), weight("wqkv", 16, 48), weight("bqkv", 48), weight("wo", 16, 16),
         weight("wc", 16, 4)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, sys.argv[1])


if __name__ == "__main__":
    main()
